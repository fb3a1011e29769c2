"""Validated, immutable data objects: :class:`Rankings` and :class:`PairedComparisons`.

Build one from a DataFrame (or a list of orderings), then pass it to a fit function. All recoding happens here,
once, and is reported with a :class:`~survey_weights.exceptions.DataRecodeWarning`; bad input raises a
``ValueError``/``TypeError`` that names the parameter or column, the first offending respondent ids and a fix.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_columns, check_frame, format_ids
from ..exceptions import DataRecodeWarning
from ._best_worst import BestWorstTasks, parse_best_worst, parse_choices, weak_orderings
from ._checks import (
    SamplingWeightsMixin,
    _build_covariates,
    _check_empty_option,
    _check_total_weight,
    _check_weights,
    _check_whole,
    _dense_ranks,
    _empty_items,
    _numeric_matrix,
    _per_respondent,
    _raise_bad_cells,
    _readonly,
    _row_ids,
    _warn_dropped,
    _weights_from_column,
)
from ._orderings import orderings_arrays, pairwise_arrays
from .paired import PairedComparisons

__all__ = ["Rankings", "PairedComparisons"]

# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class Rankings(SamplingWeightsMixin):
    """Rankings of items, possibly with ties, sub-rankings and top-k rankings, grouped by respondent.

    Do not call the constructor directly: use :meth:`from_ratings`, :meth:`from_wide`, :meth:`from_orderings`,
    :meth:`from_best_worst` or :meth:`from_choices`.
    The object is immutable; its arrays are read-only.

    Attributes
    ----------
    items : tuple
        Item labels, in a fixed order.
    respondent_ids : pandas.Index
        Unique respondent ids.
    respondent_weights : numpy.ndarray
        Frequency weight of each respondent (default 1).
    covariates : pandas.DataFrame or None
        One row per respondent (index = respondent id), or None.

    Notes
    -----
    Internally a ranking r is stored in CSR form: its entries are ``_ptr[r]:_ptr[r+1]`` of ``_item`` (item index)
    and ``_rank`` (tie-group number, 1 = best, equal = tied), sorted best first. ``_top_k[r]`` says whether the
    items absent from ranking r are ranked below every ranked item (top-k) or simply not compared (sub-ranking).
    ``_resp[r]`` is the respondent position of ranking r. Rankings whose shown-but-unranked items are declared
    one by one (:meth:`from_choices`, ``from_orderings(shown=...)``) keep them in a second CSR pair,
    ``_unranked_item[_unranked_ptr[r]:_unranked_ptr[r+1]]``: those items join every choice set of ranking r and
    are never chosen (a top-k ranking over its shown set); both are None when no ranking declares any.
    """

    items: tuple
    _ptr: np.ndarray
    _item: np.ndarray
    _rank: np.ndarray
    _top_k: np.ndarray
    _resp: np.ndarray
    respondent_ids: pd.Index
    respondent_weights: np.ndarray
    covariates: pd.DataFrame | None = field(default=None)
    #: Sampling (or raking) weights, one per respondent, or None: the fit maximises the weighted
    #: pseudo-likelihood and its default standard errors are the sandwich (``vcov="robust"``).
    sampling_weights: np.ndarray | None = field(default=None)
    #: Best-worst (MaxDiff) tasks when built by :meth:`from_best_worst` (shown set, best and worst per task), else
    #: None; the ranking arrays then hold each task's weak ordering ``best > (rest tied) > worst``.
    best_worst: BestWorstTasks | None = field(default=None)
    #: CSR over rankings of the items shown in ranking r but not ranked (see Notes), or None.
    _unranked_ptr: np.ndarray | None = field(default=None)
    _unranked_item: np.ndarray | None = field(default=None)

    # ----------------------------------------------------------------------------------------------------- builders
    @classmethod
    def _from_arrays(
        cls, items: Sequence[Any], ptr: np.ndarray, item: np.ndarray, rank: np.ndarray, top_k: np.ndarray,
        resp: np.ndarray, respondent_ids: Sequence[Any] | pd.Index, respondent_weights: np.ndarray | None = None,
        covariates: pd.DataFrame | None = None, unranked: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Rankings:
        """Private constructor from the internal arrays (no validation beyond shapes).

        `unranked`: ``(ptr, item)``, CSR over rankings of each ranking's shown-but-unranked items (None: none);
        a ranking that declares some must not be top-k (its declared set replaces "every other item").
        """
        ids = pd.Index(respondent_ids)
        ids.name = "respondent"
        w = np.ones(len(ids)) if respondent_weights is None else np.asarray(respondent_weights, dtype=np.float64)
        ptr = np.asarray(ptr, dtype=np.int64)
        if len(ptr) - 1 != len(top_k) or len(top_k) != len(resp) or len(w) != len(ids):
            raise ValueError("Inconsistent internal array lengths.")
        u_ptr = u_item = None
        if unranked is not None:
            u_ptr = np.asarray(unranked[0], dtype=np.int64)
            u_item = np.asarray(unranked[1], dtype=np.int32)
            if len(u_ptr) != len(ptr) or u_ptr[0] != 0 or u_ptr[-1] != len(u_item) or np.any(np.diff(u_ptr) < 0):
                raise ValueError("Inconsistent internal unranked-item arrays.")
            if np.any(np.asarray(top_k, dtype=bool) & (np.diff(u_ptr) > 0)):
                raise ValueError("A top-k ranking cannot also declare its shown-but-unranked items.")
            if not len(u_item):
                u_ptr = u_item = None
        return cls(
            items=tuple(items),
            _ptr=_readonly(ptr),
            _item=_readonly(np.asarray(item, dtype=np.int32)),
            _rank=_readonly(np.asarray(rank, dtype=np.int32)),
            _top_k=_readonly(np.asarray(top_k, dtype=bool)),
            _resp=_readonly(np.asarray(resp, dtype=np.int64)),
            respondent_ids=ids,
            respondent_weights=_readonly(w),
            covariates=covariates,
            _unranked_ptr=None if u_ptr is None else _readonly(u_ptr),
            _unranked_item=None if u_item is None else _readonly(u_item),
        )

    @classmethod
    def _from_matrix(
        cls, key: np.ndarray, items: list[Any], ids: np.ndarray, *, top_k: bool, weights: np.ndarray,
        covariates: pd.DataFrame | None, drop_all_tied: bool, empty_items: str = "raise",
        weights_name: str = "The frequency weights",
    ) -> Rankings:
        """Rows of `key` (smaller = better, NaN = unranked), one row per respondent."""
        order, dense, valid = _dense_ranks(key)
        n_valid = valid.sum(axis=1)
        n_groups = np.where(valid, dense, 0).max(axis=1) if key.shape[1] else np.zeros(len(key), int)
        m = len(items)
        informative = (n_valid >= 2) | (top_k & (n_valid >= 1) & (n_valid < m))
        few = ~informative
        _warn_dropped(ids[few], "fewer than two ranked items")
        keep = informative.copy()
        if drop_all_tied:
            tied = informative & (n_groups == 1)
            if tied.any():
                warnings.warn(
                    f"Dropped {int(tied.sum())} respondent(s) with all ratings equal (all_tied='drop'): respondent "
                    f"ids {format_ids(list(ids[tied]))}. Under the Davidson-Luce model they inform the tie "
                    "parameters, so the fit's tie parameters differ from a fit of every answer (all_tied='keep').",
                    DataRecodeWarning, stacklevel=3)
            keep &= ~tied
        if not keep.any():
            raise ValueError(
                "No respondent is left with ranking information (every row has fewer than two ranked items"
                + (" or all-equal ratings, and all_tied='drop'" if drop_all_tied else "")
                + "). Check the item columns."
            )
        if not top_k:  # (top-k: an item nobody ranked still loses to every ranked one)
            cols = _empty_items(~np.isnan(key), keep, items, empty_items, stacklevel=4)
            if not cols.all():
                key, items = key[:, cols], [it for it, c in zip(items, cols) if c]
                order, dense, valid = _dense_ranks(key)
                n_valid = valid.sum(axis=1)
        _check_total_weight(weights[keep], weights_name)
        order, dense, valid, n_valid = order[keep], dense[keep], valid[keep], n_valid[keep]
        ptr = np.concatenate([[0], np.cumsum(n_valid)])
        idx = pd.Index(ids[keep])
        cov = covariates.loc[idx] if covariates is not None else None
        if cov is not None:
            cov.index.name = "respondent"
        return cls._from_arrays(items, ptr, order[valid], dense[valid], np.full(len(idx), top_k), np.arange(len(idx)),
                                idx, weights[keep], cov)

    @classmethod
    def from_ratings(
        cls,
        df: pd.DataFrame,
        items: Sequence[Any],
        respondent: Hashable | None = None,
        scale: tuple[float, float] | None = None,
        covariates: Sequence[Hashable] | pd.DataFrame | None = None,
        *,
        weights: Hashable | None = None,
        all_tied: str = "keep",
        sampling_weights: Hashable | pd.Series | Sequence[float] | None = None,
        empty_items: str = "raise",
    ) -> Rankings:
        """Turn Likert importance ratings (one row per respondent) into weak orderings.

        A higher rating means more important; equal ratings are ties; a missing rating (NaN) leaves the item out of
        that respondent's ranking (a sub-ranking).

        Parameters
        ----------
        df : pandas.DataFrame
            One row per respondent.
        items : sequence of column names
            The rating columns; their order fixes the item order.
        respondent : column name, optional
            Column of respondent ids; default: the frame's index. Ids must be unique and not missing.
        scale : (low, high), optional
            The rating scale, e.g. ``(1, 5)``. Ratings outside it raise ``ValueError``. Default: not checked.
        covariates : list of column names or DataFrame, optional
            Respondent covariates: columns of `df`, or a frame with one row per respondent indexed by id.
        weights : column name, optional
            Frequency weight of each respondent (non-negative).
        all_tied : {"keep", "drop"}, default "keep"
            What to do with respondents whose answered items are all rated equal. ``"keep"`` (the default, as R's
            PlackettLuce does) keeps each as one tie group of all their answered items: under the Davidson-Luce
            model such a ranking informs the tie parameters (a tie of order k is evidence for ``tie<k>``) and, when
            some answers are missing, the worths too (which items were tied is informative). ``"drop"`` leaves
            them out (with a ``DataRecodeWarning``), as a "no priority expressed" reading would; this changes the
            fitted tie parameters (the highest tie order may disappear) and, through them, the worths and the
            log-likelihood, so the fit is no longer the Davidson-Luce fit of all the answers.
        empty_items : {"raise", "drop"}, default "raise"
            An item that no respondent with ranking information answered would get a weight from the
            pseudo-comparisons alone: ``"raise"`` refuses it (``ValueError`` naming it), ``"drop"`` leaves it out
            of ``items`` with a ``DataRecodeWarning``.

        sampling_weights : column name, Series by respondent id or array, optional
            Sampling (or raking) weights, one per respondent, positive: the fit maximises the weighted
            pseudo-likelihood, its default SEs are the sandwich clustered by respondent (``vcov="robust"``), and
            results report the Kish design effect. Distinct from `weights` (frequency weights: counts of identical
            respondents).
        Returns
        -------
        Rankings

        Warns
        -----
        DataRecodeWarning
            Respondents who rated fewer than two items carry no ranking information and are dropped; with
            ``all_tied="drop"`` so are respondents whose ratings are all equal. One warning per reason counts them.
            With ``empty_items="drop"``, one names the items dropped for having no answers.

        Raises
        ------
        ValueError
            A rating outside `scale`, an item without answers (``empty_items="raise"``), or frequency `weights`
            that sum to 0.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"a": [5, 4, 3], "b": [4, 4, 3], "c": [1, 5, 3]}, index=["r1", "r2", "r3"])
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     r = Rankings.from_ratings(df, ["a", "b", "c"], scale=(1, 5))
        >>> r.n_respondents                # r3 rated everything 3: one three-way tie, kept
        3
        >>> r.max_tie_order
        3
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     Rankings.from_ratings(df, ["a", "b", "c"], scale=(1, 5), all_tied="drop").n_respondents
        2
        """
        check_frame(df)
        if not isinstance(all_tied, str):
            raise TypeError(f"`all_tied` must be the string 'keep' or 'drop'. Got {type(all_tied).__name__} "
                            f"{all_tied!r}.")
        if all_tied not in ("keep", "drop"):
            raise ValueError(f"`all_tied` must be 'keep' or 'drop'. Got {all_tied!r}. Fix: all_tied='keep' (the "
                             "Davidson-Luce fit of every answer) or all_tied='drop' (leave out respondents who "
                             "rated every answered item the same).")
        _check_empty_option(empty_items)
        item_cols = check_columns(df, items, "items")
        if len(item_cols) < 2:
            raise ValueError(f"`items` must name at least two rating columns. Got {item_cols!r}.")
        ids = _row_ids(df, respondent, unique=True)
        x = _numeric_matrix(df, item_cols, ids, "Rating")
        _check_whole(x, item_cols, ids, "Rating")
        if scale is not None:
            try:
                lo, hi = (float(s) for s in scale)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"`scale` must be a pair (low, high) such as (1, 5). Got {scale!r}.") from exc
            if not lo < hi:
                raise ValueError(f"`scale` must satisfy low < high. Got {scale!r}.")
            out = ~np.isnan(x) & ((x < lo) | (x > hi))
            _raise_bad_cells(out, x, item_cols, ids, "Rating", f"outside `scale` {scale!r}",
                             "recode those answers (e.g. 'don't know' to NaN) or pass the right scale.")
        idx = pd.Index(ids)
        codes = np.arange(len(ids))
        w = _weights_from_column(df, weights, codes, idx)
        cov = _build_covariates(covariates, df, codes, idx)
        out = cls._from_matrix(
            -x, item_cols, ids, top_k=False, weights=w, covariates=cov, drop_all_tied=all_tied == "drop",
            empty_items=empty_items, weights_name=f"The weights in column {weights!r}",
        )
        return out._attach_sampling_weights(sampling_weights, df, ids)

    @classmethod
    def from_wide(
        cls,
        df: pd.DataFrame,
        items: Sequence[Any],
        respondent: Hashable | None = None,
        top_k: bool = False,
        covariates: Sequence[Hashable] | pd.DataFrame | None = None,
        *,
        weights: Hashable | None = None,
        sampling_weights: Hashable | pd.Series | Sequence[float] | None = None,
        empty_items: str = "raise",
    ) -> Rankings:
        """Rank positions in wide form (one row per respondent, one column per item).

        Parameters
        ----------
        df : pandas.DataFrame
            Cells hold rank positions: whole numbers 1..len(items), 1 = best, equal positions = ties,
            NaN = not ranked. Only the order matters (1, 1, 3 and 1, 1, 2 mean the same).
        items : sequence of column names
        respondent : column name, optional
            Unique respondent ids; default: the index.
        top_k : bool, default False
            False: unranked items are simply absent (a sub-ranking). True: every ranked item beats every unranked
            one (a top-k ranking, as in "pick your top 3").
        covariates : list of column names or DataFrame, optional
        weights : column name, optional
            Frequency weight per respondent.
        empty_items : {"raise", "drop"}, default "raise"
            As in :meth:`from_ratings`: an item that nobody ranked (without `top_k`) is an error, or is dropped
            with a warning.

        sampling_weights : column name, Series by respondent id or array, optional
            Sampling (or raking) weights, one per respondent, positive: the fit maximises the weighted
            pseudo-likelihood, its default SEs are the sandwich clustered by respondent (``vcov="robust"``), and
            results report the Kish design effect. Distinct from `weights` (frequency weights: counts of identical
            respondents).
        Returns
        -------
        Rankings
        """
        check_frame(df)
        _check_empty_option(empty_items)
        item_cols = check_columns(df, items, "items")
        if len(item_cols) < 2:
            raise ValueError(f"`items` must name at least two columns. Got {item_cols!r}.")
        if not isinstance(top_k, (bool, np.bool_)):
            raise TypeError(f"`top_k` must be True or False. Got {top_k!r}.")
        ids = _row_ids(df, respondent, unique=True)
        x = _numeric_matrix(df, item_cols, ids, "Rank")
        _check_whole(x, item_cols, ids, "Rank")
        m = len(item_cols)
        out = ~np.isnan(x) & ((x < 1) | (x > m))
        _raise_bad_cells(out, x, item_cols, ids, "Rank", f"outside 1..{m}",
                         "rank positions run from 1 (best) to the number of items; use NaN for 'not ranked'.")
        idx = pd.Index(ids)
        codes = np.arange(len(ids))
        w = _weights_from_column(df, weights, codes, idx)
        cov = _build_covariates(covariates, df, codes, idx)
        out = cls._from_matrix(
            x, item_cols, ids, top_k=bool(top_k), weights=w, covariates=cov, drop_all_tied=False,
            empty_items=empty_items, weights_name=f"The weights in column {weights!r}",
        )
        return out._attach_sampling_weights(sampling_weights, df, ids)

    @classmethod
    def from_orderings(
        cls,
        orderings: Iterable[Sequence[Any]],
        items: Sequence[Any] | None = None,
        respondent_ids: Sequence[Any] | None = None,
        *,
        top_k: bool = False,
        weights: Sequence[float] | None = None,
        covariates: pd.DataFrame | None = None,
        sampling_weights: pd.Series | Sequence[float] | None = None,
        empty_items: str = "raise",
        shown: Sequence[Any] | None = None,
    ) -> Rankings:
        """Rankings from orderings, best first; a tuple, list or set inside an ordering is a tie group.

        Parameters
        ----------
        orderings : iterable of sequences
            E.g. ``[["a", ("b", "c"), "d"], ["c", "a"]]``: a > b = c > d, then c > a.
        items : sequence, optional
            All item labels, in the order to use. Default: every label seen, sorted (first-seen order when
            labels cannot be sorted). Items outside `items` raise ``ValueError``.
        respondent_ids : sequence, optional
            Respondent id of each ordering; repeated ids group several rankings under one respondent.
            Default: 0, 1, 2, ...
        top_k : bool, default False
            Whether unranked items are ranked below every ranked item.
        shown : sequence, optional
            Per ordering, the items shown to the respondent (a list holding every item it ranks), or None.
            Items shown but not ranked rank below every ranked item of that ordering: they stay in each choice
            set and are never chosen (a top-k ranking over the shown set; an ordering of one item from a larger
            shown set is a choice, as in :meth:`from_choices`). Items not shown are not compared. Where an entry
            is None, `top_k` decides as before. Default: no shown sets.
        weights : sequence of float, optional
            Frequency weight of each ordering (constant within a respondent).
        covariates : DataFrame, optional
            One row per respondent, indexed by respondent id.
        empty_items : {"raise", "drop"}, default "raise"
            An item of `items` that no ordering (of two or more items) contains, without `top_k`: an error, or
            dropped with a warning, as in :meth:`from_ratings`.

        sampling_weights : column name, Series by respondent id or array, optional
            Sampling (or raking) weights, one per respondent, positive: the fit maximises the weighted
            pseudo-likelihood, its default SEs are the sandwich clustered by respondent (``vcov="robust"``), and
            results report the Kish design effect. Distinct from `weights` (frequency weights: counts of identical
            respondents).
        Returns
        -------
        Rankings
        """
        _check_empty_option(empty_items)
        if isinstance(orderings, (str, bytes, pd.DataFrame)) or not isinstance(orderings, Iterable):
            raise TypeError(
                "`orderings` must be a list of orderings (each a list of items, best first). "
                f"Got {type(orderings).__name__}."
            )
        orderings = list(orderings)
        item_list, rid, ptr, it_arr, rk_arr, keep, flags, unranked = orderings_arrays(
            orderings, items, respondent_ids, top_k=bool(top_k), empty_items=empty_items, shown=shown)
        if not keep:
            raise ValueError("No ordering has two or more items" + (" shown" if shown is not None else "")
                             + "; there is nothing to fit.")
        keep_arr = np.asarray(keep)
        codes_all, uniq = pd.factorize(pd.Index(rid[keep_arr]) if respondent_ids is not None else keep_arr)
        ids = pd.Index(uniq)
        if weights is None:
            w = np.ones(len(ids))
        else:
            wa = np.asarray(list(weights), dtype=object)
            if len(wa) != len(orderings):
                raise ValueError(f"`weights` has {len(wa)} entries but there are {len(orderings)} orderings.")
            wa = _check_weights(wa[keep_arr].astype(float), pd.Index(rid[keep_arr]), "`weights`")
            w = _per_respondent(wa, codes_all, len(ids), "`weights`", ids)
            _check_total_weight(w, "The `weights`")
        cov = _build_covariates(covariates, None, None, ids)
        out = cls._from_arrays(item_list, np.asarray(ptr), it_arr, rk_arr, flags, codes_all, ids, w, cov,
                               unranked=unranked)
        # per ordering (like `weights`), or a Series by respondent id
        return out._attach_sampling_weights(sampling_weights, None, rid)

    @classmethod
    def from_best_worst(
        cls,
        df: pd.DataFrame,
        *,
        respondent: Hashable,
        task: Hashable,
        shown: Hashable | Sequence[Hashable],
        best: Hashable,
        worst: Hashable,
        covariates: Sequence[Hashable] | pd.DataFrame | None = None,
        items: Sequence[Any] | None = None,
        weights: Hashable | None = None,
        sampling_weights: Hashable | pd.Series | Sequence[float] | None = None,
    ) -> Rankings:
        """Best-worst scaling (MaxDiff, object case) answers, one row per task, for :func:`fit_best_worst`.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per respondent x task.
        respondent, task : column names
            Respondent id and task id; each (respondent, task) pair once.
        shown : column name or list of column names
            The items shown in the task: a column holding a list per row, or the item columns ``shown_1, ...``
            (missing cells are skipped, so tasks may show different numbers of items).
        best, worst : column names
            The item chosen best and the one chosen worst (labels as in `shown`).
        covariates : list of column names or DataFrame, optional
            Respondent covariates (constant within respondent).
        items : sequence, optional
            All item labels in the order to use (e.g. the reference item first). Default: sorted labels.
        weights, sampling_weights : optional
            Frequency weights (a column, constant within respondent) and sampling weights, as in
            :meth:`from_ratings`.

        Returns
        -------
        Rankings
            With ``best_worst`` holding the tasks; its ranking arrays hold each task's weak ordering
            ``best > (the rest, tied) > worst`` (one ranking per task), so the Plackett-Luce tools still run
            on it, but that reading is the best-worst model only for tasks of 3 items
            (:func:`fit_plackett_luce` warns otherwise). Fit with :func:`fit_best_worst`.

        Raises
        ------
        ValueError
            Naming the column, respondent, task and value: best equal to worst, best or worst not among the items
            shown, an item shown twice, fewer than 2 items shown, a duplicate (respondent, task), missing ids.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"id": [1, 1, 2], "task": [1, 2, 1],
        ...                    "shown": [["a", "b", "c"], ["a", "b", "d"], ["b", "c", "d"]],
        ...                    "best": ["a", "d", "b"], "worst": ["c", "b", "d"]})
        >>> r = Rankings.from_best_worst(df, respondent="id", task="task", shown="shown", best="best", worst="worst")
        >>> r.best_worst.n_tasks, r.n_respondents, r.items
        (3, 2, ('a', 'b', 'c', 'd'))
        >>> df.loc[2, "worst"] = "b"
        >>> Rankings.from_best_worst(df, respondent="id", task="task", shown="shown", best="best",
        ...                          worst="worst")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: respondent 2, task 1: the same item 'b' is both best (column 'best') and worst ...
        """
        item_list, ids, codes, tasks = parse_best_worst(df, respondent=respondent, task=task, shown=shown,
                                                        best=best, worst=worst, items=items)
        ptr, it, rk = weak_orderings(tasks)
        w = _weights_from_column(df, weights, codes, ids)
        _check_total_weight(w, f"The weights in column {weights!r}")
        cov = _build_covariates(covariates, df, codes, ids)
        out = cls._from_arrays(item_list, ptr, it, rk, np.zeros(tasks.n_tasks, bool), tasks.resp, ids, w, cov)
        out = replace(out, best_worst=tasks)
        return out._attach_sampling_weights(sampling_weights, df, df[respondent].to_numpy())

    @classmethod
    def from_choices(
        cls,
        df: pd.DataFrame,
        *,
        respondent: Hashable,
        task: Hashable,
        shown: Hashable | Sequence[Hashable],
        chosen: Hashable,
        covariates: Sequence[Hashable] | pd.DataFrame | None = None,
        items: Sequence[Any] | None = None,
        weights: Hashable | None = None,
        sampling_weights: Hashable | pd.Series | Sequence[float] | None = None,
    ) -> Rankings:
        """Choices from an offered set (choice experiments, choix's "top-1" data), one row per task.

        Each task shows some items and records the one chosen: a ranking of that one item whose other shown
        items are *shown but not ranked* -- they stay in its choice set and are not chosen. Under Plackett-Luce
        the task's probability is the multinomial logit ``alpha_chosen / sum_{shown} alpha``; items not shown
        play no part. Fit with :func:`fit_plackett_luce` (``npseudo=0`` is the plain maximum likelihood, as
        choix's ``opt_top1`` with ``alpha=0`` and a conditional logit).

        Parameters
        ----------
        df : pandas.DataFrame
            One row per respondent x task.
        respondent, task : column names
            Respondent id and task id; each (respondent, task) pair once.
        shown : column name or list of column names
            The items shown in the task: a column holding a list per row, or the item columns ``shown_1, ...``
            (missing cells are skipped, so tasks may show different numbers of items), as in
            :meth:`from_best_worst`.
        chosen : column name
            The item chosen (a label among those shown).
        covariates : list of column names or DataFrame, optional
            Respondent covariates (constant within respondent).
        items : sequence, optional
            All item labels in the order to use. Default: the labels shown, sorted.
        weights, sampling_weights : optional
            Frequency weights (a column, constant within respondent) and sampling weights, as in
            :meth:`from_ratings`.

        Returns
        -------
        Rankings
            One ranking per task (row order), each of one ranked item with the other shown items declared
            shown-but-unranked; ``to_frame`` lists them with ``ranked == False``, ``to_pairwise`` reads a task as
            "chosen beats each other item shown".

        Raises
        ------
        ValueError
            Naming the column, respondent, task and value, with a fix: the chosen item not among the items shown
            (or missing), an item shown twice, fewer than 2 items shown, a duplicate (respondent, task), missing
            ids, an item not in `items`.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"id": [1, 1, 2, 2], "task": [1, 2, 1, 2],
        ...                    "shown": [["a", "b", "c"], ["b", "c"], ["a", "c"], ["a", "b", "c"]],
        ...                    "chosen": ["a", "b", "c", "b"]})
        >>> r = Rankings.from_choices(df, respondent="id", task="task", shown="shown", chosen="chosen")
        >>> r.n_rankings, r.n_respondents, r.items
        (4, 2, ('a', 'b', 'c'))
        >>> r.to_frame().query("ranking == 0")[["item", "rank", "ranked"]]
          item  rank  ranked
        0    a     1    True
        1    b  <NA>   False
        2    c  <NA>   False
        >>> from survey_weights import fit_plackett_luce
        >>> fit = fit_plackett_luce(r, npseudo=0)
        >>> round(float(fit.weights.sum()), 6)
        1.0
        >>> df.loc[1, "chosen"] = "a"
        >>> Rankings.from_choices(df, respondent="id", task="task", shown="shown",
        ...                       chosen="chosen")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: respondent 1, task 2: column 'chosen' is 'a', which is not among the items shown ['b', 'c']...
        """
        item_list, ids, codes, ch, u_ptr, u_item = parse_choices(df, respondent=respondent, task=task,
                                                                 shown=shown, chosen=chosen, items=items)
        R = len(ch)
        w = _weights_from_column(df, weights, codes, ids)
        _check_total_weight(w, f"The weights in column {weights!r}")
        cov = _build_covariates(covariates, df, codes, ids)
        out = cls._from_arrays(item_list, np.arange(R + 1), ch, np.ones(R, np.int64), np.zeros(R, bool), codes,
                               ids, w, cov, unranked=(u_ptr, u_item))
        return out._attach_sampling_weights(sampling_weights, df, df[respondent].to_numpy())

    # --------------------------------------------------------------------------------------------------- properties
    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_rankings(self) -> int:
        return len(self._top_k)

    @property
    def n_respondents(self) -> int:
        return len(self.respondent_ids)

    @property
    def max_tie_order(self) -> int:
        """Size of the largest tie group (1 = no ties)."""
        if len(self._item) == 0:
            return 1
        ranking = np.repeat(np.arange(self.n_rankings), np.diff(self._ptr))
        key = ranking.astype(np.int64) * (self.n_items + 1) + self._rank
        return int(np.unique(key, return_counts=True)[1].max())

    def __len__(self) -> int:
        return self.n_rankings

    def __repr__(self) -> str:
        lens = np.diff(self._ptr)
        return (
            f"Rankings({self.n_respondents} respondents, {self.n_rankings} rankings of {self.n_items} items "
            f"(sizes {lens.min()}-{lens.max()}), ties up to order {self.max_tie_order}, "
            f"{int(self._top_k.sum())} top-k, "
            + (f"{int(np.count_nonzero(np.diff(self._unranked_ptr)))} with shown-but-unranked items, "
               if self._unranked_ptr is not None else "")
            + "covariates: "
            f"{list(self.covariates.columns) if self.covariates is not None else None}"
            + (f", best-worst tasks: {self.best_worst.n_tasks}" if self.best_worst is not None else "") + ")"
        )

    # ------------------------------------------------------------------------------------------------- derivations
    def subset(self, respondents: Any) -> Rankings:
        """The rankings of some respondents: a boolean mask or integer positions over `respondent_ids`."""
        sel = np.asarray(respondents)
        if sel.dtype == bool:
            if sel.shape != (self.n_respondents,):
                raise ValueError(
                    f"A boolean `respondents` mask must have length {self.n_respondents}. Got shape {sel.shape}."
                )
            pos = np.flatnonzero(sel)
        else:
            pos = sel.astype(np.int64).ravel()
            if pos.size and (pos.min() < 0 or pos.max() >= self.n_respondents):
                raise ValueError("`respondents` positions out of range.")
        new_code = np.full(self.n_respondents, -1, dtype=np.int64)
        new_code[pos] = np.arange(len(pos))
        if self.best_worst is not None:
            return replace(self._subset(pos, new_code), best_worst=self.best_worst.subset(new_code))
        return self._subset(pos, new_code)

    def _subset(self, pos: np.ndarray, new_code: np.ndarray) -> Rankings:
        rk = np.flatnonzero(new_code[self._resp] >= 0)
        lens = np.diff(self._ptr)[rk]
        starts = self._ptr[rk]
        take = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(lens.sum())
        unranked = None
        if self._unranked_ptr is not None:
            u_lens = np.diff(self._unranked_ptr)[rk]
            u_take = (np.repeat(self._unranked_ptr[rk] - np.concatenate([[0], np.cumsum(u_lens)[:-1]]), u_lens)
                      + np.arange(u_lens.sum()))
            unranked = (np.concatenate([[0], np.cumsum(u_lens)]), self._unranked_item[u_take])
        out = Rankings._from_arrays(
            self.items,
            np.concatenate([[0], np.cumsum(lens)]),
            self._item[take],
            self._rank[take],
            self._top_k[rk],
            new_code[self._resp[rk]],
            self.respondent_ids[pos],
            self.respondent_weights[pos],
            self.covariates.iloc[pos] if self.covariates is not None else None,
            unranked=unranked,
        )
        if self.sampling_weights is None:
            return out
        return replace(out, sampling_weights=_readonly(self.sampling_weights[pos]))

    def with_respondent_weights(self, weights: Any) -> Rankings:
        """A copy with new respondent frequency weights (one per respondent)."""
        w = _check_weights(np.asarray(weights, dtype=float).ravel(), self.respondent_ids, "`weights`")
        if len(w) != self.n_respondents:
            raise ValueError(f"`weights` must have one entry per respondent ({self.n_respondents}). Got {len(w)}.")
        _check_total_weight(w, "The `weights`")
        return replace(self, respondent_weights=_readonly(w))

    def to_frame(self) -> pd.DataFrame:
        """Long form: one row per ranked item (columns respondent, ranking, item, rank, top_k).

        When rankings declare shown-but-unranked items (:meth:`from_choices`, ``from_orderings(shown=...)``),
        those items follow each ranking's ranked ones with ``rank`` missing (<NA>; the column is then the
        nullable ``Int64``), and a column ``ranked`` tells the two apart.
        """
        ranking = np.repeat(np.arange(self.n_rankings), np.diff(self._ptr))
        out = pd.DataFrame(
            {
                "respondent": self.respondent_ids[self._resp[ranking]],
                "ranking": ranking,
                "item": np.asarray(self.items, dtype=object)[self._item],
                "rank": self._rank,
                "top_k": self._top_k[ranking],
            }
        )
        if self._unranked_ptr is None:
            return out
        u_rk = np.repeat(np.arange(self.n_rankings), np.diff(self._unranked_ptr))
        extra = pd.DataFrame({
            "respondent": self.respondent_ids[self._resp[u_rk]], "ranking": u_rk,
            "item": np.asarray(self.items, dtype=object)[self._unranked_item],
            "rank": pd.array([pd.NA] * len(u_rk), dtype="Int64"), "top_k": self._top_k[u_rk]})
        out["rank"] = out["rank"].astype("Int64")
        out["ranked"] = True
        extra["ranked"] = False
        both = pd.concat([out, extra], ignore_index=True)
        order = np.lexsort((~both["ranked"].to_numpy(), both["ranking"].to_numpy()))  # stable within each part
        return both.iloc[order].reset_index(drop=True)

    def to_pairwise(self) -> PairedComparisons:
        """Break every ranking into its pairwise comparisons (ties stay ties; top-k: ranked beats unranked;
        declared shown-but-unranked items, as from :meth:`from_choices`: every ranked item beats each of them).

        Notes
        -----
        The pairs of one ranking are not independent, so a Bradley-Terry fit to them is not the Plackett-Luce fit
        and its standard errors are too small; use it for description or for tools that need pairs.
        """
        a, b, outcome, resp = pairwise_arrays(self)
        return PairedComparisons._from_arrays(
            self.items, a, b, outcome, np.ones(len(a)), resp, self.respondent_ids, self.respondent_weights,
            self.covariates,
        ).with_sampling_weights(self.sampling_weights)

    def data_hash(self) -> str:
        """SHA-256 of the ranking content and weights (not of respondent ids); recorded in exports."""
        h = hashlib.sha256()
        h.update(repr(self.items).encode())
        for a in (self._ptr, self._item, self._rank, self._top_k, self._resp, self.respondent_weights):
            h.update(np.ascontiguousarray(a).tobytes())
        if self.sampling_weights is not None:
            h.update(b"sampling")
            h.update(np.ascontiguousarray(self.sampling_weights).tobytes())
        if self._unranked_ptr is not None:
            h.update(b"shown-unranked")
            for a in (self._unranked_ptr, self._unranked_item):
                h.update(np.ascontiguousarray(a).tobytes())
        if self.best_worst is not None:
            h.update(b"best-worst")
            for a in self.best_worst.arrays():
                h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


