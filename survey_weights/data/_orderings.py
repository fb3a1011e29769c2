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
    empty_items: str, shown: Sequence[Any] | None = None,
) -> tuple[list[Any], np.ndarray, list[int], list[int], list[int], list[int], np.ndarray, tuple | None]:
    """Validate orderings (best first; a tuple, list or set is a tie group) and lay them out as CSR arrays.

    Returns ``(item_list, rid, ptr, item, rank, keep, top_k, unranked)``: the items, every ordering's respondent
    id, the CSR arrays of the orderings kept (positions `keep`; the others, with fewer than two items, are
    reported), their top-k flags and ``(ptr, item)`` of their declared shown-but-unranked items (None without
    `shown`). `shown`: per ordering, the items shown (containing every ranked one) or None (then `top_k`
    applies). Warnings point at the caller of ``Rankings.from_orderings``.
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
    shown_sets = _shown_per_ordering(shown, groups, rid, seen_order)
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
                f"Unknown item(s) {format_ids(unknown)} in `orderings`{' or `shown`' if shown is not None else ''}; "
                "they are not in `items`. "
                "Fix: add them to `items` or correct the labels."
            )
    pos = {it: j for j, it in enumerate(item_list)}
    m = len(item_list)
    sizes = [sum(len(g) for g in gs) for gs in groups]
    n_unr = [None if u is None else len(u) for u in shown_sets]
    kept = np.array([n >= 2 or (1 <= n and (n < m if u is None else u > 0) and (top_k or u is not None))
                     for n, u in zip(sizes, n_unr)], dtype=bool)
    if not (top_k and all(u is None for u in n_unr)) and kept.any():
        answered = np.zeros((len(groups), m), dtype=bool)
        for k, gs in enumerate(groups):
            answered[k, [pos[it] for g in gs for it in g]] = True
            if top_k and shown_sets[k] is None:
                answered[k] = True  # a top-k ranking compares every item
            elif shown_sets[k] is not None:
                answered[k, [pos[it] for it in shown_sets[k]]] = True
        cols = _empty_items(answered, kept, item_list, empty_items, stacklevel=4)
        if not cols.all():
            item_list = [it for it, c in zip(item_list, cols) if c]
            pos, m = {it: j for j, it in enumerate(item_list)}, len(item_list)
    keep, ptr, it_arr, rk_arr, u_ptr, u_arr = [], [0], [], [], [0], []
    for k, gs in enumerate(groups):
        if not kept[k]:
            continue
        keep.append(k)
        for r, g in enumerate(gs, start=1):
            for it in g:
                it_arr.append(pos[it])
                rk_arr.append(r)
        ptr.append(len(it_arr))
        u_arr.extend(pos[it] for it in (shown_sets[k] or ()))
        u_ptr.append(len(u_arr))
    dropped = [rid[k] for k in range(len(groups)) if k not in set(keep)]
    _warn_dropped(dropped, "fewer than two ranked items" if shown is None else
                  "fewer than two items shown (ranked or not)", stacklevel=4)
    flags = np.array([bool(top_k) and shown_sets[k] is None for k in keep], dtype=bool)
    unranked = None if shown is None else (np.asarray(u_ptr, np.int64), np.asarray(u_arr, np.int64))
    return item_list, rid, ptr, it_arr, rk_arr, keep, flags, unranked


def _shown_per_ordering(shown: Sequence[Any] | None, groups: list[list[tuple]], rid: np.ndarray,
                        seen_order: dict[Any, None]) -> list[list[Any] | None]:
    """Each ordering's shown-but-unranked items (shown order), or None where `shown` gives no set; checks that
    a shown set lists each item once and holds every item its ordering ranks. Adds shown labels to
    `seen_order`."""
    if shown is None:
        return [None] * len(groups)
    if isinstance(shown, (str, bytes, pd.DataFrame)) or not isinstance(shown, Iterable):
        raise TypeError(f"`shown` must be a list with one entry per ordering (the items shown, or None). Got "
                        f"{type(shown).__name__}.")
    shown = list(shown)
    if len(shown) != len(groups):
        raise ValueError(f"`shown` has {len(shown)} entries but there are {len(groups)} orderings. Fix: give one "
                         "set of shown items (or None) per ordering.")
    out: list[list[Any] | None] = []
    for k, (s, gs) in enumerate(zip(shown, groups)):
        if s is None:
            out.append(None)
            continue
        if isinstance(s, (str, bytes)) or not isinstance(s, Iterable):
            raise TypeError(f"`shown[{k}]` (respondent id {_plain(rid[k])!r}) must be a collection of the items shown or "
                            f"None. Got {s!r}.")
        s = list(s)
        if len(set(s)) != len(s):
            dup = sorted({it for it in s if s.count(it) > 1}, key=str)
            raise ValueError(f"`shown[{k}]` (respondent id {_plain(rid[k])!r}) lists item(s) {format_ids(dup)} more than "
                             "once. Fix: list each item shown once.")
        ranked = [it for g in gs for it in g]
        missing = [it for it in ranked if it not in set(s)]
        if missing:
            raise ValueError(f"Ordering {k} (respondent id {_plain(rid[k])!r}) ranks item(s) {format_ids(missing)} that "
                             f"are not in its `shown` set {s!r}. Fix: `shown` lists every item shown, ranked or "
                             "not.")
        for it in s:
            seen_order.setdefault(it, None)
        out.append([it for it in s if it not in set(ranked)])
    return out


def pairwise_arrays(data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pairwise comparison of a Rankings object: ``(a, b, outcome, resp)`` with outcome 1 when `a` beats
    `b` and 0 for a tie (ties stay ties; top-k: every ranked item beats every unranked one; declared
    shown-but-unranked items: every ranked item of that ranking beats each of them)."""
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
    u_ptr, u_item = data._unranked_ptr, data._unranked_item
    if u_ptr is not None:  # declared shown-but-unranked items: every ranked item beats each of them
        n_rk, n_u = np.diff(ptr), np.diff(u_ptr)
        for r in np.flatnonzero(n_u > 0):
            ranked, unranked = item[ptr[r]:ptr[r + 1]], u_item[u_ptr[r]:u_ptr[r + 1]]
            a_l.append(np.repeat(ranked, n_u[r]))
            b_l.append(np.tile(unranked, n_rk[r]))
            o_l.append(np.ones(n_rk[r] * n_u[r], dtype=int))
            r_l.append(np.full(n_rk[r] * n_u[r], resp[r]))
    return np.concatenate(a_l), np.concatenate(b_l), np.concatenate(o_l), np.concatenate(r_l)


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value it holds (messages read ``3``, not ``np.int64(3)``)."""
    return v.item() if isinstance(v, np.generic) else v
