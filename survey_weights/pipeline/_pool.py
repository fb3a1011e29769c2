"""The main job's pool evaluation (issue 10): every adapter's expected rubric score on a fixed, rubric-scored
candidate pool, and for each subgroup or class profile the oracle-predicted gain over the pooled profile beside the
observed one.

Written into ``evaluation.json`` (``"pool"``), a section of ``report.md`` and ``pool_front.png``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._util.io import atomic_write_bytes, atomic_write_text
from ..criteria import ALL_CRITERIA

__all__ = ["POOL_NORMALISE", "POOL_REWARD_SCALE", "bundled_pool", "pool_comparisons", "write_pool_section"]

#: Per-token log-probabilities: with a small base model the summed variant puts all mass on the shortest reply.
POOL_NORMALISE = "mean"
#: Reward units per rubric point in the oracle (the persona judges' sharpness suggests 0.2-0.4 per point).
POOL_REWARD_SCALE = 0.3


def bundled_pool(n_prompts: int) -> Any:
    """The first `n_prompts` held-out prompts of the bundled synthetic preference data, five candidates each."""
    from ..evaluation.pool import CandidatePool
    from ..synthetic.preferences import load_preference_data

    data = load_preference_data()
    ids = data.prompts.loc[data.prompts["split"] == "test", "prompt_id"].head(n_prompts)
    cands = data.candidates[data.candidates["prompt_id"].isin(set(ids))]
    return CandidatePool.from_frame(cands, criteria=ALL_CRITERIA,
                                    name=f"bundled synthetic test pool ({len(ids)} prompts)")


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


def write_pool_section(pe: Any, comparisons: Sequence[Mapping[str, Any]], out: Path, *, seconds: float
                       ) -> dict[str, Path]:
    """Add ``"pool"`` to ``out/evaluation.json``, a section to ``out/report.md`` and ``out/pool_front.png``."""
    from ..plotting import figure_png, new_figure

    doc_path = out / "evaluation.json"
    doc = json.loads(doc_path.read_text())
    doc["pool"] = pe.to_dict(comparisons_with_pooled=list(comparisons), seconds=round(seconds, 1))
    atomic_write_text(doc_path, json.dumps(doc, indent=2, allow_nan=False) + "\n")
    fig, ax = new_figure((9, 5))
    pe.plot(ax=ax, labels="legend")  # many profiles close together: names in a legend, not on the points
    ax.set_title("Pool evaluation: expected empathy vs safety (synthetic pool, 95% intervals)")
    png = atomic_write_bytes(out / "pool_front.png", figure_png(fig))
    t = pe.to_frame()
    crits = list(pe.pool.criteria)
    cell = t.assign(v=[f"{e:.2f} [{lo:.2f}, {hi:.2f}]" for e, lo, hi in zip(t["expected"], t["ci_lo"], t["ci_hi"])])
    wide = cell.pivot(index="model", columns="criterion", values="v").loc[pe.names, crits]
    lines = ["", "## Pool evaluation (primary metric)", "",
             f"Each model's distribution over the {pe.pool.n_prompts} held-out prompts' rubric-scored candidates "
             f"(q(k|x) from per-token log-probabilities, `normalise={pe.normalise!r}`), its expected rubric score "
             f"per criterion with paired bootstrap 95% intervals over prompts ({pe.n_boot} replicates, seed "
             f"{pe.seed}). Synthetic pool; not the study's numbers.", "",
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
    lines += ["", f"![pool front]({png.name})", ""]
    report = out / "report.md"
    atomic_write_text(report, report.read_text() + "\n".join(lines))
    return {"pool_front": png}

