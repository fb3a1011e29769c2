"""Score-based parameter-instability tests for model-based trees (private).

The per-respondent scores (``estfun``) and the node fits come from the engine
(:class:`~survey_weights.models._choice.ChoiceDesign`); this module holds the tests:

* M-fluctuation tests as in ``partykit::mob`` (Zeileis & Hornik 2007; Zeileis, Hothorn & Hornik 2008): the
  supLM statistic for numeric covariates, the chi-square (LMuo) statistic for categorical ones. The supLM p-value
  is the exact asymptotic tail probability of the supremum of a squared Bessel-type bridge statistic, computed by
  solving the Kolmogorov backward equation of the equivalent stationary radial Ornstein-Uhlenbeck process
  (a license-clean replacement for Hansen's (1997) response-surface table used by strucchange).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import linalg, special, stats

__all__ = ["bonferroni", "fluctuation_tests", "suplm_pvalue"]



# ---------------------------------------------------------------------------------------------------------------------
# M-fluctuation tests
# ---------------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _suplm_spectrum(x: float, k: int, n_grid: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Eigenvalues and weights of the radial OU generator killed at radius sqrt(x) (finite volumes)."""
    R = np.sqrt(x)
    faces = np.linspace(0.0, R, n_grid + 1)
    h = faces[1] - faces[0]
    chi = stats.chi(k)
    mass = np.diff(chi.cdf(faces))
    mass = np.maximum(mass, 1e-300)
    dens = chi.pdf(faces)  # speed measure density at the faces
    cond = dens[1:-1] / h  # interior faces
    c_out = dens[-1] / (h / 2.0)  # to the absorbing boundary at R
    diag = np.zeros(n_grid)
    diag[:-1] += cond
    diag[1:] += cond
    diag[-1] += c_out
    off = -cond
    sq = np.sqrt(mass)
    d = diag / mass
    e = off / (sq[:-1] * sq[1:])
    lam, Q = linalg.eigh_tridiagonal(d, e)
    coef = (Q.T @ sq) ** 2
    return lam, coef, float(chi.sf(R))


def suplm_pvalue(stat: float, k: int, trim: float, *, n_grid: int = 160) -> float:
    """Asymptotic p-value of the supLM statistic (sup over [trim, 1 - trim] of ||B(t)||^2 / (t (1 - t))).

    Parameters
    ----------
    stat : float
        Observed supLM statistic.
    k : int
        Number of parameters tested (dimension of the Brownian bridge).
    trim : float
        Fraction trimmed at each end (``from / n`` in strucchange / partykit notation), 0 < trim < 0.5.

    Notes
    -----
    With s = log(t / (1 - t)) / 2 the normalised bridge is a stationary Ornstein-Uhlenbeck process on an interval
    of length log((1 - trim) / trim); its squared norm exceeds ``stat`` with probability
    P(chi2_k > stat) + sum_n (1 - exp(-lambda_n L)) c_n, from the spectrum of the killed generator.
    """
    if not np.isfinite(stat):
        return 0.0
    if stat <= 0:
        return 1.0
    trim = min(max(trim, 1e-6), 0.5)
    length = np.log((1.0 - trim) / trim)
    if length <= 0:
        return float(stats.chi2.sf(stat, k))
    # far tail (p < 1e-9): Estrella's (2003) asymptotic formula, accurate there; the grid loses precision
    logp = (-special.gammaln(k / 2.0) + k / 2.0 * np.log(stat / 2.0) - stat / 2.0
            + np.log(abs(2.0 * length * (1.0 - k / stat) + 2.0 / stat)))
    if stat > 2.0 * k and logp < np.log(1e-9):
        return float(np.exp(logp))
    lam, coef, tail = _suplm_spectrum(float(np.round(stat, 10)), int(k), n_grid)
    if lam.min() < -1e-8:
        return float(min(np.exp(logp), 1.0))
    p = tail + float(np.sum(-np.expm1(-np.maximum(lam, 0.0) * length) * coef))
    return float(min(max(p, 0.0), 1.0))


def bonferroni(p: np.ndarray) -> np.ndarray:
    """Bonferroni-type adjustment as in partykit::mob: 1 - (1 - p)^m, or m p for p <= 0.001."""
    p = np.asarray(p, dtype=float)
    m = int(np.sum(~np.isnan(p)))
    p1 = np.minimum(1.0, m * p)
    p2 = 1.0 - (1.0 - p) ** m
    return np.where(~np.isnan(p) & (p > 0.001), p2, p1)


def fluctuation_tests(
    scores: np.ndarray,
    z: list[tuple[str, np.ndarray]],
    weights: np.ndarray,
    *,
    minsize: float,
    trim: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score-based instability tests of one node.

    Parameters
    ----------
    scores : ndarray (n, k)
        Weighted estimating functions of the node's respondents.
    z : list of (kind, values)
        kind "numeric" (float values) or "categorical" (integer level codes >= 0).
    weights : ndarray (n,)
        Case weights (> 0).

    Returns
    -------
    stat, pvalue (unadjusted), df : ndarrays, one entry per covariate (NaN p-value: not testable).
    """
    n_obs = float(weights.sum())
    k = scores.shape[1]
    proc = scores / np.sqrt(n_obs)
    meat = (proc / np.sqrt(weights)[:, None]).T @ (proc / np.sqrt(weights)[:, None])
    try:
        vals, vecs = linalg.eigh(meat)
        keep = vals > 1e-10 * max(vals.max(), 1e-300)
        J = vecs[:, keep] / np.sqrt(vals[keep])  # whitening: ||J' x||^2 = x' meat^+ x
    except linalg.LinAlgError:
        J = np.eye(k)
    proc = proc @ J
    k_eff = proc.shape[1]
    frm = max(float(np.ceil(n_obs * trim)) if trim < 1 else float(trim), float(minsize))
    to = n_obs - frm
    out_stat = np.zeros(len(z))
    out_p = np.full(len(z), np.nan)
    out_df = np.full(len(z), np.nan)
    for i, (kind, zi) in enumerate(z):
        if len(np.unique(zi)) < 2:
            continue
        if kind == "categorical":
            levels = np.unique(zi)
            seg = np.zeros((len(levels), k_eff))
            idx = np.searchsorted(levels, zi)
            np.add.at(seg, idx, proc)
            segw = np.bincount(idx, weights=weights, minlength=len(levels)) / n_obs
            out_stat[i] = float(np.sum(seg**2 / segw[:, None]))
            out_df[i] = k_eff * (len(levels) - 1)
            out_p[i] = float(stats.chi2.sf(out_stat[i], out_df[i]))
        else:
            # as partykit: the process is evaluated after every observation in (stable) covariate order,
            # ties in the covariate not merged, within [from, n - from]
            oi = np.argsort(zi, kind="stable")
            cs = np.cumsum(proc[oi], axis=0)[:-1]
            tt = np.cumsum(weights[oi])[:-1]
            ok = (tt >= frm) & (tt <= to)
            if not ok.any():
                continue
            tt = tt[ok] / n_obs
            st = np.sum(cs[ok] ** 2, axis=1) / (tt * (1 - tt))
            out_stat[i] = float(st.max())
            out_df[i] = k_eff
            out_p[i] = suplm_pvalue(out_stat[i], k_eff, frm / n_obs)
    return out_stat, out_p, out_df
