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
from ._design import Design

__all__ = ["CovSource", "covariance", "make_result", "vcov_fixed_ref"]


class CovSource:
    """What the covariance needs, kept by a result until its ``vcov_full`` is first asked for (picklable)."""

    def __init__(self, design: Any, theta: np.ndarray, H: np.ndarray, ref: int, chol: Any,
                 meat: np.ndarray | None = None) -> None:
        self.n, self.theta, self.H, self.ref, self.chol, self.meat = design.n_items, theta, H, ref, chol, meat
        # the pseudo terms' Hessian, as a function of theta only (the design itself is not kept)
        self.pseudo = _PseudoOnly(design)
        self.L = design.report_map()

    def compute(self) -> np.ndarray:
        with single_thread_blas(True):
            V, _ = vcov_fixed_ref(self.pseudo, self.theta, self.H, self.ref, chol=self.chol)
            if self.meat is not None:  # the sandwich A^-1 B A^-1 (models._robust)
                V = V @ self.meat @ V
            if self.L is not None:
                V = self.L @ V @ self.L.T
            return _center(V, self.n)


class _PseudoOnly(Design):
    """The pseudo-comparison part of a design (picklable; no data)."""

    def __init__(self, design: Any) -> None:
        self.n_items, self.tie_orders, self.npseudo = design.n_items, tuple(design.tie_orders), design.npseudo
        self._n_params, self._idx, self._tie = design.n_params, np.asarray(design.pseudo_idx), design.pseudo_tie_idx
        self.prior, self.item_basis = design.prior, design.item_basis

    @property
    def n_params(self) -> int:
        return self._n_params

    @property
    def pseudo_idx(self) -> np.ndarray:
        return self._idx

    @property
    def pseudo_tie_idx(self) -> int | None:
        return self._tie


def covariance(H: np.ndarray, keep: np.ndarray, *, pseudo_H: np.ndarray | None = None,
               penal_keep: np.ndarray | None = None, chol: Any = None) -> tuple[np.ndarray, str]:
    """The engine's one covariance routine: the inverse *data* information on the parameters `keep`.

    As R's PlackettLuce, the information is the data Hessian (pseudo-comparisons excluded) at the
    (pseudo-data) estimate: ``-(H - pseudo_H)`` on `keep` (one reference parameter fixed), where `H` is the
    Hessian of the fitted objective and `pseudo_H` that of its pseudo-comparison terms.  When
    that is singular or ill-conditioned (items that never share a choice set) the penalised information on
    `penal_keep` is inverted instead (pseudo data present), else its pseudo-inverse.  ``chol``: a Cholesky
    factor (upper, LAPACK layout) of exactly ``-H[keep, keep]``, reused when there are no pseudo terms.

    Returns the (p, p) covariance (zeros outside the inverted block) and which information was used:
    ``"data"``, ``"penalised"`` or ``"pinv"``.
    """
    p = H.shape[0]
    kidx = np.flatnonzero(keep)
    V = np.zeros((p, p))
    has_pseudo = pseudo_H is not None
    try:
        if chol is not None and not has_pseudo:
            c = chol  # the optimiser's factor of this very matrix
            diagA = -np.diag(H)[kidx]
            if not np.all(np.isfinite(c)):
                raise ValueError("non-finite information")
        else:
            A = H[np.ix_(kidx, kidx)]
            np.negative(A, out=A)
            if has_pseudo:
                A += pseudo_H[np.ix_(kidx, kidx)]
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
        if len(kidx) == p - 1 and kidx[0] == 1:
            V[1:, 1:] = Vi
        else:
            V[np.ix_(kidx, kidx)] = Vi
        return V, "data"
    except (np.linalg.LinAlgError, ValueError):
        if has_pseudo:
            pk = np.ones(p, bool) if penal_keep is None else penal_keep
            pidx = np.flatnonzero(pk)
            Ap = -H[np.ix_(pidx, pidx)]
            try:
                V[np.ix_(pidx, pidx)] = np.linalg.inv(Ap)
            except np.linalg.LinAlgError:
                V[np.ix_(pidx, pidx)] = np.linalg.pinv(Ap)
            return V, "penalised"
        Hd = -H[np.ix_(kidx, kidx)]
        V[np.ix_(kidx, kidx)] = np.linalg.pinv(Hd)
        return V, "pinv"


