"""Best-worst (MaxDiff, object case) tasks: parsing and validation for :meth:`Rankings.from_best_worst` (and
the choice tasks of :meth:`Rankings.from_choices`, which share the task checks).

A task shows a set ``S`` of items and records the best ``b`` and the worst ``w``. :class:`BestWorstTasks` keeps that
structure (the Plackett-Luce arrays of a :class:`~survey_weights.data.Rankings` can only hold its weak-ordering
reading ``b > (rest tied) > w``, which is the best-worst model only for ``|S| = 3``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_columns, check_frame, format_ids
from ._checks import _readonly

__all__ = ["BestWorstTasks", "best_worst_counts", "parse_best_worst", "parse_choices", "weak_orderings"]


@dataclass(frozen=True, eq=False)
class BestWorstTasks:
    """The best-worst tasks of a :class:`~survey_weights.data.Rankings` (CSR over tasks; arrays read-only).

    ``item[ptr[t]:ptr[t+1]]`` are the item indices shown in task ``t`` (display order); ``best[t]`` and
    ``worst[t]`` are item indices; ``resp[t]`` is the respondent position; ``task_ids[t]`` the task label.
    """

    ptr: np.ndarray
    item: np.ndarray
    best: np.ndarray
    worst: np.ndarray
    resp: np.ndarray
    task_ids: np.ndarray

    @property
    def n_tasks(self) -> int:
        return len(self.best)

    @property
    def sizes(self) -> np.ndarray:
        """Number of items shown in each task."""
        return np.diff(self.ptr)

    def subset(self, new_code: np.ndarray) -> BestWorstTasks:
        """The tasks of the respondents with ``new_code[resp] >= 0``, renumbered to ``new_code``."""
        keep = np.flatnonzero(new_code[self.resp] >= 0)
        lens = self.sizes[keep]
        take = np.concatenate([np.arange(self.ptr[t], self.ptr[t + 1]) for t in keep]) if len(keep) else \
            np.zeros(0, np.int64)
        return BestWorstTasks(*(_readonly(np.asarray(a)) for a in (
            np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), self.item[take], self.best[keep],
            self.worst[keep], new_code[self.resp[keep]], self.task_ids[keep])))

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.ptr, self.item, self.best, self.worst, self.resp


def _shown_lists(df: pd.DataFrame, shown: Any) -> list[list[Any]]:
    """The items shown in each row: from a list column, or from several item columns (missing cells skipped)."""
    if isinstance(shown, (list, tuple)) and not (isinstance(shown, tuple) and shown in df.columns):
        cols = check_columns(df, shown, "shown")
        vals = df[cols].to_numpy(dtype=object)
        return [[v for v in row if not _missing(v)] for row in vals]
    check_columns(df, [shown], "shown")
    out = []
    for v in df[shown].to_numpy(dtype=object):
        if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
            raise TypeError(f"Column {shown!r} (parameter `shown`) must hold a list of the items shown in each task; "
                            f"got {v!r}. Fix: pass a list column, or shown=[the item columns].")
        out.append([x for x in v if not _missing(x)])
    return out


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _where(rid: Any, tid: Any) -> str:
    return f"respondent {format_ids([_plain(rid)])}, task {format_ids([_plain(tid)])}"


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value it holds (so messages read ``3``, not ``np.int64(3)``)."""
    return v.item() if isinstance(v, np.generic) else v


