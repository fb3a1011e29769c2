"""Optimisers shared by the Plackett-Luce and Bradley-Terry fitters (private).

All work on a design from :mod:`._likelihood` (``fgh``, ``free``, ``wins``) and maximise the penalised
(pseudo-comparison) objective over the free parameters.  The objective is concave in ``theta`` (a
conditional logit in a linear predictor), so damped Newton with a backtracking line search converges
from any start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
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


def _newton(design: Any, theta: np.ndarray, free: np.ndarray, max_iter: int, tol: float) -> OptimResult:
    approx = getattr(design, "approx_hessian", None)
    use_approx = approx is not None and approx(theta) is not None

    def evaluate(th: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, bool]:
        if use_approx:
            f_, g_, _ = design.fgh(th, 1)
            return f_, g_, approx(th), True
        return (*design.fgh(th, 2), False)

    f, g, H, is_approx = evaluate(theta)
    for it in range(1, max_iter + 1):
        gf = g[free]
        Hf = -H[np.ix_(free, free)]
        try:
            step = sla.cho_solve(sla.cho_factor(Hf, lower=False, check_finite=False), gf, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            ridge = 1e-8 * max(1.0, float(np.abs(np.diag(Hf)).max(initial=1.0)))
            step = np.linalg.lstsq(Hf + ridge * np.eye(len(gf)), gf, rcond=None)[0]
        dec = float(gf @ step)
        full = np.zeros_like(theta)
        full[free] = step
        small = np.max(np.abs(step), initial=0.0)
        if is_approx and small < 1e-4:  # close enough: finish with exact Newton steps
            use_approx = False
            f, g, H, is_approx = evaluate(theta)
            continue
        # Converged when the step is below `tol`, or when the Newton decrement (the predicted gain in the
        # objective) is below the floating-point noise of the objective itself: no line search can then
        # tell a better point from a worse one.
        noise = 64.0 * np.finfo(float).eps * max(1.0, abs(f))
        if small < tol or dec < max(tol * tol, noise):
            theta = theta + full  # last (tiny) Newton step; the Hessian changes negligibly
            return OptimResult(theta, H, True, it, design.fgh(theta, 0)[0])
        t = 1.0
        while True:
            new = theta + t * full
            fn = design.fgh(new, 0)[0]
            if np.isfinite(fn) and fn >= f + 1e-4 * t * dec:
                break
            t *= 0.5
            if t < 1e-10:
                if is_approx:
                    break
                return OptimResult(theta, H, False, it, f)
        if t < 1e-10:
            use_approx = False
            f, g, H, is_approx = evaluate(theta)
            continue
        theta = new
        f, g, H, is_approx = evaluate(theta)
    if is_approx:
        H = design.fgh(theta, 2)[2]
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
    theta = design.start() if start is None else np.array(start, dtype=float)
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
