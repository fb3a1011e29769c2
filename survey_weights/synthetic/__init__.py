"""Everything synthetic in one place: the survey simulator and its example loader (:mod:`.survey`),
best-worst (MaxDiff) answers from the survey's true worths (:mod:`.best_worst`), synthetic
preference data (:mod:`.preferences`), prompt/reply banks and samplers (:mod:`.sampling`). Numbers made here are
never the study's.

Only the survey side is imported here (``import survey_weights`` stays light); import
:mod:`survey_weights.synthetic.preferences` for the preference data.
"""

from __future__ import annotations

from .best_worst import balanced_best_worst_design, simulate_best_worst
from .exports import OWN_SURVEY_CRITERIA, simulate_qualtrics_export
from .survey import (
    DEFAULT_SEED,
    EXAMPLE_SURVEY_FILE,
    PLANTED_EFFECTS,
    SurveyTruth,
    load_example_survey,
    simulate_survey,
    survey_truth,
)

__all__ = [
    "DEFAULT_SEED", "EXAMPLE_SURVEY_FILE", "OWN_SURVEY_CRITERIA", "PLANTED_EFFECTS", "SurveyTruth",
    "balanced_best_worst_design", "load_example_survey", "simulate_best_worst", "simulate_qualtrics_export",
    "simulate_survey", "survey_truth",
]
