"""Score-based parameter-instability tests for model-based trees (private).

The per-respondent scores (``estfun``) and the node fits come from the engine
(:class:`~survey_weights.models._choice.ChoiceDesign`); this module holds the tests:

* M-fluctuation tests as in ``partykit::mob`` (Zeileis & Hornik 2007; Zeileis, Hothorn & Hornik 2008): the
  supLM statistic for numeric covariates, the chi-square (LMuo) statistic for categorical ones. The supLM p-value
  comes in two flavours (:func:`suplm_pvalue`): ``"partykit"``, Hansen's (1997) response-surface approximation
  interpolated in the trimming as partykit does (Estrella's (2003) formula beyond 40 parameters), which reproduces
  partykit's / psychotree's numbers and so their trees; and ``"exact"``, the exact asymptotic tail probability of
  the supremum of the squared Bessel-type bridge, from the Kolmogorov backward equation of the equivalent
  stationary radial Ornstein-Uhlenbeck process.

"""

from __future__ import annotations

import functools

import numpy as np
from scipy import linalg

from . import _hansen1997

__all__ = ["SUPLM_PVALUES", "bonferroni", "fluctuation_tests", "suplm_pvalue"]



# ---------------------------------------------------------------------------------------------------------------------
# M-fluctuation tests
# ---------------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _suplm_spectrum(x: float, k: int, n_grid: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Eigenvalues and weights of the radial OU generator killed at radius sqrt(x) (finite volumes)."""
    R = np.sqrt(x)
    faces = np.linspace(0.0, R, n_grid + 1)
    h = faces[1] - faces[0]
    from scipy import stats  # lazy: scipy.stats alone takes longer to import than the package

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


SUPLM_PVALUES = ("partykit", "exact")


def check_suplm_pvalue(pvalue: object) -> str:
    """Validate the ``pvalue`` option (one of :data:`SUPLM_PVALUES`) and return it."""
    if not isinstance(pvalue, str):
        raise TypeError(f"`pvalue` must be the string 'partykit' or 'exact'. Got {type(pvalue).__name__} {pvalue!r}.")
    if pvalue not in SUPLM_PVALUES:
        raise ValueError(f"`pvalue` must be 'partykit' or 'exact'. Got {pvalue!r}. Fix: pvalue='partykit' (Hansen's "
                         "approximation, the p-values and trees of partykit/psychotree) or pvalue='exact' (the exact "
                         "asymptotic supLM p-value).")
    return pvalue


def suplm_pvalue(stat: float, k: int, trim: float, *, method: str = "partykit", n_grid: int = 160) -> float:
    """Asymptotic p-value of the supLM statistic (sup over [trim, 1 - trim] of ||B(t)||^2 / (t (1 - t))).

    Parameters
    ----------
    stat : float
        Observed supLM statistic.
    k : int
        Number of parameters tested (dimension of the Brownian bridge).
    trim : float
        Fraction trimmed at each end (``from / n`` in strucchange / partykit notation), 0 < trim <= 0.5.
    method : {"partykit", "exact"}, default "partykit"
        ``"partykit"``: Hansen's (1997) response-surface approximation as ``partykit::mob`` computes it (see
        :func:`suplm_pvalue_partykit`), so trees split as psychotree's and PlackettLuce's. ``"exact"``: the exact
        asymptotic tail probability (see :func:`suplm_pvalue_exact`).
    n_grid : int, default 160
        Radial grid of the ``"exact"`` method.

    Returns
    -------
    float
        The unadjusted p-value.
    """
    if check_suplm_pvalue(method) == "partykit":
        return suplm_pvalue_partykit(stat, k, trim)
    return suplm_pvalue_exact(stat, k, trim, n_grid=n_grid)


def _log_estrella(x: float, k: int, log_lambda: float) -> float:
    """Estrella's (2003) asymptotic log tail probability of the supLM statistic."""
    from scipy import special  # lazy: keeps `import survey_weights` fast

    return float(-special.gammaln(k / 2.0) + k / 2.0 * np.log(x / 2.0) - x / 2.0
                 + np.log(abs(log_lambda * (1.0 - k / x) + 2.0 / x)))


