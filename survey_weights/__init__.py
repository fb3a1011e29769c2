"""survey_weights: ties-aware Bradley-Terry / Plackett-Luce weights from preference surveys.

The survey half (data objects, fits, subgroup analysis, profiles, export) imports no torch; the MODPO half lives in
:mod:`survey_weights.modpo` (extra ``modpo``) and is imported only when asked for.

Examples
--------
>>> import survey_weights as sw
>>> survey = sw.load_example_survey()            # synthetic: made by sw.simulate.simulate_survey
>>> r = sw.Rankings.from_ratings(survey, sw.SURVEY_CRITERIA, respondent="respondent_id", scale=(1, 5))
>>> r.n_respondents, r.max_tie_order      # the 2 who rated all five equally are kept: one five-way tie each
(335, 5)
>>> fit = sw.fit_plackett_luce(r)
>>> round(float(fit.weights.sum()), 6)
1.0
"""

from __future__ import annotations

from . import simulate  # noqa: F401 - `sw.simulate.simulate_survey` stays reachable as an attribute
from ._version import __version__
from .criteria import ALL_CRITERIA, CRITERION_LABELS, SAFETY, SURVEY_CRITERIA
from .data import (
    PairedComparisons,
    RakingResult,
    Rankings,
    best_worst_counts,
    load_survey,
    multiselect_dummies,
    rake,
    top_rated_share,
)
from .exceptions import (
    BoundaryWarning,
    ConvergenceWarning,
    DataRecodeWarning,
    DisconnectedNetworkWarning,
    DominantWeightsWarning,
    SettingsChangedError,
    SmallGroupWarning,
    SurveyWeightsWarning,
)
from .models import fit_best_worst, fit_bradley_terry, fit_plackett_luce, tie_sensitivity
from .profiles import WeightProfile, derive_profile, export_profiles, read_profiles
from .results import BestWorstResult, BradleyTerryResult, FitResult, PlackettLuceResult
from .subgroups import (
    BootstrapResult,
    GroupedFitResult,
    IndividualWeights,
    LRTestResult,
    MixtureResult,
    PreferenceTree,
    WorthRegressionResult,
    bootstrap,
    fit_by_group,
    fit_individual,
    fit_mixture,
    fit_regression,
    fit_tree,
    select_n_classes,
)
from .synthetic import load_example_survey

__all__ = [
    "__version__",
    # criteria
    "ALL_CRITERIA",
    "CRITERION_LABELS",
    "SAFETY",
    "SURVEY_CRITERIA",
    # data
    "Rankings",
    "PairedComparisons",
    "rake",
    "RakingResult",
    "load_example_survey",
    "load_survey",
    "multiselect_dummies",
    "top_rated_share",
    "best_worst_counts",
    # models
    "fit_plackett_luce",
    "fit_bradley_terry",
    "tie_sensitivity",
    "fit_best_worst",
    "FitResult",
    "PlackettLuceResult",
    "BradleyTerryResult",
    "BestWorstResult",
    # subgroups and uncertainty
    "fit_by_group",
    "GroupedFitResult",
    "fit_regression",
    "WorthRegressionResult",
    "LRTestResult",
    "fit_tree",
    "PreferenceTree",
    "fit_mixture",
    "select_n_classes",
    "MixtureResult",
    "bootstrap",
    "BootstrapResult",
    "fit_individual",
    "IndividualWeights",
    # profiles
    "WeightProfile",
    "derive_profile",
    "export_profiles",
    "read_profiles",
    # warnings
    "SurveyWeightsWarning",
    "ConvergenceWarning",
    "BoundaryWarning",
    "DataRecodeWarning",
    "SettingsChangedError",
    "SmallGroupWarning",
    "DisconnectedNetworkWarning",
    "DominantWeightsWarning",
]
