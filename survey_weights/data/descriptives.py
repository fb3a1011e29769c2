"""Descriptive survey statistics, such as the study's "primary criterion" shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_columns, check_frame, check_option
from ._checks import _check_whole, _numeric_matrix, _row_ids

__all__ = ["top_rated_share"]


def top_rated_share(
    df: pd.DataFrame,
    items: Sequence[Any],
    *,
    tie_break: str = "first",
    seed: int | None = None,
    respondent: Any = None,
) -> pd.Series:
    """Share of respondents whose top-rated item is each item (the study's "primary preference" pie chart).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per respondent; the item columns hold ratings (higher = more important, NaN = not rated).
    items : sequence of column names
        The rating columns, in the survey's listing order.
    tie_break : {"first", "random", "split"}, default "first"
        How to pick among items tied for the top rating: the first in listing order (what a spreadsheet
        ``idxmax`` does, and presumably the study), a seeded random draw, or a fractional split (each tied item
        gets an equal share: the expected value of the random draw).
    seed : int, optional
        Seed of the random draw (``tie_break="random"``).
    respondent : column name, optional
        Column of respondent ids, only used in error messages (default: the index).

    Returns
    -------
    pandas.Series
        Share per item (indexed by item, sums to 1 over respondents with at least one rating).

    Notes
    -----
    With Likert ratings most respondents tie several items at the top, so ``tie_break="first"`` inflates the
    first-listed item. A ties-aware Plackett-Luce fit (:func:`survey_weights.fit_plackett_luce`) does not depend
    on the listing order; compare its ``weights`` with this share.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [5, 5, 4], "b": [5, 3, 5]})
    >>> top_rated_share(df, ["a", "b"]).tolist()
    [0.6666666666666666, 0.3333333333333333]
    >>> top_rated_share(df, ["a", "b"], tie_break="split").tolist()
    [0.5, 0.5]
    """
    check_frame(df)
    cols = check_columns(df, items, "items")
    check_option(tie_break, "tie_break", ("first", "random", "split"))
    ids = _row_ids(df, respondent, unique=False)
    x = _numeric_matrix(df, cols, ids, "Rating")
    _check_whole(x, cols, ids, "Rating")
    answered = ~np.isnan(x).all(axis=1)
    x = x[answered]
    if len(x) == 0:
        raise ValueError("No respondent rated any of `items`; there is no top-rated item to count.")
    top = x == np.nanmax(x, axis=1, keepdims=True)
    if tie_break == "first":
        counts = np.bincount(top.argmax(axis=1), minlength=len(cols)).astype(float)
    elif tie_break == "random":
        rng = np.random.default_rng(seed)
        keys = np.where(top, rng.random(top.shape), -1.0)
        counts = np.bincount(keys.argmax(axis=1), minlength=len(cols)).astype(float)
    else:
        counts = (top / top.sum(axis=1, keepdims=True)).sum(axis=0)
    return pd.Series(counts / len(x), index=pd.Index(cols, name="item"), name="top_rated_share")
