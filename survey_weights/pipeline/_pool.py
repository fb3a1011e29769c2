"""The main job's pool evaluation (issue 10): every adapter's expected rubric score on a fixed, rubric-scored
candidate pool, and for each subgroup or class profile the oracle-predicted gain over the pooled profile beside the
observed one.

Written into ``evaluation.json`` (``"pool"``), a section of ``report.md`` and ``pool_front.png``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._util.io import atomic_write_bytes, atomic_write_text
from ..criteria import ALL_CRITERIA

__all__ = ["POOL_NORMALISE", "POOL_REWARD_SCALE", "bundled_calibration_pool", "bundled_pool", "class_separation",
           "evaluate_and_write_pool", "mixing_record", "plot_class_separation", "pool_comparisons",
           "write_pool_section"]

#: Per-token log-probabilities: with a small base model the summed variant puts all mass on the shortest reply.
POOL_NORMALISE = "mean"
#: Reward units per rubric point in the oracle (the persona judges' sharpness suggests 0.2-0.4 per point).
POOL_REWARD_SCALE = 0.3


def _split_pool(split: str, n_prompts: int, exclude: Any, name: Any, *, calibration: bool = False) -> Any:
    """The first `n_prompts` prompts of `split` in the bundled synthetic preference data that are not in `exclude`,
    five rubric-scored candidates each, as a CandidatePool named ``name(number of prompts)`` (``calibration``:
    at least 2 such prompts are required)."""
    from ..evaluation.pool import CandidatePool
    from ..synthetic.preferences import load_preference_data

    data = load_preference_data()
    used = set(exclude)
    ids = [p for p in data.prompts.loc[data.prompts["split"] == split, "prompt_id"] if p not in used][:n_prompts]
    if calibration and len(ids) < 2:
        raise ValueError(f"Only {len(ids)} training-split prompts are free of training pairs; calibration needs >= 2. "
                         "Fix: train on fewer pairs (pairs_per_criterion) or set n_calibration_prompts=None.")
    cands = data.candidates[data.candidates["prompt_id"].isin(set(ids))]
    return CandidatePool.from_frame(cands, criteria=ALL_CRITERIA, name=name(len(ids)))


def bundled_pool(n_prompts: int) -> Any:
    """The first `n_prompts` held-out prompts of the bundled synthetic preference data, five candidates each."""
    return _split_pool("test", n_prompts, (), lambda n: f"bundled synthetic test pool ({n} prompts)")


def bundled_calibration_pool(n_prompts: int, exclude: Any = ()) -> Any:
    """Calibration pool of the main job's conditioned run: the first `n_prompts` *training-split* prompts of the
    bundled synthetic preference data that no pair in `exclude` (prompt ids: the run's training pairs) comes from,
    five rubric-scored candidates each. Neither a training pair nor an evaluation prompt is among them."""
    return _split_pool("train", n_prompts, exclude,
                       lambda n: "bundled synthetic calibration pool (training split, no training pair)", calibration=True)


def pool_comparisons(pe: Any, weights: Mapping[str, Mapping[str, float]], *, pooled: str = "pooled"
                     ) -> list[dict[str, Any]]:
    """For every profile other than `pooled`: the oracle-predicted gain over the pooled profile on the profile's
    own weighted objective (``predicted``: estimate, se, ci, detectable) and the observed gain of its adapter over
    the pooled adapter (``observed``: the crossover test's ``gain_p``), with ``"not detectable by design"`` where
    the prediction is below twice its standard error."""
    out = []
    if pooled not in weights:
        return out
    for name, w in weights.items():
        if name == pooled or name not in pe.names:
            continue
        pred = pe.oracle_gain(w, weights[pooled])
        cross = pe.crossover(name, pooled, w, weights[pooled])
        out.append({"profile": name, "predicted": pred, "observed": cross["gain_p"],
                    "verdict": "detectable by design" if pred["detectable"] else "not detectable by design"})
    return out


def class_separation(pe: Any, weights: Mapping[str, Mapping[str, float]], classes: Sequence[str]) -> dict[str, Any]:
    """Does the pool metric separate the latent-class adapters from the base and from each other?

    ``from_base``: each class adapter minus the base on the class's own weighted objective (paired interval over
    prompts), with its ``kl_to_base``, ``oracle_at_distance`` (the best possible gain over the base at that
    distance, :meth:`~survey_weights.evaluation.PoolEvaluation.oracle_improvement`) and ``efficiency`` (the
    observed gain as a share of it; None when the oracle gains nothing); ``between``: the crossover test of every
    pair of classes (each beats the other on its own objective), with ``oracle_at_distance``: the gain each side
    would show if both adapters were the best possible models at the distances from the base they reached
    (``oracle_gain`` with ``kl_p`` / ``kl_q``; ``detectable``: at least 2 SE) - so a failed side with a detectable
    prediction was missed by the training, one without was too small to see at this training budget - and
    ``margin_by_design`` (``p``, ``q``): each side's oracle gain as a share of that class's own oracle gain over
    the base. With both adapters at one efficiency ``e`` a side's expected gain is ``e`` times its oracle gain; a
    small margin (p's objective almost as well served by q's oracle as by its own) means the side passes only
    if p's adapter is the more efficient of the two by about that share. ``separated``: every interval above 0
    (None when there are no classes)."""
    names = [c for c in classes if c in pe.names and c in weights]
    base_rows = []
    kl = {c: pe.kl_to_base(c) for c in names}
    best = {c: pe.oracle_improvement(weights[c], kl=kl[c]) for c in names}
    for c in names:
        gain = pe.difference(c, pe.base, weights[c])
        base_rows.append({"profile": c, "gain": gain, "separated": bool(gain["ci"][0] > 0), "kl_to_base": kl[c],
                          "oracle_at_distance": best[c], "efficiency": _ratio(gain, best[c])})
    between = []
    for i, p in enumerate(names):
        for q in names[i + 1:]:
            c = pe.crossover(p, q, weights[p], weights[q])
            od = {"gain_p": pe.oracle_gain(weights[p], weights[q], kl_p=kl[p], kl_q=kl[q]),
                  "gain_q": pe.oracle_gain(weights[q], weights[p], kl_p=kl[q], kl_q=kl[p])}
            c["oracle_at_distance"] = od
            c["margin_by_design"] = {"p": _ratio(od["gain_p"], best[p]), "q": _ratio(od["gain_q"], best[q])}
            between.append(c)
    ok = [r["separated"] for r in base_rows] + [c["passed"] for c in between]
    return {"from_base": base_rows, "between": between, "separated": bool(all(ok)) if names else None}


def _ratio(part: Mapping[str, Any], whole: Mapping[str, Any]) -> float | None:
    """``part`` as a share of ``whole`` (their ``estimate``s); None when ``whole`` is not positive."""
    return float(part["estimate"] / whole["estimate"]) if whole["estimate"] > 0 else None


def _separation_rows(separation: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], Any]]:
    """(label, gain, oracle at distance or None) per row of :func:`plot_class_separation`: each class over the
    base, then both sides of every crossover."""
    rows: list[tuple[str, Mapping[str, Any], Any]] = [(f"{r['profile']} over base", r["gain"], None)
                                                      for r in separation.get("from_base", [])]
    for c in separation.get("between", []):
        p, q = c["profiles"]
        od = c.get("oracle_at_distance") or {}
        rows += [(f"{p} over {q} on {p}'s objective", c["gain_p"], od.get("gain_p")),
                 (f"{q} over {p} on {q}'s objective", c["gain_q"], od.get("gain_q"))]
    return rows


def plot_class_separation(separation: Mapping[str, Any], *, ax: Any = None) -> Any:
    """The paired gains of :func:`class_separation` with their 95% intervals, one row each, and a line at 0.

    Rows: each class against the base on its own objective, then both sides of every crossover ("p over q on p":
    p's adapter minus q's on p's objective). Filled markers: interval above 0. Grey crosses: the oracle's gain at
    the distances the two adapters reached (:func:`class_separation`), where known. Returns the Axes.
    """
    from ..plotting import axes_or_new

    rows = _separation_rows(separation)
    ax = axes_or_new(ax, (7, 0.45 * len(rows) + 1.2))
    for i, (_, g, _o) in enumerate(rows):
        lo, hi = g["ci"]
        above = lo > 0
        ax.errorbar(g["estimate"], i, xerr=[[g["estimate"] - lo], [hi - g["estimate"]]], fmt="o", capsize=3,
                    color="C0" if above else "C3", markerfacecolor="C0" if above else "white")
    oracle = [(i, o["estimate"]) for i, (_, _g, o) in enumerate(rows) if o is not None]
    if oracle:
        ax.plot([x for _, x in oracle], [i for i, _ in oracle], "x", color="0.4", ms=7,
                label="oracle at the adapters' distances")
    ax.axvline(0.0, color="0.5", lw=1, ls="--")
    ax.set_yticks(range(len(rows)), [label for label, _, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("gain on the weighted objective (paired 95% interval over prompts)"
                  + ("\n× = the oracle at the distances from the base the two adapters reached" if oracle else ""))
    return ax


def mixing_record(adapter_dirs: Sequence[Path]) -> dict[str, Any] | None:
    """How the exports of a conditioned run were mixed (``profile.json``'s ``mixing``, the same for every export of
    one run): ``calibrated`` and, when so, the calibration's pool, size, ridge and R² per criterion. None for
    adapters that were not exported from a conditioned run."""
    for d in adapter_dirs:
        try:
            mix = json.loads((Path(d) / "profile.json").read_text()).get("mixing")
        except (OSError, ValueError):
            continue
        if mix is not None:
            cal = mix.get("calibration") or {}
            keep = ("source", "n_prompts", "normalise", "ridge", "r2")
            return {"calibrated": bool(mix.get("calibrated")), **({"calibration": {k: cal[k] for k in keep if k in cal}}
                                                                 if cal else {})}
    return None


def _mixing_lines(mixing: Mapping[str, Any] | None) -> list[str]:
    if not mixing:
        return []
    if not mixing.get("calibrated"):
        return ["", "Adapters: the conditioned run's own mix (shared LoRA + each criterion's at its weight)."]
    cal = mixing.get("calibration", {})
    r2 = ", ".join(f"{c} {v:.2f}" for c, v in cal.get("r2", {}).items())
    return ["", f"Adapters: the conditioned run's components with **calibrated mixing** (`ConditionedAdapter.calibrate`"
                f"): scales fitted on {cal.get('source', 'a calibration pool')} - prompts that neither trained the run "
                "nor are scored here - so each adapter moves the criteria the way its weights ask, at the distance "
                f"from the base the run's own mix has (ridge {cal.get('ridge', float('nan')):g}; R² of the criteria's "
                f"scores on the run's directions: {r2}). The weights are the survey's."]


SYNTHETIC_POOL_NOTE = "Synthetic pool; not the study's numbers."


def write_pool_section(pe: Any, comparisons: Sequence[Mapping[str, Any]], out: Path, *, seconds: float,
                       separation: Mapping[str, Any] | None = None,
                       mixing: Mapping[str, Any] | None = None, json_name: str = "evaluation.json",
                       report_name: str = "report.md", note: str = SYNTHETIC_POOL_NOTE,
                       plot_title: str = "synthetic pool", lead: bool = False) -> dict[str, Path]:
    """Add ``"pool"`` to ``out/<json_name>``, a section to ``out/<report_name>`` (both started when absent) and
    ``out/pool_front.png`` (``mixing``: :func:`mixing_record` of the adapters, reported with them; ``note``: what
    the pool is, after the method sentence; ``plot_title``: the pool's name in the plots' titles; ``lead``: the
    section goes before the report's first ``## `` section, right after its title and caveat, instead of at the
    end)."""
    from ..plotting import figure_png, new_figure

    out.mkdir(parents=True, exist_ok=True)
    doc_path = out / json_name
    doc = json.loads(doc_path.read_text()) if doc_path.is_file() else {}
    doc["pool"] = pe.to_dict(comparisons_with_pooled=list(comparisons), seconds=round(seconds, 1),
                             **({"separation": dict(separation)} if separation else {}),
                             **({"mixing": dict(mixing)} if mixing else {}))
    atomic_write_text(doc_path, json.dumps(doc, indent=2, allow_nan=False) + "\n")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 5.5))
    ax, rel = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    # Left: every model and the oracle front at the evaluation's beta (the best the pool allows). Right: each
    # model's gain over the base with paired intervals (the models' own intervals, left, are dominated by how the
    # prompts differ) and the oracle front at the adapters' median distance from the base.
    pe.plot(ax=ax, labels=False)
    ax.set_title(f"Expected scores and the oracle front ({plot_title}, 95% intervals)", fontsize=9)
    pe.plot(ax=rel, labels="legend", relative_to=pe.base, oracle_kl="median")
    rel.set_title(f"Gain over the base, paired 95% intervals; oracle at the adapters' median KL ({plot_title})",
                  fontsize=9)
    fig.suptitle("Pool evaluation: expected empathy vs safety")
    png = atomic_write_bytes(out / "pool_front.png", figure_png(fig))
    sep_png = None
    if separation and separation.get("from_base"):
        fig, ax = new_figure((8, 0.45 * len(_separation_rows(separation)) + 1.5))
        plot_class_separation(separation, ax=ax)
        ax.set_title(f"Latent classes on the pool: paired gains ({plot_title})")
        fig.tight_layout()
        sep_png = atomic_write_bytes(out / "pool_separation.png", figure_png(fig))
    t = pe.to_frame()
    crits = list(pe.pool.criteria)
    cell = t.assign(v=[f"{e:.2f} [{lo:.2f}, {hi:.2f}]" for e, lo, hi in zip(t["expected"], t["ci_lo"], t["ci_hi"])])
    wide = cell.pivot(index="model", columns="criterion", values="v").loc[pe.names, crits]
    lines = ["", "## Pool evaluation (primary metric)", "",
             f"Each model's distribution over the {pe.pool.n_prompts} held-out prompts' rubric-scored candidates "
             f"(q(k|x) from per-token log-probabilities, `normalise={pe.normalise!r}`), its expected rubric score "
             f"per criterion with paired bootstrap 95% intervals over prompts ({pe.n_boot} replicates, seed "
             f"{pe.seed}). {note}", *_mixing_lines(mixing), "",
             "| model | KL to base | " + " | ".join(crits) + " |", "|---|---|" + "---|" * len(crits)]
    for name in pe.names:
        lines.append(f"| {name} | {pe.kl_to_base(name):.4f} | " + " | ".join(wide.loc[name]) + " |")
    if comparisons:
        lines += ["", "### Each profile against the pooled one, on its own weighted objective", "",
                  f"Predicted: the KL-regularised oracle's gain (β = {pe.beta:g}, {pe.reward_scale:g} reward units "
                  "per rubric point) with its bootstrap SE; observed: the profile's adapter minus the pooled "
                  "adapter, paired 95% interval.", "",
                  "| profile | predicted gain (SE) | observed gain [95% CI] | by design |", "|---|---|---|---|"]
        for c in comparisons:
            p, o = c["predicted"], c["observed"]
            lines.append(f"| {c['profile']} | {p['estimate']:.4f} ({p['se']:.4f}) | {o['estimate']:.4f} "
                         f"[{o['ci'][0]:.4f}, {o['ci'][1]:.4f}] | {c['verdict']} |")
    if separation and separation.get("from_base"):
        verdict = "yes" if separation["separated"] else "no"
        lines += ["", f"### Latent classes: separated from the base and from each other? **{verdict}**", "",
                  "Each class adapter minus the base on the class's own objective, and the crossover test of each "
                  "pair of classes (paired 95% intervals over prompts; separated = every interval above 0). "
                  "Oracle at these distances: what each side of a crossover would be if both adapters were the best "
                  "possible models at the KL from the base they reached on the pool (SE; * = at least 2 SE, so "
                  "detectable at this training budget). Against the base, the oracle column is the best possible "
                  "gain at the class adapter's distance and the share of it the adapter reached (efficiency); for a "
                  "crossover, each side's margin by design is its oracle gain as a share of that class's own oracle "
                  "gain: with both adapters equally efficient a side shows that efficiency times its oracle gain, "
                  "so a side with a small margin passes only if its class's adapter is the more efficient one by "
                  "about that share.", "",
                  "| comparison | gain [95% CI] | gain back [95% CI] | separated | oracle at these distances |",
                  "|---|---|---|---|---|"]
        for r in separation["from_base"]:
            g = r["gain"]
            ob, eff = r.get("oracle_at_distance"), r.get("efficiency")
            best = (f"{ob['estimate']:.4f} ({ob['se']:.4f})" + (f"; efficiency {eff:.0%}" if eff is not None else "")
                    if ob else "")
            lines.append(f"| {r['profile']} vs base | {g['estimate']:.4f} [{g['ci'][0]:.4f}, {g['ci'][1]:.4f}] | | "
                         f"{'yes' if r['separated'] else 'no'} | {best} |")

        def _share(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.0%}"

        def _o(g: Mapping[str, Any]) -> str:
            return f"{g['estimate']:.4f} ({g['se']:.4f}){'*' if g['detectable'] else ''}"

        for c in separation["between"]:
            gp, gq = c["gain_p"], c["gain_q"]
            od, mg = c.get("oracle_at_distance"), c.get("margin_by_design")
            lines.append(f"| {c['profiles'][0]} vs {c['profiles'][1]} | {gp['estimate']:.4f} [{gp['ci'][0]:.4f}, "
                         f"{gp['ci'][1]:.4f}] | {gq['estimate']:.4f} [{gq['ci'][0]:.4f}, {gq['ci'][1]:.4f}] | "
                         f"{'yes' if c['passed'] else 'no'} | "
                         + (f"{_o(od['gain_p'])} / {_o(od['gain_q'])}" if od else "")
                         + (f"; margin {_share(mg.get('p'))} / {_share(mg.get('q'))}" if mg else "") + " |")
        lines += ["", f"![class separation]({sep_png.name})"]
    lines += ["", f"![pool front]({png.name})", ""]
    report = out / report_name
    head = report.read_text() if report.is_file() else f"# Pool evaluation: {pe.pool.name}\n"
    at = head.find("\n## ") if lead else -1
    if at >= 0:  # the primary metric first, then the report's own sections
        atomic_write_text(report, head[:at] + "\n".join(lines) + head[at:])
    else:
        atomic_write_text(report, head + "\n".join(lines))
    return {"pool_front": png, "pool_evaluation": doc_path, "pool_report": report,
            **({"pool_separation": sep_png} if sep_png else {})}


def evaluate_and_write_pool(adapters: Sequence[tuple[str, Path]], weights: Mapping[str, Mapping[str, float]],
                            pool: Any, out: Path, *, model: Any, tokenizer: Any, seed: int, progress: bool,
                            **write: Any) -> dict[str, Path]:
    """Score the base model and ``adapters`` (name, directory) on ``pool`` with the pool settings above, compare
    every profile with the pooled one and the latent classes (``class ...``) with the base and each other, and write
    the section (:func:`write_pool_section`; ``write``: its file names, note and plot title)."""
    from ..evaluation.pool_scoring import evaluate_pool

    t0 = time.perf_counter()
    pe = evaluate_pool(dict(adapters), pool, model=model, tokenizer=tokenizer, normalise=POOL_NORMALISE,
                       reward_scale=POOL_REWARD_SCALE, seed=seed, progress=progress)
    sep = class_separation(pe, weights, [n for n in weights if n.startswith("class ")])
    return write_pool_section(pe, pool_comparisons(pe, weights), out, seconds=time.perf_counter() - t0,
                              separation=sep, mixing=mixing_record([path for _, path in adapters]), **write)
