"""Respondent-level nonparametric bootstrap of Plackett-Luce / Bradley-Terry worths (percentile and BCa intervals).

Each replicate resamples respondents with replacement (multinomial counts times the respondents' frequency
weights, i.e. ``data.with_respondent_weights(counts * w)``) and refits warm-started from the full-data estimate.
The refits are batched: identical choice stages are aggregated once (for five items there are at most 211
alternatives whatever the number of respondents), and Newton steps for hundreds of replicates run as one set of
array operations. The fitted model equals :func:`~survey_weights.models.fit_plackett_luce` /
:func:`~survey_weights.models.fit_bradley_terry` with the same options (tested to 1e-8).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._util.threads import single_thread_blas
from .._util.validation import check_option, check_scalar
from ..data.rankings import PairedComparisons, Rankings
from ..exceptions import ConvergenceWarning
from .regression import _build_design, _Design, _newton, _stages

__all__ = ["BootstrapResult", "bootstrap"]


# ---------------------------------------------------------------------------------------------------------------------
# batched Newton over many weight vectors
# ---------------------------------------------------------------------------------------------------------------------
class _Batch:
    """Penalised log-likelihood, gradient and information for a batch of record-weight vectors (rows)."""

    def __init__(self, d: _Design) -> None:
        self.d = d
        self.Zc = d.Z[d.chosen]
        self.agg = np.zeros((len(d.chosen), d.n_sets))
        self.agg[np.arange(len(d.chosen)), d.rec_set] = 1.0
        p = d.Z.shape[1]
        self.ZZ = (d.Z[:, :, None] * d.Z[:, None, :]).reshape(len(d.Z), p * p)

    def weights(self, resp_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lin, Wset) for respondent-weight rows `resp_w` (B x N); pseudo data included."""
        V = np.asarray((self.d.inc.T @ resp_w.T).T) + self.d.v_fixed
        return V @ self.Zc, V @ self.agg

    def evaluate(self, theta: np.ndarray, lin: np.ndarray, W: np.ndarray, deriv: bool = True):
        d = self.d
        eta = theta @ d.Z.T
        mx = np.maximum.reduceat(eta, d.starts, axis=1)
        e = np.exp(eta - mx[:, d.alt_set])
        den = np.add.reduceat(e, d.starts, axis=1)
        ll = np.einsum("bp,bp->b", lin, theta) - np.einsum("bs,bs->b", W, mx + np.log(den))
        if not deriv:
            return ll, None, None
        P = e / den[:, d.alt_set]
        wp = W[:, d.alt_set] * P
        p = theta.shape[1]
        grad = lin - wp @ d.Z
        zbar = np.add.reduceat(P[:, :, None] * d.Z[None, :, :], d.starts, axis=1)
        info = (wp @ self.ZZ).reshape(-1, p, p) - np.einsum("bs,bsk,bsl->bkl", W, zbar, zbar)
        return ll, grad, info

    def newton(self, theta0: np.ndarray, resp_w: np.ndarray, *, max_iter: int, tol: float):
        """Fit every row of `resp_w`; returns (theta (B x p), converged (B,))."""
        with single_thread_blas(True):
            return self._newton(theta0, resp_w, max_iter=max_iter, tol=tol)

    def _newton(self, theta0: np.ndarray, resp_w: np.ndarray, *, max_iter: int, tol: float):
        lin, W = self.weights(resp_w)
        theta = np.array(theta0, dtype=float)
        # A tie order that no resampled respondent shows has its MLE at log delta = -inf: that replicate's model
        # has no such tie parameter (as a fit to the replicate's data alone). Hold it at a value whose tie
        # alternatives carry no weight instead of letting Newton walk towards -inf and never converge.
        n_tie = len(self.d.tie_orders)
        fixed = np.zeros(theta.shape, bool)
        if n_tie:
            fixed[:, -n_tie:] = lin[:, -n_tie:] <= 0
            theta[fixed] = _ABSENT_TIE
        ok = np.zeros(len(theta), bool)
        act = np.arange(len(theta))
        ll, g, H = self.evaluate(theta, lin, W)
        g, H = _hold(g, H, fixed[act])
        for _ in range(max_iter):
            try:
                step = np.linalg.solve(H, g[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                step = np.stack([np.linalg.lstsq(h, gg, rcond=None)[0] for h, gg in zip(H, g)])
            t = np.ones(len(act))
            new = theta[act] + step
            for _ in range(30):  # step halving, only where the objective went down
                ll_new = self.evaluate(new, lin[act], W[act], deriv=False)[0]
                bad = ~(ll_new >= ll - 1e-12 * (1 + np.abs(ll)))
                if not bad.any():
                    break
                t[bad] /= 2
                new[bad] = theta[act][bad] + t[bad, None] * step[bad]
            theta[act] = new
            done = np.max(np.abs(t[:, None] * step), axis=1) < tol
            ok[act[done]] = True
            act = act[~done]
            if not len(act):
                break
            ll, g, H = self.evaluate(theta[act], lin[act], W[act])
            g, H = _hold(g, H, fixed[act])
        return theta, ok


_ABSENT_TIE = -50.0  # log delta of a tie order absent from a replicate: exp(-50) ~ 2e-22, no weight at all


def _hold(g: np.ndarray, H: np.ndarray, fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and information with the `fixed` parameters (B x p mask) held: zero step for them."""
    if not fixed.any():
        return g, H
    g = np.where(fixed, 0.0, g)
    H = np.where(fixed[:, :, None] | fixed[:, None, :], 0.0, H)
    b, i = np.nonzero(fixed)
    H[b, i, i] = 1.0
    return g, H


def _log_worth(theta: np.ndarray, n_items: int, npseudo: float) -> np.ndarray:
    """Zero-sum log-worths (B x n_items) from batched free parameters."""
    b = theta[:, :n_items] if npseudo > 0 else np.hstack([np.zeros((len(theta), 1)), theta[:, : n_items - 1]])
    return b - b.mean(axis=1, keepdims=True)


def _softmax(b: np.ndarray) -> np.ndarray:
    e = np.exp(b - b.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class BootstrapResult:
    """Result of :func:`bootstrap`.

    Attributes
    ----------
    items : tuple
        Item labels.
    estimate : pandas.Series
        Full-data weights (sum 1).
    log_worth : pandas.Series
        Full-data zero-sum log-worths.
    replicates : pandas.DataFrame
        Weights per replicate (rows: replicate 0..n_boot-1; columns: items).
    log_worth_replicates : pandas.DataFrame
        Zero-sum log-worths per replicate.
    converged : numpy.ndarray
        Whether each replicate's refit converged (non-converged ones are kept; see ``n_failed``).
    n_boot, seed, level, method :
        As passed to :func:`bootstrap`.
    jackknife : dict or None
        Leave-one-respondent-out log-worths and weights (``{"log_worth": (N x J), "weight": (N x J)}``),
        computed for BCa.
    """

    items: tuple
    estimate: pd.Series
    log_worth: pd.Series
    replicates: pd.DataFrame
    log_worth_replicates: pd.DataFrame
    converged: np.ndarray
    n_boot: int
    seed: Any
    level: float
    method: str
    jackknife: dict[str, np.ndarray] | None = field(default=None, repr=False)
    _jk_mult: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_failed(self) -> int:
        """Number of replicates whose refit did not converge."""
        return int((~self.converged).sum())

    @property
    def se(self) -> pd.Series:
        """Bootstrap standard deviation of each weight."""
        return self.replicates.std(axis=0, ddof=1).rename("se")

    def ci(self, *, level: float | None = None, method: str | None = None, scale: str = "weight") -> pd.DataFrame:
        """Bootstrap confidence intervals.

        Parameters
        ----------
        level : float, optional
            Confidence level; default the one given to :func:`bootstrap`.
        method : {"percentile", "bca"}, optional
            Default the one given to :func:`bootstrap`. BCa needs the jackknife (computed when the bootstrap was
            run with ``method="bca"``).
        scale : {"weight", "log_worth"}, default "weight"

        Returns
        -------
        pandas.DataFrame
            Index: item; columns ``estimate``, ``ci_low``, ``ci_high``, ``se`` (bootstrap SD).
        """
        level = self.level if level is None else float(check_scalar(level, "level", min_val=0.0, max_val=1.0,
                                                                     include_min=False, include_max=False))
        method = self.method if method is None else check_option(method, "method", ("percentile", "bca"))
        check_option(scale, "scale", ("weight", "log_worth"))
        est = (self.estimate if scale == "weight" else self.log_worth).to_numpy()
        reps = (self.replicates if scale == "weight" else self.log_worth_replicates).to_numpy()
        a = (1 - level) / 2
        if method == "percentile":
            lo, hi = np.quantile(reps, a, axis=0), np.quantile(reps, 1 - a, axis=0)
        else:
            if self.jackknife is None:
                raise ValueError("BCa intervals need the jackknife. Fix: run bootstrap(..., method='bca').")
            jk = self.jackknife[scale]
            m = self._jk_mult
            u = (m[:, None] * jk).sum(0) / m.sum() - jk  # (N x J) empirical influence
            num = (m[:, None] * u**3).sum(0)
            den = 6 * ((m[:, None] * u**2).sum(0)) ** 1.5
            acc = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
            prop = ((reps < est).sum(0) + 0.5 * (reps == est).sum(0)) / len(reps)
            z0 = stats.norm.ppf(np.clip(prop, 1 / (2 * len(reps)), 1 - 1 / (2 * len(reps))))
            zs = stats.norm.ppf([a, 1 - a])
            q = [stats.norm.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z))) for z in zs]
            lo = np.array([np.quantile(reps[:, j], q[0][j]) for j in range(reps.shape[1])])
            hi = np.array([np.quantile(reps[:, j], q[1][j]) for j in range(reps.shape[1])])
        return pd.DataFrame({"estimate": est, "ci_low": lo, "ci_high": hi, "se": reps.std(axis=0, ddof=1)},
                            index=pd.Index(list(self.items), name="item"))

    def to_frame(self) -> pd.DataFrame:
        """Weights and log-worths with intervals (default method and level).

        Returns
        -------
        pandas.DataFrame
            Columns ``item``, ``scale`` ("weight"/"log_worth"), ``estimate``, ``ci_low``, ``ci_high``, ``se``.
        """
        parts = [self.ci(scale=s).assign(scale=s) for s in ("weight", "log_worth")]
        out = pd.concat(parts).reset_index()
        return out[["item", "scale", "estimate", "ci_low", "ci_high", "se"]]

    def summary(self) -> str:
        """Printable summary of the weight intervals."""
        head = (f"Respondent bootstrap: {self.n_boot} replicates ({self.n_failed} not converged), seed={self.seed}, "
                f"{self.method} {self.level:.0%} intervals for the weights\n")
        return head + self.ci().round(4).to_string()

    def __repr__(self) -> str:
        return f"BootstrapResult(n_boot={self.n_boot}, method={self.method!r}, items={len(self.items)})"


def bootstrap(
    data: Rankings | PairedComparisons,
    *,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = None,
    level: float = 0.95,
    method: str = "percentile",
    npseudo: float = 0.5,
    ties: str | None = None,
    max_iter: int = 50,
    tol: float = 1e-8,
    batch_size: int = 250,
    progress: bool = True,
) -> BootstrapResult:
    """Respondent-level nonparametric bootstrap of the worths.

    Parameters
    ----------
    data : Rankings or PairedComparisons
        The data; a Plackett-Luce (Rankings) or Bradley-Terry (PairedComparisons) model is refitted.
    n_boot : int, default 1000
        Number of replicates.
    seed : int, numpy Generator or None
        Seed for ``numpy.random.default_rng``; the same seed gives the same replicates.
    level : float, default 0.95
        Default confidence level of :meth:`BootstrapResult.ci`.
    method : {"percentile", "bca"}, default "percentile"
        Default interval method. ``"bca"`` also runs the leave-one-respondent-out jackknife for the acceleration.
    npseudo, ties : as in :func:`~survey_weights.models.fit_plackett_luce` / ``fit_bradley_terry``
        (``ties`` is used for PairedComparisons only).
    max_iter, tol : int, float
        Newton iterations / step tolerance of each refit (warm-started at the full-data estimate).
    batch_size : int, default 250
        Replicates refitted together (memory ~ batch_size x alternatives x parameters).
    progress : bool, default True
        Show a tqdm progress bar.

    Returns
    -------
    BootstrapResult
        ``replicates`` (weights per replicate), ``ci()`` (item x estimate, ci_low, ci_high, se).

    Notes
    -----
    Resampling counts ``c ~ Multinomial(N, 1/N)`` multiply the respondents' frequency weights; the pseudo
    comparisons (`npseudo`) are not resampled. BCa uses ``z0`` from the share of replicates below the estimate and
    the acceleration from the jackknife over respondents (a respondent with integer weight ``w > 1`` counts as
    ``w`` units, one removed at a time).
    """
    check_scalar(n_boot, "n_boot", kind=numbers.Integral, min_val=2)
    check_scalar(level, "level", min_val=0.0, max_val=1.0, include_min=False, include_max=False)
    check_option(method, "method", ("percentile", "bca"))
    check_scalar(npseudo, "npseudo", min_val=0.0)
    check_scalar(batch_size, "batch_size", kind=numbers.Integral, min_val=1)
    if not isinstance(data, (Rankings, PairedComparisons)):
        raise TypeError(f"`data` must be Rankings or PairedComparisons. Got {type(data).__name__} instead.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    J, N = data.n_items, data.n_respondents
    free = np.ones((J, 1), bool)
    free[0, 0] = npseudo > 0
    design = _build_design(_stages(data, ties=ties), None, free, N, npseudo=float(npseudo), aggregate=True)
    w = np.asarray(data.respondent_weights, dtype=float)
    theta_hat, _, _, ok = _newton(design, w, max_iter=100, tol=1e-10)
    if not ok:
        warnings.warn("The full-data fit did not converge in 100 Newton iterations; the bootstrap is centred on an "
                      "inaccurate estimate. Fix: use npseudo > 0 for weakly connected data.", ConvergenceWarning,
                      stacklevel=2)
    batch = _Batch(design)
    counts = rng.multinomial(N, np.full(N, 1.0 / N), size=int(n_boot))
    thetas, conv = [], []
    from .._util.progress import tqdm

    with tqdm(total=int(n_boot), disable=not progress, desc="bootstrap", unit="rep") as bar:
        for s in range(0, int(n_boot), int(batch_size)):
            rw = counts[s : s + batch_size] * w
            th, c = batch.newton(np.tile(theta_hat, (len(rw), 1)), rw, max_iter=max_iter, tol=tol)
            thetas.append(th)
            conv.append(c)
            bar.update(len(rw))
    theta = np.vstack(thetas)
    items = list(data.items)
    lw_hat = _log_worth(theta_hat[None, :], J, npseudo)[0]
    lw = _log_worth(theta, J, npseudo)
    idx = pd.Index(items, name="item")
    jk, mult = None, None
    if method == "bca":
        units = np.flatnonzero(w > 0)
        rw = np.tile(w, (len(units), 1))
        rw[np.arange(len(units)), units] -= np.minimum(1.0, w[units])
        th = np.vstack([batch.newton(np.tile(theta_hat, (len(r), 1)), r, max_iter=max_iter, tol=tol)[0]
                        for r in np.array_split(rw, max(1, len(rw) // int(batch_size)))])
        jl = _log_worth(th, J, npseudo)
        jk, mult = {"log_worth": jl, "weight": _softmax(jl)}, np.maximum(w[units], 1.0)
    return BootstrapResult(
        items=tuple(items),
        estimate=pd.Series(_softmax(lw_hat[None, :])[0], index=idx, name="weight"),
        log_worth=pd.Series(lw_hat, index=idx, name="log_worth"),
        replicates=pd.DataFrame(_softmax(lw), columns=idx),
        log_worth_replicates=pd.DataFrame(lw, columns=idx),
        converged=np.concatenate(conv),
        n_boot=int(n_boot),
        seed=seed,
        level=float(level),
        method=method,
        jackknife=jk,
        _jk_mult=mult,
    )
