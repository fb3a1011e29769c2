"""Paired comparisons (possibly tied, possibly counted), grouped by respondent."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_columns, check_frame, format_ids
from ._checks import (
    SamplingWeightsMixin,
    _build_covariates,
    _check_weights,
    _readonly,
    _row_ids,
)

__all__ = ["PairedComparisons"]

# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class PairedComparisons(SamplingWeightsMixin):
    """Paired comparisons (possibly tied, possibly counted), grouped by respondent.

    Build with :meth:`from_long` or :meth:`Rankings.to_pairwise`. Internally: item indices ``_a``, ``_b``,
    outcome ``_outcome`` (1 = a wins, -1 = b wins, 0 = tie), count ``_w`` and respondent position ``_resp``.
    """

    items: tuple
    _a: np.ndarray
    _b: np.ndarray
    _outcome: np.ndarray
    _w: np.ndarray
    _resp: np.ndarray
    respondent_ids: pd.Index
    respondent_weights: np.ndarray
    covariates: pd.DataFrame | None = field(default=None)
    #: Comparison-level covariates (one row per comparison, numeric): the value of `item_a`'s side minus that of
    #: `item_b`'s side, e.g. 1 when `item_a` was shown first or plays at home (an order / home effect).
    comparison_covariates: pd.DataFrame | None = field(default=None)
    #: Sampling (or raking) weights, one per respondent, or None (see :attr:`Rankings.sampling_weights`).
    sampling_weights: np.ndarray | None = field(default=None)

    @classmethod
    def _from_arrays(cls, items, a, b, outcome, w, resp, respondent_ids, respondent_weights=None, covariates=None,
                     comparison_covariates=None):
        ids = pd.Index(respondent_ids)
        ids.name = "respondent"
        rw = np.ones(len(ids)) if respondent_weights is None else np.asarray(respondent_weights, dtype=np.float64)
        return cls(
            items=tuple(items),
            _a=_readonly(np.asarray(a, dtype=np.int32)),
            _b=_readonly(np.asarray(b, dtype=np.int32)),
            _outcome=_readonly(np.asarray(outcome, dtype=np.int8)),
            _w=_readonly(np.asarray(w, dtype=np.float64)),
            _resp=_readonly(np.asarray(resp, dtype=np.int64)),
            respondent_ids=ids,
            respondent_weights=_readonly(rw),
            covariates=covariates,
            comparison_covariates=comparison_covariates,
        )

    @classmethod
    def from_long(
        cls,
        df: pd.DataFrame,
        item_a: Hashable,
        item_b: Hashable,
        winner: Hashable,
        respondent: Hashable | None = None,
        weight: Hashable | None = None,
        covariates: Sequence[Hashable] | pd.DataFrame | None = None,
        *,
        items: Sequence[Any] | None = None,
        comparison_covariates: Sequence[Hashable] | None = None,
        sampling_weights: Hashable | pd.Series | Sequence[float] | None = None,
    ) -> PairedComparisons:
        """Paired comparisons in long form: one row per comparison.

        Parameters
        ----------
        df : pandas.DataFrame
        item_a, item_b : column names
            The two items compared on each row.
        winner : column name
            The winning item (equal to the row's `item_a` or `item_b` value), or NaN for a tie.
        respondent : column name, optional
            Respondent id of each row (several rows per respondent allowed). Default: the index.
        weight : column name, optional
            Count of each comparison (non-negative), e.g. for aggregated data.
        covariates : list of column names or DataFrame, optional
            Respondent covariates (constant within respondent).
        items : sequence, optional
            All item labels in the order to use; default: the labels seen, sorted.
        comparison_covariates : list of column names, optional
            Numeric covariates of each comparison, coded as the value of `item_a`'s side minus `item_b`'s: e.g.
            1 when `item_a` was shown first (an order effect), or +1 / -1 when `item_a` / `item_b` plays at home
            (BradleyTerry2's home advantage). They enter ``fit_bradley_terry`` with one coefficient each.
        sampling_weights : column name, Series by respondent id or one value per row, optional
            Sampling (or raking) weights, constant within a respondent, positive: the fit maximises the weighted
            pseudo-likelihood, its default SEs are the sandwich clustered by respondent (``vcov="robust"``), and
            results report the Kish design effect. Distinct from `weight` (a count of identical comparisons).

        Returns
        -------
        PairedComparisons
        """
        check_frame(df)
        check_columns(df, [item_a, item_b, winner], "item_a/item_b/winner")
        ids_row = _row_ids(df, respondent, unique=False)
        a_raw = df[item_a].to_numpy(dtype=object)
        b_raw = df[item_b].to_numpy(dtype=object)
        win = df[winner].to_numpy(dtype=object)
        for col, vals in ((item_a, a_raw), (item_b, b_raw)):
            miss = pd.isna(vals)
            if miss.any():
                raise ValueError(
                    f"Column {col!r} has missing items (respondent ids {format_ids(list(ids_row[miss]))}). "
                    "Fix: drop incomplete comparisons."
                )
        self_cmp = a_raw == b_raw
        if self_cmp.any():
            pos = np.flatnonzero(self_cmp)
            raise ValueError(
                f"Self-comparisons: item {a_raw[pos[0]]!r} is compared with itself (respondent ids "
                f"{format_ids(list(ids_row[pos]))}). Fix: drop those rows."
            )
        tie = pd.isna(win)
        ok = tie | (win == a_raw) | (win == b_raw)
        if not ok.all():
            pos = np.flatnonzero(~ok)
            raise ValueError(
                f"Column {winner!r} (`winner`) holds {win[pos[0]]!r}, which is in neither {item_a!r} nor "
                f"{item_b!r} on that row (respondent ids {format_ids(list(ids_row[pos]))}). Fix: the winner must be "
                "one of the two items compared, or NaN for a tie."
            )
        seen = pd.unique(np.concatenate([a_raw, b_raw]))
        if items is None:
            try:
                item_list = sorted(seen)
            except TypeError:
                item_list = list(seen)
        else:
            item_list = list(items)
            unknown = [x for x in seen if x not in set(item_list)]
            if unknown:
                raise ValueError(f"Unknown item(s) {format_ids(unknown)}: not in `items`. Fix: add them to `items`.")
        pos_map = {it: j for j, it in enumerate(item_list)}
        a = np.fromiter((pos_map[x] for x in a_raw), dtype=np.int32, count=len(a_raw))
        b = np.fromiter((pos_map[x] for x in b_raw), dtype=np.int32, count=len(b_raw))
        outcome = np.where(tie, 0, np.where(win == a_raw, 1, -1)).astype(np.int8)
        codes, uniq = pd.factorize(pd.Index(ids_row))
        ids = pd.Index(uniq)
        if weight is None:
            w = np.ones(len(df))
        else:
            check_columns(df, [weight], "weight")
            raw = pd.to_numeric(df[weight], errors="coerce").to_numpy(dtype=float)
            if (np.isnan(raw) & df[weight].notna().to_numpy()).any():
                raise TypeError(f"Weight column {weight!r} holds non-numeric values. Fix: use numeric counts.")
            w = _check_weights(raw, pd.Index(ids_row), f"Weight column {weight!r}")
        cov = _build_covariates(covariates, df, codes, ids)
        ccov = None
        if comparison_covariates is not None:
            cols = [comparison_covariates] if isinstance(comparison_covariates, str) else list(comparison_covariates)
            check_columns(df, cols, "comparison_covariates")
            vals = df[cols].apply(pd.to_numeric, errors="coerce")
            bad = vals.isna().to_numpy() | ~np.isfinite(vals.to_numpy(dtype=float))
            if bad.any():
                r, c = np.argwhere(bad)[0]
                raise ValueError(f"Comparison covariate {cols[c]!r} must be a finite number on every row; row {r} "
                                 f"(respondent id {ids_row[r]!r}) holds {df[cols[c]].iloc[r]!r}. Fix: code it as "
                                 "item_a's value minus item_b's, e.g. 1 / 0 for 'item_a shown first'.")
            ccov = pd.DataFrame(vals.to_numpy(dtype=float), columns=pd.Index(cols, name="comparison_covariate"))
        out = cls._from_arrays(item_list, a, b, outcome, w, codes, ids, np.ones(len(ids)), cov, ccov)
        return out._attach_sampling_weights(sampling_weights, df, ids_row)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_comparisons(self) -> int:
        return len(self._a)

    @property
    def n_respondents(self) -> int:
        return len(self.respondent_ids)

    @property
    def has_ties(self) -> bool:
        return bool(((self._outcome == 0) & (self._w > 0)).any())

    def __len__(self) -> int:
        return self.n_comparisons

    def __repr__(self) -> str:
        return (
            f"PairedComparisons({self.n_respondents} respondents, {self.n_comparisons} comparisons of "
            f"{self.n_items} items, {int((self._outcome == 0).sum())} ties)"
        )

    def subset(self, respondents: Any) -> PairedComparisons:
        """The comparisons of some respondents: a boolean mask or integer positions over `respondent_ids`."""
        sel = np.asarray(respondents)
        pos = np.flatnonzero(sel) if sel.dtype == bool else sel.astype(np.int64).ravel()
        if sel.dtype == bool and sel.shape != (self.n_respondents,):
            raise ValueError(f"A boolean `respondents` mask must have length {self.n_respondents}.")
        new_code = np.full(self.n_respondents, -1, dtype=np.int64)
        new_code[pos] = np.arange(len(pos))
        rows = np.flatnonzero(new_code[self._resp] >= 0)
        return PairedComparisons._from_arrays(
            self.items,
            self._a[rows],
            self._b[rows],
            self._outcome[rows],
            self._w[rows],
            new_code[self._resp[rows]],
            self.respondent_ids[pos],
            self.respondent_weights[pos],
            self.covariates.iloc[pos] if self.covariates is not None else None,
            self.comparison_covariates.iloc[rows].reset_index(drop=True)
            if self.comparison_covariates is not None else None,
        ).with_sampling_weights(None if self.sampling_weights is None else self.sampling_weights[pos])

    def with_respondent_weights(self, weights: Any) -> PairedComparisons:
        """A copy with new respondent frequency weights (one per respondent)."""
        w = _check_weights(np.asarray(weights, dtype=float).ravel(), self.respondent_ids, "`weights`")
        if len(w) != self.n_respondents:
            raise ValueError(f"`weights` must have one entry per respondent ({self.n_respondents}). Got {len(w)}.")
        return replace(self, respondent_weights=_readonly(w))

    def to_frame(self) -> pd.DataFrame:
        """Long form: respondent, item_a, item_b, winner (NaN = tie), weight."""
        it = np.asarray(self.items, dtype=object)
        win = np.where(self._outcome == 1, it[self._a], np.where(self._outcome == -1, it[self._b], None))
        return pd.DataFrame(
            {
                "respondent": self.respondent_ids[self._resp],
                "item_a": it[self._a],
                "item_b": it[self._b],
                "winner": pd.Series(win, dtype=object),
                "weight": self._w,
            }
        )

    def data_hash(self) -> str:
        """SHA-256 of the comparisons and weights (not of respondent ids)."""
        h = hashlib.sha256()
        h.update(repr(self.items).encode())
        for a in (self._a, self._b, self._outcome, self._w, self._resp, self.respondent_weights):
            h.update(np.ascontiguousarray(a).tobytes())
        if self.comparison_covariates is not None:
            h.update(repr(list(self.comparison_covariates.columns)).encode())
            h.update(np.ascontiguousarray(self.comparison_covariates.to_numpy(dtype=float)).tobytes())
        if self.sampling_weights is not None:
            h.update(b"sampling")
            h.update(np.ascontiguousarray(self.sampling_weights).tobytes())
        return h.hexdigest()

