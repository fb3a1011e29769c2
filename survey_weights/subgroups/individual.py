"""Per-respondent weights shrunk toward the population: :func:`fit_individual` (issue 13, point 4).

Two methods, one result (:class:`IndividualWeights`):

* ``"empirical_bayes"`` (default, recommended): every respondent ``i`` has log-worths ``beta_i`` drawn from a normal
  population, ``beta_i - beta_i[ref] = u_i ~ N(mu, Sigma)`` on the ``K - 1`` contrasts with the first item (a *full*
  covariance ``Sigma``: then the model does not depend on which item is the reference, and criteria that are valued
  together -- two relational criteria, say -- may covary). ``mu`` and ``Sigma`` are estimated by Laplace-approximation
  EM: the E-step finds each respondent's posterior mode ``u_i = argmax l_i(u) - (u - mu)' Sigma^-1 (u - mu) / 2`` and
  curvature ``H_i`` (batched damped Newton over all respondents at once: the K x K systems are tiny), the M-step sets
  ``mu`` = the weighted mean of the modes and ``Sigma`` = the weighted mean of ``(u_i - mu)(u_i - mu)' + H_i^-1``
  (frequency x sampling weights; with a weak inverse-Wishart prior worth one respondent, so ``Sigma`` stays
  positive definite). The Laplace approximation biases ``Sigma`` down with a few answers per respondent, so
  importance-sampling EM rounds follow (draws from ``N(u_i, 1.5 H_i^-1)``, the exact EM updates with
  self-normalised weights, new draws each round); when they do not settle within 5 rounds -- Monte Carlo noise
  larger than what the data say about ``Sigma``, e.g. one tied rating per respondent -- the Laplace fit is kept and
  :meth:`IndividualWeights.summary` says so. The tie parameters (Davidson-Luce, ratings data) are held at the pooled
  fit's values. A respondent's posterior is then sampled by importance sampling from the same proposal, with one
  seeded scrambled-Sobol set of ``n_draws`` points shared by all respondents: the reported weight is the posterior
  mean of ``softmax(beta)``, the interval its equal-tailed posterior quantiles. Why not the delta method: with a
  handful of answers a respondent's posterior is wide and the softmax curved; the logit-scale delta method covered
  91% where the draws cover 94% (MaxDiff case below), and the posterior mean has the smaller squared error.
* ``"mixture"``: a latent-class fit (:func:`~survey_weights.fit_mixture`); a respondent's weight is the
  posterior-membership-weighted mean of the class weights, its interval the quantiles of the mixture (over classes,
  by posterior membership) of the classes' sampling distributions. This is coarse: it knows no heterogeneity within a
  class, so its intervals cover the respondent's *class* weight, not their own, and are too narrow for the latter.

Validation (tests/test_individual.py, seeded; true ``u_i ~ N(mu, Sigma)`` with a full ``Sigma``, 5 items):

==============================================  ==========  =======  ===================
300 respondents                                 coverage    MSE      unpooled MSE
==============================================  ==========  =======  ===================
6-12 MaxDiff tasks of 4 items, empirical Bayes  0.936       0.0065   0.0091
3 full rankings each, empirical Bayes           0.960       0.0084   0.0181
3 full rankings each, 3-class mixture           0.471       0.0128   0.0181
1 ranking with ties each, empirical Bayes       0.899       0.0140   0.0491
==============================================  ==========  =======  ===================

Coverage: share of the 300 x 5 true weights inside their 95% interval; MSE: mean squared error of the weights;
unpooled: each respondent's own fit (the package's default pseudo-comparisons, ``npseudo=0.5``, on that respondent's
data alone -- the plain MLE is infinite for most of them -- with the pooled tie parameters). The Laplace EM alone
(no importance-sampling correction) shrinks ``Sigma`` and covered 87% in the MaxDiff case; with one tied ranking per
respondent (the survey's format) the importance-sampling rounds do not settle, the Laplace fit is kept, and the
intervals are a little short (90%).

Exported profiles never carry respondent ids: :meth:`IndividualWeights.profiles` gives the pooled fit's profile only,
and the per-respondent table is written only by :meth:`IndividualWeights.write_identifiable_health_data`.
"""

from __future__ import annotations

import numbers
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_option, check_scalar
from ..exceptions import ConvergenceWarning
from ..models._best_worst import BEST_WORST_MODELS, BestWorstDesign
from ..models._choice import ChoiceDesign
from ..models._design import pseudo_terms
from ..models._optim import newton_rows
from ..profiles.intervals import z_value
from ..profiles.profile import DEFAULT_SAFETY
from ..results import Summary

__all__ = ["IndividualWeights", "fit_individual"]

METHODS = ("empirical_bayes", "mixture")
_IS_ROUNDS = 5  # importance-sampling EM rounds (at most), on the first 512 draws
_ROUND_TOL = 0.01  # they have settled once a round moves no entry of mu or Sigma by more than this
_TRUST = 0.25  # a round stops once mu or Sigma moved this far from where its draws were made
_CHUNK = 4_000_000  # doubles per batched block (respondents x draws x items, or x alternatives x parameters)


