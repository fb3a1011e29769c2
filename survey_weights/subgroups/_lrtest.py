"""Likelihood-ratio tests and Holm's multiplicity correction, shared by group fits and worth regression."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LRTestResult", "holm", "lr_test"]


@dataclass(frozen=True)
class LRTestResult:
    """A likelihood-ratio test.

    Attributes
    ----------
    statistic : float
        ``2 * (loglik_alternative - loglik_null)`` (data log-likelihoods).
    df : int
        Degrees of freedom of the reference chi-square distribution.
    pvalue : float
        Upper-tail chi-square probability.
    hypothesis : str
        What the null hypothesis says.
    """

    statistic: float
    df: int
    pvalue: float
    hypothesis: str = ""

    def __str__(self) -> str:
        return f"LR test ({self.hypothesis}): chi2({self.df}) = {self.statistic:.3f}, p = {self.pvalue:.4g}"


def lr_test(ll_alt: float, ll_null: float, df: int, hypothesis: str) -> LRTestResult:
    from scipy import stats  # lazy: keeps `import survey_weights` fast

    stat = max(0.0, 2.0 * (ll_alt - ll_null))
    return LRTestResult(stat, int(df), float(stats.chi2.sf(stat, df)) if df > 0 else float("nan"), hypothesis)


def holm(pvalues: Any) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (same as ``statsmodels ... multipletests(method="holm")``)."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out
