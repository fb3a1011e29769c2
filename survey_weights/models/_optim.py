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

from ._stages import dense_key_space

__all__ = ["OptimResult", "check_connected", "network_components", "newton", "newton_batch", "newton_rows", "optimize",
           "start_theta"]


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


def _sub_view(H: np.ndarray, fidx: np.ndarray | None) -> np.ndarray | None:
    """``H[fidx][:, fidx]`` as a view when fidx is None or a contiguous range, else None."""
    if fidx is None:
        return H
    if len(fidx) and fidx[-1] - fidx[0] == len(fidx) - 1:
        lo, hi = int(fidx[0]), int(fidx[-1]) + 1
        return H[lo:hi, lo:hi]
    return None


def _neg_sub(H: np.ndarray, fidx: np.ndarray | None) -> np.ndarray:
    """``-H[fidx][:, fidx]`` as a fresh C-contiguous array (one pass; slices when fidx is a range)."""
    V = _sub_view(H, fidx)
    if V is not None:
        return np.negative(V)
    Hf = H[np.ix_(fidx, fidx)]
    np.negative(Hf, out=Hf)
    return Hf


# Free dimension from which Newton systems are solved by conjugate gradients before trying Cholesky: the
# Hessian of a well-connected comparison network (many items, each compared with many others) is a weighted
# graph Laplacian whose Jacobi-scaled spectrum is tightly clustered, so a dozen matrix-vector products
# (O(p^2) each) replace an O(p^3) factorisation.  Small systems always use Cholesky.
_PCG_MIN_DIM = 400
_PCG_MAX_ITER = 60
_PCG_RTOL = 1e-11


def _pcg(H: np.ndarray, b: np.ndarray, *, rtol: float = _PCG_RTOL,
         max_iter: int = _PCG_MAX_ITER) -> np.ndarray | None:
    """Solve ``-H x = b`` (H symmetric negative definite; a view is fine) by Jacobi-preconditioned conjugate
    gradients on ``A = -H`` without forming it.

    Returns None when it does not reach ``||r|| <= rtol ||b||`` within ``max_iter`` iterations or meets a
    direction of non-positive curvature (the caller then factorises).  The true residual is recomputed
    before accepting, so recurrence drift cannot fake convergence.
    """
    d = -np.diag(H)
    if not np.all(d > 0) or not np.all(np.isfinite(b)):
        return None
    dinv = 1.0 / d

    def A(v: np.ndarray) -> np.ndarray:
        out = H @ v
        np.negative(out, out=out)
        return out

    bn = float(np.sqrt(b @ b))
    if bn == 0.0:
        return np.zeros_like(b)
    x = dinv * b  # Jacobi start
    r = b - A(x)
    z = dinv * r
    p = z.copy()
    rz = float(r @ z)
    for _ in range(max_iter):
        if float(np.sqrt(r @ r)) <= rtol * bn:
            r_true = b - A(x)
            if float(np.sqrt(r_true @ r_true)) <= 10.0 * rtol * bn:
                return x
            r = r_true
            z = dinv * r
            p = z.copy()
            rz = float(r @ z)
        Ap = A(p)
        pAp = float(p @ Ap)
        if not pAp > 0.0:
            return None
        alpha = rz / pAp
        x += alpha * p
        r -= alpha * Ap
        z = dinv * r
        rz_new = float(r @ z)
        p *= rz_new / rz
        p += z
        rz = rz_new
    return None


