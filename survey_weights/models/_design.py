"""The engine's common design interface and its one pseudo-comparison term.

Every design (:class:`~._likelihood.PLDesign`, :class:`~._likelihood.BTDesign`,
:class:`~._choice.ChoiceDesign` and its :class:`~._choice.StatsView`) computes the *data* part of its weighted
log-likelihood in ``_data_fgh(theta, need)``; this base class adds the ghost-item pseudo-comparisons
(:func:`pseudo_terms`) and the single-output wrappers, so the optimiser (:mod:`._optim`) and the covariance
(:mod:`._covariance`) see one interface: ``fgh(theta, need=2, pseudo=True) -> (f, g, H)``, ``free(ref)``,
``start()``, ``n_params``, ``n_items``, ``npseudo``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["Design", "pseudo_terms", "pseudo_terms_batch"]


def pseudo_terms(beta: np.ndarray, npseudo: float, need: int) -> tuple[float, Any, Any]:
    """Ghost-item pseudo-comparisons: npseudo wins + npseudo losses of every item vs log-worth 0."""
    lse = np.logaddexp(0.0, beta)
    f = float(npseudo * np.sum(beta - 2.0 * lse))
    if need == 0:
        return f, None, None
    sig = np.exp(beta - lse)
    g = npseudo * (1.0 - 2.0 * sig)
    h = -2.0 * npseudo * sig * (1.0 - sig) if need >= 2 else None
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

    def free(self, ref: int | None = 0) -> np.ndarray:
        """Boolean mask of free parameters: all when npseudo > 0, else all but ``beta[ref]``."""
        m = np.ones(self.n_params, dtype=bool)
        if self.npseudo == 0 and ref is not None:
            m[ref] = False
        return m

    def start(self) -> np.ndarray:
        return np.zeros(self.n_params)

    def _data_fgh(self, theta: np.ndarray, need: int) -> tuple[float, Any, Any]:  # pragma: no cover
        raise NotImplementedError

    def fgh(self, theta: np.ndarray, need: int = 2, pseudo: bool = True) -> tuple[float, Any, Any]:
        theta = np.asarray(theta, dtype=float)
        f, g, H = self._data_fgh(theta, need)
        if pseudo and self.npseudo > 0:
            ix = self.pseudo_idx
            pf, pg, ph = pseudo_terms(theta[ix], self.npseudo, need)
            f += pf
            if need >= 1:
                g = g.copy()
                g[ix] += pg
            if need >= 2:
                H = H.copy()
                H[ix, ix] += ph
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


def pseudo_terms_batch(beta: np.ndarray, npseudo: float, need: int) -> tuple[np.ndarray, Any, Any]:
    """:func:`pseudo_terms` for rows of ``beta`` (B, n): values (B,), gradients and Hessian diagonals (B, n)."""
    lse = np.logaddexp(0.0, beta)
    f = npseudo * np.sum(beta - 2.0 * lse, axis=1)
    if need == 0:
        return f, None, None
    sig = np.exp(beta - lse)
    return f, npseudo * (1.0 - 2.0 * sig), -2.0 * npseudo * sig * (1.0 - sig)
