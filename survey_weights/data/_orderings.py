"""Array builders of :class:`~survey_weights.data.rankings.Rankings`: orderings in (CSR arrays), pairs out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import format_ids
from ._checks import TIE_TYPES as _TIE_TYPES
from ._checks import _empty_items, _warn_dropped


def orderings_arrays(
    orderings: list, items: Sequence[Any] | None, respondent_ids: Sequence[Any] | None, *, top_k: bool,
    empty_items: str,
) -> tuple[list[Any], np.ndarray, list[int], list[int], list[int], list[int]]:
    """Validate orderings (best first; a tuple, list or set is a tie group) and lay them out as CSR arrays.

    Returns ``(item_list, rid, ptr, item, rank, keep)``: the items, every ordering's respondent id, and the CSR
    arrays of the orderings kept (positions `keep`; the others, with fewer than two items, are reported).
    Warnings point at the caller of ``Rankings.from_orderings``.
    """
    if not orderings:
        raise ValueError("`orderings` is empty. Pass at least one ordering.")
    if respondent_ids is None:
        rid = np.arange(len(orderings))
    else:
        rid = np.asarray(list(respondent_ids), dtype=object)
        if len(rid) != len(orderings):
            raise ValueError(
                f"`respondent_ids` has {len(rid)} entries but there are {len(orderings)} orderings. "
                "Give one id per ordering."
            )
        if pd.isna(rid).any():
            raise ValueError(f"`respondent_ids` has missing ids at positions {format_ids(np.flatnonzero(pd.isna(rid)))}.")
    groups: list[list[tuple]] = []
    seen_order: dict[Any, None] = {}
    for k, o in enumerate(orderings):
        if isinstance(o, (str, bytes)) or not isinstance(o, Iterable):
            raise TypeError(f"Ordering {k} (respondent id {rid[k]!r}) must be a sequence of items. Got {o!r}.")
        gs = []
        for g in o:
            members = tuple(sorted(g, key=str) if isinstance(g, (set, frozenset)) else g) if isinstance(
                g, _TIE_TYPES) else (g,)
            if not members:
                continue
            gs.append(members)
            for it in members:
                seen_order.setdefault(it, None)
        flat = [it for g in gs for it in g]
        if len(set(flat)) != len(flat):
            dup = sorted({it for it in flat if flat.count(it) > 1}, key=str)
            raise ValueError(
                f"Ordering {k} (respondent id {rid[k]!r}) lists item(s) {format_ids(dup)} more than once. "
                "Fix: each item may appear once; put tied items together in one tuple."
            )
        groups.append(gs)
    if items is None:
        try:
            item_list = sorted(seen_order)
        except TypeError:
            item_list = list(seen_order)
    else:
        item_list = list(items)
        if len(set(item_list)) != len(item_list):
            raise ValueError("`items` lists an item more than once.")
        unknown = [it for it in seen_order if it not in set(item_list)]
        if unknown:
            raise ValueError(
                f"Unknown item(s) {format_ids(unknown)} in `orderings`; they are not in `items`. "
                "Fix: add them to `items` or correct the labels."
            )
    pos = {it: j for j, it in enumerate(item_list)}
    m = len(item_list)
    sizes = [sum(len(g) for g in gs) for gs in groups]
    kept = np.array([n >= 2 or (top_k and 1 <= n < m) for n in sizes], dtype=bool)
    if not top_k and kept.any():
        answered = np.zeros((len(groups), m), dtype=bool)
        for k, gs in enumerate(groups):
            answered[k, [pos[it] for g in gs for it in g]] = True
        cols = _empty_items(answered, kept, item_list, empty_items, stacklevel=4)
        if not cols.all():
            item_list = [it for it, c in zip(item_list, cols) if c]
            pos, m = {it: j for j, it in enumerate(item_list)}, len(item_list)
    keep, ptr, it_arr, rk_arr = [], [0], [], []
    for k, gs in enumerate(groups):
        if not kept[k]:
            continue
        keep.append(k)
        for r, g in enumerate(gs, start=1):
            for it in g:
                it_arr.append(pos[it])
                rk_arr.append(r)
        ptr.append(len(it_arr))
    dropped = [rid[k] for k in range(len(groups)) if k not in set(keep)]
    _warn_dropped(dropped, "fewer than two ranked items", stacklevel=4)
    return item_list, rid, ptr, it_arr, rk_arr, keep


def pairwise_arrays(data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pairwise comparison of a Rankings object: ``(a, b, outcome, resp)`` with outcome 1 when `a` beats
    `b` and 0 for a tie (ties stay ties; top-k: every ranked item beats every unranked one)."""
    ptr, item, rank, top_k, resp = data._ptr, data._item, data._rank, data._top_k, data._resp
    a_l, b_l, o_l, r_l = [], [], [], []
    lens = np.diff(ptr)
    for n in np.unique(lens):
        rk = np.flatnonzero(lens == n)
        i, j = np.triu_indices(n, k=1)
        base = ptr[rk][:, None]
        ia, ib = item[base + i], item[base + j]
        ra, rb = rank[base + i], rank[base + j]
        a_l.append(ia.ravel())
        b_l.append(ib.ravel())
        o_l.append(np.where(ra < rb, 1, 0).ravel())  # sorted best first: ra <= rb
        r_l.append(np.repeat(resp[rk], len(i)))
    all_items = np.arange(data.n_items)
    for r in np.flatnonzero(top_k):
        ranked = item[ptr[r] : ptr[r + 1]]
        unranked = np.setdiff1d(all_items, ranked)
        if len(unranked):
            a_l.append(np.repeat(ranked, len(unranked)))
            b_l.append(np.tile(unranked, len(ranked)))
            o_l.append(np.ones(len(ranked) * len(unranked), dtype=int))
            r_l.append(np.full(len(ranked) * len(unranked), resp[r]))
    return np.concatenate(a_l), np.concatenate(b_l), np.concatenate(o_l), np.concatenate(r_l)
