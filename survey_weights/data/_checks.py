"""Shared checks and recoding steps for the data constructors (respondent ids, covariates, weights, ranks)."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_columns, format_ids
from ..exceptions import DataRecodeWarning

TIE_TYPES = (tuple, list, set, frozenset)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------------------------------------------------
# respondent ids, covariates and weights (shared by every constructor)
# ---------------------------------------------------------------------------------------------------------------------
def _row_ids(df: pd.DataFrame, respondent: Hashable | None, *, unique: bool) -> np.ndarray:
    """Respondent id of each row of `df` (from column `respondent`, or the index when None)."""
    if respondent is None:
        ids = df.index.to_numpy()
        source = "the frame's index"
    else:
        if respondent not in df.columns:
            raise ValueError(
                f"Respondent column {respondent!r} (parameter `respondent`) is not in the frame. "
                f"Available columns: {format_ids(list(df.columns), limit=12)}. "
                "Fix: pass the name of the id column, or respondent=None to use the index."
            )
        ids = df[respondent].to_numpy()
        source = f"column {respondent!r}"
    missing = pd.isna(ids)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise ValueError(
            f"Missing respondent ids in {source} at row position(s) {format_ids(rows)}. "
            "Fix: fill in the ids or drop those rows."
        )
    if unique:
        dup = pd.Index(ids)[pd.Index(ids).duplicated()].unique()
        if len(dup):
            raise ValueError(
                f"Duplicate respondent ids in {source}: {format_ids(list(dup))}. Each row must be one respondent. "
                "Fix: de-duplicate the rows, pass respondent=None to treat each row as its own respondent, or use "
                "Rankings.from_orderings(..., respondent_ids=...) for several rankings per respondent."
            )
    return ids


def _per_respondent(values: np.ndarray, codes: np.ndarray, n: int, what: str, ids: pd.Index) -> np.ndarray:
    """Collapse per-row values to one per respondent, checking they are constant within respondent."""
    first = np.full(n, -1, dtype=np.int64)
    order = np.arange(len(codes))[::-1]
    first[codes[order]] = order  # first row of each respondent
    out = values[first]
    differs = ~((values == out[codes]) | (pd.isna(values) & pd.isna(out[codes])))
    if differs.any():
        bad = ids[np.unique(codes[differs])]
        raise ValueError(
            f"{what} differs between rows of the same respondent (respondent ids {format_ids(list(bad))}). "
            "Fix: give one value per respondent."
        )
    return out


def _build_covariates(
    covariates: Any, df: pd.DataFrame | None, codes: np.ndarray | None, ids: pd.Index
) -> pd.DataFrame | None:
    """Covariates as one row per respondent indexed by respondent id (in `ids` order)."""
    if covariates is None:
        return None
    if isinstance(covariates, pd.DataFrame):
        if covariates.index.has_duplicates:
            dup = covariates.index[covariates.index.duplicated()].unique()
            raise ValueError(
                f"`covariates` frame has duplicate respondent ids in its index: {format_ids(list(dup))}. "
                "Fix: one row per respondent, indexed by respondent id."
            )
        missing = ids.difference(covariates.index)
        if len(missing):
            raise ValueError(
                f"`covariates` frame has no row for respondent ids {format_ids(list(missing))}. "
                "Fix: index the frame by respondent id and include every respondent."
            )
        out = covariates.loc[ids].copy()
    else:
        if df is None:
            raise TypeError(
                "`covariates` must be a DataFrame indexed by respondent id here (there is no frame to take "
                f"columns from). Got {type(covariates).__name__}."
            )
        cols = check_columns(df, [covariates] if isinstance(covariates, str) else covariates, "covariates")
        data = {c: _per_respondent(df[c].to_numpy(), codes, len(ids), f"Covariate {c!r}", ids) for c in cols}
        out = pd.DataFrame(data, index=ids)
        for c in cols:
            out[c] = out[c].astype(df[c].dtype) if not isinstance(df[c].dtype, np.dtype) else out[c]
    out.index.name = "respondent"
    return out


def _check_weights(w: np.ndarray, ids: pd.Index, what: str) -> np.ndarray:
    try:
        w = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be numeric. Fix: convert it to numbers.") from exc
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        pos = np.flatnonzero(bad)
        raise ValueError(
            f"{what} must be finite and >= 0. Got {float(w[pos[0]]):g} for respondent ids "
            f"{format_ids(list(ids[pos]))}. Fix: use non-negative frequency weights."
        )
    return w


def _weights_from_column(df: pd.DataFrame, weights: Hashable | None, codes: np.ndarray, ids: pd.Index) -> np.ndarray:
    if weights is None:
        return np.ones(len(ids))
    check_columns(df, [weights], "weights")
    raw = pd.to_numeric(df[weights], errors="coerce").to_numpy(dtype=float)
    bad = pd.isna(raw) & df[weights].notna().to_numpy()
    if bad.any():
        pos = np.flatnonzero(bad)
        raise TypeError(
            f"Weight column {weights!r} holds non-numeric values, e.g. {df[weights].iloc[pos[0]]!r} for respondent "
            f"ids {format_ids(list(ids[codes[pos]]))}. Fix: use numeric frequency weights."
        )
    per = _per_respondent(raw, codes, len(ids), f"Weight column {weights!r}", ids)
    return _check_weights(per, ids, f"Weight column {weights!r}")


def _numeric_matrix(df: pd.DataFrame, items: list[Any], ids: np.ndarray, what: str) -> np.ndarray:
    """The item columns as a float matrix (NaN = missing), with type errors naming column, value and ids."""
    out = np.empty((len(df), len(items)), dtype=np.float64)
    for j, c in enumerate(items):
        col = df[c]
        if pd.api.types.is_bool_dtype(col):
            raise TypeError(f"{what} column {c!r} is boolean. Fix: use numbers.")
        num = pd.to_numeric(col, errors="coerce")
        bad = num.isna().to_numpy() & col.notna().to_numpy()
        if bad.any():
            pos = np.flatnonzero(bad)
            raise TypeError(
                f"{what} column {c!r} holds non-numeric value {col.iloc[pos[0]]!r} (respondent ids "
                f"{format_ids(list(ids[pos]))}). Fix: recode it to numbers, or to NaN for 'not answered'."
            )
        out[:, j] = num.to_numpy(dtype=np.float64)
    inf = np.isinf(out)
    if inf.any():
        r, j = np.argwhere(inf)[0]
        raise ValueError(f"{what} column {items[j]!r} holds an infinite value (respondent id {ids[r]!r}).")
    return out


def _raise_bad_cells(
    bad: np.ndarray, x: np.ndarray, items: list[Any], ids: np.ndarray, what: str, problem: str, fix: str
) -> None:
    """Raise ValueError for the first column with a bad cell, naming the value and that column's bad respondents."""
    if bad.any():
        r, j = np.argwhere(bad)[0]
        rows = np.flatnonzero(bad[:, j])
        raise ValueError(
            f"{what} column {items[j]!r} holds {x[r, j]:g}, {problem} (respondent ids "
            f"{format_ids(list(ids[rows]))}). Fix: {fix}"
        )