def suplm_pvalue_partykit(stat: float, k: int, trim: float) -> float:
    """supLM p-value by Hansen's (1997) response surface, interpolated in the trimming as ``partykit::mob`` does.

    Parameters
    ----------
    stat : float
        Observed supLM statistic.
    k : int
        Number of parameters tested.
    trim : float
        ``from / n``, 0 < trim <= 0.5.

    Returns
    -------
    float

    Notes
    -----
    Hansen, B. E. (1997), "Approximate asymptotic p values for structural-change tests", *Journal of Business &
    Economic Statistics* 15(1):60-67, tabulates for k = 1..40 and the trimmings pi0 = 0.49, 0.47, ..., 0.01
    coefficients (beta0, beta1, eta) such that p ~ P(chi2_eta > beta0 + beta1 stat) (:mod:`._hansen1997`).
    As partykit (1.2-x, ``mob``'s ``logp.supLM``): between two tabulated trimmings the p-value is interpolated
    linearly in pi0; between pi0 = 0.49 and 0.5 towards P(chi2_k > stat) (no trimming effect at 0.5); below 0.01
    the 0.01 row is used; when both neighbours underflow, their log p-values are averaged. For k > 40 the
    asymptotic tail formula of Estrella (2003), "Critical values and p values of Bessel process distributions",
    *Econometric Theory* 19(6), with lambda = ((1 - trim) / trim)^2, and below stat = 1.5 k its log p-value at
    1.5 k scaled by (stat / 1.5 k)^sqrt(k); capped at 1 (partykit's value can exceed 1 slightly there). Written
    from the published method; checked against partykit's own function over a grid of (k, trim, stat), to a
    relative 1e-9, and on psychotree's EuropeanValuesStudy tree (``tests/reference/partykit_suplm``).
    """
    if np.isnan(stat):
        return float("nan")
    if not np.isfinite(stat):
        return 0.0 if stat > 0 else 1.0
    k = int(k)
    tau = float(trim)
    if k > _hansen1997.MAX_K:
        log_lambda = 2.0 * np.log((1.0 - tau) / tau)
        x0 = 1.5 * k
        if stat <= x0:
            logp = (max(stat, 0.0) / x0) ** np.sqrt(k) * _log_estrella(x0, k, log_lambda)
        else:
            logp = _log_estrella(stat, k, log_lambda)
        return float(min(np.exp(logp), 1.0))
    from scipy import special, stats  # lazy: scipy.stats alone takes longer to import than the package

    log_chi2 = float(stats.chi2.logsf(stat, k))
    if tau >= 0.5:
        return float(np.exp(log_chi2))
    coef = _hansen1997.coefficients(k)
    z = np.maximum(coef[:, 0] + coef[:, 1] * stat, 0.0)
    logpp = stats.chi2.logsf(z, coef[:, 2])
    if tau <= 0.01:
        return float(np.exp(logpp[-1]))
    if tau >= 0.49:  # between the 0.49 row and no trimming effect at 0.5
        pair = np.array([logpp[0], log_chi2])
        wts = 100.0 * np.array([0.5 - tau, tau - 0.49])
    else:
        pos = (0.51 - tau) * 50.0  # 1-based row position in the pi0 grid (0.49 -> 1, 0.01 -> 25)
        j = int(np.floor(pos))
        pair = logpp[j - 1 : j + 1]
        wts = np.array([j + 1 - pos, pos - j])
    with np.errstate(divide="ignore"):
        logp = float(special.logsumexp(pair, b=wts))
    if not np.isfinite(logp):
        logp = float(np.mean(pair))
    return float(min(np.exp(logp), 1.0))


def suplm_pvalue_exact(stat: float, k: int, trim: float, *, n_grid: int = 160) -> float:
    """Exact asymptotic p-value of the supLM statistic.

    Parameters
    ----------
    stat : float
        Observed supLM statistic.
    k : int
        Number of parameters tested (dimension of the Brownian bridge).
    trim : float
        Fraction trimmed at each end (``from / n``), 0 < trim <= 0.5.
    n_grid : int, default 160
        Radial grid of the finite-volume discretisation.

    Returns
    -------
    float

    Notes
    -----
    With s = log(t / (1 - t)) / 2 the normalised bridge is a stationary Ornstein-Uhlenbeck process on an interval
    of length log((1 - trim) / trim); its squared norm exceeds ``stat`` with probability
    P(chi2_k > stat) + sum_n (1 - exp(-lambda_n L)) c_n, from the spectrum of the killed generator.
    """
    if not np.isfinite(stat):
        return 0.0
    if np.round(stat, 10) <= 0:  # the spectrum is computed at stat rounded to 10 decimals
        return 1.0
    trim = min(max(trim, 1e-6), 0.5)
    length = np.log((1.0 - trim) / trim)
    if length <= 0:
        from scipy import stats  # lazy: scipy.stats alone takes longer to import than the package

        return float(stats.chi2.sf(stat, k))
    # far tail (p < 1e-9): Estrella's (2003) asymptotic formula, accurate there; the grid loses precision
    from scipy import special  # lazy: keeps `import survey_weights` fast

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
    pvalue: str = "partykit",
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
    minsize : float
        Minimum trimming count: ``from = max(ceiling(n * trim), minsize)``.
    trim : float, default 0.1
        Trimming fraction of the supLM test.
    pvalue : {"partykit", "exact"}, default "partykit"
        supLM p-value method (:func:`suplm_pvalue`).

    Returns
    -------
    stat, pvalue (unadjusted), df : ndarrays, one entry per covariate (NaN p-value: not testable).
    """
    from scipy import stats  # lazy: scipy.stats alone takes longer to import than the package

    check_suplm_pvalue(pvalue)
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
            out_p[i] = suplm_pvalue(out_stat[i], k_eff, frm / n_obs, method=pvalue)
    return out_stat, out_p, out_df
