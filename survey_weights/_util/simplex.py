"""Distributions over a prompt's candidates, one row per prompt: the row-wise softmax and the mean KL divergence
(shared by the pool evaluation and the calibrated mixing of a conditioned run; numpy only)."""

from __future__ import annotations

import numpy as np


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits ``z`` (P, K); ``-inf`` entries get probability 0."""
    z = z - np.max(z, axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def mean_kl(q: np.ndarray, r: np.ndarray) -> float:
    """Mean over rows of KL(q ‖ r), both (P, K); entries where q is 0 (padding) add nothing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(q > 0, q * (np.log(q) - np.log(np.where(r > 0, r, 1.0))), 0.0)
    return float(t.sum(axis=1).mean())
