r"""A deterministic, paired evaluation on a fixed pool of rubric-scored candidates: the pure maths (no torch).

For held-out prompt :math:`x` with candidates :math:`y_1..y_K` and rubric scores :math:`s_c(y_k)`:

* the model's distribution over its pool, :math:`q_\theta(k|x) = \mathrm{softmax}_k \ell_\theta(y_k|x)` with
  :math:`\ell = \log\pi(y|x)` (``normalise="sum"``) or :math:`\log\pi(y|x)/|y|` (``"mean"``, per token; the summed
  variant favours the shortest candidate);
* its expected score :math:`E_c(\theta) = \mathrm{mean}_x \sum_k q_\theta(k|x)\,s_c(y_k)`, with paired bootstrap
  intervals over prompts (the same seeded resamples for every model);
* the exact KL-regularised optimum on the pool for weights :math:`w`:
  :math:`q^*_w(k|x) \propto q_{ref}(k|x)\exp(\lambda\,w^\top s(y_k)/\beta)` (:math:`\lambda` = ``reward_scale``);
* MOD decoding from two single-objective policies (Shi et al. 2024): :math:`q_w \propto \pi_a^{1-w}\pi_b^{w}`;
* Page's trend test across ordered models (prompts as blocks), the crossover test of two profiles and the
  hypervolume of a 2-D front.

The log-probabilities come from :func:`survey_weights.evaluation.evaluate_pool` (torch, in
:mod:`.pool_scoring`); everything here takes arrays and is testable without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._util.simplex import softmax_rows
from ..criteria import ALL_CRITERIA

__all__ = ["CandidatePool", "pool_distribution", "expected_scores", "oracle_distribution", "mod_distribution",
           "paired_bootstrap", "page_trend", "crossover_test", "hypervolume_2d", "implicit_accuracy"]

_NORMALISE = ("sum", "mean")


@dataclass(frozen=True)
class CandidatePool:
    """K rubric-scored candidate replies per prompt (K may differ between prompts).

    Build it with :meth:`from_frame`. Arrays are padded to the largest K; ``mask`` marks real candidates.

    Attributes
    ----------
    prompt_ids, prompts : tuple of str, length P
    candidate_ids, texts : tuple of tuples of str, ragged (P, K_p)
    scores : ndarray, shape (P, K, C)
        Rubric scores; NaN on padding.
    criteria : tuple of str, length C
    name : str
    """

    prompt_ids: tuple[str, ...]
    prompts: tuple[str, ...]
    candidate_ids: tuple[tuple[str, ...], ...]
    texts: tuple[tuple[str, ...], ...]
    scores: np.ndarray
    criteria: tuple[str, ...]
    name: str = "pool"

    @property
    def mask(self) -> np.ndarray:
        """Bool, shape (P, K): True where a candidate exists."""
        k = self.scores.shape[1]
        return np.array([[j < len(t) for j in range(k)] for t in self.texts], dtype=bool).reshape(len(self.texts), k)

    @property
    def n_prompts(self) -> int:
        """P."""
        return len(self.prompts)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, criteria: Sequence[str] = ALL_CRITERIA,
                   scorer: Callable[[list[str], list[str]], pd.DataFrame] | None = None,
                   name: str = "pool") -> CandidatePool:
        """A pool from a long frame: one row per candidate.

        Parameters
        ----------
        frame : DataFrame
            Columns ``prompt_id``, ``prompt``, ``text`` and optionally ``candidate_id`` (default: position) and
            one score column per criterion; prompts keep their first-seen order, candidates their row order.
        criteria : sequence of str, default ALL_CRITERIA
        scorer : callable, optional
            ``scorer(prompts, texts) -> DataFrame`` with a column per criterion, used when `frame` lacks score
            columns; default the rubric (:func:`~survey_weights.evaluation.rubric.score_replies`).
        name : str, default "pool"

        Raises
        ------
        ValueError
            Missing columns, a prompt with fewer than 2 candidates, or non-finite scores.
        """
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"`frame` must be a DataFrame of candidates. Got {type(frame).__name__} instead.")
        missing = [c for c in ("prompt_id", "prompt", "text") if c not in frame.columns]
        if missing:
            raise ValueError(f"`frame` lacks column(s) {missing}. Fix: give prompt_id, prompt and text per candidate.")
        crit = tuple(criteria)
        df = frame.reset_index(drop=True).copy()
        df["prompt_id"] = df["prompt_id"].astype(str)
        if not all(c in df.columns for c in crit):
            if scorer is None:
                from .rubric import score_replies as scorer
            sc = scorer(df["prompt"].tolist(), df["text"].tolist())
            for c in crit:
                df[c] = sc[c].to_numpy(dtype=float)
        order = list(pd.unique(df["prompt_id"]))
        groups = {p: g for p, g in df.groupby("prompt_id", sort=False)}
        small = [p for p in order if len(groups[p]) < 2]
        if small:
            raise ValueError(f"Prompt(s) {small[:5]} have fewer than 2 candidates. Fix: give each prompt >= 2.")
        k = max(len(g) for g in groups.values())
        scores = np.full((len(order), k, len(crit)), np.nan)
        ids, texts, prompts = [], [], []
        for i, p in enumerate(order):
            g = groups[p]
            scores[i, : len(g)] = g[list(crit)].to_numpy(dtype=float)
            cid = g["candidate_id"].astype(str).tolist() if "candidate_id" in g.columns else [str(j) for j in range(len(g))]
            ids.append(tuple(cid))
            texts.append(tuple(g["text"].astype(str)))
            prompts.append(str(g["prompt"].iloc[0]))
        pool = cls(tuple(order), tuple(prompts), tuple(ids), tuple(texts), scores, crit, name)
        if not np.isfinite(scores[pool.mask]).all():
            raise ValueError("`frame` holds non-finite scores. Fix: score every candidate on every criterion.")
        return pool

    def to_frame(self) -> pd.DataFrame:
        """Long frame ``prompt_id, prompt, candidate_id, text`` + one column per criterion."""
        rows = []
        for i, (pid, pr) in enumerate(zip(self.prompt_ids, self.prompts)):
            for j, (cid, t) in enumerate(zip(self.candidate_ids[i], self.texts[i])):
                rows.append((pid, pr, cid, t, *self.scores[i, j]))
        return pd.DataFrame(rows, columns=["prompt_id", "prompt", "candidate_id", "text", *self.criteria])

    def weighted(self, weights: Mapping[str, float]) -> np.ndarray:
        """``wᵀs`` per candidate, shape (P, K) (NaN on padding); criteria absent from `weights` weigh 0."""
        w = _weight_vector(weights, self.criteria)
        return np.einsum("pkc,c->pk", self.scores, w)


def _weight_vector(weights: Mapping[str, float], criteria: Sequence[str]) -> np.ndarray:
    if not isinstance(weights, Mapping):
        raise TypeError(f"`weights` must be a mapping criterion -> weight. Got {type(weights).__name__}.")
    unknown = [c for c in weights if c not in criteria]
    if unknown:
        raise ValueError(f"`weights` names criteria {unknown} that the pool does not score ({list(criteria)}).")
    w = np.array([float(weights.get(c, 0.0)) for c in criteria])
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"`weights` must be finite and >= 0. Got {dict(weights)}.")
    return w


def _logits(logps: np.ndarray, mask: np.ndarray | None, lengths: np.ndarray | None, normalise: str) -> np.ndarray:
    if normalise not in _NORMALISE:
        raise ValueError(f"Unknown `normalise` {normalise!r}. Choose 'sum' (sequence log-prob) or 'mean' (per token).")
    lp = np.asarray(logps, dtype=float)
    if lp.ndim != 2:
        raise ValueError(f"`logps` must have shape (P, K). Got {lp.shape}.")
    m = np.isfinite(lp) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != lp.shape:
        raise ValueError(f"`mask` must have the shape of `logps` {lp.shape}. Got {m.shape}.")
    if normalise == "mean":
        if lengths is None:
            raise ValueError("`normalise='mean'` needs `lengths` (response tokens per candidate), shape (P, K).")
        ln = np.asarray(lengths, dtype=float)
        if ln.shape != lp.shape or (ln[m] <= 0).any():
            raise ValueError(f"`lengths` must be positive with the shape of `logps` {lp.shape}.")
        lp = np.where(m, lp / np.where(m, ln, 1.0), 0.0)
    return np.where(m, lp, -np.inf)


def pool_distribution(logps: np.ndarray, mask: np.ndarray | None = None, *, lengths: np.ndarray | None = None,
                      normalise: str = "sum") -> np.ndarray:
    r"""The model's distribution over each prompt's candidates, :math:`q(k|x) = \mathrm{softmax}_k \ell(y_k|x)`.

    Parameters
    ----------
    logps : array, shape (P, K)
        Summed response log-probabilities :math:`\log\pi(y_k|x)`.
    mask : bool array, shape (P, K), optional
        Real candidates (default: the finite entries of `logps`).
    lengths : array, shape (P, K), optional
        Response tokens per candidate; required for ``normalise="mean"``.
    normalise : {"sum", "mean"}, default "sum"
        ``"sum"``: :math:`\ell = \log\pi`; ``"mean"``: :math:`\ell = \log\pi / |y|` (per-token log-probability).

    Returns
    -------
    ndarray, shape (P, K)
        Rows sum to 1; 0 on padding.

    Examples
    --------
    >>> pool_distribution(np.log([[0.2, 0.6, 0.2]])).round(3)
    array([[0.2, 0.6, 0.2]])
    """
    return softmax_rows(_logits(logps, mask, lengths, normalise))


def expected_scores(q: np.ndarray, pool: CandidatePool) -> np.ndarray:
    r"""Per prompt and criterion :math:`\sum_k q(k|x)\,s_c(y_k)`, shape (P, C)."""
    q = np.asarray(q, dtype=float)
    if q.shape != pool.scores.shape[:2]:
        raise ValueError(f"`q` must have shape {pool.scores.shape[:2]} (prompts x candidates). Got {q.shape}.")
    return np.einsum("pk,pkc->pc", q, np.nan_to_num(pool.scores))


def oracle_distribution(ref_logps: np.ndarray, pool: CandidatePool, weights: Mapping[str, float], *, beta: float,
                        reward_scale: float = 1.0, lengths: np.ndarray | None = None,
                        normalise: str = "sum") -> np.ndarray:
    r"""The exact KL-regularised optimum on the pool for weight vector `weights`.

    .. math:: q^*_w(k|x) \propto q_{ref}(k|x)\,\exp\big(\lambda\, w^\top s(y_k) / \beta\big)

    the maximiser of :math:`\mathbb{E}_q[\lambda w^\top s] - \beta\,\mathrm{KL}(q\,\|\,q_{ref})` over
    distributions on the pool, with :math:`q_{ref}` the reference model's pool distribution (`normalise`).

    Parameters
    ----------
    ref_logps : array, shape (P, K)
        The reference (base) model's summed log-probabilities.
    pool : CandidatePool
    weights : mapping criterion -> weight
    beta : float
        KL strength (> 0).
    reward_scale : float, default 1.0
        :math:`\lambda`: reward units per rubric point (1 = rubric points as rewards).
    lengths, normalise
        As :func:`pool_distribution`.

    Returns
    -------
    ndarray, shape (P, K)
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"`beta` must be a float > 0. Got {beta!r}. Fix: e.g. beta=0.1 (the training beta).")
    z = _logits(ref_logps, pool.mask, lengths, normalise)
    r = np.nan_to_num(pool.weighted(weights)) * float(reward_scale) / float(beta)
    return softmax_rows(np.where(pool.mask, z + r, -np.inf))


