"""Evaluation: the rubric scorer, the deterministic pool evaluation (:func:`evaluate_pool`: each model's
distribution over a fixed pool of rubric-scored candidates, with paired intervals, oracle and MOD fronts, trend
and crossover tests), held-out implicit-reward accuracy, scoring statistics of generations (win rates, McNemar,
Pareto), the generation driver and the report writer. Only :mod:`.generation` and :mod:`.pool_scoring` touch the
MODPO engine (torch), and only inside their functions."""

from __future__ import annotations

from .pool import CandidatePool, hypervolume_2d, page_trend, paired_bootstrap
from .pool_result import PoolEvaluation
from .pool_scoring import evaluate_pool, implicit_reward_accuracy
from .rubric import RUBRIC_VERSION, detect_risk, explain_reply, rubric_rules, score_replies, score_reply
from .scoring import (
    EvaluationResult,
    ModelInfo,
    compare_with_base,
    mcnemar_exact,
    pareto_front,
    personalisation_check,
    plot_pareto,
    weighted_utility,
)

__all__ = [
    "RUBRIC_VERSION", "CandidatePool", "EvaluationResult", "ModelInfo", "PoolEvaluation", "compare_with_base",
    "detect_risk", "evaluate_pool", "explain_reply", "hypervolume_2d", "implicit_reward_accuracy", "mcnemar_exact",
    "page_trend", "paired_bootstrap", "pareto_front", "personalisation_check", "plot_pareto", "rubric_rules",
    "score_replies", "score_reply", "weighted_utility",
]
