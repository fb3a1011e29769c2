"""Optimisers shared by the Plackett-Luce and Bradley-Terry fitters (private).

All work on a design from :mod:`._likelihood` (``fgh``, ``free``, ``wins``) and maximise the penalised
(pseudo-comparison) objective over the free parameters.  The objective is concave in ``theta`` (a
conditional logit in a linear predictor), so damped Newton with a backtracking line search converges
from any start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotrs as _potrs
from scipy.optimize import minimize
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["OptimResult", "optimize", "check_connected"]


@dataclass
class OptimResult:
    theta: np.ndarray
    hess: np.ndarray | None  # Hessian of the objective at theta (pseudo terms included), or None
    converged: bool
    n_iter: int
    objective: float
    # Cholesky factor (upper, LAPACK potrf layout) of -H[free, free] and the free indices, when the last
    # Newton step was solved with it: the covariance reuses it (npseudo = 0) instead of factorising again.
    chol: Any = field(default=None, repr=False)


def _neg_sub(H: np.ndarray, fidx: np.ndarray | None) -> np.ndarray:
    """``-H[fidx][:, fidx]`` as a fresh C-contiguous array (one pass; slices when fidx is a range)."""
    if fidx is None:
        return np.negative(H)
    if len(fidx) and fidx[-1] - fidx[0] == len(fidx) - 1:  # contiguous, e.g. all but the first item
        lo, hi = int(fidx[0]), int(fidx[-1]) + 1
        return np.negative(H[lo:hi, lo:hi])
    Hf = H[np.ix_(fidx, fidx)]
    np.negative(Hf, out=Hf)
    return Hf


def _solve_newton(H: np.ndarray, gf: np.ndarray, fidx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Newton step ``(-H_ff)^{-1} g_f`` by Cholesky, and the factor; least squares with a tiny ridge (and no
    factor) when ``-H_ff`` is not positive definite."""
    Hf = _neg_sub(H, fidx)
    try:
        # symmetric: the transpose is the same matrix in Fortran order, factorised in place without copies
        c, info = _potrf(Hf.T, lower=False, overwrite_a=True, clean=True)
        if info != 0:
            raise np.linalg.LinAlgError("not positive definite")
        step, info = _potrs(c, gf, lower=False)
        if info != 0 or not np.all(np.isfinite(step)):
            raise np.linalg.LinAlgError("potrs failed")
        return step, c
    except (np.linalg.LinAlgError, ValueError):
        Hf = _neg_sub(H, fidx)
        ridge = 1e-8 * max(1.0, float(np.abs(np.diag(Hf)).max(initial=1.0)))
        return np.linalg.lstsq(Hf + ridge * np.eye(len(gf)), gf, rcond=None)[0], None


def _newton(design: Any, theta: np.ndarray, free: np.ndarray, max_iter: int, tol: float) -> OptimResult:
    """Damped Newton with a backtracking (Armijo) line search on the exact Hessian.

    A full Newton step on this concave objective is almost always accepted, so the trial point is evaluated
    with its gradient and Hessian at once (one evaluation per iteration instead of a value-only line-search
    evaluation followed by a full one); only a rejected full step falls back to value-only backtracking.
    The iterates are the same as with a separate line search.
    """
    all_free = bool(free.all())
    fidx = None if all_free else np.flatnonzero(free)
    f, g, H = design.fgh(theta, 2)
    for it in range(1, max_iter + 1):
        gf = g if all_free else g[fidx]
        step, chol = _solve_newton(H, gf, fidx)
        dec = float(gf @ step)
        if all_free:
            full = step
        else:
            full = np.zeros_like(theta)
            full[fidx] = step
        small = np.max(np.abs(step), initial=0.0)
        # Converged when the step is below `tol`, or when the Newton decrement (the predicted gain in the
        # objective) is below the floating-point noise of the objective itself: no line search can then
        # tell a better point from a worse one.
        noise = 64.0 * np.finfo(float).eps * max(1.0, abs(f))
        if small < tol or dec < max(tol * tol, noise):
            theta = theta + full  # last (tiny) Newton step; the Hessian changes negligibly
            factor = None if chol is None else (chol, np.flatnonzero(free))
            return OptimResult(theta, H, True, it, design.fgh(theta, 0)[0], chol=factor)
        new = theta + full
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            fn, gn, Hn = design.fgh(new, 2)
        if not (np.isfinite(fn) and fn >= f + 1e-4 * dec):
            t = 1.0
            while True:
                t *= 0.5
                if t < 1e-10:
                    return OptimResult(theta, H, False, it, f)
                new = theta + t * full
                fn = design.fgh(new, 0)[0]
                if np.isfinite(fn) and fn >= f + 1e-4 * t * dec:
                    break
            fn, gn, Hn = design.fgh(new, 2)
        theta, f, g, H = new, fn, gn, Hn
    return OptimResult(theta, H, False, max_iter, f)