def mod_distribution(logps_a: np.ndarray, logps_b: np.ndarray, w: float, mask: np.ndarray | None = None, *,
                     lengths: np.ndarray | None = None, normalise: str = "sum") -> np.ndarray:
    r"""MOD decoding at sequence level: :math:`q_w(k|x) \propto \pi_a(y_k|x)^{1-w}\,\pi_b(y_k|x)^{w}`.

    Parameters
    ----------
    logps_a, logps_b : array, shape (P, K)
        Two single-objective policies (e.g. DPO-empathy and DPO-safety) sharing a reference and β.
    w : float in [0, 1]
        Weight of policy b.
    """
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w <= 1.0:
        raise ValueError(f"`w` must be a float in [0, 1] (the weight of policy b). Got {w!r}.")
    za = _logits(logps_a, mask, lengths, normalise)
    zb = _logits(logps_b, mask, lengths, normalise)
    m = np.isfinite(za) & np.isfinite(zb)
    return softmax_rows(np.where(m, (1.0 - w) * np.where(m, za, 0.0) + w * np.where(m, zb, 0.0), -np.inf))


def paired_bootstrap(values: np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over prompts with percentile bootstrap intervals, resampling prompts (axis 0).

    The resamples depend only on ``(seed, n_boot, P)``, so calls with the same seed are *paired*: differences of
    two models' per-prompt values resample the same prompts.

    Parameters
    ----------
    values : array, shape (P,) or (P, ...)
    n_boot : int, default 2000
    seed : int, default 0
    level : float, default 0.95

    Returns
    -------
    estimate, lo, hi : ndarray, shape values.shape[1:]

    Examples
    --------
    >>> est, lo, hi = paired_bootstrap(np.array([1.0, 2.0, 3.0, 4.0]), n_boot=500, seed=1)
    >>> float(est), bool(lo < est < hi)
    (2.5, True)
    """
    v = np.asarray(values, dtype=float)
    if v.ndim < 1 or len(v) < 2:
        raise ValueError(f"`values` needs at least 2 prompts along axis 0. Got shape {v.shape}.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 10:
        raise ValueError(f"`n_boot` must be an int >= 10. Got {n_boot!r}. Fix: e.g. n_boot=2000.")
    if not isinstance(level, float) or not 0.5 < level < 1.0:
        raise ValueError(f"`level` must be a float in (0.5, 1). Got {level!r}. Fix: e.g. level=0.95.")
    idx = np.random.default_rng(seed).integers(0, len(v), size=(int(n_boot), len(v)))
    boots = v[idx].mean(axis=1)
    a = (1.0 - level) / 2.0
    return v.mean(axis=0), np.quantile(boots, a, axis=0), np.quantile(boots, 1.0 - a, axis=0)


def page_trend(values: np.ndarray, *, direction: str = "increasing") -> dict[str, Any]:
    """Page's L test for a monotone trend across ordered models, prompts as blocks (``scipy.stats.page_trend_test``).

    Parameters
    ----------
    values : array, shape (P, M)
        Per-prompt values of M >= 3 models in their hypothesised order (e.g. increasing safety weight).
    direction : {"increasing", "decreasing"}, default "increasing"
        The alternative: values rise (or fall) along the columns.

    Returns
    -------
    dict
        ``statistic`` (Page's L), ``pvalue`` (one-sided), ``direction``, ``n_blocks``, ``n_models``.
    """
    from scipy.stats import page_trend_test

    if direction not in ("increasing", "decreasing"):
        raise ValueError(f"`direction` must be 'increasing' or 'decreasing'. Got {direction!r}.")
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] < 3 or v.shape[0] < 2:
        raise ValueError(f"`values` must have shape (P >= 2 prompts, M >= 3 models). Got {v.shape}. Fix: order at "
                         "least three models, e.g. by weight.")
    res = page_trend_test(v if direction == "increasing" else v[:, ::-1])
    return {"statistic": float(res.statistic), "pvalue": float(res.pvalue), "direction": direction,
            "n_blocks": int(v.shape[0]), "n_models": int(v.shape[1])}


def crossover_test(j_p_of_p: np.ndarray, j_p_of_q: np.ndarray, j_q_of_q: np.ndarray, j_q_of_p: np.ndarray, *,
                   n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    r"""Crossover (personalisation) test of two profiles p and q with paired bootstrap intervals.

    ``gain_p`` = mean over prompts of :math:`J_p(\theta_p) - J_p(\theta_q)` (p's adapter beats q's on p's weighted
    objective :math:`J_p = \sum_c w_{p,c} E_c`), ``gain_q`` likewise for q; the test passes when both intervals lie
    above 0. Both gains use the same bootstrap resamples.

    Parameters
    ----------
    j_p_of_p, j_p_of_q, j_q_of_q, j_q_of_p : array, shape (P,)
        Per-prompt weighted objectives: ``J_p`` of p's and of q's model, ``J_q`` of q's and of p's model.

    Returns
    -------
    dict
        ``gain_p`` and ``gain_q`` (each ``{"estimate", "ci": [lo, hi]}``) and ``passed`` (bool).
    """
    arrs = [np.asarray(a, dtype=float) for a in (j_p_of_p, j_p_of_q, j_q_of_q, j_q_of_p)]
    if len({a.shape for a in arrs}) != 1 or arrs[0].ndim != 1:
        raise ValueError("The four per-prompt objectives must be 1-d arrays of the same length (one per prompt).")
    d = np.column_stack([arrs[0] - arrs[1], arrs[2] - arrs[3]])
    est, lo, hi = paired_bootstrap(d, n_boot=n_boot, seed=seed, level=level)
    out = {k: {"estimate": float(est[i]), "ci": [float(lo[i]), float(hi[i])]} for i, k in enumerate(("gain_p", "gain_q"))}
    out["passed"] = bool(lo[0] > 0 and lo[1] > 0)
    return out


def hypervolume_2d(points: np.ndarray, reference: Sequence[float]) -> float:
    """Area dominated by a 2-D front (both objectives maximised) above a reference point.

    Parameters
    ----------
    points : array, shape (n, 2)
    reference : (x, y)
        Points that do not exceed it in both coordinates add nothing.

    Returns
    -------
    float

    Examples
    --------
    >>> hypervolume_2d(np.array([[3.0, 1.0], [1.0, 3.0], [2.0, 2.0]]), (0.0, 0.0))
    6.0
    """
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    r = np.asarray(reference, dtype=float)
    if r.shape != (2,) or not np.isfinite(r).all() or not np.isfinite(p).all():
        raise ValueError("`points` (n, 2) and `reference` (2,) must be finite.")
    p = p[(p[:, 0] > r[0]) & (p[:, 1] > r[1])]
    if len(p) == 0:
        return 0.0
    p = p[np.lexsort((-p[:, 1], -p[:, 0]))]  # x descending, then y descending
    area, best_y = 0.0, r[1]
    for x, y in p:
        if y > best_y:
            area += (x - r[0]) * (y - best_y)
            best_y = y
    return float(area)


def implicit_accuracy(margins: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
    r"""Held-out implicit-reward accuracy from margins :math:`m = \Delta\log\frac{\pi}{\pi_{ref}}` (chosen minus
    rejected).

    ``accuracy`` = share of pairs with m > 0 (m = 0 counts 1/2, so the reference itself scores 1/2);
    ``soft_accuracy`` = mean of :math:`p\,1[m>0] + (1-p)\,1[m<0]` (+1/2 on ties) with the pairs' soft labels p
    (hard labels: p = 1); ``mean_margin`` = mean m.
    """
    m = np.asarray(margins, dtype=float)
    p = np.ones_like(m) if labels is None else np.where(np.isnan(np.asarray(labels, dtype=float)), 1.0, labels)
    win = (m > 0) + 0.5 * (m == 0)
    return {"accuracy": float(win.mean()), "soft_accuracy": float(np.mean(p * win + (1 - p) * (1 - win))),
            "mean_margin": float(m.mean()), "n_pairs": int(len(m))}
