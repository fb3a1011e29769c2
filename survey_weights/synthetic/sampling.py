"""Small exact sampler of Plackett-Luce rankings with Davidson-Luce ties (for tests and simulations)."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

__all__ = ["sample_pl_arrays", "sample_pl_rankings", "sample_weak_orders"]


def sample_pl_arrays(
    beta: np.ndarray,
    n_rankings: int,
    *,
    delta: dict[int, float] | None = None,
    size: int | None = None,
    top: int | None = None,
    rng: Any = None,
) -> dict[str, np.ndarray]:
    """Sample rankings stage by stage: choose S from the remaining set with prob. ∝ delta_|S| exp(mean beta_S).

    Parameters
    ----------
    beta : array (n,)
        Log-worths.
    n_rankings : int
    delta : dict, optional
        Tie parameters by order, e.g. ``{2: 0.5, 3: 0.2}`` (default: no ties).
    size : int, optional
        Items per ranking (a random subset); default all items.
    top : int, optional
        Stop after this many ranked *items* (top-k rankings); default rank everything.
    rng : numpy Generator or seed

    Returns
    -------
    dict of CSR arrays ``ptr, item, rank, top_k, resp`` (one respondent per ranking).
    """
    rng = np.random.default_rng(rng)
    beta = np.asarray(beta, dtype=float)
    n = len(beta)
    orders = {1: 1.0, **(delta or {})}
    size = n if size is None else size
    ptr, item, rank = [0], [], []
    for _ in range(n_rankings):
        remaining = list(rng.choice(n, size=size, replace=False))
        g = 0
        while len(remaining) > 0 and (top is None or (len(item) - ptr[-1]) < top):
            if len(remaining) == 1:
                chosen: tuple = (remaining[0],)
            else:
                alts = [S for k, d in orders.items() if d > 0 and k <= len(remaining)
                        for S in combinations(remaining, k)]
                wts = np.array([orders[len(S)] * np.exp(beta[list(S)].mean()) for S in alts])
                chosen = alts[rng.choice(len(alts), p=wts / wts.sum())]
            g += 1
            for i in sorted(chosen):
                item.append(i)
                rank.append(g)
            remaining = [i for i in remaining if i not in chosen]
        ptr.append(len(item))
    R = n_rankings
    return {"ptr": np.array(ptr), "item": np.array(item, dtype=np.int64), "rank": np.array(rank),
            "top_k": np.full(R, top is not None), "resp": np.arange(R)}


def sample_pl_rankings(beta: np.ndarray, n_rankings: int, *, items: Any = None, **kw: Any) -> Any:
    """As :func:`sample_pl_arrays`, returned as a :class:`~survey_weights.data.Rankings`."""
    from ..data.rankings import Rankings

    a = sample_pl_arrays(beta, n_rankings, **kw)
    items = list(range(len(beta))) if items is None else list(items)
    R = n_rankings
    return Rankings._from_arrays(items, a["ptr"], a["item"], a["rank"], a["top_k"], a["resp"],
                                 np.arange(R), np.ones(R))


def sample_weak_orders(beta: np.ndarray, log_delta: dict[int, float], n: int, rng: np.random.Generator) -> Any:
    """``n`` complete Davidson-Luce weak orderings sharing log-worths `beta` (vectorised over respondents).

    At every stage each respondent picks a subset S of the remaining items with probability
    proportional to ``exp(log_delta[|S|] + mean(beta[S]))`` (``log_delta[1] = 0``; orders absent from
    `log_delta` never tie). Returns a :class:`~survey_weights.data.Rankings` over items ``i0, i1, ...``, one
    ranking per respondent.
    """
    from ..data.rankings import Rankings

    beta = np.asarray(beta, dtype=float)
    J = len(beta)
    ld = {1: 0.0, **log_delta}
    subsets = [c for k in sorted(ld) for c in combinations(range(J), k)]
    member = np.zeros((len(subsets), J), bool)
    for s, S in enumerate(subsets):
        member[s, list(S)] = True
    logf = np.array([ld[len(S)] + beta[list(S)].mean() for S in subsets])
    rem = np.ones((n, J), bool)
    rank = np.zeros((n, J), int)
    g = 0
    while rem.any():
        g += 1
        ok = ~(member[None, :, :] & ~rem[:, None, :]).any(axis=2)  # subsets of the remaining items
        p = np.where(ok, np.exp(logf), 0.0)
        u = rng.random(n)[:, None] * p.sum(axis=1, keepdims=True)
        pick = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), len(subsets) - 1)
        chosen = member[pick] & rem.any(axis=1)[:, None]
        rank[chosen] = g
        rem &= ~chosen
    order = np.argsort(rank, axis=1, kind="stable")
    return Rankings._from_arrays([f"i{j}" for j in range(J)], np.arange(n + 1) * J, order.ravel(),
                                 np.take_along_axis(rank, order, axis=1).ravel(), np.zeros(n, bool), np.arange(n),
                                 np.arange(n))
