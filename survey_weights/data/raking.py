"""Raking (iterative proportional fitting) of respondents' weights to population margins, with trimming.

The module validates the margins, runs iterative proportional fitting (a ten-line vectorised loop), trims extreme
weights (trim, re-rake, repeated until both hold), reports convergence and the effective sample size overall and
per margin level, and re-rakes a bootstrap replicate (:meth:`RakingResult.replicate`) so that the bootstrap's
intervals include the weighting step. Why not a library: ``samplics`` is archived (it says so on import and points
to ``svy``); ``svy`` brings a compiled extension, polars and msgspec for one IPF loop; ``balance`` pins
``numpy<2`` on Python 3.11; and ``ipfn`` (which ``balance`` uses) fails on a margin level held by a single
respondent -- routine in bootstrap replicates of small categories (tried: ``AttributeError`` inside its
``.loc`` lookups). IPF itself is standard and is tested here against the margins it must meet.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._util.disclosure import DEFAULT_MIN_CELL_SIZE
from .._util.validation import format_ids
from ..exceptions import ConvergenceWarning

__all__ = ["RakingResult", "rake"]


@dataclass(frozen=True)
class RakingResult:
    """Raked sampling weights and their diagnostics (:func:`rake`).

    Attributes
    ----------
    weights : pandas.Series
        One weight per respondent (index: respondent id), scaled to mean 1 (``scale="n"``) or to the population
        total the margins give (``scale="total"``). Pass it as ``sampling_weights=`` to the data constructors,
        or ``rankings.with_sampling_weights(result.weights)``.
    converged : bool
        Every margin met within `tol` (relative) and every weight inside the trimming bounds.
    iterations : int
        IPF sweeps in all (over the trim-rake cycles).
    max_margin_error : float
        Largest relative difference between an achieved and a target margin share.
    n_trimmed : int
        Weights held at a trimming bound.
    margins : pandas.DataFrame
        One row per margin level: ``margin``, ``level``, ``target`` (share), ``achieved`` (share), ``n``
        (respondents), ``n_effective`` (Kish, within the level).
    """

    weights: pd.Series
    converged: bool
    iterations: int
    max_margin_error: float
    n_trimmed: int
    margins: pd.DataFrame
    trim: tuple | None = None
    _spec: dict = field(default_factory=dict, repr=False)

    @property
    def n_effective(self) -> float:
        """Kish's effective sample size of the weights, ``(sum w)^2 / sum w^2``."""
        w = self.weights.to_numpy()
        return float(w.sum() ** 2 / (w * w).sum())

    @property
    def design_effect(self) -> float:
        """Kish's design effect ``n / n_effective`` (1 + the squared coefficient of variation of the weights)."""
        return len(self.weights) / self.n_effective

    def to_frame(self, min_cell_size: int = DEFAULT_MIN_CELL_SIZE) -> pd.DataFrame:
        """The margins table (see :attr:`margins`), with ``n`` and ``n_effective`` masked (missing) for levels with
        fewer than `min_cell_size` respondents (the disclosure rule of every output; ``min_cell_size=0`` shows
        all). :attr:`margins` itself keeps the counts for the analyst's own checks."""
        m = self.margins.copy()
        small = m["n"] < min_cell_size
        m["n"] = m["n"].astype("Int64").mask(small)
        m["n_effective"] = m["n_effective"].mask(small)
        return m

    def summary(self) -> Any:
        """The margins table and the convergence report, as a :class:`~survey_weights.results.Summary`-like text."""
        lines = [f"Raking to {self.margins['margin'].nunique()} margin(s): converged={self.converged} "
                 f"({self.iterations} IPF sweeps), largest margin error {self.max_margin_error:.2e} (relative)",
                 f"weights: min {self.weights.min():.3f}, max {self.weights.max():.3f}, trimmed {self.n_trimmed}"
                 + (f" to {self.trim}" if self.trim else ""),
                 f"Kish effective n {self.n_effective:.1f} of {len(self.weights)} (design effect "
                 f"{self.design_effect:.3f})", "",
                 self._display().to_string(index=False)]
        return "\n".join(lines)

    def _display(self) -> pd.DataFrame:
        m = self.to_frame()
        masked = f"<{DEFAULT_MIN_CELL_SIZE}"
        for c in ("target", "achieved"):
            m[c] = m[c].map(lambda v: f"{v:.4f}")
        m["n"] = m["n"].map(lambda v: masked if pd.isna(v) else str(int(v)))
        m["n_effective"] = m["n_effective"].map(lambda v: masked if pd.isna(v) else f"{v:.1f}")
        return m

    def plot(self, ax: Any = None) -> Any:
        """Target vs achieved share per margin level (points), returning the Axes."""
        from ..plotting import axes_or_new

        ax = axes_or_new(ax)
        m = self.margins
        y = np.arange(len(m))
        ax.scatter(m["target"], y, marker="|", s=200, color="k", label="target")
        ax.scatter(m["achieved"], y, color="C0", label="achieved (raked)")
        ax.set_yticks(y)
        ax.set_yticklabels([f"{a}={b}" for a, b in zip(m["margin"], m["level"])])
        ax.set_xlabel("share of the weighted sample")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        return ax

    def replicate(self, counts: Any) -> np.ndarray:
        """Re-rake a bootstrap replicate: base weights times the replicate's resampling counts (0 for a
        respondent not drawn); returns the replicate's raked weights (0 where the count is 0), in the order of
        :attr:`weights`."""
        s = self._spec
        c = np.asarray(counts, dtype=float)
        base = s["base"] * c
        keep = c > 0
        out = np.zeros(len(c))
        w, *_ = _rake_loop(s["frame"].loc[keep], s["targets"], base[keep], trim=self.trim, tol=s["tol"],
                           max_iter=s["max_iter"])
        out[keep] = w
        return out * (len(c) / out.sum()) if s["scale"] == "n" else out


