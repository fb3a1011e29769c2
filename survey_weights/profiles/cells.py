"""Small-cell control shared by every result's ``profiles()``: which groups may leave as a profile."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from typing import Any

from ..exceptions import SmallGroupWarning

__all__ = ["DEFAULT_MIN_CELL_SIZE", "check_min_cell_size", "reportable"]

#: Profiles from fewer respondents are withheld by default (as :func:`~survey_weights.export_profiles`).
DEFAULT_MIN_CELL_SIZE: int = 10
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


def reportable(sizes: Mapping[Any, int], min_cell_size: int, *, what: str, stacklevel: int = 3) -> list:
    """Keys of `sizes` with at least `min_cell_size` respondents, in order; warns about the others.

    Parameters
    ----------
    sizes : mapping
        Group label -> number of respondents.
    min_cell_size : int
        Smallest group that may be reported.
    what : str
        What the keys are, for the message, e.g. ``"group(s)"``, ``"class(es)"``.

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
                      f"from the profiles: {named}{more}.", SmallGroupWarning, stacklevel=stacklevel)
    return [k for k in sizes if k not in small]
