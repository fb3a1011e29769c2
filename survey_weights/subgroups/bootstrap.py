"""Respondent-level nonparametric bootstrap of Plackett-Luce / Bradley-Terry worths (percentile and BCa intervals).

Each replicate resamples respondents with replacement (multinomial counts times the respondents' frequency
weights, i.e. ``data.with_respondent_weights(counts * w)``) and refits warm-started from the full-data estimate.
The refits are batched on the engine's aggregated design (:class:`~survey_weights.models._choice.ChoiceDesign`:
identical choice sets are aggregated once, so for five items there are at most 211 alternatives whatever the
number of respondents), and the engine's batched Newton driver (``models._optim.newton_batch``) runs the steps
of hundreds of replicates as one set of array operations. The fitted model equals
:func:`~survey_weights.models.fit_plackett_luce` / :func:`~survey_weights.models.fit_bradley_terry` with the
same options (tested to 1e-8).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._util.threads import single_thread_blas
from .._util.validation import check_option, check_scalar
from ..data.rankings import PairedComparisons, Rankings
from ..exceptions import ConvergenceWarning
from ..models._best_worst import BEST_WORST_MODELS, BestWorstDesign
from ..models._choice import ChoiceDesign
from ..models._optim import newton_batch, optimize
from ..models._ties_exploded import ExplodedDesign
from ..models.plackett_luce import TIES_METHODS
from ..profiles.cells import check_min_cell_size, count_respondents, reportable
from ..profiles.profile import DEFAULT_SAFETY, derive_profile
from ..results import Summary
from ._provenance import FitView, records_data

__all__ = ["BootstrapResult", "bootstrap"]


_ABSENT_TIE = -50.0  # log delta of a tie order absent from a replicate: exp(-50) ~ 2e-22, no weight at all


def _log_worth(theta: np.ndarray, n_items: int) -> np.ndarray:
    """Zero-sum log-worths (B x n_items) from batched parameter vectors."""
    b = theta[:, :n_items]
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
        Full-data weights (sum 1); also :attr:`weights`.
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
    _data: Any = field(default=None, repr=False)

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
            from scipy import stats  # lazy: scipy.stats alone takes longer to import than the package

            z0 = stats.norm.ppf(np.clip(prop, 1 / (2 * len(reps)), 1 - 1 / (2 * len(reps))))
            zs = stats.norm.ppf([a, 1 - a])
            q = [stats.norm.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z))) for z in zs]
            lo = np.array([np.quantile(reps[:, j], q[0][j]) for j in range(reps.shape[1])])
            hi = np.array([np.quantile(reps[:, j], q[1][j]) for j in range(reps.shape[1])])
        return pd.DataFrame({"estimate": est, "ci_low": lo, "ci_high": hi, "se": reps.std(axis=0, ddof=1)},
                            index=pd.Index(list(self.items), name="item"))

    @property
    def weights(self) -> pd.Series:
        """Full-data weights (:attr:`estimate`), indexed by item; they sum to 1."""
        return self.estimate

    def to_frame(self, *, level: float | None = None, method: str | None = None) -> pd.DataFrame:
        """Tidy table of the weights and log-worths with their bootstrap intervals.

        Parameters
        ----------
        level : float, optional
            Confidence level; default the one given to :func:`bootstrap`.
        method : {"percentile", "bca"}, optional
            Interval method; default the one given to :func:`bootstrap`.

        Returns
        -------
        pandas.DataFrame
            One row per item; columns ``item``, ``weight`` (full-data estimate), ``ci_low``, ``ci_high`` (bootstrap
            interval of the weight, :meth:`ci`), ``weight_se`` (bootstrap SD of the weight), ``log_worth``
            (zero-sum), ``se`` (bootstrap SD of the log-worth), ``log_worth_ci_low``, ``log_worth_ci_high``.
            These intervals are the bootstrap's own (percentile or BCa), not the delta-method recipe of the fits.
        """
        w = self.ci(level=level, method=method, scale="weight")
        b = self.ci(level=level, method=method, scale="log_worth")
        return pd.DataFrame({"item": list(self.items), "weight": w["estimate"].to_numpy(),
                             "ci_low": w["ci_low"].to_numpy(), "ci_high": w["ci_high"].to_numpy(),
                             "weight_se": w["se"].to_numpy(), "log_worth": b["estimate"].to_numpy(),
                             "se": b["se"].to_numpy(), "log_worth_ci_low": b["ci_low"].to_numpy(),
                             "log_worth_ci_high": b["ci_high"].to_numpy()})

    def summary(self) -> Summary:
        """The weight intervals and the bootstrap's settings.

        Returns
        -------
        Summary
            ``table``: :meth:`ci` (item x estimate, ci_low, ci_high, se) at the default level and method.
        """
        info = {"replicates": self.n_boot, "not converged": self.n_failed, "seed": self.seed,
                "method": self.method, "level": self.level}
        title = f"Respondent bootstrap: {self.method} {self.level:.0%} intervals of the weights"
        return Summary(title, self.ci(), info=info)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Weights with their bootstrap intervals (default level and method).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when None.
        **kwargs
            ``title``, ``xlabel`` (:func:`~survey_weights.plotting.plot_intervals`).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ..plotting import plot_intervals

        kwargs.setdefault("xlabel", f"weight ({self.method} {self.level:.0%} bootstrap CI)")
        return plot_intervals(self.to_frame(), ax=ax, reference=1.0 / len(self.items), **kwargs)

    def profiles(self, *, safety: Any = DEFAULT_SAFETY, min_cell_size: int | None = None,
                 level: float = 0.95) -> list:
        """The pooled :class:`~survey_weights.profiles.WeightProfile` with bootstrap uncertainty, as a one-element list.

        The profile is :func:`~survey_weights.derive_profile` of the full-data log-worths with the *bootstrap*
        covariance of the log-worth replicates in place of the model-based one: the same delta-method, logit-scale
        recipe as every other profile, so it can be compared with ``fit.profiles()``. (:meth:`ci` gives the
        percentile or BCa intervals of the survey weights themselves.)

        Parameters
        ----------
        safety : float, dict or None, default ``{"floor": 0.2}``
            Constraint objective and its rule, as in :func:`~survey_weights.derive_profile` (None: none).
        min_cell_size : int, optional
            Data of fewer respondents give ``[]`` and a :class:`~survey_weights.exceptions.SmallGroupWarning`;
            default 10.
        level : float, default 0.95
            Confidence level of the intervals.

        Returns
        -------
        list of WeightProfile
            ``[profile]`` named ``"pooled"`` (``source="pooled"``), with the data's hash; ``[]`` when withheld.
        """
        if self._data is None:
            raise ValueError("This result does not know its data (it was not made by bootstrap()), so the profile "
                             "would have no respondent count. Fix: run survey_weights.bootstrap(data, ...).")
        n = count_respondents(self._data.respondent_weights)  # heads with a positive weight
        if not reportable({"pooled": n}, check_min_cell_size(min_cell_size), what="fit"):
            return []
        items = pd.Index(self.items, name="item")
        V = np.cov(self.log_worth_replicates.to_numpy(), rowvar=False)
        base = "plackett_luce" if isinstance(self._data, Rankings) else "bradley_terry"
        view = FitView(self.items, self.log_worth, pd.DataFrame(V, index=items, columns=items), n,
                       f"{base}_bootstrap")
        return [derive_profile(view, safety=safety, level=level, name="pooled", source="pooled",
                               data_hash=self._data.data_hash())]

    def __repr__(self) -> str:
        return f"BootstrapResult(n_boot={self.n_boot}, method={self.method!r}, items={len(self.items)})"


@records_data
def bootstrap(
    data: Rankings | PairedComparisons,
    *,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = None,
    level: float = 0.95,
    method: str = "percentile",
    npseudo: float | None = None,
    ties: str | None = None,
    best_worst_model: str = "maxdiff",
    max_iter: int = 50,
    tol: float = 1e-8,
    batch_size: int = 250,
    progress: bool = True,
    raking: Any = None,
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
        (Rankings: ``"breslow"``, ``"efron"``, ``"exact_marginal"`` or ``"discrete_exact"`` refit that reading
        of the ties, one warm-started Newton fit per replicate; None or "davidson": Davidson-Luce; ignored for
        best-worst tasks). Default `npseudo`: 0.5, or 0 for best-worst data (as
        :func:`~survey_weights.fit_best_worst`; a replicate whose network falls apart is then not converged).
    best_worst_model : {"maxdiff", "sequential", "marginal"}, default "maxdiff"
        For Rankings built by :meth:`~survey_weights.Rankings.from_best_worst`: the model of
        :func:`~survey_weights.fit_best_worst` that is refitted (one Newton fit per replicate on its design).
    max_iter, tol : int, float
        Newton iterations / step tolerance of each refit (warm-started at the full-data estimate).
    batch_size : int, default 250
        Replicates refitted together (memory ~ batch_size x alternatives x parameters).
    progress : bool, default True
        Show a tqdm progress bar.
    raking : RakingResult, optional
        The :func:`~survey_weights.rake` result that made the data's sampling weights: every replicate re-rakes
        its resampled respondents (:meth:`~survey_weights.data.raking.RakingResult.replicate`), so the intervals
        include the weighting step. Its respondents must be the data's.

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
    bw = isinstance(data, Rankings) and data.best_worst is not None
    npseudo = (0.0 if bw else 0.5) if npseudo is None else npseudo
    check_scalar(npseudo, "npseudo", min_val=0.0)
    check_scalar(batch_size, "batch_size", kind=numbers.Integral, min_val=1)
    if not isinstance(data, (Rankings, PairedComparisons)):
        raise TypeError(f"`data` must be Rankings or PairedComparisons. Got {type(data).__name__} instead.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    J, N = data.n_items, data.n_respondents
    exploded = isinstance(data, Rankings) and not bw and ties not in (None, "davidson")
    if bw:
        check_option(best_worst_model, "best_worst_model", BEST_WORST_MODELS)
        design: Any = BestWorstDesign.from_data(data, model=best_worst_model, npseudo=float(npseudo))
    elif exploded:
        check_option(ties, "ties", TIES_METHODS)
        design = ExplodedDesign.from_rankings(data, ties=ties, npseudo=float(npseudo))
    else:
        design = ChoiceDesign.from_data(data, npseudo=float(npseudo), ties=ties)
    free = design.free(0)
    w = np.asarray(data.fit_weights, dtype=float)  # frequency x sampling weights
    with single_thread_blas(True):
        opt = optimize(design, method="newton", start=None, max_iter=100, tol=1e-10)
    theta_hat = opt.theta
    if not opt.converged:
        warnings.warn("The full-data fit did not converge in 100 Newton iterations; the bootstrap is centred on an "
                      "inaccurate estimate. Fix: use npseudo > 0 for weakly connected data.", ConvergenceWarning,
                      stacklevel=2)
    n_tie = len(design.tie_orders)

    def refit(rw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if bw or exploded:  # no sufficient statistics to batch on: one warm-started Newton fit each
            th, ok = np.empty((len(rw), len(theta_hat))), np.zeros(len(rw), bool)
            with single_thread_blas(True), np.errstate(all="ignore"):
                for b, r in enumerate(rw):
                    o = optimize(design.reweight(r), method="newton", start=theta_hat, max_iter=max_iter, tol=tol)
                    th[b], ok[b] = o.theta, o.converged
            return th, ok
        lin, W = design.stats(rw)
        start = np.tile(theta_hat, (len(rw), 1))
        # A tie order that no resampled respondent shows has its MLE at log delta = -inf: that replicate's model
        # has no such tie parameter (as a fit to the replicate's data alone); hold it where its tie alternatives
        # carry no weight instead of letting Newton walk towards -inf and never converge.
        hold = np.zeros(start.shape, bool)
        if n_tie:
            hold[:, -n_tie:] = lin[:, -n_tie:] <= 0
            start[hold] = _ABSENT_TIE
        with single_thread_blas(True):
            return newton_batch(design, start, lin, W, free, max_iter=max_iter, tol=tol, hold=hold)

    counts = rng.multinomial(N, np.full(N, 1.0 / N), size=int(n_boot))
    if raking is not None:
        ids = pd.Index(raking.weights.index)
        missing = [i for i in data.respondent_ids if i not in ids]
        if missing:
            raise ValueError(f"`raking` has no weight for respondent ids {missing[:5]}: it must be the raking that "
                             "made these data's sampling weights.")
        if len(ids) != N:
            raise ValueError(f"`raking` covers {len(ids)} respondents, the data {N}. Fix: rake exactly the data's "
                             "respondents (drop the others before raking).")
        order = ids.get_indexer(data.respondent_ids)  # data respondent i is raking respondent order[i]
        freq = np.asarray(data.respondent_weights, dtype=float)

        def reraked(c: np.ndarray) -> np.ndarray:
            """A replicate's raked weights in data order (its counts put in the raking's order first)."""
            cr = np.zeros(N)
            cr[order] = c
            return raking.replicate(cr)[order]
    thetas, conv = [], []
    from .._util.progress import tqdm

    with tqdm(total=int(n_boot), disable=not progress, desc="bootstrap", unit="rep") as bar:
        for s in range(0, int(n_boot), int(batch_size)):
            rw = counts[s : s + batch_size] * w
            if raking is not None:  # re-rake each replicate: frequency x counts x the replicate's raked weights
                rw = np.stack([counts[b] * freq * reraked(counts[b]) for b in range(s, s + len(rw))])
            th, c = refit(rw)
            thetas.append(th)
            conv.append(c)
            bar.update(len(rw))
    theta = np.vstack(thetas)
    items = list(data.items)
    lw_hat = _log_worth(theta_hat[None, :], J)[0]
    lw = _log_worth(theta, J)
    idx = pd.Index(items, name="item")
    jk, mult = None, None
    if method == "bca":
        units = np.flatnonzero(w > 0)
        rw = np.tile(w, (len(units), 1))
        rw[np.arange(len(units)), units] -= np.minimum(1.0, w[units])
        th = np.vstack([refit(r)[0] for r in np.array_split(rw, max(1, len(rw) // int(batch_size)))])
        jl = _log_worth(th, J)
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
