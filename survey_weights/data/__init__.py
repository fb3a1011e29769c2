"""Survey data: validated ranking and paired-comparison objects, the survey loader, descriptives.

Bottom layer: imports nothing of the package but the ground modules (criteria, exceptions, ``_util``).
"""

from __future__ import annotations

from ._best_worst import best_worst_counts
from .descriptives import top_rated_share
from .paired import PairedComparisons
from .raking import RakingResult, rake
from .rankings import Rankings
from .survey import load_survey, multiselect_dummies

__all__ = ["PairedComparisons", "best_worst_counts", "RakingResult", "Rankings", "rake", "load_survey",
           "multiselect_dummies", "top_rated_share"]
