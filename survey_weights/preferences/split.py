"""Train/test splits of preference pairs by prompt, and seeded subsamples."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

__all__ = ["split_by_prompt", "subsample_pairs"]


def split_by_prompt(frame: pd.DataFrame, *, test_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) frames: a seeded share `test_fraction` of the prompts (by ``prompt_id``, else a hash of
    the prompt text) is held out."""
    ids = frame["prompt_id"].astype(str) if "prompt_id" in frame.columns and frame["prompt_id"].notna().all() \
        else frame["prompt"].map(lambda s: hashlib.sha256(s.encode()).hexdigest()[:12])
    uniq = np.array(sorted(ids.unique()))
    rng = np.random.default_rng(seed)
    test = set(rng.choice(uniq, size=max(1, int(round(test_fraction * len(uniq)))), replace=False))
    is_test = ids.isin(test).to_numpy()
    out = frame.assign(prompt_id=ids.to_numpy())
    return out[~is_test].reset_index(drop=True), out[is_test].reset_index(drop=True)


def subsample_pairs(train: pd.DataFrame, *, per_criterion: int | None, seed: int, by: str = "pair") -> pd.DataFrame:
    """At most ``per_criterion`` pairs per criterion (seeded, order kept).

    ``by="pair"`` (default) samples each criterion's pairs on their own. ``by="comparison"`` samples
    ``per_criterion`` comparisons (same prompt and replies, :func:`~survey_weights.preferences.shared_comparisons`)
    and keeps every pair of each, so a kept pair keeps its labels on the other criteria (what
    ``MODPOConfig(margins="labels")`` reads); a comparison holds at most one pair per criterion.
    """
    if by not in ("pair", "comparison"):
        raise ValueError(f"Unknown `by` {by!r}. Choose 'pair' or 'comparison'.")
    if per_criterion is None:
        return train.reset_index(drop=True)
    if by == "comparison":
        from .design import _key

        key = _key(train)
        uniq = pd.unique(key)
        keep = np.random.default_rng(seed).permutation(len(uniq))[:per_criterion]
        return train[key.isin(set(uniq[keep])).to_numpy()].reset_index(drop=True)
    parts = []
    for i, (_, g) in enumerate(train.groupby("criterion", sort=False)):
        parts.append(g.sample(n=min(per_criterion, len(g)), random_state=seed + i).sort_index())
    return pd.concat(parts).reset_index(drop=True)
