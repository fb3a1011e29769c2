"""One covariance routine for the engine's fits, and the assembly of a fit result from a design and an optimum.

The result objects (:mod:`survey_weights.results`) never import this module: a fit hands its result a small
picklable :class:`CovSource`, whose ``compute()`` the result calls the first time a covariance is asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg.lapack import dpotrf, dpotri

from .._util.threads import single_thread_blas
from ..results import FitResult, label_index
from ._likelihood import pseudo_terms

__all__ = ["CovSource", "make_result", "vcov_fixed_ref"]


class CovSource:
    """What the covariance needs, kept by a result until its ``vcov_full`` is first asked for (picklable)."""

    def __init__(self, n: int, npseudo: float, theta: np.ndarray, H: np.ndarray, ref: int, chol: Any) -> None:
        self.n, self.npseudo, self.theta, self.H, self.ref, self.chol = n, npseudo, theta, H, ref, chol

    def compute(self) -> np.ndarray:
        with single_thread_blas(True):
            V, _ = vcov_fixed_ref(self.n, self.npseudo, self.theta, self.H, self.ref, chol=self.chol)
            return _center(V, self.n)


def vcov_fixed_ref(n: int, npseudo: float, theta: np.ndarray, H: np.ndarray, ref: int,
          chol: Any = None) -> tuple[np.ndarray, str]:
    """Covariance of theta with beta[ref] fixed at 0.

    As R's PlackettLuce, the information is the *data* Hessian (pseudo-comparisons excluded) at the
    (pseudo-data) estimate, with one reference item; when that is singular (items that never share a
    choice set) the Hessian of the penalised objective, with the ghost item as reference, is used.
    ``chol``: the optimiser's ``(factor, free indices)`` of ``-H[free, free]``, reused when it is this matrix
    (npseudo = 0 and the same reference item).
    """
    p = len(theta)
    keep = np.ones(p, dtype=bool)
    keep[ref] = False
    kidx = np.flatnonzero(keep)
    V = np.zeros((p, p))
    try:
        if (chol is not None and npseudo == 0 and chol[0].shape == (p - 1, p - 1)
                and np.array_equal(chol[1], kidx)):
            c = chol[0]  # the optimiser's factor of this very matrix
            diagA = -np.diag(H)[kidx]
            if not np.all(np.isfinite(c)):
                raise ValueError("non-finite information")
        else:
            A = H[np.ix_(kidx, kidx)]
            np.negative(A, out=A)
            if npseudo > 0:
                dk = np.arange(n - 1)  # the kept items come first in A (ref is an item)
                A[dk, dk] += pseudo_terms(theta[:n], npseudo, 2)[2][keep[:n]]
            if not np.all(np.isfinite(A)):
                raise ValueError("non-finite information")
            diagA = np.diag(A).copy()
            c, info = dpotrf(A.T, lower=False, clean=True, overwrite_a=True)
            if info != 0:
                raise np.linalg.LinAlgError("not positive definite")
        if np.min(np.abs(np.diag(c))) ** 2 < 1e-12 * np.max(np.abs(diagA)):
            raise np.linalg.LinAlgError("ill-conditioned")
        Vi, info = dpotri(c, lower=False)  # upper triangle of the inverse; c is clean, so the rest is 0
        if info != 0:
            raise np.linalg.LinAlgError("singular")
        d = np.diag(Vi).copy()
        Vi = Vi + Vi.T
        Vi[np.diag_indices_from(Vi)] = d
        if ref == 0:
            V[1:, 1:] = Vi
        else:
            V[np.ix_(kidx, kidx)] = Vi
        return V, "data"
    except (np.linalg.LinAlgError, ValueError):
        Hd = H.copy()
        if npseudo > 0:
            Hd[np.arange(n), np.arange(n)] -= pseudo_terms(theta[:n], npseudo, 2)[2]
        if npseudo == 0:
            V[np.ix_(keep, keep)] = np.linalg.pinv(-Hd[np.ix_(keep, keep)])
            return V, "pinv"
        return np.linalg.inv(-H), "penalised"


def _center(V: np.ndarray, n: int) -> np.ndarray:
    """``C V C^T`` with ``C = blockdiag(I_n - J_n / n, I)``: zero-sum log-worths (O(p^2), not two GEMMs)."""
    Vz = V.copy()
    Vz[:n] -= Vz[:n].mean(axis=0)
    Vz[:, :n] -= Vz[:, :n].mean(axis=1)[:, None]
    return Vz


def make_result(cls: type, design: Any, opt: Any, *, method: str, ref: int = 0, **extra: Any) -> FitResult:
    """Assemble a result from a design and an optimiser result (shared by the fitters).

    ``opt.objective`` must be the objective (pseudo terms included) at ``opt.theta``, as every optimiser of
    :mod:`survey_weights.models._optim` returns it: the data log-likelihood is derived from it instead of
    another pass over the data.
    """
    n, p = design.n_items, design.n_params
    theta = opt.theta.copy()  # the result's own, shared with its covariance source
    beta = theta[:n]
    items = tuple(design.items)
    cov = None if opt.hess is None else CovSource(n, design.npseudo, theta, opt.hess, ref,
                                                    getattr(opt, "chol", None))
    tie_names = tuple(f"tie{k}" for k in design.tie_orders)
    loglik = float(opt.objective)
    if design.npseudo > 0:
        loglik -= pseudo_terms_value(beta, design.npseudo)
    if not np.isfinite(loglik):
        loglik = design.loglik(theta, pseudo=False)
    null_fn = getattr(design, "null_loglik", None)
    null = null_fn() if null_fn is not None else design.loglik(np.zeros(p), pseudo=False)
    return cls(
        items=items,
        log_worth=pd.Series(beta - beta.mean(), index=label_index(items, "item"), name="log_worth", copy=False),
        tie_params=pd.Series(np.exp(theta[n:]), index=label_index(tie_names), name="delta", dtype=float, copy=False),
        loglik=loglik,
        null_loglik=float(null),
        df_model=n - 1 + len(design.tie_orders),
        n_obs=design.total_weight(),
        n_respondents=design.n_respondents,
        n_rankings=design.n_rankings,
        converged=bool(opt.converged),
        n_iter=int(opt.n_iter),
        npseudo=design.npseudo,
        method=method,
        theta=theta,
        hessian=opt.hess,  # a fresh array of the optimiser's, not shared with the design
        _cov=cov,
        **extra,
    )


def pseudo_terms_value(beta: np.ndarray, npseudo: float) -> float:
    """Value of the ghost-item pseudo-comparison terms (see :func:`~._likelihood.pseudo_terms`)."""
    return pseudo_terms(beta, npseudo, 0)[0]
