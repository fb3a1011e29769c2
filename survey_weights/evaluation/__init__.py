"""Evaluation: the rubric scorer, scoring statistics (win rates, McNemar, Pareto), the generation driver and the
report writer. Only :mod:`.generation` touches the MODPO engine (torch), and only inside its functions."""

from __future__ import annotations

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
    "RUBRIC_VERSION", "EvaluationResult", "ModelInfo", "compare_with_base", "detect_risk", "explain_reply",
    "mcnemar_exact", "pareto_front", "personalisation_check", "plot_pareto", "rubric_rules", "score_replies",
    "score_reply", "weighted_utility",
]
