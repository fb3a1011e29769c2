"""Synthetic best-worst scaling (MaxDiff) answers from known true worths: :func:`simulate_best_worst`.

The survey's truth (:class:`~survey_weights.synthetic.survey.SurveyTruth`) holds true log-worths of the five rated
criteria (``SURVEY_CRITERIA``) only; safety was not rated in the survey and has no true worth, so the simulated
tasks show the five rated criteria. Any other items work through a frame of log-worths.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_option, check_scalar
from ..models._best_worst import ordered_pairs
from .survey import SurveyTruth

__all__ = ["balanced_best_worst_design", "simulate_best_worst"]

_DESIGNS = ("balanced", "random")
_MODELS = ("maxdiff", "sequential")


def balanced_best_worst_design(n_items: int, n_tasks: int, items_per_task: int = 4, *,
                               seed: int | np.random.Generator | None = None) -> np.ndarray:
    """A balanced incomplete best-worst design: ``n_tasks`` tasks of ``items_per_task`` distinct items.

    Built greedily task by task: each task takes the items shown least often so far and, among those, the ones
    that appeared least often together with the items already in the task (random tie-breaks, seeded), then
    shuffles the display order. Every item is shown ``n_tasks * items_per_task / n_items`` times (to within one
    when that is not whole) and the pair counts are as even as the greedy choice gets them (exactly balanced
    whenever a balanced incomplete block design has one task per left-out set, e.g. ``items_per_task =
    n_items - 1`` with ``n_tasks`` a multiple of ``n_items``).

    Parameters
    ----------
    n_items, n_tasks, items_per_task : int
        Items (>= 2), tasks (>= 1) and items shown per task (2 <= items_per_task <= n_items).
    seed : int, Generator or None
        Random tie-breaks and display orders.

    Returns
    -------
    ndarray (n_tasks, items_per_task)
        Item indices shown in each task, in display order.

    Examples
    --------
    >>> d = balanced_best_worst_design(5, 10, 4, seed=1)
    >>> d.shape, sorted(np.bincount(d.ravel()).tolist())
    ((10, 4), [8, 8, 8, 8, 8])
    """
    J, T, k = _check_sizes(n_items, n_tasks, items_per_task)
    rng = np.random.default_rng(seed)
    count = np.zeros(J)
    pair = np.zeros((J, J))
    out = np.empty((T, k), dtype=np.int64)
    for t in range(T):
        chosen: list[int] = []
        avail = np.ones(J, dtype=bool)
        for _ in range(k):
            # lexicographic: appearances, then co-appearances with the task so far, then a random draw
            score = count * (J * T * k + 1.0) + pair[:, chosen].sum(axis=1) + rng.random(J) * 0.5
            score[~avail] = np.inf
            j = int(np.argmin(score))
            chosen.append(j)
            avail[j] = False
        c = np.array(chosen)
        count[c] += 1
        pair[np.ix_(c, c)] += 1
        out[t] = rng.permutation(c)
    return out


def _check_sizes(n_items: Any, n_tasks: Any, items_per_task: Any) -> tuple[int, int, int]:
    check_scalar(n_items, "n_items", kind=numbers.Integral, min_val=2)
    check_scalar(n_tasks, "n_tasks", kind=numbers.Integral, min_val=1)
    check_scalar(items_per_task, "items_per_task", kind=numbers.Integral, min_val=2)
    if items_per_task > n_items:
        raise ValueError(f"`items_per_task` ({items_per_task}) exceeds the number of items ({n_items}). Fix: show at "
                         f"most {n_items} items per task.")
    return int(n_items), int(n_tasks), int(items_per_task)


def _worths_and_covariates(truth: Any, covariates: Any) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Respondents' true log-worths (rows: respondent ids) and their covariate frame (or None)."""
    cov = None
    if isinstance(truth, tuple) and len(truth) == 2 and isinstance(truth[1], SurveyTruth):
        df, truth = truth
        lw = truth.respondent_log_worth
        cov = df.set_index("respondent_id").drop(columns=list(lw.columns), errors="ignore")
    if isinstance(truth, SurveyTruth):
        lw = truth.respondent_log_worth
    elif isinstance(truth, pd.DataFrame):
        lw = truth
    else:
        raise TypeError("`truth` must be a SurveyTruth, the (frame, truth) pair of simulate_survey(..., "
                        "return_truth=True) or a DataFrame of log-worths (rows: respondents, columns: items). "
                        f"Got {type(truth).__name__}.")
    vals = lw.to_numpy(dtype=float) if lw.shape[1] else np.zeros((len(lw), 0))
    if lw.shape[1] < 2 or len(lw) < 1 or not np.all(np.isfinite(vals)):
        raise ValueError(f"The true log-worths must be finite numbers for >= 1 respondent and >= 2 items. Got a "
                         f"{lw.shape[0]} x {lw.shape[1]} frame{'' if np.all(np.isfinite(vals)) else ' with NaN/inf'}.")
    if lw.index.has_duplicates:
        raise ValueError("The true log-worths have duplicate respondent ids. Fix: one row per respondent.")
    if covariates is not None:
        if not isinstance(covariates, pd.DataFrame):
            raise TypeError(f"`covariates` must be a DataFrame indexed by respondent id. Got "
                            f"{type(covariates).__name__}.")
        missing = lw.index.difference(covariates.index)
        if len(missing):
            raise ValueError(f"`covariates` lacks respondent ids {list(missing[:5])}. Fix: index it by respondent id.")
        cov = covariates
    return lw, cov