def _targets(df: pd.DataFrame, margins: Mapping[Hashable, Mapping[Any, float]]) -> dict[Hashable, pd.Series]:
    if not isinstance(margins, Mapping) or not margins:
        raise TypeError("`margins` must be a dict column -> {level: share or total}, e.g. {'age_group': {'18-24': "
                        f"0.2, ...}}. Got {margins!r}.")
    out: dict[Hashable, pd.Series] = {}
    totals = []
    for col, levels in margins.items():
        if col not in df.columns:
            raise ValueError(f"Margin column {col!r} is not in the frame. Available: {format_ids(list(df.columns))}.")
        if not isinstance(levels, Mapping) or not levels:
            raise TypeError(f"`margins[{col!r}]` must be a dict level -> share (or total). Got {levels!r}.")
        t = pd.Series({k: float(v) for k, v in levels.items()}, dtype=float)
        if not np.all(np.isfinite(t)) or (t <= 0).any():
            raise ValueError(f"`margins[{col!r}]` must be positive numbers. Got {dict(t)}.")
        vals = df[col]
        if vals.isna().any():
            raise ValueError(f"Margin column {col!r} is missing for {int(vals.isna().sum())} respondent(s) (ids "
                             f"{format_ids(list(df.index[vals.isna()]))}). Fix: impute or drop them first.")
        seen = set(vals.unique())
        extra = [v for v in seen if v not in t.index]
        absent = [k for k in t.index if k not in seen]
        if extra:
            raise ValueError(f"Margin {col!r} has level(s) {format_ids(extra)} in the data but no target. Fix: add "
                             "their population share (or merge the categories).")
        if absent:
            raise ValueError(f"Margin {col!r} has target level(s) {format_ids(absent)} that no respondent has: "
                             "raking cannot reach them. Fix: merge them with a neighbouring category.")
        totals.append(float(t.sum()))
        out[col] = t / t.sum()
    if max(totals) / min(totals) > 1 + 1e-6 and min(totals) > 1.5:  # totals given and inconsistent
        raise ValueError(f"The margins' population totals disagree ({totals}); raking cannot meet them all. Fix: "
                         "give shares (summing to 1 per margin) or consistent totals.")
    return out


def _ipf(codes: list[np.ndarray], targets: list[np.ndarray], w: np.ndarray, *, tol: float,
         max_iter: int) -> tuple[np.ndarray, int]:
    """Iterative proportional fitting: scale the weights of each margin level to its target total, margin after
    margin, until every margin holds to `tol` (relative). Returns the weights and the sweeps used."""
    for sweep in range(1, max_iter + 1):
        for code, t in zip(codes, targets):
            cur = np.bincount(code, weights=w, minlength=len(t))
            w = w * (t / cur)[code]
        err = max(float(np.max(np.abs(np.bincount(code, weights=w, minlength=len(t)) - t) / t))
                  for code, t in zip(codes, targets))
        if err <= tol:
            return w, sweep
    return w, max_iter


def _rake_loop(frame: pd.DataFrame, targets: dict, base: np.ndarray, *, trim: tuple | None, tol: float,
               max_iter: int) -> tuple[np.ndarray, int, bool, int]:
    """IPF, then (with `trim`) clip to [lo, hi] x mean and re-rake, until both hold."""
    total = float(base.sum())
    w = base.astype(float).copy()
    cols = list(targets)
    # a level no respondent of this (bootstrap) sample has cannot be met: rake the others to their renormalised
    # shares (validation of the full sample refuses such levels; only replicates get here)
    codes, tots = [], []
    for c in cols:
        t = targets[c][targets[c].index.isin(set(frame[c]))]
        codes.append(pd.Index(t.index).get_indexer(frame[c]))
        tots.append(t.to_numpy() / t.sum() * total)
    sweeps = 0
    for _cycle in range(50):
        w, k = _ipf(codes, tots, w, tol=tol, max_iter=max_iter)
        sweeps += k
        if trim is None:
            break
        m = w.mean()
        lo, hi = trim[0] * m, trim[1] * m
        if np.all((w >= lo * (1 - tol)) & (w <= hi * (1 + tol))):
            break
        w = np.clip(w, lo, hi)
    m = w.mean()
    trimmed = 0 if trim is None else int(((w <= trim[0] * m * (1 + tol)) | (w >= trim[1] * m * (1 - tol))).sum())
    err = max(float(np.max(np.abs(np.bincount(code, weights=w, minlength=len(t)) - t) / t))
              for code, t in zip(codes, tots))
    ok = err <= tol and (trim is None or np.all((w >= trim[0] * m * (1 - 1e-6)) & (w <= trim[1] * m * (1 + 1e-6))))
    return w, sweeps, bool(ok), trimmed


