"""The engine's common design interface and its one pseudo-comparison term.

Every design (:class:`~._likelihood.PLDesign`, :class:`~._likelihood.BTDesign`,
:class:`~._choice.ChoiceDesign` and its :class:`~._choice.StatsView`) computes the *data* part of its weighted
log-likelihood in ``_data_fgh(theta, need)``; this base class adds the ghost-item pseudo-comparisons
(:func:`pseudo_terms`) and the single-output wrappers, so the optimiser (:mod:`._optim`) and the covariance
(:mod:`._covariance`) see one interface: ``fgh(theta, need=2, pseudo=True) -> (f, g, H)``, ``free(ref)``,
``start()``, ``n_params``, ``n_items``, ``npseudo``.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["Design", "NormalPrior", "pseudo_terms"]


class NormalPrior:
    """A multivariate normal prior on the log-worths (MAP estimation), as PlackettLuce's ``normal = list(mu,
    Sigma)`` and choix's ``alpha`` (an isotropic prior of precision ``2 alpha``).

    Parameters
    ----------
    mu : float or array (n,)
        Prior mean of the log-worths.
    sigma : float, array (n,) or array (n, n)
        Prior variance (a scalar for all items), variances, or a covariance matrix (symmetric positive
        definite).
    n : int
        Number of items.
    """

    def __init__(self, mu: Any, sigma: Any, n: int) -> None:
        mu_a = np.broadcast_to(np.asarray(mu, dtype=float), (n,)) if np.ndim(mu) == 0 else np.asarray(mu, float)
        if mu_a.shape != (n,) or not np.all(np.isfinite(mu_a)):
            raise ValueError(f"`normal['mu']` must be a finite number or {n} finite numbers (one per item). "
                             f"Got {mu!r}.")
        S = np.asarray(sigma, dtype=float)
        if S.ndim == 0:
            S = np.eye(n) * float(S)
        elif S.ndim == 1:
            S = np.diag(S) if S.shape == (n,) else S
        if S.shape != (n, n) or not np.all(np.isfinite(S)) or not np.allclose(S, S.T):
            raise ValueError(f"`normal['Sigma']` must be a positive variance, {n} variances or a symmetric {n} x {n} "
                             f"covariance matrix. Got shape {np.shape(sigma)}.")
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            raise ValueError("`normal['Sigma']` must be positive definite. Fix: check the covariance matrix "
                             "(variances > 0).") from None
        Li = np.linalg.inv(L)
        self.mu, self.sigma, self.precision = np.array(mu_a), S, Li.T @ Li

    def terms(self, beta: np.ndarray, need: int) -> tuple[float, Any, Any]:
        """Log prior density up to a constant: value, gradient and Hessian in the log-worths."""
        d = beta - self.mu
        Pd = self.precision @ d
        f = -0.5 * float(d @ Pd)
        return f, (-Pd if need >= 1 else None), (-self.precision if need >= 2 else None)


def pseudo_terms(beta: np.ndarray, npseudo: float, need: int, log_delta2: Any = None
                 ) -> tuple[Any, Any, Any]:
    """Ghost-item pseudo-comparisons: every item wins `npseudo` times and loses `npseudo` times against a ghost
    item of log-worth 0, entered as ordinary two-item rankings (as R's PlackettLuce does).

    With a tie parameter of order 2 in the model (``log_delta2``, scalar or (B,) for batches) the two-item
    choice set also has the tie alternative ``{item, ghost}`` with ``log f = log_delta2 + beta / 2``, so delta_2
    enters their probabilities too; without it, each pseudo pair is a plain Bradley-Terry pair.

    ``beta`` is (n,) or (B, n).  Returns ``f`` (float or (B,)), the gradient ``(g_beta, g_tau)`` and the Hessian
    ``(h_beta_beta diagonal, h_beta_tau, h_tau_tau)`` (``g_tau`` etc. None without a tie parameter), as far as
    `need` (0, 1, 2) asks.
    """
    a = npseudo
    if log_delta2 is None:
        L = np.logaddexp(0.0, beta)
        f = a * np.sum(beta - 2.0 * L, axis=-1)
        if need == 0:
            return f, None, None
        p1 = np.exp(beta - L)
        g = (a * (1.0 - 2.0 * p1), None)
        h = (-2.0 * a * p1 * (1.0 - p1), None, None) if need >= 2 else None
        return f, g, h
    tau = np.asarray(log_delta2, dtype=float)[..., None] if np.ndim(log_delta2) else float(log_delta2)
    u2 = tau + 0.5 * beta
    L = np.logaddexp(np.logaddexp(0.0, beta), u2)
    f = a * np.sum(beta - 2.0 * L, axis=-1)
    if need == 0:
        return f, None, None
    p1, p2 = np.exp(beta - L), np.exp(u2 - L)
    eb = p1 + 0.5 * p2  # E[z_beta]; E[z_tau] = p2
    g = (a * (1.0 - 2.0 * eb), -2.0 * a * np.sum(p2, axis=-1))
    if need < 2:
        return f, g, None
    h = (-2.0 * a * (p1 + 0.25 * p2 - eb * eb), -2.0 * a * (0.5 * p2 - eb * p2),
         -2.0 * a * np.sum(p2 - p2 * p2, axis=-1))
    return f, g, h


class Design:
    """Shared plumbing: pseudo terms, wrappers, free-parameter masks."""

    n_items: int
    tie_orders: tuple[int, ...]
    npseudo: float
    n_respondents: int

    @property
    def n_params(self) -> int:
        return self.n_items + len(self.tie_orders)

    @property
    def pseudo_idx(self) -> np.ndarray:
        """Positions in theta of the parameters the pseudo-comparisons act on (the items' log-worths, or their
        intercepts in a design with covariates)."""
        return np.arange(self.n_items)

    @property
    def pseudo_tie_idx(self) -> int | None:
        """Position in theta of log delta_2 when the model has ties of order 2 (they enter the pseudo pairs)."""
        if 2 not in self.tie_orders:
            return None
        return self.n_params - len(self.tie_orders) + self.tie_orders.index(2)

    prior: NormalPrior | None = None

    def penalty(self, theta: np.ndarray, need: int = 2) -> tuple[float, Any, Any]:
        """The non-data terms of the objective at full ``theta`` -- the pseudo-comparisons and a normal prior --
        as value, gradient (p,) and Hessian (p, p) (as far as `need` asks)."""
        p = self.n_params
        g = np.zeros(p) if need >= 1 else None
        H = np.zeros((p, p)) if need >= 2 else None
        return self._add_penalty(np.asarray(theta, dtype=float), need, 0.0, g, H)

    def _add_penalty(self, theta: np.ndarray, need: int, f: float, g: Any, H: Any) -> tuple[float, Any, Any]:
        """Add the penalty terms to (f, g, H) in place (g and H must be the caller's own arrays)."""
        ix = self.pseudo_idx
        if self.npseudo > 0:
            t = self.pseudo_tie_idx
            pf, pg, ph = pseudo_terms(theta[ix], self.npseudo, need, None if t is None else theta[t])
            f += float(pf)
            if need >= 1:
                g[ix] += pg[0]
                if t is not None:
                    g[t] += pg[1]
            if need >= 2:
                H[ix, ix] += ph[0]
                if t is not None:
                    H[ix, t] += ph[1]
                    H[t, ix] += ph[1]
                    H[t, t] += ph[2]
        if self.prior is not None:
            pf, pg, pH = self.prior.terms(theta[ix], need)
            f += pf
            if need >= 1:
                g[ix] += pg
            if need >= 2:
                H[np.ix_(ix, ix)] += pH
        return f, g, H

    @property
    def has_penalty(self) -> bool:
        return self.npseudo > 0 or self.prior is not None

    def with_prior(self, prior: NormalPrior | None) -> Design:
        """The same design with a normal prior on the log-worths (a shallow copy)."""
        d = copy.copy(self)
        d.prior = prior
        return d

    item_basis: np.ndarray | None = None
    n_extra: int = 0
    extra_names: tuple = ()

    def info_keep(self, ref: int) -> np.ndarray:
        """The parameters whose *data* information the covariance inverts: all but the reference item's log-worth
        (its level is set by the pseudo-comparisons or not at all), or all with a prior or structured worths."""
        m = np.ones(self.n_params, dtype=bool)
        if self.prior is None and self.item_basis is None:
            m[ref] = False
        return m

    def param_names(self) -> list:
        """Names of theta's entries: the items' log-worths (or the item predictors' coefficients of structured
        worths), the effects, then ``tie<k>``."""
        head = list(getattr(self, "basis_names", ())) if self.item_basis is not None else list(self.items)
        return head + list(self.extra_names) + [f"tie{k}" for k in self.tie_orders]

    def report_map(self) -> np.ndarray | None:
        """``L`` with ``L @ theta = (log-worths, effects, log ties)`` when that is not theta itself (structured
        worths), else None."""
        B = self.item_basis
        if B is None:
            return None
        n, r = B.shape
        rest = self.n_params - r
        L = np.zeros((n + r + rest, self.n_params))
        L[:n, :r] = B
        L[n:n + r, :r] = np.eye(r)
        L[n + r:, r:] = np.eye(rest)
        return L

    def free(self, ref: int | None = 0) -> np.ndarray:
        """Boolean mask of free parameters: all when npseudo > 0 or with a prior, else all but ``beta[ref]``."""
        m = np.ones(self.n_params, dtype=bool)
        if not self.has_penalty and ref is not None:
            m[ref] = False
        return m

    def start(self) -> np.ndarray:
        return np.zeros(self.n_params)

    def _data_fgh(self, theta: np.ndarray, need: int) -> tuple[float, Any, Any]:  # pragma: no cover
        raise NotImplementedError

    def fgh(self, theta: np.ndarray, need: int = 2, pseudo: bool = True) -> tuple[float, Any, Any]:
        theta = np.asarray(theta, dtype=float)
        f, g, H = self._data_fgh(theta, need)
        if pseudo and self.has_penalty:
            f, g, H = self._add_penalty(theta, need, f, None if g is None else g.copy(),
                                        None if H is None else H.copy())
        return f, g, H

    def loglik(self, theta: np.ndarray, *, pseudo: bool = True) -> float:
        return self.fgh(theta, 0, pseudo)[0]

    def grad(self, theta: np.ndarray, *, pseudo: bool = True) -> np.ndarray:
        return self.fgh(theta, 1, pseudo)[1]

    def hess(self, theta: np.ndarray, *, pseudo: bool = True) -> np.ndarray:
        return self.fgh(theta, 2, pseudo)[2]

    def wins(self) -> np.ndarray:
        """Weighted number of times each item is chosen (plus npseudo); MM needs it (tie-free data)."""
        return self._chosen()[: self.n_items] + self.npseudo

    @staticmethod
    def _sum_by_resp(resp: np.ndarray, w: np.ndarray, G: np.ndarray, n_resp: int) -> np.ndarray:
        M = sp.csr_matrix((w, (resp, np.arange(len(resp)))), shape=(n_resp, len(resp)))
        return np.asarray(M @ G)
