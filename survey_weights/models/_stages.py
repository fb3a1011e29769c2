"""Choice-stage expansion: every data type of the engine as a list of (choice set, chosen set) stages.

A ranking ``C1 > C2 > ...`` (tie groups ``C_j``) is the sequence of choices of ``C_j`` from
``A_j = C_j + C_{j+1} + ...`` (plus every unranked item for a top-k ranking, or the ranking's declared
shown-but-unranked items); a paired comparison is one
stage with ``A = {a, b}`` and ``C`` the winner (both items for a tie, or two half-weight stages with
``ties="half"``).  Sets are bit masks over the items, ``nw = ceil(n_items / 64)`` 64-bit words per set, so
any number of items works.  This module is the only place that expands data into stages: the engine's
choice-set design (:mod:`._choice`) builds on it for every model with ties, covariates or batched refits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Stages", "choice_stages", "dense_key_space", "member_masks", "popcount"]


def dense_key_space(n: int, m: int) -> bool:
    """Whether the ``n * n`` flat keys of item pairs are few next to ``m`` keys in use: then a table over all
    of them (marking, counting) is cheaper than sorting the keys."""
    return n * n <= max(1 << 16, 8 * m)


@dataclass(frozen=True)
class Stages:
    """One row per choice stage.

    Attributes
    ----------
    resp : ndarray (S,)
        Respondent position of the stage.
    A, C : ndarray (S, nw) uint64
        Choice set and chosen set as bit masks.
    a_size, c_size : ndarray (S,)
        Their sizes.
    base : ndarray (S,)
        Stage weight before respondent weights (a pair's frequency weight; 1 for ranking stages).
    tie_orders : tuple of int
        Tie orders >= 2 present (one log-delta parameter each).
    n_items : int
    """

    resp: np.ndarray
    A: np.ndarray
    C: np.ndarray
    a_size: np.ndarray
    c_size: np.ndarray
    base: np.ndarray
    tie_orders: tuple[int, ...]
    n_items: int
    #: Comparison-level covariates of paired comparisons: the item of each stage that carries them (its
    #: ``item_a``) and their values (S, k), or None.
    cov_item: np.ndarray | None = None
    cov_val: np.ndarray | None = None

    @property
    def n_words(self) -> int:
        return self.A.shape[1]


def member_masks(mem: np.ndarray, nw: int) -> np.ndarray:
    """Bit masks (..., nw) of the item sets in the last axis of ``mem`` (distinct items: sums are ORs)."""
    mem = np.asarray(mem, dtype=np.int64)
    out = np.zeros(mem.shape[:-1] + (nw,), dtype=np.uint64)
    word = mem // 64
    bit = np.left_shift(np.uint64(1), (mem % 64).astype(np.uint64))
    for wd in range(nw):
        out[..., wd] = np.where(word == wd, bit, np.uint64(0)).sum(axis=-1, dtype=np.uint64)
    return out


def popcount(masks: np.ndarray) -> np.ndarray:
    """Number of set bits of each row of a (S, nw) uint64 mask array."""
    b = np.unpackbits(np.ascontiguousarray(masks).astype("<u8").view(np.uint8), axis=1)
    return b.sum(axis=1).astype(np.int64)


def _full_mask(n: int, nw: int) -> np.ndarray:
    full = np.zeros(nw, dtype=np.uint64)
    for wd in range(nw):
        nb = min(64, n - 64 * wd)
        full[wd] = np.uint64((1 << nb) - 1) if nb < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
    return full


def _ranking_stages(r: Any) -> Stages:
    n = r.n_items
    nw = (n + 63) // 64
    ptr = np.asarray(r._ptr, dtype=np.int64)
    item = np.asarray(r._item, dtype=np.int64)
    rank = np.asarray(r._rank)
    top_k = np.asarray(r._top_k, dtype=bool)
    resp = np.asarray(r._resp, dtype=np.int64)
    R = len(ptr) - 1
    nnz = int(ptr[-1])
    ent_rank_id = np.repeat(np.arange(R), np.diff(ptr))
    new_group = np.ones(nnz, dtype=bool)
    if nnz > 1:
        new_group[1:] = (ent_rank_id[1:] != ent_rank_id[:-1]) | (rank[1:] != rank[:-1])
    gid = np.cumsum(new_group) - 1
    n_groups = int(gid[-1]) + 1 if nnz else 0
    g_rank = ent_rank_id[new_group]
    g_size = np.bincount(gid, minlength=n_groups)
    gmask = np.zeros((n_groups, nw), dtype=np.uint64)
    eb = member_masks(item[:, None], nw)
    for wd in range(nw):  # disjoint bits: sums are ORs
        np.add.at(gmask[:, wd], gid, eb[:, wd])
    with np.errstate(over="ignore"):  # suffix sums within a ranking; uint64 wrap-around keeps differences exact
        cs = np.concatenate([np.zeros((1, nw), np.uint64), np.cumsum(gmask, axis=0, dtype=np.uint64)])
        g_first = np.searchsorted(g_rank, np.arange(R), side="left")
        g_end = np.searchsorted(g_rank, np.arange(R), side="right")
        A = cs[g_end[g_rank]] - cs[np.arange(n_groups)]
        full_rank_mask = cs[g_end] - cs[g_first]
    cnt_cs = np.concatenate([[0], np.cumsum(g_size)])
    a_size = cnt_cs[g_end[g_rank]] - cnt_cs[np.arange(n_groups)]
    m = np.diff(ptr)
    unr = top_k & (m < n)
    if unr.any():  # a top-k ranking's unranked items stay in every choice set
        full = _full_mask(n, nw)
        with np.errstate(over="ignore"):
            extra = np.where(unr[:, None], full[None, :] - full_rank_mask, np.uint64(0)).astype(np.uint64)
            A = A + extra[g_rank]
        a_size = a_size + np.where(unr, n - m, 0)[g_rank]
    u_ptr, u_item = getattr(r, "_unranked_ptr", None), getattr(r, "_unranked_item", None)
    if u_ptr is not None and len(u_item):  # declared shown-but-unranked items join every stage of their ranking
        u_ptr = np.asarray(u_ptr, dtype=np.int64)
        u_mask = np.zeros((R, nw), dtype=np.uint64)
        ub = member_masks(np.asarray(u_item, dtype=np.int64)[:, None], nw)
        u_rank = np.repeat(np.arange(R), np.diff(u_ptr))
        for wd in range(nw):  # disjoint bits: sums are ORs
            np.add.at(u_mask[:, wd], u_rank, ub[:, wd])
        A = A | u_mask[g_rank]
        a_size = a_size + np.diff(u_ptr)[g_rank]
    keep = a_size >= 2
    c_size = g_size[keep]
    tie_orders = tuple(int(k) for k in np.unique(c_size) if k >= 2)
    return Stages(resp=resp[g_rank[keep]], A=A[keep], C=gmask[keep], a_size=a_size[keep], c_size=c_size,
                  base=np.ones(int(keep.sum())), tie_orders=tie_orders, n_items=n)


def _paired_stages(p: Any, ties: str | None, with_covariates: bool = False) -> Stages:
    n = p.n_items
    nw = (n + 63) // 64
    a = np.asarray(p._a, dtype=np.int64)
    b = np.asarray(p._b, dtype=np.int64)
    out = np.asarray(p._outcome)
    w = np.asarray(p._w, dtype=float)
    resp = np.asarray(p._resp, dtype=np.int64)
    t = out == 0
    if ties is None and t.any():
        raise ValueError(f"The paired comparisons hold {int(t.sum())} ties but `ties` is None. "
                         "Fix: pass ties='davidson' to model them, or ties='half'.")
    if ties not in (None, "davidson", "half"):
        raise ValueError(f"Unknown `ties` {ties!r}. Choose one of {{None, 'davidson', 'half'}}.")
    ma, mb = member_masks(a[:, None], nw), member_masks(b[:, None], nw)
    A = ma | mb
    cv = None
    if with_covariates and getattr(p, "comparison_covariates", None) is not None:
        cv = np.asarray(p.comparison_covariates.to_numpy(dtype=float))
    if ties == "half":  # a tie counts as half a win for each side: two half-weight stages
        C = np.where((out == -1)[:, None], mb, ma)
        return Stages(resp=np.concatenate([resp, resp[t]]), A=np.concatenate([A, A[t]]),
                      C=np.concatenate([C, mb[t]]), a_size=np.full(len(a) + int(t.sum()), 2),
                      c_size=np.ones(len(a) + int(t.sum()), dtype=np.int64),
                      base=np.concatenate([np.where(t, 0.5, 1.0) * w, 0.5 * w[t]]), tie_orders=(), n_items=n,
                      cov_item=None if cv is None else np.concatenate([a, a[t]]),
                      cov_val=None if cv is None else np.concatenate([cv, cv[t]]))
    C = np.where((out == 1)[:, None], ma, np.where((out == -1)[:, None], mb, A))
    return Stages(resp=resp, A=A, C=C, a_size=np.full(len(a), 2), c_size=np.where(t, 2, 1), base=w,
                  tie_orders=(2,) if t.any() else (), n_items=n, cov_item=None if cv is None else a, cov_val=cv)


def choice_stages(data: Any, *, ties: str | None = "davidson", comparison_covariates: bool = False) -> Stages:
    """Expand :class:`~survey_weights.data.Rankings` or :class:`~survey_weights.data.PairedComparisons` into
    choice stages.  ``ties`` applies to paired comparisons only: ``"davidson"`` (a tie parameter), ``"half"``
    (half a win each) or None (no ties allowed); the ties of rankings always follow Davidson-Luce.
    ``comparison_covariates``: attach the pairs' comparison-level covariates to their stages."""
    if hasattr(data, "_ptr"):
        return _ranking_stages(data)
    if hasattr(data, "_outcome"):
        return _paired_stages(data, ties, comparison_covariates)
    raise TypeError(f"`data` must be Rankings or PairedComparisons. Got {type(data).__name__} instead.")
