"""The jobs: the main job (survey -> profiles -> adapters -> evaluation) and the experiment, on shared steps.
Only :mod:`survey_weights.cli` imports this package."""

from __future__ import annotations

from ..preferences.split import subsample_pairs
from ._steps import (
    DEFAULT_BASE_MODEL,
    Log,
    PreferenceSplit,
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
from .main import SUBGROUP_FACTORS, MainSchedule, build_profiles, export_weights, run_main

__all__ = [
    "DEFAULT_BASE_MODEL", "FULL", "QUICK", "SUBGROUP_FACTORS", "ExperimentSchedule", "Log", "MainSchedule",
    "PreferenceSplit", "answer_questions", "build_profiles", "export_weights", "load_model",
    "load_preference_split", "load_survey_frame", "margin_reward_models", "results_markdown", "reward_accuracies",
    "reward_models_cached", "reward_pairs", "run_experiment", "run_main", "set_threads", "subsample_pairs",
    "survey_rankings", "train_profiles", "training_config",
]
