"""Score-based parameter-instability machinery for model-based trees and latent classes (private).

Two parts:

* :class:`PatternModel` compresses a :class:`~survey_weights.data.Rankings` (Plackett-Luce with ties) or a
  :class:`~survey_weights.data.PairedComparisons` (Bradley-Terry, Davidson ties) into per-respondent sufficient
  statistics: a linear "numerator" vector and counts of distinct choice sets. The log-likelihood of any weighted
  set of respondents then depends only on their weighted sums, so a model for a candidate tree node or a latent
  class is fitted on a few hundred aggregated choice sets instead of thousands of rankings. It also gives the
  per-respondent log-likelihood contributions (mixture E-step) and score contributions (``estfun``).
* M-fluctuation tests as in ``partykit::mob`` (Zeileis & Hornik 2007; Zeileis, Hothorn & Hornik 2008): the
  supLM statistic for numeric covariates, the chi-square (LMuo) statistic for categorical ones. The supLM p-value
  comes in two flavours (:func:`suplm_pvalue`): ``"partykit"``, Hansen's (1997) response-surface approximation
  interpolated in the trimming as partykit does (Estrella's (2003) formula beyond 40 parameters), which reproduces
  partykit's / psychotree's numbers and so their trees; and ``"exact"``, the exact asymptotic tail probability of
  the supremum of the squared Bessel-type bridge, from the Kolmogorov backward equation of the equivalent
  stationary radial Ornstein-Uhlenbeck process.

Model (``docs/design.md``): a choice stage with choice set A and chosen set C has probability
f(C) / sum_{S subset A, |S| in orders} f(S), f(S) = delta_|S| * prod_{i in S} alpha_i^(1/|S|). With
theta = (log-worths beta_1..beta_m, log delta for each observed tie order), log f(S) = a_S . theta is linear.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import linalg, special, stats

from . import _hansen1997

__all__ = ["PatternModel", "SUPLM_PVALUES", "bonferroni", "fluctuation_tests", "suplm_pvalue"]

_MAX_TERMS = 5_000_000


# ---------------------------------------------------------------------------------------------------------------------
# sufficient statistics
# ---------------------------------------------------------------------------------------------------------------------
def _stages_from_rankings(r) -> tuple[np.ndarray, list, np.ndarray, np.ndarray, np.ndarray]:
    """Choice stages of every ranking: (respondent, choice-set key, chosen-entry group, sizes)."""
    m = r.n_items
    lens = np.diff(r._ptr)
    nnz = int(lens.sum())
    rr = np.repeat(np.arange(r.n_rankings), lens)
    item = np.asarray(r._item, dtype=np.int64)
    rank = np.asarray(r._rank)
    start = np.ones(nnz, dtype=bool)
    if nnz > 1:
        start[1:] = (rr[1:] != rr[:-1]) | (rank[1:] != rank[:-1])
    gstart = np.flatnonzero(start)
    gid = np.cumsum(start) - 1
    gsize = np.diff(np.append(gstart, nnz))
    g_rk = rr[gstart]
    # number of items still in the choice set at each group start (ranked suffix + unranked if top-k)
    pos_in = gstart - r._ptr[g_rk]
    unranked = np.where(np.asarray(r._top_k)[g_rk], m - lens[g_rk], 0)
    aset_size = lens[g_rk] - pos_in + unranked
    valid = aset_size >= 2
    if m <= 62:
        bits = np.left_shift(np.int64(1), item)
        full = np.int64((1 << m) - 1)
    else:  # arbitrary-precision python ints
        bits = np.array([1 << int(j) for j in item], dtype=object)
        full = (1 << m) - 1
    csum = np.cumsum(bits)
    excl = csum - bits
    tot = np.add.reduceat(bits, r._ptr[:-1][lens > 0]) if nnz else bits[:0]
    tot_full = np.zeros(r.n_rankings, dtype=bits.dtype)
    tot_full[lens > 0] = tot
    within = excl[gstart] - excl[r._ptr[g_rk]]
    akey = tot_full[g_rk] - within
    akey = np.where(np.asarray(r._top_k)[g_rk], akey + (full - tot_full[g_rk]), akey)
    return valid, akey, gid, gsize, g_rk


def _members(key: int, m: int) -> list[int]:
    key = int(key)
    return [j for j in range(m) if (key >> j) & 1]


@dataclass(frozen=True, eq=False)
class PatternModel:
    """Aggregated Plackett-Luce-with-ties model over distinct choice sets (see module docstring).

    Attributes
    ----------
    items : tuple
    tie_orders : tuple of int
        Observed tie orders >= 2 (one log-delta parameter each).
    num : ndarray (N, p)
        Per-respondent numerator statistics (unweighted).
    counts : scipy.sparse.csr_matrix (N, P)
        Per-respondent counts of each choice set (last ``n_items`` sets are the ghost pseudo-pairs, count 0 here).
    weights : ndarray (N,)
        Respondent frequency weights.
    """

    items: tuple
    tie_orders: tuple
    num: np.ndarray
    counts: sp.csr_matrix
    weights: np.ndarray
    terms: np.ndarray | sp.csr_matrix
    term_pattern: np.ndarray
    term_start: np.ndarray
    n_obs_patterns: int

    # ------------------------------------------------------------------------------------------------ builders
    @classmethod
    def from_data(cls, data, *, ties: str | None = "davidson") -> PatternModel:
        """Build from :class:`Rankings` or :class:`PairedComparisons`.

        `ties` applies to paired comparisons only: "davidson" (a tie parameter) or "half" (a tie is half a win
        for each item); None is treated as "davidson" (the data then have no ties).
        """
        m = len(data.items)
        n = data.n_respondents
        if hasattr(data, "_ptr"):
            valid, akey, gid, gsize, g_rk = _stages_from_rankings(data)
            g_resp = np.asarray(data._resp)[g_rk]
            g_w = np.ones(len(gsize))
            e_item = np.asarray(data._item, dtype=np.int64)
            e_gid = gid
        else:  # paired comparisons: one stage per comparison
            a = np.asarray(data._a, dtype=np.int64)
            b = np.asarray(data._b, dtype=np.int64)
            out = np.asarray(data._outcome)
            keep = np.asarray(data._w) > 0
            a, b, out = a[keep], b[keep], out[keep]
            g_w = np.asarray(data._w)[keep]
            g_resp = np.asarray(data._resp)[keep]
            if ties == "half":  # a tie becomes half a win for each item
                t = out == 0
                a = np.concatenate([a, b[t]])
                b = np.concatenate([b, a[: len(out)][t]])
                g_resp = np.concatenate([g_resp, g_resp[t]])
                g_w = np.concatenate([np.where(t, 0.5, 1.0) * g_w, 0.5 * g_w[t]])
                out = np.concatenate([np.where(t, 1, out), np.ones(int(t.sum()), dtype=out.dtype)])
            p = len(a)
            valid = np.ones(p, dtype=bool)
            if m <= 62:
                akey = np.left_shift(np.int64(1), a) | np.left_shift(np.int64(1), b)
            else:
                akey = np.array([(1 << int(x)) | (1 << int(y)) for x, y in zip(a, b)], dtype=object)
            gsize = np.where(out == 0, 2, 1)
            winner = np.where(out == -1, b, a)
            # entries: the chosen items (both for a tie)
            tie = out == 0
            e_item = np.concatenate([winner, b[tie]])
            e_gid = np.concatenate([np.arange(p), np.flatnonzero(tie)])
        tie_orders = tuple(int(s) for s in np.unique(gsize[valid]) if s >= 2)
        tcol = {s: m + k for k, s in enumerate(tie_orders)}
        p_dim = m + len(tie_orders)
        # numerator statistics
        num = np.zeros((n, p_dim))
        ev = valid[e_gid]
        np.add.at(num, (g_resp[e_gid[ev]], e_item[ev]), (g_w / gsize)[e_gid[ev]])
        for s, c in tcol.items():
            sel = valid & (gsize == s)
            np.add.at(num[:, c], g_resp[sel], g_w[sel])
        # choice-set patterns
        keys, inv = np.unique(akey[valid], return_inverse=True)
        n_pat = len(keys)
        counts = sp.csr_matrix(
            (g_w[valid], (g_resp[valid], inv.ravel())), shape=(n, n_pat + m)
        )
        counts.sum_duplicates()
        # terms of every pattern (observed sets, then the ghost pairs {i, ghost})
        orders = (1,) + tie_orders
        rows: list[tuple[list[int], int]] = []
        tstart = [0]
        n_terms = 0
        for key in keys:
            mem = _members(key, m)
            for s in orders:
                if s > len(mem):
                    break
                for S in itertools.combinations(mem, s):
                    rows.append((list(S), s))
                    n_terms += 1
                    if n_terms > _MAX_TERMS:
                        raise ValueError(
                            "The tie orders and choice-set sizes give more than 5 million subset terms; the "
                            "Davidson-Luce tie model is too large for this data. Fix: reduce long tie groups."
                        )
            tstart.append(n_terms)
        for i in range(m):  # ghost pairs {i, ghost} (no tie alternative, as in the fitting engine)
            rows.append(([i], 1))
            rows.append(([], 1))
            tstart.append(len(rows))
        t_r, t_c, t_v = [], [], []
        for t, (mem, s) in enumerate(rows):
            for j in mem:
                t_r.append(t)
                t_c.append(j)
                t_v.append(1.0 / s)
            if s >= 2:
                t_r.append(t)
                t_c.append(tcol[s])
                t_v.append(1.0)
        T = sp.csr_matrix((t_v, (t_r, t_c)), shape=(len(rows), p_dim))
        if len(rows) * p_dim <= 4_000_000:
            T = T.toarray()
        tstart_arr = np.asarray(tstart, dtype=np.int64)
        tpat = np.repeat(np.arange(len(tstart_arr) - 1), np.diff(tstart_arr))
        return cls(
            items=tuple(data.items), tie_orders=tie_orders, num=num, counts=counts,
            weights=np.asarray(data.respondent_weights, dtype=float), terms=T, term_pattern=tpat,
            term_start=tstart_arr, n_obs_patterns=n_pat,
        )

    # ------------------------------------------------------------------------------------------------- basics
    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_params(self) -> int:
        return self.num.shape[1]

    @property
    def n_respondents(self) -> int:
        return self.num.shape[0]

    def aggregate(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted numerator sum and pattern counts for respondent weights `w` (length N)."""
        return w @ self.num, np.asarray(self.counts.T @ w).ravel()

    def pseudo(self, npseudo: float) -> tuple[np.ndarray, np.ndarray]:
        """Numerator and pattern counts of the ghost-item pseudo data (npseudo wins and losses per item)."""
        s = np.zeros(self.n_params)
        s[: self.n_items] = npseudo
        c = np.zeros(self.counts.shape[1])
        c[self.n_obs_patterns:] = 2.0 * npseudo
        return s, c

    @functools.cached_property
    def _padded(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Terms as a padded (P, K, p) array and a (P, K) validity mask, when small enough."""
        sizes = np.diff(self.term_start)
        P, K = len(sizes), int(sizes.max())
        if P * K * self.n_params > 4_000_000 or not isinstance(self.terms, np.ndarray):
            return None
        valid = np.arange(K)[None, :] < sizes[:, None]
        idx = np.where(valid, self.term_start[:-1, None] + np.arange(K)[None, :], 0)
        return self.terms[idx] * valid[:, :, None], valid

    def log_denominators(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log normalising constant of every pattern, and the term probabilities (padded (P, K) or flat)."""
        pad = self._padded
        if pad is not None:
            T3, valid = pad
            U = np.where(valid, T3 @ theta, -np.inf)
            mx = U.max(axis=1)
            E = np.exp(U - mx[:, None])
            den = E.sum(axis=1)
            return mx + np.log(den), E / den[:, None]
        u = self.terms @ theta
        st = self.term_start[:-1]
        mx = np.maximum.reduceat(u, st)
        e = np.exp(u - mx[self.term_pattern])
        den = np.add.reduceat(e, st)
        return mx + np.log(den), e / den[self.term_pattern]

    def expected_terms(self, pi: np.ndarray) -> np.ndarray:
        """Per-pattern expected term vector G (P x p): the gradient of each log denominator."""
        pad = self._padded
        if pad is not None:
            return np.einsum("pk,pkj->pj", pi, pad[0])
        T = self.terms
        if isinstance(T, np.ndarray):
            return np.add.reduceat(pi[:, None] * T, self.term_start[:-1], axis=0)
        B = sp.csr_matrix(
            (pi, (self.term_pattern, np.arange(len(pi)))), shape=(len(self.term_start) - 1, len(pi))
        )
        return np.asarray((B @ T).todense())

    def loglik(self, theta: np.ndarray, s: np.ndarray, c: np.ndarray) -> float:
        L, _ = self.log_denominators(theta)
        return float(s @ theta - c @ L)

    def evaluate(
        self, theta: np.ndarray, s: np.ndarray, c: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """Log-likelihood, gradient, negative Hessian and log denominators for aggregated statistics (s, c)."""
        L, pi = self.log_denominators(theta)
        ll = float(s @ theta - c @ L)
        G = self.expected_terms(pi)
        grad = s - c @ G
        pad = self._padded
        if pad is not None:
            T3 = pad[0]
            p = T3.shape[2]
            wT = (T3 * (c[:, None] * pi)[:, :, None]).reshape(-1, p)
            negH = wT.T @ T3.reshape(-1, p)
        else:
            T = self.terms
            wpi = c[self.term_pattern] * pi
            if isinstance(T, np.ndarray):
                negH = (T * wpi[:, None]).T @ T
            else:
                negH = np.asarray((T.T @ T.multiply(wpi[:, None])).todense())
        negH -= (G * c[:, None]).T @ G
        return ll, grad, negH, L

    # -------------------------------------------------------------------------------------------------- fitting
    def fit(
        self,
        w: np.ndarray | None = None,
        *,
        npseudo: float = 0.5,
        ref: int = 0,
        start: np.ndarray | None = None,
        max_iter: int = 100,
        tol: float = 1e-10,
        stats_: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, float, bool]:
        """Damped Newton-Raphson fit of one model (stops when the Newton decrement is below `tol` x |loglik|).

        Parameters
        ----------
        w : ndarray, optional
            Respondent weights (default: the frequency weights); ignored when `stats_` is given.
        npseudo : float
            Ghost-item pseudo wins/losses per item; 0 fixes item `ref` at log-worth 0 instead.
        stats_ : (s, c), optional
            Pre-aggregated observed statistics.

        Returns
        -------
        theta : ndarray
            Log-worths (ghost or `ref` scale) then log tie parameters.
        loglik : float
            Observed-data log-likelihood (pseudo data excluded).
        converged : bool
        """
        s_obs, c_obs = stats_ if stats_ is not None else self.aggregate(self.weights if w is None else w)
        s, c = s_obs, c_obs
        free = np.ones(self.n_params, dtype=bool)
        if npseudo > 0:
            ps, pc = self.pseudo(npseudo)
            s, c = s + ps, c + pc
        else:
            free[ref] = False
        fidx = np.flatnonzero(free)
        theta = np.zeros(self.n_params) if start is None else np.array(start, dtype=float)
        if npseudo <= 0:
            theta[: self.n_items] -= theta[ref]
        ll, g, H, L = self.evaluate(theta, s, c)
        converged = False
        for _ in range(max_iter):
            gf = g[fidx]
            Hf = H[fidx[:, None], fidx]
            try:
                step = np.linalg.solve(Hf, gf)
            except np.linalg.LinAlgError:
                step = np.linalg.lstsq(Hf + 1e-8 * np.eye(len(gf)), gf, rcond=None)[0]
            if 0.5 * float(gf @ step) < tol * (1.0 + abs(ll)):
                converged = True
                break
            t = 1.0
            while True:
                cand = theta.copy()
                cand[fidx] += t * step
                res = self.evaluate(cand, s, c)
                if np.isfinite(res[0]) and res[0] >= ll - 1e-12 * (1 + abs(ll)):
                    break
                t *= 0.5
                if t < 1e-6:
                    break
            theta, (ll, g, H, L) = cand, res
        return theta, float(s_obs @ theta - c_obs @ L), converged

    def respondent_loglik(self, theta: np.ndarray) -> np.ndarray:
        """Unweighted log-likelihood contribution of every respondent."""
        L, _ = self.log_denominators(theta)
        return self.num @ theta - self.counts @ L

    def estfun(self, theta: np.ndarray, w: np.ndarray | None = None, *, ref: int = 0) -> np.ndarray:
        """Weighted per-respondent scores w.r.t. the free parameters (log-worths except `ref`, log ties)."""
        _, pi = self.log_denominators(theta)
        G = self.expected_terms(pi)
        psi = self.num - self.counts @ G
        keep = np.ones(self.n_params, dtype=bool)
        keep[ref] = False
        w = self.weights if w is None else w
        return psi[:, keep] * w[:, None]


# ---------------------------------------------------------------------------------------------------------------------
# M-fluctuation tests
# ---------------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _suplm_spectrum(x: float, k: int, n_grid: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Eigenvalues and weights of the radial OU generator killed at radius sqrt(x) (finite volumes)."""
    R = np.sqrt(x)
    faces = np.linspace(0.0, R, n_grid + 1)
    h = faces[1] - faces[0]
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
        return float(stats.chi2.sf(stat, k))
    # far tail (p < 1e-9): Estrella's (2003) asymptotic formula, accurate there; the grid loses precision
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
