"""The package's one interval recipe for a weight (a share in (0, 1)).

Every delta-method interval of a weight that the package reports (``FitResult.to_frame()``, the per-group, per-class
and per-leaf tables, :func:`~survey_weights.profiles.derive_profile` and hence the exported profiles) comes from
:func:`logit_interval`: a Wald interval on the logit scale of the weight, back-transformed, so it always lies
inside (0, 1) and contains the estimate. For worths ``w = softmax(beta)`` the standard error of ``w`` is the delta
method's, :func:`weight_se`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["logit_interval", "softmax", "weight_intervals", "weight_se", "z_value"]


def z_value(level: float) -> float:
    """Two-sided standard-normal quantile ``z_{(1 + level) / 2}`` (1.959964 for ``level=0.95``).

    Raises
    ------
    ValueError
        If `level` is not a number strictly between 0 and 1.
    """
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ValueError(f"`level` must be a number in (0, 1), e.g. 0.95. Got {level!r}.")
    from scipy.special import ndtri  # the normal quantile, without importing scipy.stats (slow)

    return float(ndtri(0.5 + float(level) / 2.0))


def softmax(log_worth: Any) -> np.ndarray:
    """Worths summing to one, ``exp(beta) / sum(exp(beta))`` (computed stably)."""
    b = np.asarray(log_worth, dtype=float)
    e = np.exp(b - b.max())
    return e / e.sum()


def weight_se(log_worth: Any, vcov: Any) -> tuple[np.ndarray, np.ndarray]:
    """Worths and their delta-method standard errors.

    Parameters
    ----------
    log_worth : array-like (n,)
        Log-worths (any identifiable parameterisation, e.g. zero-sum).
    vcov : array-like (n, n)
        Their covariance.

    Returns
    -------
    w : ndarray (n,)
        ``softmax(log_worth)``.
    se : ndarray (n,)
        ``sqrt(diag(J V J^T))`` with ``J = diag(w) - w w^T`` the Jacobian of the softmax (NaN where `vcov` is NaN).
    """
    w = softmax(log_worth)
    V = np.asarray(vcov, dtype=float)
    if V.shape != (len(w), len(w)):
        raise ValueError(f"`vcov` must be {len(w)} x {len(w)} to match `log_worth`. Got shape {V.shape}.")
    J = np.diag(w) - np.outer(w, w)
    return w, np.sqrt(np.clip(np.diag(J @ V @ J.T), 0.0, None))


def logit_interval(weight: Any, se: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Delta-method interval of a weight on the logit scale: ``expit(logit(w) -/+ z se / (w (1 - w)))``.

    ``se / (w (1 - w))`` is the delta-method standard error of ``logit(w)``, so the interval is the Wald interval
    of ``logit(w)`` mapped back: it lies inside (0, 1) and contains ``w``. A zero `se` gives ``[w, w]`` exactly (a
    fixed safety share); a weight of exactly 0 or 1, or a NaN `se`, gives NaN bounds unless `se` is 0.

    Parameters
    ----------
    weight : array-like
        Weights in [0, 1].
    se : array-like
        Their standard errors (same shape).
    level : float, default 0.95
        Confidence level.

    Returns
    -------
    (ci_low, ci_high) : tuple of ndarray

    Examples
    --------
    >>> lo, hi = logit_interval([0.2], [0.02])
    >>> [round(float(lo[0]), 4), round(float(hi[0]), 4)]
    [0.1637, 0.2421]
    """
    z = z_value(level)
    from scipy.special import expit, logit  # lazy: scipy.special takes a tenth of a second to import

    w = np.asarray(weight, dtype=float)
    s = np.asarray(se, dtype=float)
    if w.shape != s.shape:
        raise ValueError(f"`weight` and `se` must have the same shape. Got {w.shape} and {s.shape}.")
    inside = (w > 0) & (w < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = z * s / (w * (1.0 - w))
        centre = logit(np.where(inside, w, 0.5))
        lo = np.where(inside, expit(centre - half), np.nan)
        hi = np.where(inside, expit(centre + half), np.nan)
    exact = s == 0
    lo = np.where(exact, w, lo)
    hi = np.where(exact, w, hi)
    # round-off of expit(logit(w)) must not put the estimate outside its interval
    return np.minimum(lo, w), np.maximum(hi, w)


def weight_intervals(log_worth: Any, vcov: Any, level: float = 0.95) -> dict[str, np.ndarray]:
    """Worths, their delta-method SEs and logit-scale intervals (:func:`weight_se` then :func:`logit_interval`).

    Returns
    -------
    dict
        ``weight``, ``weight_se``, ``ci_low``, ``ci_high`` (arrays in the order of `log_worth`).
    """
    w, se = weight_se(log_worth, vcov)
    lo, hi = logit_interval(w, se, level)
    return {"weight": w, "weight_se": se, "ci_low": lo, "ci_high": hi}