def simulate_best_worst(
    truth: Any,
    *,
    n_tasks: int = 10,
    items_per_task: int = 4,
    design: str = "balanced",
    model: str = "maxdiff",
    covariates: pd.DataFrame | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Simulate best-worst (MaxDiff) answers of respondents with known true log-worths.

    Parameters
    ----------
    truth : SurveyTruth, (DataFrame, SurveyTruth) or DataFrame
        The true log-worths: a :class:`SurveyTruth` (``respondent_log_worth``, the five rated criteria; safety has no
        true worth in the survey and is not shown), the pair returned by ``simulate_survey(...,
        return_truth=True)`` (then the survey's covariates are added to the rows), or a frame of log-worths
        (rows: respondent ids, columns: items).
    n_tasks : int, default 10
        Tasks per respondent.
    items_per_task : int, default 4
        Items shown per task (2 <= items_per_task <= number of items).
    design : {"balanced", "random"}, default "balanced"
        ``"balanced"``: every respondent gets their own :func:`balanced_best_worst_design` (each item shown
        equally often, pairs as balanced as possible). ``"random"``: each task shows a uniformly random set.
    model : {"maxdiff", "sequential"}, default "maxdiff"
        ``"maxdiff"``: ``P(b, w) = exp(v_b - v_w) / sum_{i != j in S} exp(v_i - v_j)``; ``"sequential"``: best by a
        logit over ``S`` with ``v``, then worst by a logit over ``S`` without ``b`` with ``-v``. These are
        :func:`~survey_weights.fit_best_worst`'s models of the same names.
    covariates : DataFrame, optional
        Respondent covariates to add to the rows (indexed by respondent id; overrides the survey's).
    seed : int or None
        Seed for ``numpy.random.default_rng``; the same seed gives the same frame.

    Returns
    -------
    pandas.DataFrame
        One row per respondent x task: ``respondent_id``, ``task`` (1..n_tasks), ``shown`` (list of item labels, in
        display order), ``best``, ``worst``, then the covariates; ready for ``Rankings.from_best_worst(df,
        respondent="respondent_id", task="task", shown="shown", best="best", worst="worst", covariates=[...])``.

    Examples
    --------
    >>> from survey_weights.synthetic import simulate_survey
    >>> df = simulate_best_worst(simulate_survey(20, seed=1, return_truth=True), n_tasks=5, seed=2)
    >>> df.shape[0], list(df.columns[:5])
    (100, ['respondent_id', 'task', 'shown', 'best', 'worst'])
    """
    check_option(design, "design", _DESIGNS)
    check_option(model, "model", _MODELS)
    if seed is not None and not isinstance(seed, numbers.Integral):
        raise TypeError(f"`seed` must be an int or None. Got {seed!r} of type {type(seed).__name__} instead.")
    lw, cov = _worths_and_covariates(truth, covariates)
    N, J = lw.shape
    _, T, k = _check_sizes(J, n_tasks, items_per_task)
    rng = np.random.default_rng(seed)
    if design == "balanced":
        S = np.concatenate([balanced_best_worst_design(J, T, k, seed=rng) for _ in range(N)])
    else:
        S = np.argsort(rng.random((N * T, J)), axis=1)[:, :k]
    resp = np.repeat(np.arange(N), T)
    V = lw.to_numpy(dtype=float)[resp[:, None], S]  # (N T, k)
    rows = np.arange(N * T)
    if model == "maxdiff":
        pr, X = ordered_pairs(k)
        pick = np.argmax(V @ X.T + rng.gumbel(size=(N * T, len(pr))), axis=1)  # Gumbel-max draw of (b, w)
        bpos, wpos = pr[pick, 0], pr[pick, 1]
    else:
        bpos = np.argmax(V + rng.gumbel(size=V.shape), axis=1)
        eta = -V + rng.gumbel(size=V.shape)
        eta[rows, bpos] = -np.inf
        wpos = np.argmax(eta, axis=1)
    items = np.asarray(lw.columns, dtype=object)
    out = pd.DataFrame({
        "respondent_id": lw.index.to_numpy()[resp],
        "task": np.tile(np.arange(1, T + 1), N),
        "shown": [list(r) for r in items[S]],
        "best": items[S[rows, bpos]],
        "worst": items[S[rows, wpos]],
    })
    if cov is not None:
        extra = cov.loc[out["respondent_id"]].reset_index(drop=True)
        out = pd.concat([out, extra.drop(columns=[c for c in extra.columns if c in out.columns])], axis=1)
    return out
