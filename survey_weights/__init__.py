"""survey_weights: ties-aware Bradley-Terry / Plackett-Luce weights from preference surveys.

The survey half (data objects, fits, profiles, export) imports no torch; the MODPO half lives in
:mod:`survey_weights.modpo` (extra ``modpo``).
"""

from __future__ import annotations

from ._version import __version__
from .criteria import ALL_CRITERIA, CRITERION_LABELS, SAFETY, SURVEY_CRITERIA
from .data import PairedComparisons, Rankings
from .exceptions import ConvergenceWarning, DataRecodeWarning, SmallGroupWarning, SurveyWeightsWarning

__all__ = [
    "__version__",
    "ALL_CRITERIA",
    "CRITERION_LABELS",
    "SAFETY",
    "SURVEY_CRITERIA",
    "Rankings",
    "PairedComparisons",
    "SurveyWeightsWarning",
    "ConvergenceWarning",
    "DataRecodeWarning",
    "SmallGroupWarning",
]