def rake(frame: pd.DataFrame, margins: Mapping[Hashable, Mapping[Any, float]], *, respondent: Hashable | None = None,
         base_weights: Hashable | Any = None, trim: tuple[float, float] | None = None, tol: float = 1e-6,
         max_iter: int = 1000, scale: str = "n") -> RakingResult:
    """Rake respondents' weights so that the weighted sample matches population margins.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per respondent, with the margin columns (e.g. the survey frame).
    margins : dict column -> {level: share or total}
        Population distribution of each margin (e.g. age group and gender from census tables). Shares are
        normalised per margin; totals must agree across margins.
    respondent : column name, optional
        Respondent id column (default: the frame's index); the result is indexed by it.
    base_weights : column name or array, optional
        Design (base) weights to start from; default 1.
    trim : (low, high), optional
        Trimming bounds relative to the mean weight, e.g. ``(0.3, 3.0)``: weights are clipped and re-raked until
        both the margins and the bounds hold (the margins then hold to `tol` only if the bounds allow it).
    tol : float, default 1e-6
        Largest relative margin error accepted.
    max_iter : int, default 1000
        IPF sweeps per raking pass.
    scale : {"n", "total"}, default "n"
        Scale the weights to mean 1 (``"n"``: their sum is the number of respondents, the usual convention for
        analysis weights) or to the total of the base weights.

    Returns
    -------
    RakingResult
        ``weights`` (by respondent id), ``converged``, ``iterations``, ``max_margin_error``, ``n_trimmed``,
        ``margins`` (target vs achieved share, n and effective n per level), ``design_effect``, ``replicate()``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`frame` must be a pandas DataFrame. Got {type(frame).__name__}.")
    if scale not in ("n", "total"):
        raise ValueError(f"`scale` must be 'n' or 'total'. Got {scale!r}.")
    if trim is not None:
        lo, hi = (float(x) for x in trim)
        if not (0 < lo < 1 < hi):
            raise ValueError(f"`trim` must be (low, high) with 0 < low < 1 < high, relative to the mean weight. "
                             f"Got {trim!r}.")
        trim = (lo, hi)
    df = frame.set_index(respondent) if respondent is not None else frame
    if df.index.has_duplicates:
        raise ValueError(f"Respondent ids must be unique; duplicated: {format_ids(list(df.index[df.index.duplicated()]))}.")
    targets = _targets(df, margins)
    if base_weights is None:
        base = np.ones(len(df))
    elif isinstance(base_weights, str):
        base = pd.to_numeric(df[base_weights], errors="coerce").to_numpy(dtype=float)
    else:
        base = np.asarray(base_weights, dtype=float)
    if base.shape != (len(df),) or not np.all(np.isfinite(base)) or (base <= 0).any():
        raise ValueError("`base_weights` must be one positive finite number per respondent.")
    w, sweeps, ok, n_trim = _rake_loop(df, targets, base, trim=trim, tol=tol, max_iter=max_iter)
    if not ok:
        warnings.warn(f"Raking did not meet every margin within tol={tol} ({sweeps} sweeps"
                      + (f"; the trimming bounds {trim} may not allow it" if trim else "") + "). Fix: relax `trim`, "
                      "merge sparse categories, or raise `max_iter`.", ConvergenceWarning, stacklevel=2)
    if scale == "n":
        w = w * (len(w) / w.sum())
    weights = pd.Series(w, index=df.index.copy(), name="sampling_weight")
    rows = []
    for c, t in targets.items():
        for level, share in t.items():
            sel = (df[c] == level).to_numpy()
            ws = w[sel]
            rows.append({"margin": c, "level": level, "target": share, "achieved": ws.sum() / w.sum(),
                         "n": int(sel.sum()), "n_effective": float(ws.sum() ** 2 / (ws * ws).sum())})
    err = max(abs(r["achieved"] - r["target"]) / r["target"] for r in rows)
    spec = {"frame": df[list(targets)], "targets": targets, "base": base, "tol": tol, "max_iter": max_iter,
            "scale": scale}
    return RakingResult(weights, bool(ok), int(sweeps), float(err), int(n_trim), pd.DataFrame(rows), trim, spec)
