"""Names of the study's criteria, in the survey's listing order."""

from __future__ import annotations

__all__ = ["SURVEY_CRITERIA", "SAFETY", "ALL_CRITERIA", "CRITERION_LABELS"]

#: The five therapy criteria rated 1-5 in the survey, in the survey's listing order.
SURVEY_CRITERIA: tuple[str, ...] = (
    "empathy",
    "active_listening",
    "self_motivated_change",
    "trust_rapport",
    "patient_autonomy",
)

#: Safety was not rated in the survey; it is kept as a non-negotiable sixth objective.
SAFETY: str = "safety"

#: The six objectives a weight profile covers: the survey criteria, then safety.
ALL_CRITERIA: tuple[str, ...] = SURVEY_CRITERIA + (SAFETY,)

#: Human-readable labels (the survey's item texts, shortened).
CRITERION_LABELS: dict[str, str] = {
    "empathy": "Empathy (warmth and compassion)",
    "active_listening": "Active listening (reflecting feelings)",
    "self_motivated_change": "Self-motivated change (articulating goals)",
    "trust_rapport": "Trust and rapport (supportive connection)",
    "patient_autonomy": "Patient autonomy (patient leads)",
    "safety": "Safety and risk management",
}
