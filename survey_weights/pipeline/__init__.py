"""The jobs: the main job (survey -> profiles -> adapters -> evaluation), the experiment, and the single-step
jobs of the command line (:func:`run_fit`, :func:`run_train_rewards`, :func:`run_adapters`, :func:`run_evaluate`,
:func:`run_evaluate_pool`, :func:`run_export_adapter`), on shared steps. :mod:`survey_weights.cli` only parses
arguments and calls these functions."""

from __future__ import annotations

from ..preferences.split import subsample_pairs
from ._steps import (
    DEFAULT_BASE_MODEL,
    Log,
    PreferenceSplit,
    SurveySpec,
    load_model,
    load_preference_split,
    load_survey_frame,
    margin_reward_models,
    reward_accuracies,
    reward_models_cached,
    reward_pairs,
    set_threads,
    survey_rankings,
    train_profiles,
    training_config,
)
from .experiment import FULL, QUICK, ExperimentSchedule, answer_questions, results_markdown, run_experiment
from .jobs import (
    SavedAdapter,
    SurveyFit,
    find_adapters,
    parse_weights,
    run_adapters,
    run_evaluate,
    run_evaluate_pool,
    run_export_adapter,
    run_fit,
    run_fit_best_worst,
    run_train_rewards,
)
from .main import SUBGROUP_FACTORS, MainSchedule, build_profiles, export_weights, run_main

__all__ = [
    "SavedAdapter", "SurveyFit", "find_adapters", "parse_weights", "run_adapters", "run_evaluate",
    "run_evaluate_pool", "run_export_adapter", "run_fit", "run_fit_best_worst", "run_train_rewards",
    "DEFAULT_BASE_MODEL", "FULL", "QUICK", "SUBGROUP_FACTORS", "ExperimentSchedule", "Log", "MainSchedule",
    "PreferenceSplit", "SurveySpec", "answer_questions", "build_profiles", "export_weights", "load_model",
    "load_preference_split", "load_survey_frame", "margin_reward_models", "results_markdown", "reward_accuracies",
    "reward_models_cached", "reward_pairs", "run_experiment", "run_main", "set_threads", "subsample_pairs",
    "survey_rankings", "train_profiles", "training_config",
]
