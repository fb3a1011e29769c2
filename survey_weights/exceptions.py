"""Warning and error classes.

Every warning the package issues subclasses :class:`SurveyWeightsWarning`, so users can filter all of them
at once (``warnings.simplefilter("ignore", SurveyWeightsWarning)``) or turn them into errors in tests.
Errors that callers are expected to catch get their own type (a subclass of the built-in they refine), so
no caller ever has to match on a message's text.
"""

from __future__ import annotations

__all__ = [
    "SurveyWeightsWarning",
    "ConvergenceWarning",
    "DataRecodeWarning",
    "SmallGroupWarning",
    "DisconnectedNetworkWarning",
    "DominantWeightsWarning",
    "SettingsChangedError",
]


class SurveyWeightsWarning(UserWarning):
    """Base class of every warning issued by survey_weights."""


class ConvergenceWarning(SurveyWeightsWarning):
    """An iterative fit stopped before reaching its tolerance; the result has ``converged=False``."""


class BoundaryWarning(SurveyWeightsWarning):
    """An estimate lies on the boundary of the parameter space (a log-worth or log tie parameter running off to
    plus or minus infinity): the reported number is where the optimiser stopped, not a finite estimate; the
    result lists it in ``boundary``."""


class DataRecodeWarning(SurveyWeightsWarning):
    """Input data were recoded or dropped at construction (e.g. respondents with no ranking information)."""


class SmallGroupWarning(SurveyWeightsWarning):
    """A subgroup is smaller than the minimum cell size and is withheld from exports and plots."""


class DisconnectedNetworkWarning(SurveyWeightsWarning):
    """The comparison network falls apart into components that no comparison links: a fit with
    pseudo-comparisons or a prior still returns weights, but how the components compare comes from the
    pseudo-comparisons (or the prior) alone, not from the data, and their standard errors are huge."""


class DominantWeightsWarning(SurveyWeightsWarning):
    """A few heavy frequency weights dominate a fit: its effective number of respondents (Kish,
    ``(sum w)^2 / sum w^2``, the result's ``n_effective``) is far below the number of respondents counted."""
class SettingsChangedError(ValueError):
    """A finished result on disk was produced with other settings or data than the ones asked for now.

    Raised by :func:`survey_weights.modpo.train_adapters` (without ``overwrite=True``) when an adapter
    directory holds a ``profile.json`` whose resume key differs. The pipeline catches this type to retrain
    when the inputs changed; it is a ``ValueError``, so ``except ValueError`` still catches it.
    """