# ------------------------------------------------------------------------------------------------ per-respondent kernels
class _ChoiceKernel:
    """Per-respondent data log-likelihood, gradient and Hessian in the log-worths (Rankings with ties, paired
    comparisons), batched over respondents: the general kernel's :meth:`ChoiceDesign.fgh_batch` on each respondent's
    sufficient statistics, with the tie parameters fixed at `tau`."""

    def __init__(self, data: Any, tau: np.ndarray) -> None:
        d = ChoiceDesign.from_data(data, npseudo=0.0, ties="davidson")
        if not d.dense:
            raise ValueError("fit_individual needs a small design (few items and tie orders); this one has "
                             f"{d.Z.shape[0]} alternatives. Fix: fit fewer items, or merge long tie groups.")
        if len(tau) != len(d.tie_orders):
            raise AssertionError("internal: tie parameters of the pooled fit and the design differ")
        num, counts = d.respondent_stats()
        self.d, self.num, self.W, self.tau, self.n = d, num, counts.toarray(), np.asarray(tau, float), d.n_items
        self.has_data = self.W.sum(axis=1) > 0
        self.rows = max(1, _CHUNK // max(1, d.Z.shape[0] * d.n_params))

    def __call__(self, beta: np.ndarray, need: int = 2) -> tuple:
        N, n = beta.shape
        theta = np.column_stack([beta, np.broadcast_to(self.tau, (N, len(self.tau)))])
        f, g, H = np.empty(N), np.empty((N, n)), np.empty((N, n, n))
        for s in range(0, N, self.rows):
            sl = slice(s, s + self.rows)
            fs, gs, Hs = self.d.fgh_batch(theta[sl], self.num[sl], self.W[sl], deriv=need > 0, pseudo=False)
            f[sl] = fs
            if need:
                g[sl], H[sl] = gs[:, :n], Hs[:, :n, :n]
        return f, g, H

    def loglik_many(self, B: np.ndarray) -> np.ndarray:
        """Data log-likelihood of respondent i at ``B[m, i]`` (M, N, n) -> (M, N)."""
        M, N, _ = B.shape
        d = self.d
        st = d.alt_ptr[:-1]
        out = np.empty((M, N))
        mc = max(1, _CHUNK // max(1, N * d.Z.shape[0]))  # draws per block
        for s in range(0, M, mc):
            Bm = B[s:s + mc]
            m = len(Bm)
            theta = np.concatenate([Bm, np.broadcast_to(self.tau, (m, N, len(self.tau)))], axis=2).reshape(m * N, -1)
            eta = theta @ d.Z.T
            mx = np.maximum.reduceat(eta, st, axis=1)
            lse = mx + np.log(np.add.reduceat(np.exp(eta - mx[:, d.alt_set]), st, axis=1))
            out[s:s + m] = (np.einsum("mnp,np->mn", theta.reshape(m, N, -1), self.num)
                            - (lse.reshape(m, N, -1) * self.W[None]).sum(axis=2))
        return out


class _BestWorstKernel:
    """The same for best-worst tasks (:class:`~survey_weights.models._best_worst.BestWorstDesign`'s stages, with each
    task's utilities taken from its own respondent's log-worths)."""

    def __init__(self, data: Any, model: str) -> None:
        self.d = BestWorstDesign.from_data(data, model=model)
        self.n = self.d.n_items
        self.has_data = np.bincount(data.best_worst.resp, minlength=data.n_respondents) > 0

    def __call__(self, beta: np.ndarray, need: int = 2) -> tuple:
        N, n = beta.shape
        f, g, H = np.zeros(N), np.zeros(N * n), np.zeros(N * n * n)
        for b in self.d.blocks:  # one conditional-logit stage per block
            S, r = b["S"], b["resp"]
            ll, gl, Hl = BestWorstDesign._stage(beta[r[:, None], S], b["X"], b["chosen"], need)
            f += np.bincount(r, weights=ll, minlength=N)
            if need:
                g += np.bincount((r[:, None] * n + S).ravel(), weights=gl.ravel(), minlength=N * n)
                idx = (r[:, None, None] * (n * n) + S[:, :, None] * n + S[:, None, :]).ravel()
                H += np.bincount(idx, weights=Hl.ravel(), minlength=N * n * n)
        return f, g.reshape(N, n), H.reshape(N, n, n)

    def loglik_many(self, B: np.ndarray) -> np.ndarray:
        """Data log-likelihood of respondent i at ``B[m, i]`` (M, N, n) -> (M, N)."""
        import scipy.sparse as sp

        M, N, _ = B.shape
        out = np.zeros((M, N))
        for b in self.d.blocks:
            S, r = b["S"], b["resp"]
            T = len(r)
            inc = sp.csr_matrix((np.ones(T), (np.arange(T), r)), shape=(T, N))
            X, ch = b["X"], b["chosen"]
            rows = max(1, _CHUNK // max(1, T * len(X)))
            for s in range(0, M, rows):
                eta = B[s:s + rows][:, r[:, None], S] @ X.T  # (m, T, A)
                mx = eta.max(axis=2, keepdims=True)
                lse = mx[..., 0] + np.log(np.exp(eta - mx).sum(axis=2))
                ll = np.take_along_axis(eta, ch[None, :, None], axis=2)[..., 0] - lse
                out[s:s + rows] += np.asarray(inc.T @ ll.T).T
        return out


# ------------------------------------------------------------------------------------------------------- numerics
def _newton(fun: Any, x: np.ndarray, *, max_iter: int = 100, tol: float = 1e-9) -> tuple:
    """Maximise N concave objectives at once (rows of `x`; ``fun(x, need)`` evaluates every row) with the engine's
    batched driver (:func:`~survey_weights.models._optim.newton_rows`, the step halved row by row until the
    objective does not fall). Returns the maximisers, the Hessians there, the values and whether every row
    converged."""

    def rows_fun(z: np.ndarray, rows: np.ndarray, deriv: bool) -> tuple:
        f, g, H = fun(z, 2 if deriv else 0)
        return f[rows], (g[rows] if deriv else None), (H[rows] if deriv else None)

    x, ok, f, _, H = newton_rows(rows_fun, x, max_iter=max_iter, tol=tol, halvings=40)
    return x, H, f, bool(ok.all())


def _penalised(kernel: Any, mu: np.ndarray, P: np.ndarray) -> Any:
    """``u -> (l_i([0, u]) - (u - mu)' P (u - mu) / 2, gradient, Hessian)`` for every respondent row of `u`."""

    def fun(u: np.ndarray, need: int = 2) -> tuple:
        f, g, H = kernel(np.column_stack([np.zeros(len(u)), u]), need)
        d = u - mu
        Pd = d @ P
        f = f - 0.5 * np.einsum("ij,ij->i", d, Pd)
        return (f, g[:, 1:] - Pd, H[:, 1:, 1:] - P) if need else (f, None, None)

    return fun


def _posterior_modes(kernel: Any, mu: np.ndarray, Sigma: np.ndarray, start: np.ndarray | None = None) -> tuple:
    """E-step: every respondent's posterior mode of the contrasts and the posterior covariance ``(-H)^-1`` there."""
    P = np.linalg.inv(Sigma)
    u0 = np.tile(mu, (kernel.has_data.size, 1)) if start is None else start
    u, H, f, ok = _newton(_penalised(kernel, mu, P), u0)
    return u, np.linalg.inv(-H), f, ok


def _unpooled_log_worths(kernel: Any, *, npseudo: float = 0.5) -> np.ndarray:
    """Each respondent's own fit (no pooling): the log-worths maximising their data log-likelihood plus the package's
    default ghost-item pseudo-comparisons (``npseudo`` wins and losses per item; with ties of order 2 the pooled tie
    parameter enters them, as in :func:`~survey_weights.fit_plackett_luce`). The comparator of the validation."""
    n = kernel.n
    tie2 = None
    if isinstance(kernel, _ChoiceKernel) and 2 in kernel.d.tie_orders:
        tie2 = float(kernel.tau[kernel.d.tie_orders.index(2)])

    def fun(b: np.ndarray, need: int = 2) -> tuple:
        f, g, H = kernel(b, need)
        pf, pg, ph = pseudo_terms(b, npseudo, 2, tie2)
        if not need:
            return f + pf, None, None
        H = H.copy()
        H[:, np.arange(n), np.arange(n)] += ph[0]
        return f + pf, g + pg[0], H

    return _newton(fun, np.zeros((kernel.has_data.size, n)))[0]


def _sobol_normal(n_draws: int, dim: int, seed: Any) -> np.ndarray:
    """``n_draws`` standard-normal points in `dim` dimensions from a scrambled Sobol sequence (seeded)."""
    from scipy.special import ndtri
    from scipy.stats import qmc

    m = int(np.ceil(np.log2(max(2, n_draws))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pts = qmc.Sobol(d=dim, scramble=True, seed=seed).random_base2(m)[:n_draws]
    return ndtri(np.clip(pts, 1e-12, 1 - 1e-12))


def _weighted_quantiles(x: np.ndarray, om: np.ndarray, levels: tuple) -> np.ndarray:
    """Quantiles at `levels` of ``x`` (n, D, K) over its draws (axis 1) with normalised weights ``om`` (n, D)."""
    o = np.argsort(x, axis=1, kind="stable")
    xs = np.take_along_axis(x, o, axis=1)
    cw = np.cumsum(np.take_along_axis(np.broadcast_to(om[:, :, None], x.shape), o, axis=1), axis=1)
    return np.stack([np.take_along_axis(xs, np.minimum((cw < q).sum(axis=1, keepdims=True), x.shape[1] - 1),
                                        axis=1)[:, 0] for q in levels])


def _draws(u: np.ndarray, L: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Draws ``u_i + L_i z_d`` (D, N, d) of every respondent."""
    return u[None, :, :] + np.einsum("nij,dj->dni", L, z)


def _draw_summaries(u: np.ndarray, L: np.ndarray, z: np.ndarray, om: np.ndarray | None, levels: tuple) -> tuple:
    """Weighted mean of ``softmax([0, x])`` over the draws ``x = u_i + L_i z_d`` (importance weights ``om`` (N, D),
    None: equal) and its quantiles at `levels`."""
    N, d = u.shape
    D = len(z)
    mean = np.empty((N, d + 1))
    qs = np.empty((len(levels), N, d + 1))
    rows = max(1, _CHUNK // (D * (d + 1)))
    for s in range(0, N, rows):
        sl = slice(s, s + rows)
        x = u[sl, None, :] + np.einsum("nij,dj->ndi", L[sl], z)
        b = np.concatenate([np.zeros(x.shape[:2] + (1,)), x], axis=2)
        e = np.exp(b - b.max(axis=2, keepdims=True))
        w = e / e.sum(axis=2, keepdims=True)
        o = np.full((len(w), D), 1.0 / D) if om is None else om[sl]
        mean[sl] = np.einsum("nd,ndk->nk", o, w)
        if levels:
            qs[:, sl] = _weighted_quantiles(w, o, levels)
    return mean, qs


def _squarem(F: Any, par: np.ndarray, *, max_iter: int, tol: float, valid: Any, stop: Any = None) -> tuple:
    """Iterate the EM map `F` to a fixed point, accelerated by SQUAREM (Varadhan & Roland 2008); a proposal that is
    not `valid` falls back to two plain EM steps. ``stop(par)`` ends the iteration early. Returns (par, converged,
    iterations)."""
    n_it = 0
    for n_it in range(1, max_iter + 1):  # noqa: B007 - reported after the loop
        p1 = F(par)
        p2 = F(p1)
        r, v = p1 - par, p2 - 2 * p1 + par
        alpha = min(-np.sqrt((r @ r) / max(float(v @ v), 1e-300)), -1.0)
        cand = par - 2 * alpha * r + alpha * alpha * v
        new = F(cand) if valid(cand) else p2
        if not valid(new):
            new = p2
        change = float(np.abs(new - par).max())
        par = new
        if change < tol:
            return par, True, n_it
        if stop is not None and stop(par):
            break
    return par, False, n_it


def _pd(par: np.ndarray, d: int) -> bool:
    try:
        np.linalg.cholesky(par[d:].reshape(d, d))
    except np.linalg.LinAlgError:
        return False
    return bool(np.all(np.isfinite(par)))


def _laplace_em(kernel: Any, w: np.ndarray, mu: np.ndarray, Sigma: np.ndarray, *, max_iter: int, tol: float) -> tuple:
    """Laplace-approximation EM: E-step = every respondent's posterior mode and curvature, M-step = the weighted mean
    of the modes and the weighted mean of ``(u_i - mu)(u_i - mu)' + H_i^-1`` (:func:`_sigma_map`). Returns mu,
    Sigma, the modes, converged, iterations."""
    d = len(mu)
    state: dict = {"u": None, "ok": True}

    def F(par: np.ndarray) -> np.ndarray:
        m, S = par[:d], par[d:].reshape(d, d)
        u, V, _, ok = _posterior_modes(kernel, m, S, state["u"])
        state["u"], state["ok"] = u, state["ok"] and ok
        m_new = w @ u / w.sum()
        D = u - m_new
        return np.concatenate([m_new, _sigma_map(np.einsum("n,ni,nj->ij", w, D, D)
                                                 + np.einsum("n,nij->ij", w, V), w).ravel()])

    par, conv, n_it = _squarem(F, np.concatenate([mu, Sigma.ravel()]), max_iter=max_iter, tol=tol,
                               valid=lambda p: _pd(p, d))
    return par[:d], par[d:].reshape(d, d), state["u"], conv and state["ok"], n_it


def _is_em(kernel: Any, w: np.ndarray, mu: np.ndarray, Sigma: np.ndarray, u: np.ndarray, z: np.ndarray, *,
           max_iter: int, tol: float) -> tuple:
    """Importance-sampling EM (Monte Carlo EM with fixed draws) from the Laplace fit.

    It draws ``x_id = u_i + L_i z_d`` from an importance density around each respondent's posterior mode
    (normal, covariance 1.5 x the Laplace one), evaluates the data log-likelihood once, and then iterates the exact
    EM updates of ``mu`` and ``Sigma`` with self-normalised importance weights (cheap: only the normal density
    changes), accelerated by SQUAREM. Returns mu, Sigma, modes, Cholesky factors, weights (N, D), log marginal
    likelihood, converged, iterations.
    """
    u, V, _, ok = _posterior_modes(kernel, mu, Sigma, u)
    L = np.linalg.cholesky(1.5 * V)
    X = _draws(u, L, z)  # (D, N, d)
    ll = kernel.loglik_many(np.concatenate([np.zeros(X.shape[:2] + (1,)), X], axis=2))
    logq = -0.5 * np.sum(z * z, axis=1)[:, None] - np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)[None]
    Xf = X.reshape(-1, X.shape[2])
    d = X.shape[2]

    def step(par: np.ndarray) -> tuple:
        m, S = par[:d], par[d:].reshape(d, d)
        Li = np.linalg.inv(np.linalg.cholesky(S))
        lw = ll - logq - 0.5 * (((X - m) @ Li.T) ** 2).sum(axis=2) + np.log(np.diag(Li)).sum()
        mx = lw.max(axis=0)
        om = np.exp(lw - mx)
        tot = om.sum(axis=0)
        om /= tot
        a = (om * w[None, :]).reshape(-1, 1) / w.sum()
        m_new = (a * Xf).sum(axis=0)
        dv = Xf - m_new
        S_new = _sigma_map((a * dv).T @ dv * w.sum(), w)
        return np.concatenate([m_new, S_new.ravel()]), om, float(w @ (mx + np.log(tot)))

    start = np.concatenate([mu, Sigma.ravel()])
    par, conv, n_it = _squarem(lambda p: step(p)[0], start, max_iter=max_iter, tol=tol, valid=lambda p: _pd(p, d),
                               stop=lambda p: float(np.abs(p - start).max()) > _TRUST)
    _, om, lsum = step(par)
    mu, Sigma = par[:d], par[d:].reshape(d, d)
    return mu, Sigma, u, L, om.T, lsum - float(w.sum()) * np.log(len(z)), ok and (conv or max_iter == 0), n_it


def _sigma_map(S: np.ndarray, w: np.ndarray) -> np.ndarray:
    """M-step for Sigma from the weighted scatter ``S = sum_i w_i E[(u_i - mu)(u_i - mu)']``, with a weak
    inverse-Wishart prior worth one respondent of identity covariance: ``(S + I) / (sum w + 1)``. It keeps Sigma
    positive definite where the data hardly identify it (one ranking per respondent), at a cost of about one
    respondent's weight."""
    out = (S + np.eye(len(S))) / (float(w.sum()) + 1.0)
    return 0.5 * (out + out.T)


def _mixture_quantiles(post: np.ndarray, draws: np.ndarray, levels: tuple) -> np.ndarray:
    """Quantiles at `levels` of each row's mixture: class c's sampled weights ``draws[c]`` (C, D, K) mixed with the
    row's probabilities ``post`` (N, C)."""
    C, D, K = draws.shape
    N = len(post)
    out = np.empty((len(levels), N, K))
    rows = max(1, _CHUNK // (C * D))
    for j in range(K):
        x = draws[:, :, j].ravel()
        o = np.argsort(x, kind="stable")
        xs, lab = x[o], np.repeat(np.arange(C), D)[o]
        for s in range(0, N, rows):
            cw = np.cumsum(post[s:s + rows][:, lab] / D, axis=1)
            cw /= cw[:, -1:]
            for a, q in enumerate(levels):
                out[a, s:s + rows, j] = xs[np.minimum((cw < q).sum(axis=1), len(xs) - 1)]
    return out


# ------------------------------------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class IndividualWeights:
    """Per-respondent weights with intervals, shrunk toward the population (from :func:`fit_individual`).

    For the analyst's own use: :meth:`to_frame` and :attr:`weights` are keyed by respondent id. Everything that prints
    or exports -- ``str``, ``repr``, :meth:`summary`, :meth:`profiles` -- is population-level and names no
    respondent; the per-respondent table leaves the session only through :meth:`write_identifiable_health_data`.

    Attributes
    ----------
    method : {"empirical_bayes", "mixture"}
    items : tuple
    weights : pandas.DataFrame
        Respondent id x item: each respondent's weight (posterior mean of the worths, summing to 1 per row).
    log_worth : pandas.DataFrame
        Respondent id x item, zero-sum: the posterior mode (empirical Bayes) or the membership-weighted class
        log-worths (mixture).
    population : pandas.Series
        The population-average weight (``E softmax(beta)`` over ``N(mu, Sigma)``; mixture: the proportion-weighted
        class weights): what a respondent without answers would get.
    mu : pandas.Series
        Empirical Bayes: the population centre of the log-worths (zero-sum); mixture: the proportion-weighted class
        log-worths.
    sigma : pandas.DataFrame
        Empirical Bayes: between-respondent covariance of the zero-sum log-worths (``C Sigma C'``); mixture: the
        covariance of the class log-worths over classes.
    shrinkage : pandas.Series
        Per item, the mean over respondents of posterior variance / population variance of its zero-sum log-worth:
        0 = each respondent's data decide alone, 1 = everyone gets the population (the normal-normal ``B``; for the
        mixture the variances are over the classes, capped at 1).
    pooled : FitResult
        The pooled fit that gave the starting values and the tie parameters, with the package's defaults
        (:func:`~survey_weights.fit_plackett_luce`, :func:`~survey_weights.fit_bradley_terry` with Davidson ties, or
        :func:`~survey_weights.fit_best_worst` with ``npseudo=0.5`` so it exists for small data); :meth:`profiles`
        is its profile.
    mixture : MixtureResult or None
        The latent-class fit (method "mixture").
    n_respondents : int
    converged : bool
    n_iter : int
        EM iterations (Laplace and importance-sampling stages together; SQUAREM steps).
    loglik : float
        Empirical Bayes: the marginal log-likelihood at (``mu``, ``Sigma``), by importance sampling; mixture: its
        log-likelihood.
    n_draws : int
    seed : int or None
    """

    method: str
    items: tuple
    weights: pd.DataFrame = field(repr=False)
    log_worth: pd.DataFrame = field(repr=False)
    population: pd.Series
    mu: pd.Series
    sigma: pd.DataFrame = field(repr=False)
    shrinkage: pd.Series
    pooled: Any = field(repr=False)
    mixture: Any = field(repr=False)
    n_respondents: int
    converged: bool
    n_iter: int
    loglik: float
    n_draws: int
    seed: Any
    _state: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------------------------------------ intervals
    def _intervals(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        z_value(level)
        key = ("ci", float(level))
        if key not in self._state:
            lv = ((1 - level) / 2, (1 + level) / 2)
            st = self._state
            if self.method == "empirical_bayes":
                _, qs = _draw_summaries(st["u"], st["L"], st["z"], st["om"], lv)
            else:
                qs = _mixture_quantiles(st["post"], st["class_draws"], lv)
            w = self.weights.to_numpy()
            self._state[key] = (np.minimum(qs[0], w), np.maximum(qs[1], w))
        return self._state[key]

    def to_frame(self, *, level: float = 0.95) -> pd.DataFrame:
        """Long table, one row per respondent x criterion: ``respondent``, ``criterion``, ``weight``, ``ci_low``,
        ``ci_high`` (equal-tailed `level` interval of the respondent's weight). Keyed by respondent id: identifiable
        health data, for the analyst's own use (never an export; see :meth:`write_identifiable_health_data`).

        Examples
        --------
        >>> import survey_weights as sw
        >>> survey = sw.load_example_survey().head(60)
        >>> r = sw.Rankings.from_ratings(survey, sw.SURVEY_CRITERIA, respondent="respondent_id", scale=(1, 5))
        >>> fr = sw.fit_individual(r).to_frame()
        >>> list(fr.columns), len(fr) == 5 * r.n_respondents
        (['respondent', 'criterion', 'weight', 'ci_low', 'ci_high'], True)
        """
        lo, hi = self._intervals(level)
        N, K = lo.shape
        return pd.DataFrame({"respondent": np.repeat(self.weights.index.to_numpy(), K),
                             "criterion": np.tile(np.array(self.items, dtype=object), N),
                             "weight": self.weights.to_numpy().ravel(), "ci_low": lo.ravel(), "ci_high": hi.ravel()})

    def summary(self) -> Summary:
        """Population-level only: per item the population-average weight, centre and between-respondent SD of the
        log-worth, and the shrinkage factor; the covariance; fit statistics. No respondent is named."""
        sd = np.sqrt(np.clip(np.diag(self.sigma.to_numpy()), 0, None))
        tab = pd.DataFrame({"population_weight": self.population.to_numpy(), "log_worth": self.mu.to_numpy(),
                            "between_sd": sd, "shrinkage": self.shrinkage.to_numpy()},
                           index=pd.Index(self.items, name="item"))
        what = ("Sigma: between-respondent covariance of the zero-sum log-worths" if self.method == "empirical_bayes"
                else "covariance of the class log-worths over classes")
        notes = (f"{what}:", self.sigma.to_string(float_format=lambda x: f"{x:.4g}"))
        info = {"method": self.method, "respondents": self.n_respondents, "EM iterations": self.n_iter,
                "converged": self.converged, "log-likelihood": self.loglik, "draws": self.n_draws}
        if self.method == "empirical_bayes":
            info["mu, Sigma by"] = self._state["estimator"]
            info["smallest effective draws"] = self._state["ess"]
        if self.mixture is not None:
            info["classes"] = self.mixture.n_classes
            notes += ("Class proportions: " + ", ".join(f"{p:.3f}" for p in self.mixture.proportions),)
        return Summary(f"Individual weights ({self.method}): population", tab, info=info, notes=notes)

    def plot(self, ax: Any = None, *, respondents: Any = None, level: float = 0.95, **kwargs: Any) -> Any:
        """Weights with `level` intervals: of the named respondents (ids, one series each), or, by default, the
        population-average weight with the range in which the population puts the middle `level` of individual
        weights (not a confidence interval of the average).

        Parameters
        ----------
        ax : matplotlib Axes, optional
        respondents : list of respondent ids, optional
        level : float, default 0.95
        **kwargs
            ``title``, ``xlabel`` (:func:`~survey_weights.plotting.plot_intervals`).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ..plotting import plot_intervals

        z_value(level)
        if respondents is None:
            lo, hi = self._population_range(level)
            fr = pd.DataFrame({"item": list(self.items), "weight": self.population.to_numpy(), "ci_low": lo,
                               "ci_high": hi})
            kwargs.setdefault("xlabel", f"weight (population average; whiskers: {level:.0%} of respondents, not a CI)")
            return plot_intervals(fr, ax=ax, reference=1.0 / len(self.items), **kwargs)
        ids = list(respondents) if isinstance(respondents, (list, tuple, np.ndarray, pd.Index)) else [respondents]
        idx = self.weights.index
        bad = [r for r in ids if r not in idx]
        if bad or not ids:
            raise ValueError(f"`respondents` must be a list of respondent ids of the data. Unknown: {bad[:5]}.")
        fr = self.to_frame(level=level)
        fr = fr[fr["respondent"].isin(ids)].rename(columns={"criterion": "item"})
        kwargs.setdefault("xlabel", f"weight ({level:.0%} CI)")
        return plot_intervals(fr, key="respondent", ax=ax, labels={r: f"respondent {r}" for r in ids},
                              reference=1.0 / len(self.items), **kwargs)

    def _population_range(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        lv = ((1 - level) / 2, (1 + level) / 2)
        st = self._state
        if self.method == "empirical_bayes":
            _, qs = _draw_summaries(st["mu"][None, :], np.linalg.cholesky(st["Sigma"])[None], st["z"], None, lv)
            lo, hi = qs[0, 0], qs[1, 0]
        else:
            qs = _mixture_quantiles(self.mixture.proportions.to_numpy()[None, :], st["class_draws"], lv)
            lo, hi = qs[0, 0], qs[1, 0]
        w = self.population.to_numpy()
        return np.minimum(lo, w), np.maximum(hi, w)

    def profiles(self, *, safety: Any = DEFAULT_SAFETY, min_cell_size: int | None = None,
                 level: float = 0.95) -> list:
        """The pooled fit's profile (``[pooled.profiles(...)]``, name ``"pooled"``): never one per respondent.

        Per-respondent weights are identifiable health data; they leave only through
        :meth:`write_identifiable_health_data`, an explicit call, and never through :func:`export_profiles`.
        """
        return self.pooled.profiles(safety=safety, min_cell_size=min_cell_size, level=level)

    def write_identifiable_health_data(self, path: str | os.PathLike[str], *, acknowledge: bool = False,
                                       level: float = 0.95) -> Path:
        """Write the per-respondent table (:meth:`to_frame`) to a CSV file: IDENTIFIABLE HEALTH DATA.

        The file is keyed by respondent id; store and share it only as the study's data-protection rules allow for
        identifiable health data. It is not a profile file (:func:`~survey_weights.read_profiles` refuses it), and
        no pipeline (``make demo`` included) writes it.

        Parameters
        ----------
        path : str or os.PathLike
            Destination ``.csv``; written atomically.
        acknowledge : bool, default False
            Must be True: the caller confirms the output is identifiable health data.
        level : float, default 0.95

        Returns
        -------
        pathlib.Path
        """
        from .._util.io import atomic_write_text

        if acknowledge is not True:
            raise ValueError("write_identifiable_health_data writes one weight vector per respondent id: identifiable "
                             "health data. Fix: pass acknowledge=True to confirm, and store the file accordingly.")
        path = Path(path)
        if path.suffix.lower() != ".csv":
            raise ValueError(f"`path` must end in .csv. Got {str(path)!r}.")
        head = ("# IDENTIFIABLE HEALTH DATA: per-respondent weights keyed by respondent id (survey_weights."
                f"fit_individual, method={self.method}, level={level}). Not a profile export.\n")
        return atomic_write_text(path, head + self.to_frame(level=level).to_csv(index=False, float_format="%.10g"))

    def __repr__(self) -> str:
        w = ", ".join(f"{v:.3f}" for v in self.population)
        return (f"IndividualWeights(method={self.method!r}, {self.n_respondents} respondents, {len(self.items)} items,"
                f" population weights [{w}], converged={self.converged})")


# ------------------------------------------------------------------------------------------------------- fitting
def _check_data(rankings: Any) -> str:
    from ..data import PairedComparisons, Rankings

    if isinstance(rankings, Rankings):
        return "best_worst" if rankings.best_worst is not None else "rankings"
    if isinstance(rankings, PairedComparisons):
        return "paired"
    raise TypeError(f"`rankings` must be a survey_weights.Rankings (from_ratings / from_orderings / from_best_worst) "
                    f"or PairedComparisons. Got {type(rankings).__name__}.")


def fit_individual(
    rankings: Any,
    *,
    method: str = "empirical_bayes",
    n_classes: int | None = None,
    best_worst_model: str = "maxdiff",
    n_draws: int = 2048,
    seed: int | None = 0,
    max_iter: int = 1000,
    tol: float = 1e-6,
    n_starts: int = 10,
    progress: bool = False,
) -> IndividualWeights:
    """One weight vector per respondent, with an interval, shrunk toward the population.

    Parameters
    ----------
    rankings : Rankings or PairedComparisons
        Rankings from ratings (ties: Davidson-Luce, tie parameters fixed at the pooled fit's), orderings, best-worst
        tasks (:meth:`Rankings.from_best_worst`, fitted with `best_worst_model`) or paired comparisons. Frequency and
        sampling weights weight the population estimates (not a respondent's own posterior).
    method : {"empirical_bayes", "mixture"}, default "empirical_bayes"
        Normal random log-worths by Laplace-approximation EM (recommended), or the posterior-weighted class weights
        of a latent-class fit (coarse; see the module notes). "mixture" needs `n_classes` and rankings that are
        not best-worst tasks.
    n_classes : int, optional
        Classes of the mixture (choose with :func:`~survey_weights.select_n_classes`).
    best_worst_model : {"maxdiff", "sequential", "marginal"}, default "maxdiff"
    n_draws : int, default 2048
        Scrambled-Sobol points of the posterior (weights and intervals); at least 256.
    seed : int or None, default 0
        Seeds the draws (and the mixture's starts); the same seed gives the same result.
    max_iter : int, default 1000
        EM iterations (SQUAREM steps) of each stage.
    tol : float, default 1e-6
        An EM stage stops when no entry of ``mu`` or ``Sigma`` moves by more than `tol`.
    n_starts : int, default 10
        Random starts of the mixture.
    progress : bool, default False
        tqdm progress bar over the EM stages.

    Notes
    -----
    Memory grows as ``n_draws x n_respondents x n_items`` doubles (2,048 x 1,000 x 5: 80 MB); lower `n_draws` for
    many thousands of respondents. Run time on 300 respondents with 5 items: about 2-5 s.

    Returns
    -------
    IndividualWeights

    Raises
    ------
    TypeError
        `rankings` of another type.
    ValueError
        An unknown `method` or model, bad numbers, a respondent without a single comparison, mixture without
        `n_classes` or on best-worst tasks.

    Examples
    --------
    >>> import survey_weights as sw
    >>> survey = sw.load_example_survey().head(60)
    >>> r = sw.Rankings.from_ratings(survey, sw.SURVEY_CRITERIA, respondent="respondent_id", scale=(1, 5))
    >>> res = sw.fit_individual(r)
    >>> res.weights.shape, bool(abs(res.weights.sum(axis=1) - 1).max() < 1e-12)
    ((60, 5), True)
    >>> list(res.summary().table.columns)            # population-level: names no respondent
    ['population_weight', 'log_worth', 'between_sd', 'shrinkage']
    """
    from .._util.progress import tqdm
    from ..models import fit_best_worst, fit_bradley_terry, fit_plackett_luce

    kind = _check_data(rankings)
    check_option(method, "method", METHODS)
    check_option(best_worst_model, "best_worst_model", BEST_WORST_MODELS)
    check_scalar(n_draws, "n_draws", kind=(int, np.integer), min_val=256)
    check_scalar(max_iter, "max_iter", kind=(int, np.integer), min_val=1)
    check_scalar(tol, "tol", min_val=0.0, include_min=False)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"`seed` must be an int or None. Got {seed!r}.")
    if method == "mixture":
        if kind != "rankings":
            raise ValueError(f"method='mixture' fits latent classes of Plackett-Luce rankings; these data are "
                             f"{'best-worst tasks' if kind == 'best_worst' else 'paired comparisons'}. Fix: use "
                             "method='empirical_bayes' (the default).")
        if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 1:
            raise ValueError(f"method='mixture' needs `n_classes`, an int >= 1. Got {n_classes!r}. Fix: choose it "
                             "with survey_weights.select_n_classes.")
    items = tuple(rankings.items)
    K = len(items)
    ids = pd.Index(rankings.respondent_ids, name="respondent")
    w = np.asarray(getattr(rankings, "fit_weights", rankings.respondent_weights), dtype=float)
    if not w.sum() > 0:
        raise ValueError("The respondents' weights are all 0. Fix: give them positive weights.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if kind == "best_worst":
            pooled = fit_best_worst(rankings, model=best_worst_model, npseudo=0.5)
            kernel: Any = _BestWorstKernel(rankings, best_worst_model)
        else:
            pooled = fit_plackett_luce(rankings) if kind == "rankings" else fit_bradley_terry(rankings, ties="davidson")
            tie = pooled.tie_params.to_numpy(dtype=float)
            kernel = _ChoiceKernel(rankings, np.log(np.maximum(tie, 1e-12)))  # a tie parameter at 0: kept finite
    empty = np.flatnonzero(~kernel.has_data)
    if len(empty):
        raise ValueError(f"{len(empty)} respondent(s) (e.g. at position {int(empty[0])}) have no comparison at all "
                         "(no ranking of two or more items), so they have no individual weight. Fix: drop them, "
                         "e.g. rankings.subset(positions of the others).")
    C = np.eye(K) - 1.0 / K  # zero-sum centring
    z = _sobol_normal(int(n_draws), K - 1, seed)
    if method == "mixture":
        from .mixture import fit_mixture

        mix = fit_mixture(rankings, int(n_classes), seed=seed, n_starts=n_starts, progress=progress)
        post = mix.posterior.to_numpy()
        cw = mix.class_weights.to_numpy()
        zf = _sobol_normal(int(n_draws), K, None if seed is None else seed + 1)
        draws = []
        for k in range(mix.n_classes):
            ev, evec = np.linalg.eigh(mix.fits[k].vcov.to_numpy())
            b = mix.log_worth.to_numpy()[k] + zf @ (evec * np.sqrt(np.clip(ev, 0, None))).T
            draws.append(np.exp(b - b.max(axis=1, keepdims=True)))
            draws[-1] /= draws[-1].sum(axis=1, keepdims=True)
        lw = post @ mix.log_worth.to_numpy()
        props = mix.proportions.to_numpy()
        mu = props @ mix.log_worth.to_numpy()
        dev = mix.log_worth.to_numpy() - mu
        within = np.einsum("nc,cij->nij", post, np.stack([f.vcov.to_numpy() for f in mix.fits]))
        between = np.einsum("nc,nci,ncj->nij", post, lw[:, None, :] - mix.log_worth.to_numpy()[None],
                            lw[:, None, :] - mix.log_worth.to_numpy()[None])
        Sig = (dev * props[:, None]).T @ dev
        pv = within + between
        shrink = np.diag(np.einsum("n,nij->ij", w, pv) / w.sum()) / np.where(np.diag(Sig) > 0, np.diag(Sig), np.nan)
        state = {"post": post, "class_draws": np.stack(draws)}
        return IndividualWeights(
            method=method, items=items, weights=pd.DataFrame(post @ cw, index=ids, columns=pd.Index(items, name="item")),
            log_worth=pd.DataFrame(lw, index=ids, columns=pd.Index(items, name="item")),
            population=pd.Series(props @ cw, index=pd.Index(items, name="item"), name="weight"),
            mu=pd.Series(mu, index=pd.Index(items, name="item"), name="log_worth"),
            sigma=pd.DataFrame(Sig, index=pd.Index(items, name="item"), columns=list(items)),
            shrinkage=pd.Series(np.clip(shrink, 0, 1), index=pd.Index(items, name="item"), name="shrinkage"),
            pooled=pooled, mixture=mix, n_respondents=len(ids), converged=bool(mix.converged), n_iter=mix.n_iter,
            loglik=float(mix.loglik), n_draws=int(n_draws), seed=seed, _state=state)
    # empirical Bayes: Laplace-approximation EM, then importance-sampling EM rounds that correct it where they settle
    b0 = pooled.log_worth.to_numpy()
    bar = tqdm(total=2 + _IS_ROUNDS, desc="EM", disable=not progress)
    try:
        mu, Sigma, u, ok_l, it = _laplace_em(kernel, w, b0[1:] - b0[0], np.eye(K - 1), max_iter=int(max_iter),
                                             tol=float(tol))
        bar.update(1)
        par_l = np.concatenate([mu, Sigma.ravel()])
        estimator, settled, z512 = "Laplace EM (importance-sampling rounds did not settle)", False, z[: min(len(z), 512)]
        prev = par_l
        for _ in range(_IS_ROUNDS):
            m_r, S_r, u, *_rest, n_it = _is_em(kernel, w, mu, Sigma, u, z512, max_iter=int(max_iter), tol=float(tol))
            it += n_it
            bar.update(1)
            par = np.concatenate([m_r, S_r.ravel()])
            mu, Sigma = m_r, S_r
            if float(np.abs(par - prev).max()) < _ROUND_TOL:
                settled, estimator = True, "importance-sampling EM"
                break
            prev = par
        if not settled:  # Monte Carlo noise beats the signal (a flat likelihood): keep the deterministic Laplace fit
            mu, Sigma = par_l[: K - 1], par_l[K - 1:].reshape(K - 1, K - 1)
        # every respondent's posterior at the final (mu, Sigma), by importance sampling with all the draws
        _, _, u, L, om, loglik, ok_p, _ = _is_em(kernel, w, mu, Sigma, u, z, max_iter=0, tol=float(tol))
        bar.update(1)
    finally:
        bar.close()
    converged = bool(ok_l and ok_p)
    if not converged:
        warnings.warn(f"The Laplace EM (or a respondent's posterior mode) did not converge in max_iter={max_iter} "
                      f"iterations (tol={tol}). Fix: raise `max_iter` or `tol`.", ConvergenceWarning, stacklevel=2)
    mean, _ = _draw_summaries(u, L, z, om, ())
    X = _draws(u, L, z)
    xbar = np.einsum("nd,dni->ni", om, X)
    V = np.einsum("nd,dni,dnj->nij", om, X - xbar, X - xbar)  # posterior covariance of the contrasts
    u_mode = u
    A = np.vstack([np.zeros(K - 1), np.eye(K - 1)])  # contrasts -> log-worths with the first item at 0
    Sz = C @ A @ Sigma @ A.T @ C  # zero-sum covariance
    post_var = np.einsum("ij,njk,lk->nil", C @ A, V, C @ A)
    vz = np.diag(Sz)
    shrink = (w @ np.diagonal(post_var, axis1=1, axis2=2)) / w.sum() / np.where(vz > 0, vz, np.nan)
    pop, _ = _draw_summaries(mu[None, :], np.linalg.cholesky(Sigma)[None], z, None, ())
    idx = pd.Index(items, name="item")
    bz = np.column_stack([np.zeros(len(u_mode)), u_mode]) @ C
    state = {"u": u, "L": L, "z": z, "om": om, "mu": mu, "Sigma": Sigma, "estimator": estimator,
             "ess": float(np.min(1.0 / np.sum(om * om, axis=1)))}
    return IndividualWeights(
        method=method, items=items, weights=pd.DataFrame(mean, index=ids, columns=idx),
        log_worth=pd.DataFrame(bz, index=ids, columns=idx.copy()),
        population=pd.Series(pop[0], index=idx.copy(), name="weight"),
        mu=pd.Series(C @ np.concatenate([[0.0], mu]), index=idx.copy(), name="log_worth"),
        sigma=pd.DataFrame(Sz, index=idx.copy(), columns=list(items)),
        shrinkage=pd.Series(shrink, index=idx.copy(), name="shrinkage"), pooled=pooled, mixture=None,
        n_respondents=len(ids), converged=bool(converged), n_iter=it, loglik=loglik, n_draws=int(n_draws),
        seed=seed, _state=state)

