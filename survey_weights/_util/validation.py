"""Input checks that fail with messages a user can act on.

Every message names the parameter (or column), says what was expected, what was received, and how to fix it:
"`npseudo` must be a number >= 0. Got -1 instead."
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "check_positive",
    "check_scalar",
    "check_option",
    "check_frame",
    "check_columns",
    "format_ids",
]


def format_ids(ids: Iterable[Any], *, limit: int = 5) -> str:
    """Format the first `limit` ids for an error message: ``"17, 45, 201 and 3 more"``."""
    ids = list(ids)
    head = ", ".join(repr(i) if isinstance(i, str) else str(i) for i in ids[:limit])
    if len(ids) > limit:
        head += f" and {len(ids) - limit} more"
    return head


def check_scalar(
    value: Any,
    name: str,
    *,
    kind: type | tuple[type, ...] = numbers.Real,
    min_val: float | None = None,
    max_val: float | None = None,
    include_min: bool = True,
    include_max: bool = True,
) -> Any:
    """Check a scalar option: its type and range.

    Raises
    ------
    TypeError
        If `value` is not an instance of `kind` (bools are rejected where a number is expected).
    ValueError
        If `value` lies outside the bounds.
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    numeric = any(k in (numbers.Real, numbers.Integral, float, int) for k in kinds)
    if (numeric and isinstance(value, (bool, np.bool_))) or not isinstance(value, kinds):
        expected = " or ".join(getattr(k, "__name__", str(k)) for k in kinds)
        expected = expected.replace("Real", "number").replace("Integral", "integer")
        raise TypeError(f"`{name}` must be a {expected}. Got {value!r} of type {type(value).__name__} instead.")
    if numeric and not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite. Got {value!r} instead.")
    if min_val is not None and (value < min_val or (not include_min and value == min_val)):
        op = ">=" if include_min else ">"
        raise ValueError(f"`{name}` must be {op} {min_val}. Got {value!r} instead.")
    if max_val is not None and (value > max_val or (not include_max and value == max_val)):
        op = "<=" if include_max else "<"
        raise ValueError(f"`{name}` must be {op} {max_val}. Got {value!r} instead.")
    return value


def check_option(value: Any, name: str, options: Sequence[Any]) -> Any:
    """Check that `value` is one of `options`."""
    if value not in options:
        choices = ", ".join(repr(o) for o in options)
        raise ValueError(f"Unknown `{name}` {value!r}. Choose one of {{{choices}}}.")
    return value


def check_frame(df: Any, name: str = "df") -> pd.DataFrame:
    """Check that `df` is a non-empty pandas DataFrame."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(
            f"`{name}` must be a pandas DataFrame. Got {type(df).__name__} instead. "
            f"Fix: wrap your data with pd.DataFrame(...)."
        )
    if len(df) == 0:
        raise ValueError(f"`{name}` is empty (0 rows). Pass a frame with at least one respondent.")
    return df


def check_columns(df: pd.DataFrame, columns: Iterable[Any], param: str) -> list[Any]:
    """Check that every name in `columns` is a column of `df`; return them as a list."""
    if isinstance(columns, (str, bytes)):
        raise TypeError(
            f"`{param}` must be a list of column names. Got the string {columns!r}. Fix: {param}=[{columns!r}]."
        )
    cols = list(columns)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        available = format_ids(list(df.columns), limit=12)
        raise ValueError(
            f"Column(s) {format_ids(missing)} given in `{param}` are not in the frame. "
            f"Available columns: {available}. Fix: check the spelling or rename the columns."
        )
    dup = sorted({c for c in cols if cols.count(c) > 1}, key=str)
    if dup:
        raise ValueError(f"`{param}` lists column(s) {format_ids(dup)} more than once. Give each column once.")
    return cols


def check_positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    """Check a configuration number: an int (``integer``) or a float, > 0 (or >= 0 with ``allow_zero``).

    Raises
    ------
    TypeError
        Wrong type (bools are rejected).
    ValueError
        Non-finite or out of range; the message says which values are accepted.
    """
    kind = "an int" if integer else "a float"
    bound = ">= 0" if allow_zero else "> 0"
    if integer:
        ok_type = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok_type:
        raise TypeError(
            f"`{name}` must be {kind} {bound}. Got {value!r} ({type(value).__name__}) instead. "
            f"Fix: pass {kind} {bound}."
        )
    if not math.isfinite(float(value)) or (value < 0 if allow_zero else value <= 0):
        raise ValueError(
            f"`{name}` must be {kind} {bound}. Got {value!r} instead. Fix: pass a value {bound}."
        )
