"""Preference pairs for reward models and MODPO: the JSONL format and its validation, judge aggregation, splits,
and the design of pairs shared across criteria (how often criteria conflict)."""

from __future__ import annotations

from .design import conflict_shares, labels_complete, pair_label_margins, shared_comparisons
from .judges import aggregate_judge_rankings, borda_weights, pairs_from_judge_rankings
from .pairs import read_preferences, validate_preferences, write_preferences, write_preferences_by_criterion
from .split import split_by_prompt, subsample_pairs

__all__ = [
    "aggregate_judge_rankings", "borda_weights", "conflict_shares", "labels_complete", "pair_label_margins",
    "pairs_from_judge_rankings", "read_preferences",
    "shared_comparisons", "split_by_prompt", "subsample_pairs", "validate_preferences", "write_preferences",
    "write_preferences_by_criterion",
]
