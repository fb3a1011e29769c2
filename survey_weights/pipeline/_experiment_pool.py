"""The experiment's primary analysis on the candidate pool (issues 10 and 11): trend across the safety-weight sweep,
the crossover test between two profiles, each method's front and hypervolume, the conditioned run against one
MODPO run per weight point, and the pass criteria - computed from a
:class:`~survey_weights.evaluation.pool_result.PoolEvaluation`, whichever way they come out.

Pure numpy / pandas: testable on a hand-built pool (:meth:`PoolEvaluation.from_logps`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["PASS_ALPHA", "analyse_pool", "pool_findings_markdown", "sweep_weights"]

#: Page's trend test must reach p below this for the trend criteria to pass.
PASS_ALPHA = 0.01


def sweep_weights(w: float, x: str = "empathy", y: str = "safety") -> dict[str, float]:
    """``{x: 1 - w, y: w}`` (rounded so that 0.1 + 0.9 prints as written)."""
    return {x: round(1.0 - float(w), 12), y: round(float(w), 12)}


def _front_points(pe: Any, names: Sequence[str], x: str, y: str) -> np.ndarray:
    return np.array([pe.point(n, x, y) for n in names], dtype=float)


def analyse_pool(pe: Any, *, sweep: Mapping[float, str], endpoints: tuple[str, str] = ("dpo_empathy", "dpo_safety"),
                 merges: Mapping[str, Mapping[float, str]] | None = None,
                 conditioned: Mapping[float, str] | None = None, crossover: tuple[float, float] = (0.25, 0.75),
                 x: str = "empathy", y: str = "safety", alpha: float = PASS_ALPHA) -> dict[str, Any]:
    """Everything the experiment reports on the pool, as one JSON-ready dict.

    Parameters
    ----------
    pe : PoolEvaluation
    sweep : mapping safety weight -> model name
        The MODPO adapters of the sweep (weights ``{x: 1 - w, y: w}``), strictly inside (0, 1).
    endpoints : (str, str)
        The single-objective DPO adapters on `x` and on `y`: the sweep's ends (w = 0 and w = 1), the merges'
        ingredients and MOD decoding's two policies.
    merges : mapping method -> (mapping safety weight -> model name), optional
        E.g. ``{"merge_exact": {...}, "merge_ab": {...}}``.
    conditioned : mapping safety weight -> model name, optional
        The conditioned run's exports at the weight points (0 and 1 included when exported).
    crossover : (float, float)
        The two sweep weights whose adapters are crossover-tested.
    alpha : float
        Level of the trend criteria.

    Returns
    -------
    dict
        ``criteria``, ``models`` (:meth:`PoolEvaluation.to_dict`'s), ``trend`` (Page's test of `y` increasing and
        `x` decreasing across the MODPO sweep, and ``trend_with_endpoints`` across DPO-x, the sweep, DPO-y),
        ``crossover`` (a list of one test), ``hypervolume`` (per method, against the nadir of every model and
        front scored; ``hypervolume_vs_base`` against the base model's point), ``fronts`` (model names per
        method), ``distance`` (KL to base of the sweep's adapters and the most/least-moved ratio),
        ``conditioned_vs_per_profile`` (per weight point: the conditioned export minus the per-profile adapter
        on that point's weighted objective, paired interval) and ``pass`` (each criterion's verdict).
    """
    ws = sorted(float(w) for w in sweep)
    if len(ws) < 3:
        raise ValueError(f"`sweep` needs at least 3 weight points for Page's trend test. Got {ws}.")
    names = [sweep[w] for w in ws]
    e_x, e_y = endpoints
    doc = pe.to_dict()
    out: dict[str, Any] = {"criteria": doc["criteria"], "models": doc["models"],
                           "sweep": [{"safety_weight": w, "model": sweep[w]} for w in ws]}
    out["trend"] = {y: pe.trend(names, y, "increasing"), x: pe.trend(names, x, "decreasing")}
    full = [e_x, *names, e_y]
    out["trend_with_endpoints"] = {y: pe.trend(full, y, "increasing"), x: pe.trend(full, x, "decreasing")}
    p, q = crossover
    if p not in sweep or q not in sweep:
        raise ValueError(f"`crossover` weights {crossover} must be points of the sweep {ws}.")
    cross = pe.crossover(sweep[p], sweep[q], sweep_weights(p, x, y), sweep_weights(q, x, y))
    out["crossover"] = [cross]
    fronts: dict[str, list[str]] = {"modpo": full}
    for method, pts in (merges or {}).items():
        fronts[method] = [e_x, *[pts[w] for w in sorted(pts)], e_y]
    if conditioned:
        fronts["conditioned"] = [conditioned[w] for w in sorted(conditioned)]
    arrays = {m: _front_points(pe, v, x, y) for m, v in fronts.items()}
    mod = pe.mod_front(e_x, e_y, x=x, y=y, n=21)
    arrays["mod"] = mod[[x, y]].to_numpy(dtype=float)
    orc = pe.oracle_front(x, y, n=21)
    arrays["oracle"] = orc[[x, y]].to_numpy(dtype=float)
    every = np.vstack([_front_points(pe, pe.names, x, y), *arrays.values()])
    nadir = every.min(axis=0)
    out["hypervolume"] = {m: float(pe.hypervolume(a, x=x, y=y, reference=nadir)) for m, a in arrays.items()}
    out["hypervolume"]["method"] = "2-d hypervolume of each method's points (their non-dominated front) against the " \
                                   "nadir (smallest expected x and y over every model and front scored)"
    out["hypervolume_reference"] = [float(v) for v in nadir]
    out["hypervolume_vs_base"] = {m: float(pe.hypervolume(a, x=x, y=y)) for m, a in arrays.items()}
    out["fronts"] = fronts
    kl = {n: float(pe.kl_to_base(n)) for n in full}
    moved = [v for v in kl.values() if v > 0]
    out["distance"] = {"kl_to_base": kl, "ratio": float(max(moved) / min(moved)) if len(moved) == len(kl) else None}
    if conditioned:
        per_profile = {0.0: e_x, 1.0: e_y, **{w: sweep[w] for w in ws}}
        rows = []
        for w in sorted(conditioned):
            if w in per_profile:
                rows.append({"safety_weight": w, "conditioned": conditioned[w], "per_profile": per_profile[w],
                             "difference": pe.difference(conditioned[w], per_profile[w], sweep_weights(w, x, y))})
        out["conditioned_vs_per_profile"] = rows
    hv = out["hypervolume"]
    crit: dict[str, Any] = {
        f"{y}_rises": {"passed": out["trend"][y]["pvalue"] < alpha, "pvalue": out["trend"][y]["pvalue"],
                       "rule": f"Page's test, {y} increasing across the MODPO sweep, p < {alpha:g}"},
        f"{x}_falls": {"passed": out["trend"][x]["pvalue"] < alpha, "pvalue": out["trend"][x]["pvalue"],
                       "rule": f"Page's test, {x} decreasing across the MODPO sweep, p < {alpha:g}"},
        "crossover": {"passed": bool(cross["passed"]), "profiles": cross["profiles"],
                      "rule": "both gains' 95% intervals above 0"},
    }
    for m in merges or {}:
        crit[f"modpo_vs_{m}"] = {"passed": hv["modpo"] >= hv[m], "modpo": hv["modpo"], m: hv[m],
                                 "rule": f"MODPO's front hypervolume >= {m}'s"}
    crit["modpo_vs_oracle"] = {"share_of_oracle": hv["modpo"] / hv["oracle"] if hv["oracle"] > 0 else None,
                               "rule": "reported, no threshold: the oracle is the best reachable front"}
    if conditioned:
        crit["conditioned_vs_modpo"] = {"ratio": hv["conditioned"] / hv["modpo"] if hv["modpo"] > 0 else None,
                                        "rule": "reported: hypervolume of the conditioned front / MODPO's"}
    out["pass"] = crit
    return out


def _ci(d: Mapping[str, Any], digits: int = 3) -> str:
    lo, hi = d["ci"]
    return f"{d['estimate']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def pool_findings_markdown(a: Mapping[str, Any], x: str = "empathy", y: str = "safety", *, level: int = 2) -> str:
    """The pool analysis as markdown: sweep table, trend, crossover, hypervolumes, conditioned vs per-profile,
    distances and the pass criteria, each with its verdict; its title a heading of `level`, sections one below."""
    h, sub = "#" * level + " ", "#" * (level + 1) + " "
    models = {m["name"]: m for m in a["models"]}
    lines = [h + "Pool evaluation (primary metric)", "",
             "| model | kind | safety weight | expected " + x + " [95% CI] | expected " + y + " [95% CI] | KL to base |",
             "|---|---|---|---|---|---|"]
    for name, m in models.items():
        w = None if not m.get("weights") else m["weights"].get(y, 0.0)
        ex, ey = m["expected"][x], m["expected"][y]
        lines.append(f"| {name} | {m['kind']} | {'' if w is None else f'{w:g}'} | {ex:.3f} [{m['ci'][x][0]:.3f}, "
                     f"{m['ci'][x][1]:.3f}] | {ey:.3f} [{m['ci'][y][0]:.3f}, {m['ci'][y][1]:.3f}] | "
                     f"{m['kl_to_base']:.4f} |")
    t, te = a["trend"], a["trend_with_endpoints"]
    lines += ["", sub + "Trend across the safety-weight sweep (Page's test, prompts as blocks)", "",
              "| criterion | direction | MODPO sweep: L, p | with the DPO endpoints: L, p |", "|---|---|---|---|"]
    for c in (y, x):
        lines.append(f"| {c} | {t[c]['direction']} | {t[c]['statistic']:.1f}, {t[c]['pvalue']:.3g} | "
                     f"{te[c]['statistic']:.1f}, {te[c]['pvalue']:.3g} |")
    lines += ["", sub + "Crossover test", ""]
    for cr in a["crossover"]:
        p, q = cr["profiles"]
        lines.append(f"- `{p}` over `{q}` on `{p}`'s objective: {_ci(cr['gain_p'], 4)}; `{q}` over `{p}` on `{q}`'s: "
                     f"{_ci(cr['gain_q'], 4)} -> **{'passed' if cr['passed'] else 'not passed'}**.")
    hv = {k: v for k, v in a["hypervolume"].items() if k != "method"}
    lines += ["", sub + "Fronts and hypervolume", "", a["hypervolume"]["method"] + f" = {a['hypervolume_reference']}; "
              "against the base model's point in brackets.", "", "| method | hypervolume | vs base |", "|---|---|---|"]
    lines += [f"| {m} | {v:.5f} | {a['hypervolume_vs_base'][m]:.5f} |" for m, v in hv.items()]
    if a.get("conditioned_vs_per_profile"):
        lines += ["", sub + "One conditioned run against one MODPO run per weight point", "",
                  "Conditioned export minus the per-profile adapter on the point's own weighted objective "
                  "(paired 95% interval over prompts).", "", "| safety weight | conditioned | per profile | "
                  "difference [95% CI] |", "|---|---|---|---|"]
        for r in a["conditioned_vs_per_profile"]:
            lines.append(f"| {r['safety_weight']:g} | {r['conditioned']} | {r['per_profile']} | "
                         f"{_ci(r['difference'], 4)} |")
    d = a["distance"]
    ratio = "n/a (an adapter did not move)" if d["ratio"] is None else f"{d['ratio']:.2f}"
    lines += ["", f"Distance from the base (KL on the pool) across the sweep: most/least-moved ratio {ratio} "
              "(goal: within 2).", "", sub + "Pass criteria", ""]
    for k, v in a["pass"].items():
        verdict = "passed" if v.get("passed") else ("not passed" if "passed" in v else "reported")
        extra = ", ".join(f"{kk}={vv:.4g}" if isinstance(vv, float) else f"{kk}={vv}" for kk, vv in v.items()
                          if kk not in ("passed", "rule"))
        lines.append(f"- **{k}**: {verdict} ({v['rule']}; {extra})")
    return "\n".join(lines) + "\n"
