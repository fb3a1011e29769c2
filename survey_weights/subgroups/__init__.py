"""Heterogeneity and uncertainty on top of the engine: group fits, worth regression, trees, mixtures, bootstrap,
per-respondent weights."""

from __future__ import annotations

from ._lrtest import LRTestResult, holm
from .bootstrap import BootstrapResult, bootstrap
from .groups import GroupedFitResult, fit_by_group
from .individual import IndividualWeights, fit_individual
from .mixture import MixtureResult, adjusted_rand_index, fit_mixture, select_n_classes
from .regression import WorthRegressionResult, fit_regression
from .trees import PreferenceTree, fit_tree

__all__ = [
    "BootstrapResult", "GroupedFitResult", "IndividualWeights", "LRTestResult", "MixtureResult", "PreferenceTree",
    "WorthRegressionResult", "adjusted_rand_index", "bootstrap", "fit_by_group", "fit_individual", "fit_mixture",
    "fit_regression", "fit_tree", "holm", "select_n_classes",
]
