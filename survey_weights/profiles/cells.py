"""Disclosure control shared by every output path: which groups may be reported (the minimum cell size, counted in
respondents), and which grouping factors are refused because they identify respondents.

One rule, one name: a group, leaf, class or covariate cell with fewer than ``min_cell_size`` respondents (default
:data:`DEFAULT_MIN_CELL_SIZE`, 10) never appears with its weights in a profile, an export, a table, a plot or a
printed tree. Respondents are counted as heads with a positive frequency weight, never as summed weights (a
respondent with weight 1000 is one respondent; one with weight 0 contributes nothing and is not counted).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._util.disclosure import DEFAULT_MIN_CELL_SIZE
from ..exceptions import SmallGroupWarning
from ._metadata import is_identifier_name

__all__ = ["DEFAULT_MIN_CELL_SIZE", "check_min_cell_size", "check_not_identifying", "count_respondents",
           "reportable", "resolve_min_cell_size"]

_SHOWN = 10  # withheld groups named in a warning


def check_min_cell_size(min_cell_size: Any, default: int = DEFAULT_MIN_CELL_SIZE) -> int:
    """`min_cell_size` as an int >= 0 (None gives `default`).

    Raises
    ------
    TypeError, ValueError
        If `min_cell_size` is not None or an integer >= 0.
    """
    if min_cell_size is None:
        return int(default)
    if isinstance(min_cell_size, bool) or not isinstance(min_cell_size, numbers.Integral):
        raise TypeError(f"`min_cell_size` must be an int >= 0 or None. Got {min_cell_size!r} of type "
                        f"{type(min_cell_size).__name__}. Fix: pass e.g. min_cell_size=10.")
    if min_cell_size < 0:
        raise ValueError(f"`min_cell_size` must be >= 0. Got {min_cell_size!r}. Fix: pass e.g. min_cell_size=10.")
    return int(min_cell_size)


def reportable(sizes: Mapping[Any, int], min_cell_size: int, *, what: str, stacklevel: int = 3,
               output: str = "the profiles") -> list:
    """Keys of `sizes` with at least `min_cell_size` respondents, in order; warns about the others.

    Parameters
    ----------
    sizes : mapping
        Group label -> number of respondents.
    min_cell_size : int
        Smallest group that may be reported.
    what : str
        What the keys are, for the message, e.g. ``"group(s)"``, ``"class(es)"``.
    output : str, default "the profiles"
        What they are withheld from, for the message, e.g. ``"the plot"``.

    Returns
    -------
    list
        The kept keys. Each withheld one is named in a :class:`~survey_weights.exceptions.SmallGroupWarning`.
    """
    small = [k for k, n in sizes.items() if n < min_cell_size]
    if small:
        named = "; ".join(f"{k} (n={sizes[k]})" for k in small[:_SHOWN])
        more = f" and {len(small) - _SHOWN} more" if len(small) > _SHOWN else ""
        warnings.warn(f"{len(small)} {what} with fewer than min_cell_size={min_cell_size} respondents are withheld "
                      f"from {output}: {named}{more}.", SmallGroupWarning, stacklevel=stacklevel)
    return [k for k in sizes if k not in small]


def resolve_min_cell_size(min_cell_size: Any, min_group_size: Any, *, where: str, stacklevel: int = 3) -> int:
    """`min_cell_size`, or the deprecated `min_group_size` alias (with a DeprecationWarning); checked.

    Raises
    ------
    TypeError
        If both are given.
    """
    if min_group_size is not None:
        if min_cell_size is not None:
            raise TypeError(f"{where}: give `min_cell_size` only (`min_group_size` is its deprecated old name). "
                            f"Got min_cell_size={min_cell_size!r} and min_group_size={min_group_size!r}.")
        warnings.warn(f"{where}: `min_group_size` is deprecated; it is now `min_cell_size`, the one name of the "
                      "minimum cell size across the package. Fix: pass min_cell_size=...",
                      DeprecationWarning, stacklevel=stacklevel)
        min_cell_size = min_group_size
    return check_min_cell_size(min_cell_size)


def count_respondents(weights: Any) -> int:
    """Respondents in a cell for the minimum-cell-size rule: those with a positive frequency weight (heads, never
    summed weights).

    Examples
    --------
    >>> count_respondents([1.0, 1000.0, 0.0, 2.5])
    3
    """
    return int(np.count_nonzero(np.asarray(weights, dtype=float) > 0))


def check_not_identifying(frame: pd.DataFrame, columns: Any, *, what: str, respondent_ids: Any = None,
                          numeric_ok: bool = False) -> None:
    """Refuse grouping columns that identify respondents (one distinct value per respondent).

    Parameters
    ----------
    frame : pandas.DataFrame
        Covariates, one row per respondent.
    columns : list of str
        The grouping columns to check (each alone and, for a grouping (``numeric_ok=False``) by several, their
        crossing).
    what : str
        The parameter that named them, e.g. ``"by"``, ``"covariates"``, for the message.
    respondent_ids : sequence, optional
        The respondent ids; a column equal to them always identifies respondents.
    numeric_ok : bool, default False
        Allow a numeric column with all-distinct values (a continuous covariate a tree splits by thresholds) unless
        it is named like an identifier or equals the respondent ids. Categorical columns, and every column of a
        grouping (``numeric_ok=False``), are refused when all their values differ.

    Raises
    ------
    ValueError
        Naming the column and a fix.
    """
    cols = list(columns)
    ids = None if respondent_ids is None else pd.Index(respondent_ids).astype(str)
    for c in cols:
        col = frame[c]
        present = col.notna().to_numpy()
        n = int(present.sum())
        if n < 2 or col[present].nunique() < n:
            continue
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        equals_ids = ids is not None and len(ids) == len(col) and bool(
            np.all(col[present].astype(str).to_numpy() == ids[present]))
        if numeric_ok and numeric and not equals_ids and not is_identifier_name(c):
            continue
        why = ("it holds the respondent ids" if equals_ids else
               f"its {n} values are all different, one per respondent" + (" (and its name looks like an id)"
                                                                           if is_identifier_name(c) else ""))
        raise ValueError(
            f"`{what}` column {c!r} identifies respondents: {why}, so every group would be a single person. "
            "Fix: use a covariate shared by groups of respondents (bin a continuous one with pandas.cut), "
            f"or leave {c!r} out."
        )
    if len(cols) > 1 and not numeric_ok:
        sub = frame[cols].dropna()
        if len(sub) >= 2 and not sub.duplicated().any():
            raise ValueError(
                f"`{what}` columns {cols} together identify respondents: every respondent has their own combination "
                "of values, so every crossed group would be a single person. Fix: cross fewer or coarser covariates."
            )