def vcov_fixed_ref(design: Any, theta: np.ndarray, H: np.ndarray, ref: int,
                   chol: Any = None) -> tuple[np.ndarray, str]:
    """Covariance of a plain fit's theta with ``beta[ref]`` fixed at 0 (see :func:`covariance`).
    ``chol``: the optimiser's ``(factor, free indices)`` of ``-H[free, free]``."""
    npseudo = design.npseudo
    p = len(theta)
    keep = design.info_keep(ref)
    if keep.all():  # a prior (MAP: the posterior covariance) or structured worths: invert the whole information
        return covariance(H, keep, pseudo_H=design.penalty(theta, 2)[2] if npseudo > 0 else None)
    c = None
    if (chol is not None and npseudo == 0 and chol[0].shape == (p - 1, p - 1)
            and np.array_equal(chol[1], np.flatnonzero(keep))):
        c = chol[0]
    pH = design.penalty(theta, 2)[2] if npseudo > 0 else None
    return covariance(H, keep, pseudo_H=pH, chol=c)


def _center(V: np.ndarray, n: int) -> np.ndarray:
    """``C V C^T`` with ``C = blockdiag(I_n - J_n / n, I)``: zero-sum log-worths (O(p^2), not two GEMMs)."""
    Vz = V.copy()
    Vz[:n] -= Vz[:n].mean(axis=0)
    Vz[:, :n] -= Vz[:, :n].mean(axis=1)[:, None]
    return Vz


def make_result(cls: type, design: Any, opt: Any, *, method: str, ref: int = 0, meat: np.ndarray | None = None,
                **extra: Any) -> FitResult:
    """Assemble a result from a design and an optimiser result (shared by the fitters).

    ``opt.objective`` must be the objective (pseudo terms included) at ``opt.theta``, as every optimiser of
    :mod:`survey_weights.models._optim` returns it: the data log-likelihood is derived from it instead of
    another pass over the data.
    """
    n, p = design.n_items, design.n_params
    theta = opt.theta.copy()  # the result's own, shared with its covariance source
    rep = theta if design.report_map() is None else design.report_map() @ theta
    beta = rep[:n]
    n_eff = len(rep) - n - len(design.tie_orders)  # coefficients beyond the worths
    eff_names = list(design.extra_names)
    if design.item_basis is not None:
        eff_names = list(getattr(design, "basis_names", [f"x{j}" for j in range(design.item_basis.shape[1])])) \
            + eff_names
    eff_names = eff_names[:n_eff] + [f"effect{j}" for j in range(len(eff_names), n_eff)]
    items = tuple(design.items)
    cov = None if opt.hess is None else CovSource(design, theta, opt.hess, ref, getattr(opt, "chol", None), meat)
    tie_names = tuple(f"tie{k}" for k in design.tie_orders)
    loglik = float(opt.objective)
    if design.has_penalty:
        loglik -= design.penalty(theta, 0)[0]
    if not np.isfinite(loglik):
        loglik = design.loglik(theta, pseudo=False)
    null_fn = getattr(design, "null_loglik", None)
    null = null_fn() if null_fn is not None else design.loglik(np.zeros(p), pseudo=False)
    return cls(
        items=items,
        log_worth=pd.Series(beta - beta.mean(), index=label_index(items, "item"), name="log_worth", copy=False),
        tie_params=pd.Series(np.exp(rep[n + n_eff:]), index=label_index(tie_names), name="delta", dtype=float,
                             copy=False),
        effects=pd.Series(rep[n:n + n_eff], index=pd.Index(eff_names, name="effect"), name="estimate", dtype=float),
        loglik=loglik,
        null_loglik=float(null),
        df_model=(n - 1 if design.item_basis is None else 0) + n_eff + len(design.tie_orders),
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