def _solve_newton(H: np.ndarray, gf: np.ndarray, fidx: np.ndarray | None,
                  use_pcg: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Newton step ``(-H_ff)^{-1} g_f`` and the Cholesky factor used (None when solved otherwise).

    With ``use_pcg`` (large systems) conjugate gradients are tried first; then Cholesky; least squares
    with a tiny ridge when ``-H_ff`` is not positive definite.
    """
    if use_pcg:
        Hv = _sub_view(H, fidx)
        step = _pcg(H[np.ix_(fidx, fidx)] if Hv is None else Hv, gf)
        if step is not None:
            return step, None
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


def newton(design: Any, theta: np.ndarray, free: np.ndarray, max_iter: int, tol: float) -> OptimResult:
    """Damped Newton with a backtracking (Armijo) line search on the exact Hessian.

    A full Newton step on this concave objective is almost always accepted, so the trial point is evaluated
    with its gradient and Hessian at once (one evaluation per iteration instead of a value-only line-search
    evaluation followed by a full one); only a rejected full step falls back to value-only backtracking.
    The iterates are the same as with a separate line search.  Large systems (``_PCG_MIN_DIM`` free
    parameters or more) are solved by conjugate gradients, falling back to Cholesky for the rest of the fit
    as soon as CG fails once (a poorly connected network).
    """
    all_free = bool(free.all())
    fidx = None if all_free else np.flatnonzero(free)
    use_pcg = int(free.sum()) >= _PCG_MIN_DIM
    f, g, H = design.fgh(theta, 2)
    for it in range(1, max_iter + 1):
        gf = g if all_free else g[fidx]
        step, chol = _solve_newton(H, gf, fidx, use_pcg)
        if use_pcg and chol is not None:
            use_pcg = False  # CG did not converge here: this network needs the factorisation
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
            # The last (tiny) Newton step; the Hessian changes negligibly and the objective there is the
            # quadratic model's f + dec / 2 (exact to third order in a step this small: no extra pass).
            theta = theta + full
            factor = None if chol is None else (chol, np.flatnonzero(free))
            return OptimResult(theta, H, True, it, f + 0.5 * max(dec, 0.0), chol=factor)
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


def newton_rows(fun: Any, x0: np.ndarray, *, max_iter: int, tol: float, halvings: int = 30,
                solve: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Damped Newton for B concave maximisations at once, one per row of ``x0`` (B, p): the engine's one batched
    driver (the bootstrap's replicates, :func:`newton_batch`; every respondent's posterior mode in
    :mod:`survey_weights.subgroups.individual`).

    ``fun(x, rows, deriv)`` returns the objectives (len(rows),), gradients (len(rows), p) and Hessians
    (len(rows), p, p) of problems ``rows`` (an index array) at ``x[rows]``, where ``x`` is (B, p); with
    ``deriv=False`` only the objectives are used. ``solve(g, H, rows)`` returns the ascent steps (default: the
    Newton step ``solve(-H, g)``). Each row takes its step, halved for that row alone until its objective does
    not fall (at most ``halvings`` times; then the halved step is taken), and is done once the step it took is
    below ``tol`` in every coordinate.

    Returns x (B, p), converged (B,), and the objectives, gradients and Hessians at the returned x.
    """
    x = np.array(x0, dtype=float)
    ok = np.zeros(len(x), bool)
    act = np.arange(len(x))
    f, g, H = fun(x, act, True)
    F, G, HH = np.array(f, dtype=float), np.array(g, dtype=float), np.array(H, dtype=float)
    for _ in range(max_iter):
        step = solve(g, H, act) if solve is not None else _solve_rows(-H, g)
        t = np.ones(len(act))
        trial = x.copy()
        trial[act] = x[act] + step
        for _ in range(halvings):  # step halving, only where the objective went down
            fn = fun(trial, act, False)[0]
            bad = ~(fn >= f - 1e-12 * (1 + np.abs(f)))
            if not bad.any():
                break
            t[bad] /= 2
            trial[act[bad]] = x[act[bad]] + t[bad, None] * step[bad]
        x[act] = trial[act]
        f, g, H = fun(x, act, True)
        F[act], G[act], HH[act] = f, g, H
        done = np.max(np.abs(t[:, None] * step), axis=1, initial=0.0) < tol
        ok[act[done]] = True
        act, f, g, H = act[~done], f[~done], g[~done], H[~done]
        if not len(act):
            break
    return x, ok, F, G, HH


def newton_batch(design: Any, theta0: np.ndarray, lin: np.ndarray, W: np.ndarray, free: np.ndarray, *,
                 max_iter: int, tol: float, hold: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`newton` for B problems of one design at once (the bootstrap's replicates), on :func:`newton_rows`.

    ``theta0`` (B, p) starts, ``lin`` (B, p) and ``W`` (B, n_sets) the problems' sufficient statistics
    (:meth:`~._choice.ChoiceDesign.stats`); ``free`` the mask of :meth:`free`.  The same iteration as the
    single-problem driver: a Newton step on the free parameters, halved (per problem) until the objective
    does not decrease, stopping when the step is below `tol`.  ``hold`` (B, p): parameters of single problems
    kept at their start (e.g. a tie order that a bootstrap replicate does not show, whose MLE is at -inf).
    Returns theta (B, p) and converged (B,).
    """
    fidx = np.flatnonzero(free)
    held = np.zeros((len(theta0), len(fidx)), bool) if hold is None else np.asarray(hold, bool)[:, fidx]

    def fun(x: np.ndarray, rows: np.ndarray, deriv: bool) -> tuple:
        return design.fgh_batch(x[rows], lin[rows], W[rows], deriv=deriv)

    def solve(g: np.ndarray, H: np.ndarray, rows: np.ndarray) -> np.ndarray:
        gf, Hf = _hold(g[:, fidx], -H[:, fidx[:, None], fidx], held[rows])
        step = np.zeros_like(g)
        step[:, fidx] = _solve_rows(Hf, gf)
        return step

    theta, ok, *_ = newton_rows(fun, theta0, max_iter=max_iter, tol=tol, solve=solve)
    return theta, ok


def _solve_rows(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A[i] x[i] = b[i]`` for a stack (B, p, p) / (B, p); least squares row by row when one is singular."""
    try:
        return np.linalg.solve(A, b[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return np.stack([np.linalg.lstsq(a, bb, rcond=None)[0] for a, bb in zip(A, b)])


def _hold(g: np.ndarray, A: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients and (positive definite) information with the `held` parameters given a zero step."""
    if not held.any():
        return g, A
    g = np.where(held, 0.0, g)
    A = np.where(held[:, :, None] | held[:, None, :], 0.0, A)
    b, i = np.nonzero(held)
    A[b, i, i] = 1.0
    return g, A


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
    from scipy.optimize import minimize  # lazy: scipy.optimize (and the scipy.spatial it loads) is slow to import

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


def start_theta(design: Any) -> np.ndarray:
    """The default start: the design's own (zeros, or a closed-form guess), or for large tie-free data the fit
    on a random subsample (``design.warm_subsample()``)."""
    sub = design.warm_subsample() if hasattr(design, "warm_subsample") else None
    if sub is None:
        return np.array(design.start(), dtype=float)
    with np.errstate(all="ignore"):
        th = newton(sub, np.zeros(design.n_params), np.ones(design.n_params, bool), 50, 1e-4).theta
    return th if np.all(np.isfinite(th)) else np.zeros(design.n_params)


def optimize(design: Any, *, method: str, start: np.ndarray | None, max_iter: int, tol: float,
             ref: int = 0) -> OptimResult:
    """Maximise the design's objective; ``start`` is a full theta (length ``design.n_params``) or None."""
    free = design.free(ref)
    if start is None:
        theta = start_theta(design)
        if design.npseudo == 0 and not free[ref]:  # a data-driven start: move it to beta[ref] = 0
            theta[: design.n_items] -= theta[ref]
    else:
        theta = np.array(start, dtype=float)
    if theta.shape != (design.n_params,):
        raise ValueError(f"`start` must have length {design.n_params} (log-worths then log tie parameters). "
                         f"Got shape {theta.shape}.")
    theta[~free] = 0.0
    if method == "newton":
        return newton(design, theta, free, max_iter, tol)
    if method == "mm":
        if not design.tie_free:
            raise ValueError("method='mm' (Hunter's MM) handles tie-free data only. Got data with ties; "
                             "use method='newton' or method='lbfgs'.")
        return _mm(design, theta, free, max_iter, tol)
    if method == "lbfgs":
        return _lbfgs(design, theta, free, max_iter, tol)
    raise ValueError(f"Unknown `method` {method!r}. Choose one of {{'newton', 'mm', 'lbfgs'}}.")


def _comparison_graph(design: Any) -> tuple[Any, Any, Any]:
    """The directed 'beats or ties' graph of the design as a CSR matrix, with its edge lists when computed."""
    from scipy.sparse import csr_matrix

    n = design.n_items
    mask_fn = getattr(design, "edge_mask", None)  # Bradley-Terry designs: the adjacency directly
    mark = None if mask_fn is None else mask_fn()
    src = dst = key = None
    if mark is None:
        src, dst = design.edges()
        if len(src) > 4 * n:
            key = src.astype(np.int64) * n + dst
            if dense_key_space(n, len(key)):
                # a dense key space (e.g. 100k rankings of 20 items): mark the distinct (src, dst) cells
                mark = np.zeros(n * n, dtype=bool)
                mark[key] = True
            else:
                key = np.unique(key)  # sorted distinct edges: CSR order
    if mark is not None:
        key = np.flatnonzero(mark)  # flat positions come out sorted, i.e. already in CSR order
    if key is not None:
        indptr = np.searchsorted(key, np.arange(0, n * n + 1, n))
        G = csr_matrix((np.ones(len(key)), key % n, indptr), shape=(n, n))
    else:
        G = csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    return G, src, dst


def _show_components(items: tuple, lab: np.ndarray, k: int, limit: int = 6) -> str:
    """The components, smallest first, as ``{a, b}; {c}`` (at most `limit` of them, 8 items each)."""
    sizes = np.bincount(lab)
    comps = sorted(range(k), key=lambda c: (sizes[c], c))
    shown = "; ".join("{" + ", ".join(map(str, [items[i] for i in np.flatnonzero(lab == c)][:8]))
                      + (", ..." if sizes[c] > 8 else "") + "}" for c in comps[:limit])
    return shown + ("; ..." if k > limit else "")


def network_components(design: Any, items: tuple) -> list[list[Any]]:
    """The (weakly) connected components of the comparison network, largest first: items linked by any chain
    of comparisons, whatever their outcomes. One component means every pair of items is compared, directly
    or through others; an item that no ranking contains is a component of its own."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = design.n_items
    if n <= 1:
        return [list(items)]
    arrays = getattr(design, "_arrays", None)  # Plackett-Luce designs: the rankings' CSR arrays
    if arrays is not None and "ptr" in arrays:
        ptr, item, top_k = arrays["ptr"], arrays["item"], arrays["top_k"]
        lens = np.diff(ptr)
        if np.any(top_k & (lens >= 1) & (lens < n)):
            return [list(items)]  # a top-k ranking links every unranked item to its ranked ones
        # consecutive items of one ranking are compared: those links span each ranking's items
        link = np.ones(len(item), dtype=bool)
        link[ptr[:-1][lens > 0]] = False
        at = np.flatnonzero(link)
        key = item[at - 1].astype(np.int64) * n + item[at]
        if "unranked_ptr" in arrays:  # a declared shown-but-unranked item is compared with its ranking's first
            u_ptr, u_item = arrays["unranked_ptr"], arrays["unranked_item"]
            u_rank = np.repeat(np.arange(len(lens)), np.diff(u_ptr))
            ok = lens[u_rank] > 0
            key = np.concatenate([key, item[ptr[u_rank[ok]]].astype(np.int64) * n + u_item[ok]])
        if dense_key_space(n, len(key)):
            mark = np.zeros(n * n, dtype=bool)
            mark[key] = True
            key = np.flatnonzero(mark)
        else:
            key = np.unique(key)
        G = csr_matrix((np.ones(len(key)), key % n, np.searchsorted(key, np.arange(0, n * n + 1, n))), shape=(n, n))
    else:
        G = _comparison_graph(design)[0]
    k, lab = connected_components(G, directed=True, connection="weak")
    sizes = np.bincount(lab, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], c))
    return [[items[i] for i in np.flatnonzero(lab == c)] for c in order]


def check_connected(design: Any, items: tuple) -> None:
    """Raise ValueError naming the items when the win graph is not strongly connected (npseudo = 0)."""
    from scipy.sparse.csgraph import connected_components

    n = design.n_items
    if n <= 1:
        return
    G, src, dst = _comparison_graph(design)
    k, lab = connected_components(G, directed=True, connection="strong")
    if k == 1:
        return
    if src is None:
        src, dst = design.edges()
    out_deg = np.bincount(src, minlength=n)
    in_deg = np.bincount(dst, minlength=n)
    present = (out_deg + in_deg) > 0
    never_lose = [items[i] for i in np.flatnonzero((in_deg == 0) & present)]
    never_win = [items[i] for i in np.flatnonzero((out_deg == 0) & present)]
    absent = [items[i] for i in np.flatnonzero(~present)]
    parts = [f"The comparison network is not strongly connected ({k} components), so the maximum-likelihood "
             f"estimate does not exist with npseudo=0."]
    if never_lose:
        parts.append(f"Items that never lose: {', '.join(map(str, never_lose))}.")
    if never_win:
        parts.append(f"Items that never win: {', '.join(map(str, never_win))}.")
    if absent:
        parts.append(f"Items never compared: {', '.join(map(str, absent))}.")
    parts.append(f"Smallest components: {_show_components(items, lab, k)}.")
    parts.append("Fix: use npseudo > 0 (e.g. the default 0.5) or drop these items.")
    raise ValueError(" ".join(parts))