def _parse_tasks(df: pd.DataFrame, *, respondent: Hashable, task: Hashable, shown: Any,
                 answers: Sequence[Hashable], names: str, items: Sequence[Any] | None, kind: str,
                 check_row: Any = None) -> tuple[list[Any], pd.Index, np.ndarray, np.ndarray, list[list[Any]]]:
    """Validate one-row-per-task data (ids, shown sets, answer columns that must name a shown item).

    Returns ``(items, respondent ids, respondent code per row, task ids, shown sets)``; raises ``ValueError``
    naming the column, the respondent and task, the bad value and a fix. `kind` names the task in messages
    ("a best-worst task"); ``check_row(i, where)`` runs further checks on row ``i`` after its answers.
    """
    check_frame(df)
    check_columns(df, [respondent, task, *answers], names)
    rid = df[respondent].to_numpy(dtype=object)
    tid = df[task].to_numpy(dtype=object)
    for col, v in ((respondent, rid), (task, tid)):
        miss = pd.isna(v)
        if miss.any():
            raise ValueError(f"Column {col!r} is missing at row position(s) {format_ids(np.flatnonzero(miss))}. "
                             "Fix: fill in the ids or drop those rows.")
    key = pd.MultiIndex.from_arrays([rid, tid])
    if key.has_duplicates:
        r, t = key[key.duplicated()][0]
        raise ValueError(f"{_where(r, t)} appears on more than one row (columns {respondent!r}, {task!r}). "
                         "Each row must be one task of one respondent. Fix: drop the duplicate rows or number the "
                         "tasks uniquely within each respondent.")
    sets = _shown_lists(df, shown)
    vals = [(col, df[col].to_numpy(dtype=object)) for col in answers]
    for i, s in enumerate(sets):
        r, t = rid[i], tid[i]
        if len(s) < 2:
            raise ValueError(f"{_where(r, t)}: {len(s)} item(s) shown (`shown`: {s!r}); {kind} needs at "
                             "least 2. Fix: drop the task or fill in the items shown.")
        seen = set()
        for x in s:
            if x in seen:
                raise ValueError(f"{_where(r, t)}: item {_plain(x)!r} is shown twice (`shown`: {s!r}). Fix: list each item "
                                 "shown once.")
            seen.add(x)
        for col, v_all in vals:
            v = v_all[i]
            if _missing(v):
                raise ValueError(f"{_where(r, t)}: column {col!r} is missing. Fix: drop tasks without an answer.")
            if v not in seen:
                raise ValueError(f"{_where(r, t)}: column {col!r} is {_plain(v)!r}, which is not among the items shown "
                                 f"{s!r}. Fix: check the item labels (or row numbers recoded to labels).")
        if check_row is not None:
            check_row(i, _where(r, t))
    seen_items = list(dict.fromkeys(x for s in sets for x in s))
    if items is None:
        try:
            item_list = sorted(seen_items)
        except TypeError:
            item_list = seen_items
    else:
        item_list = list(items)
        known = set(item_list)
        extra = [x for x in seen_items if x not in known]
        if extra:
            i = next(i for i, s in enumerate(sets) if any(x not in known for x in s))
            raise ValueError(f"Item(s) {format_ids(extra)} are shown but not in `items` (first at "
                             f"{_where(rid[i], tid[i])}, `shown`: {sets[i]!r}). Fix: add them to `items` or "
                             "correct the labels.")
    codes, uniq = pd.factorize(pd.Index(rid))
    return item_list, pd.Index(uniq), codes.astype(np.int64), tid, sets


def parse_best_worst(df: pd.DataFrame, *, respondent: Hashable, task: Hashable, shown: Any, best: Hashable,
                     worst: Hashable, items: Sequence[Any] | None = None
                     ) -> tuple[list[Any], pd.Index, np.ndarray, BestWorstTasks]:
    """Validate one-row-per-task best-worst data. Returns ``(items, respondent ids, respondent code per row,
    tasks)``; raises ``ValueError`` naming the column, the respondent and task, the bad value and a fix."""
    check_frame(df)
    check_columns(df, [respondent, task, best, worst], "respondent/task/best/worst")
    bests = df[best].to_numpy(dtype=object)
    worsts = df[worst].to_numpy(dtype=object)

    def same(i: int, where: str) -> None:
        if bests[i] == worsts[i]:
            raise ValueError(f"{where}: the same item {_plain(bests[i])!r} is both best (column {best!r}) and worst "
                             f"(column {worst!r}). Fix: drop the task or correct the answer.")

    item_list, ids, codes, tid, sets = _parse_tasks(
        df, respondent=respondent, task=task, shown=shown, answers=[best, worst], names="respondent/task/best/worst",
        items=items, kind="a best-worst task", check_row=same)
    pos = {x: j for j, x in enumerate(item_list)}
    lens = np.array([len(s) for s in sets], dtype=np.int64)
    tasks = BestWorstTasks(*(_readonly(np.asarray(a)) for a in (
        np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        np.array([pos[x] for s in sets for x in s], dtype=np.int64),
        np.array([pos[x] for x in bests], dtype=np.int64), np.array([pos[x] for x in worsts], dtype=np.int64),
        codes, tid)))
    return item_list, ids, codes, tasks