def _check_whole(x: np.ndarray, items: list[Any], ids: np.ndarray, what: str) -> None:
    frac = ~np.isnan(x) & (x != np.round(x))
    _raise_bad_cells(frac, x, items, ids, what, "which is not a whole number", "round or recode the values.")


def _dense_ranks(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort each row by `key` ascending (NaN last) and number the tie groups 1, 2, ...

    Returns ``order`` (column index per sorted position), ``dense`` (tie-group number) and ``valid`` (not NaN).
    """
    filled = np.where(np.isnan(key), np.inf, key)
    order = np.argsort(filled, axis=1, kind="stable")
    s = np.take_along_axis(key, order, axis=1)
    valid = ~np.isnan(s)
    new = np.ones_like(s, dtype=np.int32)
    if s.shape[1] > 1:
        new[:, 1:] = (s[:, 1:] != s[:, :-1]).astype(np.int32)
    dense = np.cumsum(new, axis=1, dtype=np.int32)
    return order.astype(np.int32), dense, valid


def _warn_dropped(ids: Sequence[Any], reason: str, stacklevel: int = 4) -> None:
    if len(ids):
        warnings.warn(
            f"Dropped {len(ids)} respondent(s) whose answers carry no ranking information ({reason}): "
            f"respondent ids {format_ids(list(ids))}.",
            DataRecodeWarning,
            stacklevel=stacklevel,
        )




# ---------------------------------------------------------------------------------------------------------------------
# statistics guards: items nobody answered, weights that sum to zero
# ---------------------------------------------------------------------------------------------------------------------
EMPTY_ITEMS = ("raise", "drop")


def _check_empty_option(empty_items: Any) -> str:
    if not isinstance(empty_items, str) or empty_items not in EMPTY_ITEMS:
        raise ValueError(
            f"`empty_items` must be 'raise' or 'drop'. Got {empty_items!r}. Fix: empty_items='raise' (the default: "
            "an item nobody answered is an error) or empty_items='drop' (leave such items out, with a warning)."
        )
    return empty_items


def _empty_items(
    answered: np.ndarray, kept: np.ndarray, items: Sequence[Any], empty_items: str, stacklevel: int
) -> np.ndarray:
    """Which items to keep (bool mask): refuse, or drop with a warning, the items no kept respondent answered.

    ``answered`` (n_rows, n_items) says which cells hold an answer, ``kept`` which rows carry ranking information.
    """
    ever = answered.any(axis=0)
    used = answered[kept].any(axis=0)
    empty = ~used
    if not empty.any():
        return used
    names = [items[j] for j in np.flatnonzero(empty)]
    never = [items[j] for j in np.flatnonzero(~ever)]
    only_dropped = [items[j] for j in np.flatnonzero(ever & ~used)]
    why = []
    if never:
        why.append(f"nobody answered {format_ids(never)}")
    if only_dropped:
        why.append(f"{format_ids(only_dropped)} was answered only by respondents dropped for lack of ranking "
                   "information")
    detail = "; ".join(why)
    if empty_items == "raise":
        raise ValueError(
            f"Item(s) {format_ids(names)} have no answers ({detail}), so their weight would come from the "
            "pseudo-comparisons alone (a plausible-looking number that the data never saw). Fix: leave them out "
            "of `items`, or pass empty_items='drop' to drop them with a warning."
        )
    # (two items or more always remain: every kept respondent answered two)
    warnings.warn(
        f"Dropped {len(names)} item(s) without answers (empty_items='drop'): {detail}. The fit has no weight for "
        f"{'it' if len(names) == 1 else 'them'}.",
        DataRecodeWarning, stacklevel=stacklevel,
    )
    return used


def _check_total_weight(w: np.ndarray, what: str) -> None:
    """Frequency weights that sum to 0 leave nothing to fit: refuse them when the data are built."""
    if len(w) and not float(np.sum(w)) > 0:
        raise ValueError(
            f"{what} sum to 0 (all {len(w)} respondents with ranking information have weight 0), so there is "
            "nothing to fit. Fix: give respondents positive frequency weights (weight 0 leaves one out)."
        )


def sampling_weights_by_id(sampling_weights: Any, df: pd.DataFrame | None, row_ids: Any) -> pd.Series | None:
    """Sampling (or raking) weights as a Series indexed by respondent id, validated: positive and finite, one per
    respondent (a column must be constant within a respondent).

    ``sampling_weights``: None; a column name of `df`; a Series indexed by respondent id; or an array with one
    value per row of `df` (per respondent for data without a frame).
    """
    if sampling_weights is None:
        return None
    if isinstance(sampling_weights, pd.Series):
        s = sampling_weights
        if s.index.has_duplicates:
            raise ValueError("`sampling_weights` given as a Series must be indexed by respondent id, once each. Got "
                             f"duplicated ids {format_ids(list(s.index[s.index.duplicated()].unique()))}.")
    else:
        if isinstance(sampling_weights, str) or (df is not None and np.ndim(sampling_weights) == 0):
            if df is None or sampling_weights not in df.columns:
                raise ValueError(f"`sampling_weights` names column {sampling_weights!r}, which is not in the frame. "
                                 "Fix: pass a column name, a Series indexed by respondent id, or one value per row.")
            vals = df[sampling_weights]
            what = f"Sampling-weight column {sampling_weights!r}"
        else:
            vals = np.asarray(sampling_weights)
            what = "`sampling_weights`"
            if len(vals) != len(row_ids):
                raise ValueError(f"{what} must have one value per row ({len(row_ids)}). Got {len(vals)}.")
        num = pd.to_numeric(pd.Series(np.asarray(vals, dtype=object)), errors="coerce").to_numpy(dtype=float)
        rid = pd.Index(np.asarray(row_ids, dtype=object))
        frame = pd.DataFrame({"id": rid, "w": num})
        spread = frame.groupby("id", sort=False)["w"].agg(lambda x: x.nunique(dropna=False))
        if (spread > 1).any():
            bad = list(spread.index[spread > 1])
            raise ValueError(f"{what} must be constant within a respondent; respondent ids {format_ids(bad)} have "
                             "several values. Fix: one sampling weight per respondent.")
        s = frame.groupby("id", sort=False)["w"].first()
    v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(v) | (v <= 0)
    if bad.any():
        raise ValueError(f"Sampling weights must be positive and finite. Got {s.iloc[np.flatnonzero(bad)[0]]!r} for "
                         f"respondent ids {format_ids(list(s.index[bad]))}. Fix: drop those respondents or correct "
                         "the weights (a weight of 0 means the respondent is not in the sample).")
    return pd.Series(v, index=s.index, name="sampling_weight")


def align_sampling_weights(sw: pd.Series | None, respondent_ids: pd.Index) -> np.ndarray | None:
    """The sampling weights of `respondent_ids`, in that order (every id must have one)."""
    if sw is None:
        return None
    missing = [i for i in respondent_ids if i not in sw.index]
    if missing:
        raise ValueError(f"`sampling_weights` has no weight for respondent ids {format_ids(missing)}. Fix: give "
                         "every respondent a sampling weight.")
    return _readonly(sw.reindex(respondent_ids).to_numpy(dtype=np.float64))


class SamplingWeightsMixin:
    """``fit_weights`` and ``with_sampling_weights`` of the data classes (frozen dataclasses with
    ``respondent_weights``, ``sampling_weights``, ``respondent_ids`` and ``n_respondents``)."""

    @property
    def fit_weights(self) -> np.ndarray:
        """The weight of each respondent in the fit: frequency weight x sampling weight (if any)."""
        if self.sampling_weights is None:
            return self.respondent_weights
        return self.respondent_weights * self.sampling_weights

    def _attach_sampling_weights(self, sampling_weights: Any, df: pd.DataFrame | None, row_ids: Any) -> Any:
        """Self, or a copy with the constructors' ``sampling_weights`` argument (a column of `df`, a Series by
        respondent id, or one value per row of `row_ids`) aligned to ``respondent_ids``."""
        from dataclasses import replace

        sw = sampling_weights_by_id(sampling_weights, df, row_ids)
        return self if sw is None else replace(self, sampling_weights=align_sampling_weights(sw, self.respondent_ids))

    def with_sampling_weights(self, sampling_weights: Any) -> Any:
        """A copy with sampling (or raking) weights: a Series indexed by respondent id, one value per respondent
        (in ``respondent_ids`` order), or None to remove them."""
        from dataclasses import replace

        if sampling_weights is None:
            return replace(self, sampling_weights=None)
        s = sampling_weights if isinstance(sampling_weights, pd.Series) else pd.Series(
            np.asarray(sampling_weights, dtype=float).ravel(), index=self.respondent_ids)
        if not isinstance(sampling_weights, pd.Series) and len(s) != self.n_respondents:
            raise ValueError(f"`sampling_weights` must have one value per respondent ({self.n_respondents}). "
                             f"Got {len(s)}.")
        return replace(self, sampling_weights=align_sampling_weights(sampling_weights_by_id(s, None, None),
                                                                    self.respondent_ids))
