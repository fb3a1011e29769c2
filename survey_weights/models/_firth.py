"""Bias-reduced (Firth 1993) estimation on the engine's general kernel.

Every model of the engine is a conditional logit in a linear predictor (canonical link), so Firth's adjusted
score equals the gradient of the Jeffreys-penalised log-likelihood ``l(theta) + 1/2 log det I(theta)``, with
``I`` the information of the free parameters (one reference item fixed).  Its gradient is
``1/2 tr(I^-1 dI/dtheta_r) = 1/2 sum_a W_s(a) p_a h_a (z_a - zbar_s)_r`` with the leverages
``h_a = (z_a - zbar_s)' I^-1 (z_a - zbar_s)`` of the alternatives.  It is maximised by modified Fisher
scoring (``theta += I^-1 U*``) with step halving on the penalised log-likelihood, as ``brglm`` (and so
``BradleyTerry2::BTm(br = TRUE)``) does.  The estimates are finite where the MLE is not (an item that never
loses in a small group), and equal BTm's for Bradley-Terry data (tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._choice import ChoiceDesign
from ._optim import OptimResult

__all__ = ["fit_firth", "firth_terms"]


def firth_terms(design: ChoiceDesign, theta: np.ndarray, free: np.ndarray
                ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """``(l, U*, I, l*)`` at theta: data log-likelihood, adjusted score (free parameters), information of the
    free parameters and the penalised log-likelihood ``l + 1/2 log det I``."""
    f, g, H = design.fgh(theta, 2, pseudo=False)
    fidx = np.flatnonzero(free)
    info = -H[np.ix_(fidx, fidx)]
    sign, logdet = np.linalg.slogdet(info)
    if sign <= 0:
        raise np.linalg.LinAlgError("the information is not positive definite")
    eta = design._eta(theta)
    _, pr = design._lse_probs(eta)
    Z = design.Z if design.dense else design.Z.toarray()
    D = Z - design._zbar(pr)[design.alt_set]  # centred alternatives (n_alt, p)
    Df = D[:, fidx]
    Ii = np.linalg.inv(info)
    h = np.einsum("ap,pq,aq->a", Df, Ii, Df)
    wph = design.Wset[design.alt_set] * pr * h
    adj = 0.5 * (wph @ Df)
    return f, g[fidx] + adj, info, f + 0.5 * logdet


def fit_firth(design: ChoiceDesign, *, ref: int = 0, start: Any = None, max_iter: int = 100,
              tol: float = 1e-8) -> OptimResult:
    """Maximise the Jeffreys-penalised log-likelihood; the result's ``hess`` is the data Hessian at the estimate
    and ``objective`` the data log-likelihood (there are no pseudo terms)."""
    if design.npseudo != 0 or design.prior is not None:
        raise ValueError("Bias reduction replaces the pseudo-comparisons and priors. Fix: npseudo=0, no prior.")
    free = design.free(ref)
    fidx = np.flatnonzero(free)
    theta = np.zeros(design.n_params) if start is None else np.array(start, dtype=float)
    theta[~free] = 0.0
    f, U, info, fs = firth_terms(design, theta, free)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is reported
        step = np.linalg.solve(info, U)
        t = 1.0
        while True:
            new = theta.copy()
            new[fidx] += t * step
            try:
                fn, Un, infon, fsn = firth_terms(design, new, free)
                if np.isfinite(fsn) and fsn >= fs - 1e-10 * (1.0 + abs(fs)):
                    break
            except np.linalg.LinAlgError:
                pass
            t *= 0.5
            if t < 1e-8:
                break
        if t < 1e-8:
            break
        theta, f, U, info, fs = new, fn, Un, infon, fsn
        if np.max(np.abs(t * step)) < tol:
            converged = True
            break
    H = design.fgh(theta, 2, pseudo=False)[2]
    return OptimResult(theta, H, converged, it, f)
