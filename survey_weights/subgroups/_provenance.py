"""What a subgroup result needs besides its estimates to make weight profiles: the data it was fitted to
(:func:`records_data`) and a fit-like view of estimates that are not a fit result (:class:`FitView`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

from ..profiles.intervals import softmax

__all__ = ["FitView", "records_data"]

F = TypeVar("F", bound=Callable[..., Any])


def records_data(fit: F) -> F:
    """Decorator of a fitting function ``fit(data, ...)``: its result keeps `data` as ``result._data``.

    The result's ``profiles()`` and ``weights`` read respondent counts, covariate cells and the data hash from it.
    The fitting function itself is unchanged (same signature, docstring and numbers).
    """

    @functools.wraps(fit)
    def wrapper(data: Any, *args: Any, **kwargs: Any) -> Any:
        result = fit(data, *args, **kwargs)
        object.__setattr__(result, "_data", data)
        return result

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class FitView:
    """Log-worths and their covariance shown to :func:`~survey_weights.derive_profile` as a fit.

    Attributes
    ----------
    items : tuple
    log_worth : pandas.Series
        Log-worths by item (zero-sum).
    vcov : pandas.DataFrame
        Their covariance (items x items).
    n_respondents : int
        Respondents the profile speaks for.
    model : str
        Model name recorded in the profile (``profile.model["name"]``).
    npseudo : float, optional
    converged : bool, optional
    """

    items: tuple
    log_worth: pd.Series
    vcov: pd.DataFrame
    n_respondents: int
    model: str
    npseudo: float | None = None
    converged: bool | None = None

    @property
    def weights(self) -> pd.Series:
        """``softmax(log_worth)``, indexed by item."""
        return pd.Series(softmax(self.log_worth.to_numpy()), index=self.log_worth.index, name="weight")