def _mm(design: Any, theta: np.ndarray, free: np.ndarray, max_iter: int, tol: float) -> OptimResult:
    """Hunter's (2004) MM / iterative scaling: alpha_i <- wins_i / sum_stages w / S (tie-free only)."""
    n = design.n_items
    wins = design.wins()
    if np.any(wins <= 0):
        raise ValueError("method='mm' needs every item to be chosen at least once (or npseudo > 0).")
    center = design.npseudo == 0
    for it in range(1, max_iter + 1):
        _, g, _ = design.fgh(theta, 1)
        new = theta.copy()
        new[:n] = theta[:n] + np.log(wins) - np.log(wins - g[:n])
        if center:
            new[:n] -= new[:n][~free[:n]].mean() if (~free[:n]).any() else new[:n].mean()
        delta = np.max(np.abs(new - theta))
        theta = new
        if delta < tol:
            f, _, H = design.fgh(theta, 2)
            return OptimResult(theta, H, True, it, f)
    f, _, H = design.fgh(theta, 2)
    return OptimResult(theta, H, False, max_iter, f)


def _lbfgs(design: Any, theta: np.ndarray, free: np.ndarray, max_iter: int, tol: float) -> OptimResult:
    x0 = theta[free]

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        th = theta.copy()
        th[free] = x
        f, g, _ = design.fgh(th, 1)
        return -f, -g[free]

    res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-15, "maxcor": 30})
    th = theta.copy()
    th[free] = res.x
    f, _, H = design.fgh(th, 2)
    ok = bool(res.success) or float(np.max(np.abs(design.fgh(th, 1)[1][free]))) < 1e-5
    return OptimResult(th, H, ok, int(res.nit), f)


def optimize(design: Any, *, method: str, start: np.ndarray | None, max_iter: int, tol: float,
             ref: int = 0) -> OptimResult:
    """Maximise the design's objective; ``start`` is a full theta (length ``design.n_params``) or None."""
    free = design.free(ref)
    if start is None:
        theta = np.array(design.start(), dtype=float)
        if design.npseudo == 0 and not free[ref]:  # a data-driven start: move it to beta[ref] = 0
            theta[: design.n_items] -= theta[ref]
    else:
        theta = np.array(start, dtype=float)
    if theta.shape != (design.n_params,):
        raise ValueError(f"`start` must have length {design.n_params} (log-worths then log tie parameters). "
                         f"Got shape {theta.shape}.")
    theta[~free] = 0.0
    if method == "newton":
        return _newton(design, theta, free, max_iter, tol)
    if method == "mm":
        if not design.tie_free:
            raise ValueError("method='mm' (Hunter's MM) handles tie-free data only. Got data with ties; "
                             "use method='newton' or method='lbfgs'.")
        return _mm(design, theta, free, max_iter, tol)
    if method == "lbfgs":
        return _lbfgs(design, theta, free, max_iter, tol)
    raise ValueError(f"Unknown `method` {method!r}. Choose one of {{'newton', 'mm', 'lbfgs'}}.")


def check_connected(design: Any, items: tuple) -> None:
    """Raise ValueError naming the items when the win graph is not strongly connected (npseudo = 0)."""
    n = design.n_items
    if n <= 1:
        return
    src, dst = design.edges()
    if len(src) > 4 * n:  # many (repeated) edges, e.g. 100k rankings of 20 items: keep the distinct ones,
        key = src.astype(np.int64) * n + dst  # sorted, so the CSR structure needs no further sorting
        key = np.flatnonzero(np.bincount(key, minlength=n * n)) if n * n <= 8 * len(key) else np.unique(key)
        src, dst = key // n, key % n
        indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))])
        G = csr_matrix((np.ones(len(dst)), dst, indptr), shape=(n, n))
    else:
        G = csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    k, lab = connected_components(G, directed=True, connection="strong")
    if k == 1:
        return
    out_deg = np.bincount(src, minlength=n)
    in_deg = np.bincount(dst, minlength=n)
    present = (out_deg + in_deg) > 0
    never_lose = [items[i] for i in np.flatnonzero((in_deg == 0) & present)]
    never_win = [items[i] for i in np.flatnonzero((out_deg == 0) & present)]
    absent = [items[i] for i in np.flatnonzero(~present)]
    sizes = np.bincount(lab)
    comps = sorted(range(k), key=lambda c: (sizes[c], c))
    shown = "; ".join("{" + ", ".join(map(str, [items[i] for i in np.flatnonzero(lab == c)][:8])) + "}"
                      for c in comps[: min(6, k)])
    parts = [f"The comparison network is not strongly connected ({k} components), so the maximum-likelihood "
             f"estimate does not exist with npseudo=0."]
    if never_lose:
        parts.append(f"Items that never lose: {', '.join(map(str, never_lose))}.")
    if never_win:
        parts.append(f"Items that never win: {', '.join(map(str, never_win))}.")
    if absent:
        parts.append(f"Items never compared: {', '.join(map(str, absent))}.")
    parts.append(f"Smallest components: {shown}.")
    parts.append("Fix: use npseudo > 0 (e.g. the default 0.5) or drop these items.")
    raise ValueError(" ".join(parts))