def parse_choices(df: pd.DataFrame, *, respondent: Hashable, task: Hashable, shown: Any, chosen: Hashable,
                  items: Sequence[Any] | None = None
                  ) -> tuple[list[Any], pd.Index, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate one-row-per-task choices (one item chosen from those shown). Returns ``(items, respondent ids,
    respondent code per row, chosen item index per task, unranked ptr, unranked items)``: the CSR over tasks of
    the items shown but not chosen, in display order."""
    item_list, ids, codes, _, sets = _parse_tasks(df, respondent=respondent, task=task, shown=shown,
                                                  answers=[chosen], names="respondent/task/chosen", items=items,
                                                  kind="a choice task")
    pos = {x: j for j, x in enumerate(item_list)}
    ch = df[chosen].to_numpy(dtype=object)
    rest = [[pos[x] for x in s if x != c] for s, c in zip(sets, ch)]
    u_ptr = np.concatenate([[0], np.cumsum([len(r) for r in rest])]).astype(np.int64)
    return (item_list, ids, codes, np.array([pos[c] for c in ch], dtype=np.int64), u_ptr,
            np.array([x for r in rest for x in r], dtype=np.int64))


def weak_orderings(tasks: BestWorstTasks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR ``(ptr, item, rank)`` of each task's weak ordering ``best > (the rest, tied) > worst``."""
    its, rks = [], []
    for t in range(tasks.n_tasks):
        s = tasks.item[tasks.ptr[t]:tasks.ptr[t + 1]]
        b, w = tasks.best[t], tasks.worst[t]
        mid = [x for x in s if x != b and x != w]
        its.append([b, *mid, w])
        rks.append([1] + [2] * len(mid) + [3 if mid else 2])
    ptr = tasks.ptr.copy()
    return ptr, np.array([x for r in its for x in r], np.int64), np.array([x for r in rks for x in r], np.int64)


def best_worst_counts(data: Any, by_respondent: bool = False, *, level: float | None = None) -> pd.DataFrame:
    """Count scores of best-worst data (as ``support.BWS::bws.count``), per item or per respondent.

    Parameters
    ----------
    data : Rankings
        Built by :meth:`~survey_weights.Rankings.from_best_worst`. Counts are weighted by the respondents'
        frequency x sampling weights (``data.fit_weights``; all 1 by default).
    by_respondent : bool, default False
        False: one row per item (the aggregate scores). True: one row per respondent x item shown to them.
        **Respondent-level scores are individual answers, identifiable health data in a health survey**: they are
        for the analyst's own checks, and must not be published or exported without the disclosure rules that
        apply (aggregate them, or mask small cells).
    level : float, optional
        E.g. 0.95: add ``stdBW_se``, ``stdBW_lower`` and ``stdBW_upper`` (aggregate rows only), a normal interval
        for ``stdBW`` as a ratio of respondent totals ``sum_i (B_ij - W_ij) / sum_i a_ij``, with the linearised
        variance clustered by respondent, ``n/(n-1) sum_i w_i^2 (d_ij - stdBW_j a_ij)^2 / (sum_i w_i a_ij)^2``
        (the tasks of one respondent are not independent).

    Returns
    -------
    pandas.DataFrame
        Per item (index ``item``): ``appearances_per_respondent`` (weighted appearances / weighted respondents),
        ``appearances_total``, ``B`` and ``W`` (times chosen best / worst), ``BW = B - W``,
        ``stdBW = BW / appearances_total`` (``(B - W) / (n f_j)`` in a balanced design), ``sqrtBW = sqrt(B / W)``
        and ``std_sqrtBW = sqrtBW / max(sqrtBW)``. Per respondent: columns ``respondent``, ``item``,
        ``appearances``, ``B``, ``W``, ``BW`` and ``stdBW = BW / appearances``.
    """
    bw = getattr(data, "best_worst", None)
    if bw is None:
        raise TypeError("`data` must be a Rankings built by Rankings.from_best_worst (it carries no best-worst "
                        "tasks).")
    if not isinstance(by_respondent, (bool, np.bool_)):
        raise TypeError(f"`by_respondent` must be True or False. Got {by_respondent!r}.")
    n, N = len(data.items), data.n_respondents
    w = np.asarray(getattr(data, "fit_weights", data.respondent_weights), dtype=float)
    t_of = np.repeat(np.arange(bw.n_tasks), bw.sizes)
    app = np.bincount(bw.resp[t_of] * n + bw.item, minlength=N * n).reshape(N, n).astype(float)
    B = np.bincount(bw.resp * n + bw.best, minlength=N * n).reshape(N, n).astype(float)
    W = np.bincount(bw.resp * n + bw.worst, minlength=N * n).reshape(N, n).astype(float)
    items = pd.Index(list(data.items), name="item")
    if by_respondent:
        r, j = np.nonzero(app > 0)
        return pd.DataFrame({"respondent": data.respondent_ids[r], "item": items[j], "appearances": app[r, j],
                             "B": B[r, j], "W": W[r, j], "BW": B[r, j] - W[r, j],
                             "stdBW": (B[r, j] - W[r, j]) / app[r, j]})
    at, bt, wt = w @ app, w @ B, w @ W
    with np.errstate(divide="ignore", invalid="ignore"):
        sq = np.sqrt(bt / wt)
        out = pd.DataFrame({"appearances_per_respondent": at / float(w[w > 0].sum() if (w > 0).any() else 1.0),
                            "appearances_total": at, "B": bt, "W": wt, "BW": bt - wt,
                            "stdBW": (bt - wt) / at, "sqrtBW": sq}, index=items)
        finite = sq[np.isfinite(sq)]
        out["std_sqrtBW"] = sq / (finite.max() if len(finite) else np.nan)
        if level is not None:
            from scipy.stats import norm

            if not (isinstance(level, (float, int)) and 0 < level < 1):
                raise ValueError(f"`level` must be a number strictly between 0 and 1, e.g. 0.95. Got {level!r}.")
            m = int(np.count_nonzero(w > 0))
            ratio = out["stdBW"].to_numpy()
            resid = (B - W) - ratio[None, :] * app  # (N, n)
            var = (m / (m - 1.0) if m > 1 else np.nan) * ((w[:, None] * resid) ** 2).sum(axis=0) / at ** 2
            se = np.sqrt(var)
            z = float(norm.ppf(0.5 + level / 2))
            out["stdBW_se"] = se
            out["stdBW_lower"] = ratio - z * se
            out["stdBW_upper"] = ratio + z * se
    return out
