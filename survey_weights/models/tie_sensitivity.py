"""How much the weights depend on the reading of the ties: one table of every reading side by side."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .plackett_luce import fit_plackett_luce

__all__ = ["tie_sensitivity", "TIE_READINGS"]

#: The fits :func:`tie_sensitivity` compares (``fit_plackett_luce(ties=...)``).
TIE_READINGS = ("davidson", "breslow", "efron", "exact_marginal")


def tie_sensitivity(rankings: Any, *, ratings: pd.DataFrame | None = None, **fit_options: Any) -> pd.DataFrame:
    """The items' weights under each reading of the ties, and the rating means when the ratings are given.

    Likert ratings tie many items; the Davidson-Luce model (``ties="davidson"``) reads a tie as a tie, the
    others as an unknown order (:func:`~survey_weights.models.fit_plackett_luce`'s ``ties``). When the columns
    differ little, the conclusions do not rest on how the ties are read.

    Parameters
    ----------
    rankings : Rankings
        The data.
    ratings : pandas.DataFrame, optional
        The ratings the rankings were built from (one row per respondent, one column per item, higher = more
        important; a Rankings object does not keep them). Adds ``mean_rating`` (the naive mean) and
        ``ipsatised_mean`` (the mean of each respondent's ratings minus that respondent's own mean over the
        items rated), unweighted over the rows of the frame.
    **fit_options
        Passed to every fit (``npseudo``, ``normal``, ``weights`` are the data's, ...); not ``ties``.

    Returns
    -------
    pandas.DataFrame
        Index = items; columns ``davidson``, ``breslow``, ``efron``, ``exact_marginal`` (weights summing to 1),
        then ``mean_rating`` and ``ipsatised_mean`` with `ratings`.

    Examples
    --------
    >>> from survey_weights import Rankings
    >>> r = Rankings.from_orderings([["a", ("b", "c")], ["b", "a", "c"], [("c", "a"), "b"]])
    >>> t = tie_sensitivity(r)
    >>> list(t.columns), bool(np.allclose(t.sum(), 1.0))
    (['davidson', 'breslow', 'efron', 'exact_marginal'], True)
    """
    if "ties" in fit_options:
        raise TypeError("`tie_sensitivity` fits every reading of the ties itself; do not pass `ties`.")
    items = list(rankings.items)
    out = pd.DataFrame(index=pd.Index(items, name="item"))
    for t in TIE_READINGS:
        out[t] = fit_plackett_luce(rankings, ties=t, **fit_options).weights.to_numpy()
    if ratings is not None:
        if not isinstance(ratings, pd.DataFrame):
            raise TypeError(f"`ratings` must be a pandas DataFrame with one column per item. Got "
                            f"{type(ratings).__name__}.")
        missing = [it for it in items if it not in ratings.columns]
        if missing:
            raise ValueError(f"`ratings` has no column for item(s) {missing[:5]}. Fix: pass the frame the rankings "
                             f"were built from (columns {items[:5]}...).")
        X = ratings[items].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        with warnings.catch_warnings():  # a respondent (or item) without any rating: NaN, quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            row_mean = np.nanmean(X, axis=1, keepdims=True)
            out["mean_rating"] = np.nanmean(X, axis=0)
            out["ipsatised_mean"] = np.nanmean(X - row_mean, axis=0)
    return out
