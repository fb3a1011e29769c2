"""Evaluate adapters against the base model: rubric scores, win rates, McNemar tests, Pareto fronts.

Protocol (the study's, arXiv 2602.16053 §3, with a rubric scorer instead of GPT persona judges):

* every model answers the same held-out prompts (greedy decoding, see :mod:`survey_weights._generation`);
* every reply is scored on every criterion by :func:`survey_weights.rubric.score_replies`, never by the reward
  models that produced the training margins;
* a model **wins** a prompt on a criterion when its reply scores higher than the base model's; the win rate
  is ``wins / n_prompts`` with **ties in the denominator**;
* McNemar's test per criterion is the exact two-sided binomial test on the discordant prompts
  (model better vs base better, p = 1/2).

This module imports no torch; generation lives in :mod:`survey_weights._generation`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._util.io import atomic_write_bytes, atomic_write_text
from .pool import paired_bootstrap
from .report import write_report

__all__ = [
    "KINDS",
    "EvaluationResult",
    "ModelInfo",
    "compare_with_base",
    "mcnemar_exact",
    "pareto_front",
    "personalisation_check",
    "plot_pareto",
    "weighted_utility",
]

#: Model kinds of ``evaluation.json``.
KINDS: tuple[str, ...] = ("base", "sft", "dpo", "merge", "modpo")
_TOL = 1e-9


@dataclass(frozen=True)
class ModelInfo:
    """One evaluated model: its name, kind and (for trained/merged models) its weight profile.

    Parameters
    ----------
    name : str
        Unique label, e.g. ``"base"``, ``"dpo_empathy"``, ``"modpo_safety=0.5"``.
    kind : {"base", "sft", "dpo", "merge", "modpo"}
    weights : dict or None
        Criterion -> weight the model was trained (or merged) for; None for the base model.
    extra : dict
        Free-form JSON-ready facts (adapter path, merge method, variant such as ``"joint"``...).
    """

    name: str
    kind: str
    weights: dict[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"`name` must be a non-empty str. Got {self.name!r}.")
        if self.kind not in KINDS:
            raise ValueError(f"Unknown `kind` {self.kind!r} for model {self.name!r}. Choose one of {KINDS}.")
        if self.weights is not None:
            w = {str(k): float(v) for k, v in dict(self.weights).items()}
            if any(not math.isfinite(v) or v < 0 for v in w.values()):
                raise ValueError(f"Weights of model {self.name!r} must be finite and >= 0. Got {w}.")
            object.__setattr__(self, "weights", w)


# ----------------------------------------------------------------------------------------------- statistics
def mcnemar_exact(n_better: int, n_worse: int) -> float:
    """Exact two-sided McNemar test: binomial test of ``n_better`` successes in the discordant pairs.

    Parameters
    ----------
    n_better, n_worse : int
        Prompts where the model scored higher / lower than the base model (ties are not discordant).

    Returns
    -------
    float
        ``min(1, 2 * P[X <= min(b, c)])`` with ``X ~ Binomial(b + c, 1/2)``; 1.0 when there is no
        discordant prompt. Equals ``scipy.stats.binomtest(b, b + c, 0.5).pvalue``.

    Examples
    --------
    >>> round(mcnemar_exact(9, 1), 6)
    0.021484
    >>> mcnemar_exact(0, 0)
    1.0
    """
    for name, v in (("n_better", n_better), ("n_worse", n_worse)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"`{name}` must be an int >= 0. Got {v!r}.")
    n = int(n_better) + int(n_worse)
    if n == 0:
        return 1.0
    from scipy.stats import binom  # lazy: scipy.stats alone takes longer to import than the package

    return float(min(1.0, 2.0 * binom.cdf(min(int(n_better), int(n_worse)), n, 0.5)))


def _check_scores(name: str, frame: Any) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"Scores of model {name!r} must be a DataFrame (prompts x criteria). "
                        f"Got {type(frame).__name__} instead.")
    if frame.index.has_duplicates:
        raise ValueError(f"Scores of model {name!r} have duplicate prompt ids in the index.")
    return frame


def compare_with_base(scores: Mapping[str, pd.DataFrame], *, base: str = "base",
                      criteria: Sequence[str] | None = None, tol: float = _TOL) -> pd.DataFrame:
    """Per-prompt comparison of every model with the base model, per criterion.

    Parameters
    ----------
    scores : mapping model name -> DataFrame
        Rubric scores: one row per held-out prompt (index = prompt id, identical sets across models), one
        column per criterion.
    base : str, default "base"
        Name of the reference model in ``scores``.
    criteria : sequence of str, optional
        Default: the base frame's columns.
    tol : float, default 1e-9
        Score differences with ``|d| <= tol`` are ties.

    Returns
    -------
    DataFrame
        One row per (model, criterion) with columns ``model, criterion, n_prompts, wins, losses, ties,
        win_rate, loss_rate, tie_rate, mean_score, base_mean_score, mcnemar_p``. ``win_rate = wins /
        n_prompts`` (ties stay in the denominator, as in the study).

    Raises
    ------
    ValueError
        ``base`` missing, prompt sets that differ, criteria missing, NaN scores.

    Examples
    --------
    >>> b = pd.DataFrame({"empathy": [1, 1, 2, 0]}, index=list("abcd"))
    >>> m = pd.DataFrame({"empathy": [2, 1, 3, 0]}, index=list("abcd"))
    >>> t = compare_with_base({"base": b, "m": m})
    >>> t.loc[t.model == "m", ["wins", "ties", "win_rate"]].to_numpy().tolist()
    [[2.0, 2.0, 0.5]]
    """
    if base not in scores:
        raise ValueError(f"The base model {base!r} is not among the scored models {list(scores)}.")
    ref = _check_scores(base, scores[base])
    crits = list(ref.columns) if criteria is None else list(criteria)
    rows = []
    for name, frame in scores.items():
        frame = _check_scores(name, frame)
        if set(frame.index) != set(ref.index):
            raise ValueError(f"Model {name!r} was scored on other prompts than {base!r}. Fix: score every model on "
                             "the same held-out prompts.")
        missing = [c for c in crits if c not in frame.columns or c not in ref.columns]
        if missing:
            raise ValueError(f"Criteria {missing} are missing from the scores of {name!r} or {base!r}.")
        m = frame.loc[ref.index, crits].to_numpy(dtype=float)
        r = ref[crits].to_numpy(dtype=float)
        if np.isnan(m).any() or np.isnan(r).any():
            raise ValueError(f"Scores of {name!r} or {base!r} contain NaN.")
        d = m - r
        n = len(ref)
        for j, c in enumerate(crits):
            wins, losses = int((d[:, j] > tol).sum()), int((d[:, j] < -tol).sum())
            ties = n - wins - losses
            rows.append({"model": name, "criterion": c, "n_prompts": n, "wins": wins, "losses": losses,
                         "ties": ties, "win_rate": wins / n if n else float("nan"),
                         "loss_rate": losses / n if n else float("nan"), "tie_rate": ties / n if n else float("nan"),
                         "mean_score": float(m[:, j].mean()) if n else float("nan"),
                         "base_mean_score": float(r[:, j].mean()) if n else float("nan"),
                         "mcnemar_p": mcnemar_exact(wins, losses)})
    out = pd.DataFrame(rows)
    for col in ("wins", "losses", "ties"):
        out[col] = out[col].astype(float)
    return out


def pareto_front(points: pd.DataFrame, objectives: Sequence[str] = ("empathy", "safety")) -> pd.Series:
    """Which rows are not dominated (all objectives maximised).

    A row is dominated when another row is ``>=`` on every objective and ``>`` on at least one.

    Parameters
    ----------
    points : DataFrame
        One row per model.
    objectives : sequence of str
        Columns to maximise.

    Returns
    -------
    Series of bool
        Indexed like ``points``; True = on the front. Duplicated points are all on the front.

    Examples
    --------
    >>> p = pd.DataFrame({"empathy": [1, 2, 0, 2], "safety": [1, 0, 2, 1]}, index=list("abcd"))
    >>> pareto_front(p).to_dict()
    {'a': False, 'b': False, 'c': True, 'd': True}
    """
    missing = [c for c in objectives if c not in points.columns]
    if missing:
        raise ValueError(f"`points` lacks objective column(s) {missing}. Columns: {list(points.columns)}.")
    x = points[list(objectives)].to_numpy(dtype=float)
    ge = (x[None, :, :] >= x[:, None, :]).all(axis=2)  # ge[i, j]: j >= i everywhere
    gt = (x[None, :, :] > x[:, None, :]).any(axis=2)
    dominated = (ge & gt).any(axis=1)
    return pd.Series(~dominated, index=points.index, name="pareto")


def weighted_utility(scores: pd.DataFrame, weights: Mapping[str, float]) -> pd.Series:
    """Per-prompt weighted preference ``Σ_c w_c · score_c`` over the criteria present in ``scores``.

    Weights of criteria that were not scored are dropped and the rest renormalised to sum to 1.

    Raises
    ------
    ValueError
        No positive weight on a scored criterion.
    """
    w = {c: float(v) for c, v in weights.items() if c in scores.columns and float(v) > 0}
    total = sum(w.values())
    if total <= 0:
        raise ValueError(f"No positive weight on a scored criterion (weights {dict(weights)}, "
                         f"scored {list(scores.columns)}).")
    return sum(scores[c].astype(float) * (v / total) for c, v in w.items())


def personalisation_check(scores: Mapping[str, pd.DataFrame], profiles: Mapping[str, Mapping[str, float]], *,
                          pooled: str = "pooled", tol: float = _TOL, level: float = 0.95, n_boot: int = 2000,
                          seed: int = 0) -> pd.DataFrame:
    """Does each subgroup's adapter beat the pooled adapter on that subgroup's own weighted preference?

    For subgroup ``g`` with weights ``w_g`` the utility of a reply is ``Σ_c w_g[c] · score_c``
    (:func:`weighted_utility`). Both adapters' replies to the same held-out prompts are scored this way and
    compared prompt by prompt (ties in the denominator; exact McNemar / sign test on the discordant prompts).

    Parameters
    ----------
    scores : mapping model name -> DataFrame
        Rubric scores; must hold ``pooled`` and every profile name in ``profiles``.
    profiles : mapping name -> weights
        The subgroup profiles to check (the pooled one is skipped if present).
    pooled : str, default "pooled"
    level, n_boot, seed
        The interval of ``difference``: a percentile bootstrap over prompts (:func:`paired_bootstrap`; every
        profile resamples the same prompts).

    Returns
    -------
    DataFrame
        One row per subgroup profile: ``profile, n_prompts, mean_own, mean_pooled, difference, ci_low, ci_high,
        verdict, wins, losses, ties, win_rate, p_value, beats_pooled``. ``verdict`` reads the interval:
        ``"better"`` (above 0), ``"worse"`` (below 0) or ``"not resolved"`` (it holds 0, or fewer than 2 prompts).
        ``beats_pooled`` is the point estimate only (mean utility strictly higher), whatever its interval.
    """
    if pooled not in scores:
        raise ValueError(f"The pooled model {pooled!r} has no scores; scored: {list(scores)}.")
    rows = []
    for name, w in profiles.items():
        if name == pooled:
            continue
        if name not in scores:
            raise ValueError(f"Profile {name!r} has no scores; scored: {list(scores)}.")
        own = weighted_utility(_check_scores(name, scores[name]), w)
        ref = weighted_utility(scores[pooled], w).loc[own.index]
        d = (own - ref).to_numpy()
        wins, losses = int((d > tol).sum()), int((d < -tol).sum())
        n = len(d)
        lo = hi = float("nan")
        if n >= 2:
            _, lo_a, hi_a = paired_bootstrap(d, n_boot=n_boot, seed=seed, level=level)
            lo, hi = float(lo_a), float(hi_a)
        verdict = "better" if lo > 0 else "worse" if hi < 0 else "not resolved"  # NaN compares False
        rows.append({"profile": name, "n_prompts": n, "mean_own": float(own.mean()), "mean_pooled": float(ref.mean()),
                     "difference": float(d.mean()), "ci_low": lo, "ci_high": hi, "verdict": verdict,
                     "wins": wins, "losses": losses, "ties": n - wins - losses,
                     "win_rate": wins / n if n else float("nan"), "p_value": mcnemar_exact(wins, losses),
                     "beats_pooled": bool(d.mean() > tol)})
    cols = ["profile", "n_prompts", "mean_own", "mean_pooled", "difference", "ci_low", "ci_high", "verdict", "wins",
            "losses", "ties", "win_rate", "p_value", "beats_pooled"]
    return pd.DataFrame(rows, columns=cols)


# ----------------------------------------------------------------------------------------------- plotting
_KIND_STYLE = {"base": ("black", "s"), "sft": ("tab:gray", "v"), "dpo": ("tab:blue", "o"),
               "merge": ("tab:orange", "D"), "modpo": ("tab:green", "^")}


def plot_pareto(result: EvaluationResult | pd.DataFrame, *, x: str = "empathy", y: str = "safety",
                metric: str = "mean_score", ax: Any = None, annotate: bool = True) -> Any:
    """Scatter every model on two criteria and draw the Pareto front.

    Parameters
    ----------
    result : EvaluationResult or DataFrame
        A result, or the long table of :func:`compare_with_base` with an optional ``kind`` column.
    x, y : str
        Criteria on the axes (default empathy vs safety, as in the study's Figure).
    metric : {"mean_score", "win_rate"}, default "mean_score"
        Mean rubric score, or win rate against the base model (the base sits at 0).
    ax : matplotlib Axes, optional
    annotate : bool, default True
        Write model names next to the points.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if metric not in ("mean_score", "win_rate"):
        raise ValueError(f"Unknown `metric` {metric!r}. Choose 'mean_score' or 'win_rate'.")
    table = result.table() if isinstance(result, EvaluationResult) else result
    kinds = dict(zip(table["model"], table["kind"])) if "kind" in table.columns else {}
    wide = table.pivot_table(index="model", columns="criterion", values=metric, sort=False)
    for c in (x, y):
        if c not in wide.columns:
            raise ValueError(f"Criterion {c!r} was not evaluated; available: {list(wide.columns)}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    seen = set()
    for name, row in wide.iterrows():
        kind = kinds.get(name, "dpo")
        color, marker = _KIND_STYLE.get(kind, ("tab:purple", "o"))
        ax.scatter(row[x], row[y], color=color, marker=marker, s=50, zorder=3,
                   label=None if kind in seen else kind)
        seen.add(kind)
        if annotate:
            ax.annotate(str(name), (row[x], row[y]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    front = wide[pareto_front(wide, (x, y))].sort_values(x)
    ax.step(front[x], front[y], where="post", color="tab:red", alpha=0.5, lw=1, label="Pareto front", zorder=2)
    label = "mean rubric score" if metric == "mean_score" else "win rate vs base (ties in denominator)"
    ax.set_xlabel(f"{x}: {label}")
    ax.set_ylabel(f"{y}: {label}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return ax


# ----------------------------------------------------------------------------------------------- result
@dataclass
class EvaluationResult:
    """Scores of every model on the held-out prompts, with the comparisons derived from them.

    Attributes
    ----------
    criteria : tuple of str
    models : list of ModelInfo
        In report order; the first one of kind ``"base"`` is the reference (or ``base``).
    scores : dict name -> DataFrame
        Rubric scores, prompts x criteria.
    replies : dict name -> list of str, optional
    prompts : list of str, optional
        The held-out prompts (same order as the score index).
    base : str
    personalisation : DataFrame or None
        Output of :func:`personalisation_check`.
    settings : dict
        Generation and data settings recorded in ``evaluation.json``.
    """

    criteria: tuple[str, ...]
    models: list[ModelInfo]
    scores: dict[str, pd.DataFrame]
    replies: dict[str, list[str]] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)
    base: str = "base"
    personalisation: pd.DataFrame | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"Model names must be unique. Got {names}.")
        missing = [n for n in names if n not in self.scores]
        if missing:
            raise ValueError(f"Models {missing} have no scores.")
        if self.base not in names:
            raise ValueError(f"The base model {self.base!r} is not among the models {names}.")
        self.criteria = tuple(self.criteria)

    def table(self) -> pd.DataFrame:
        """Long comparison table (:func:`compare_with_base`) with ``kind`` added, in model order."""
        t = compare_with_base({m.name: self.scores[m.name] for m in self.models}, base=self.base,
                              criteria=self.criteria)
        t.insert(1, "kind", t["model"].map({m.name: m.kind for m in self.models}))
        return t

    def win_rates(self) -> pd.DataFrame:
        """Wide table model x criterion of win rates against the base model."""
        t = self.table()
        return t.pivot_table(index="model", columns="criterion", values="win_rate", sort=False)[list(self.criteria)]

    def mean_scores(self) -> pd.DataFrame:
        """Wide table model x criterion of mean rubric scores."""
        t = self.table()
        return t.pivot_table(index="model", columns="criterion", values="mean_score", sort=False)[list(self.criteria)]

    def resolution(self, *, flat: float = 0.05) -> pd.DataFrame:
        """How much the scored replies vary on each criterion: what the generation check can see at all.

        A rubric scores a criterion by cue phrases; when (almost) no reply carries one, every model gets the same
        score on it, and a profile's gain on that criterion cannot show in this check whatever the model learned.

        Parameters
        ----------
        flat : float, default 0.05
            A criterion is ``flat`` when fewer than this share of all replies (every model's) score away from
            its most common score.

        Returns
        -------
        DataFrame
            Indexed by criterion: ``modal_score``, ``n_replies``, ``n_off_mode``, ``share_off_mode``, ``flat``;
            ``attrs["flat"]`` holds the threshold.
        """
        if not 0.0 <= flat < 1.0:
            raise ValueError(f"`flat` must be a share in [0, 1). Got {flat!r}. Fix: e.g. flat=0.05.")
        rows = []
        for c in self.criteria:
            v = np.concatenate([self.scores[m.name][c].to_numpy(dtype=float) for m in self.models])
            vals, counts = np.unique(np.round(v, 9), return_counts=True)
            mode = float(vals[np.argmax(counts)])
            off = int(len(v) - counts.max())
            share = off / len(v) if len(v) else float("nan")
            rows.append({"criterion": c, "modal_score": mode, "n_replies": int(len(v)), "n_off_mode": off,
                         "share_off_mode": share, "flat": bool(share < flat)})
        out = pd.DataFrame(rows).set_index("criterion")
        out.attrs["flat"] = flat
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``evaluation.json`` document.

        ``{"criteria": [...], "models": [{"name", "kind", "weights", "win_rate_vs_base", "n_prompts", ...}],
        ...}``; extra per-model keys: ``mean_score``, ``wins``, ``losses``, ``ties``, ``mcnemar_p``, ``extra``.
        """
        t = self.table()
        models = []
        for m in self.models:
            sub = t[t["model"] == m.name].set_index("criterion")

            def col(c: str, cast: Any = float) -> dict[str, Any]:
                return {k: cast(v) for k, v in sub[c].items()}  # noqa: B023

            models.append({"name": m.name, "kind": m.kind, "weights": m.weights,
                           "win_rate_vs_base": col("win_rate"), "n_prompts": len(self.scores[m.name]),
                           "mean_score": col("mean_score"), "wins": col("wins", int), "losses": col("losses", int),
                           "ties": col("ties", int), "mcnemar_p": col("mcnemar_p"), "extra": m.extra})
        doc: dict[str, Any] = {"criteria": list(self.criteria), "models": models, "base": self.base,
                               "win_rule": "win = higher rubric score than base on a prompt; ties in the denominator",
                               "test": "McNemar exact (two-sided binomial on discordant prompts)",
                               "settings": self.settings}
        if self.personalisation is not None:
            doc["personalisation"] = json.loads(self.personalisation.to_json(orient="records"))
        doc["resolution"] = json.loads(self.resolution().to_json(orient="index"))
        return doc

    def write(self, out_dir: str | os.PathLike[str], *, plots: bool = True, title: str = "Evaluation") -> dict[str, Path]:
        """Write ``evaluation.json``, ``report.md``, ``replies.jsonl`` and the PNG plots into ``out_dir``.

        All files are written atomically. Returns a mapping label -> path.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        paths["evaluation"] = atomic_write_text(out / "evaluation.json",
                                                json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        if self.replies:
            lines = []
            for m in self.models:
                for pid, prompt, reply in zip(self.scores[m.name].index, self.prompts or [""] * len(
                        self.replies.get(m.name, [])), self.replies.get(m.name, [])):
                    lines.append(json.dumps({"model": m.name, "prompt_id": str(pid), "prompt": prompt,
                                             "reply": reply}, ensure_ascii=False))
            paths["replies"] = atomic_write_text(out / "replies.jsonl", "\n".join(lines) + "\n")
        if plots:
            paths.update(self._plots(out))
        paths["report"] = write_report(self, out / "report.md", plots={k: v for k, v in paths.items()
                                                                         if v.suffix == ".png"}, title=title)
        return paths

    def _plots(self, out: Path) -> dict[str, Path]:
        from ..plotting import figure_png, new_figure

        paths = {}
        if not {"empathy", "safety"} <= set(self.criteria):
            return paths
        for metric, fname in (("mean_score", "pareto_scores.png"), ("win_rate", "pareto_win_rates.png")):
            fig, ax = new_figure((6.5, 5))
            plot_pareto(self, metric=metric, ax=ax)
            ax.set_title("Empathy vs safety (" + ("mean rubric score" if metric == "mean_score"
                                                  else "win rate vs base") + ")")
            paths[fname[:-4]] = atomic_write_bytes(out / fname, figure_png(fig))
        return paths
