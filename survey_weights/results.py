"""Result objects of the Plackett-Luce and Bradley-Terry fits.

:class:`FitResult` is an immutable (frozen) dataclass; :class:`PlackettLuceResult` and
:class:`BradleyTerryResult` subclass it.  Estimates are reported on the zero-sum log-worth scale
(``log_worth``), as worths that sum to one (``weights`` = probability of being ranked first), and tie
parameters on PlackettLuce's delta scale (``tie_params``; their covariance is on the log-delta scale).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from .profiles.cells import check_min_cell_size, reportable
from .profiles.intervals import weight_intervals
from .profiles.profile import DEFAULT_SAFETY, derive_profile

__all__ = ["FitResult", "PlackettLuceResult", "BestWorstResult", "BradleyTerryResult", "Summary", "quasi_variances"]


def quasi_variances(vcov: np.ndarray, *, max_iter: int = 100, tol: float = 1e-12) -> np.ndarray:
    """Quasi-variances of Firth & de Menezes (2004), as computed by R's ``qvcalc``.

    Minimises ``sum_{i<j} (log v_ij - log(q_i + q_j))^2`` over ``q`` where ``v_ij`` is the variance of
    the simple contrast ``beta_i - beta_j``, by Gauss-Newton.  Any parameterisation of the log-worths
    gives the same ``v_ij``.

    Parameters
    ----------
    vcov : ndarray (n, n)
        Covariance of the log-worths (any identifiable parameterisation, e.g. zero-sum).

    Returns
    -------
    ndarray (n,)
        Quasi-variances (a negative value is possible in rare cases); NaN when n < 3.
    """
    V = np.asarray(vcov, dtype=float)
    n = V.shape[0]
    if n < 3:
        return np.full(n, np.nan)
    i, j = np.triu_indices(n, 1)
    v = V[i, i] + V[j, j] - 2.0 * V[i, j]
    if np.any(v <= 0):
        return np.full(n, np.nan)
    y = np.log(v)
    # start: least squares of v_ij ~ q_i + q_j (closed form for the complete design)
    s = np.bincount(i, weights=v, minlength=n) + np.bincount(j, weights=v, minlength=n)
    q = (s - v.sum() / (n - 1)) / (n - 2)
    if np.any(q[i] + q[j] <= 0):
        q = np.full(n, v.mean() / 2)

    def loss(q_: np.ndarray) -> float:
        t = q_[i] + q_[j]
        return np.inf if np.any(t <= 0) else float(np.sum((y - np.log(t)) ** 2))

    cur = loss(q)
    for _ in range(max_iter):
        t = q[i] + q[j]
        r = y - np.log(t)
        d = 1.0 / t
        JtJ = np.zeros(n * n)
        JtJ += np.bincount(i * (n + 1), weights=d * d, minlength=n * n)
        JtJ += np.bincount(j * (n + 1), weights=d * d, minlength=n * n)
        JtJ += np.bincount(i * n + j, weights=d * d, minlength=n * n)
        JtJ += np.bincount(j * n + i, weights=d * d, minlength=n * n)
        Jtr = np.bincount(i, weights=d * r, minlength=n) + np.bincount(j, weights=d * r, minlength=n)
        step = np.linalg.solve(JtJ.reshape(n, n), Jtr)
        a = 1.0
        while a > 1e-8:
            new = loss(q + a * step)
            if new <= cur:
                break
            a *= 0.5
        q = q + a * step
        done = abs(cur - new) <= tol * max(1.0, cur)
        cur = new
        if done or a <= 1e-8:
            break
    return q


@dataclass(frozen=True)
class Summary:
    """Printable summary of a result: ``str(s)``, ``s.as_text()``, ``s._repr_html_()`` and ``s.table``.

    Every result class's ``summary()`` returns one (fits, groups, regression, tree, mixture, bootstrap).

    Attributes
    ----------
    title : str
    table : pandas.DataFrame
        The main table (estimates).
    ties : pandas.DataFrame
        Tie parameters (log scale) where the result has them; empty otherwise.
    info : dict
        Fit statistics, printed as ``key: value``.
    notes : tuple of str
        Further lines (tests, withheld groups, a tree drawing), printed between the tables and `info`.
    """

    title: str
    table: pd.DataFrame
    ties: pd.DataFrame = field(default_factory=pd.DataFrame)
    info: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def as_text(self) -> str:
        lines = [self.title, "=" * len(self.title)]
        lines.append(self.table.to_string(float_format=lambda x: f"{x:.5g}"))
        if len(self.ties):
            lines += ["", "Tie parameters (log scale):", self.ties.to_string(float_format=lambda x: f"{x:.5g}")]
        if self.notes:
            lines += ["", *self.notes]
        lines.append("")
        lines += [f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}" for k, v in self.info.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        parts = [f"<h4>{html.escape(self.title)}</h4>", self.table.to_html(float_format=lambda x: f"{x:.5g}")]
        if len(self.ties):
            parts += ["<p>Tie parameters (log scale)</p>", self.ties.to_html(float_format=lambda x: f"{x:.5g}")]
        if self.notes:
            parts.append("<pre>" + html.escape("\n".join(self.notes)) + "</pre>")
        parts.append("<p>" + "; ".join(f"{html.escape(str(k))}: {v:.6g}" if isinstance(v, float) else
                                        f"{html.escape(str(k))}: {html.escape(str(v))}"
                                        for k, v in self.info.items()) + "</p>")
        return "\n".join(parts)


@dataclass(frozen=True)
class FitResult:
    """Common base of the fit results (immutable).

    Attributes
    ----------
    items : tuple
        Item labels.
    log_worth : pandas.Series
        Log-worth by item, zero-sum.
    weights : pandas.Series
        Worth normalised to sum to 1 (probability of being ranked first), indexed by item. The multi-fit results
        (groups, tree, classes) give a DataFrame with one such row per fit.
    tie_params : pandas.Series
        Tie parameters ``tie2, tie3, ...`` on PlackettLuce's delta scale (empty when the data have no ties).
    vcov : pandas.DataFrame
        Covariance of the zero-sum log-worths (items x items).
    vcov_full : pandas.DataFrame
        Covariance of (zero-sum log-worths, log tie parameters).  Computed on first access (it inverts
        the information matrix, the costliest step of a fit with many items) and cached.
    se : pandas.Series
        Standard errors of the zero-sum log-worths.
    loglik, null_loglik : float
        Data log-likelihood at the estimate (pseudo-comparisons excluded), and with equal worths and all
        tie parameters 1 (every alternative equally likely).
    deviance, aic, bic : float
        ``-2 loglik``; ``deviance + 2 df_model``; ``deviance + log(n_obs) df_model`` with ``n_obs`` the total
        weight of the rankings (PL) or comparisons (BT).
    df_model : int
        ``n_items - 1 + number of tie parameters``.
    theta : numpy.ndarray
        Internal parameter vector at the estimate (raw log-worths, then log tie parameters; see
        :mod:`survey_weights.models._likelihood`).
    data_hash : str or None
        SHA-256 of the input data (``Rankings.data_hash()``), recorded in exported profiles.
    """

    items: tuple
    log_worth: pd.Series
    tie_params: pd.Series
    loglik: float
    null_loglik: float
    df_model: int
    n_obs: float
    n_respondents: int
    n_rankings: int
    converged: bool
    n_iter: int
    npseudo: float
    method: str
    theta: np.ndarray = field(repr=False)
    hessian: np.ndarray | None = field(default=None, repr=False)
    data_hash: str | None = field(default=None, repr=False)
    _cov: Any = field(default=None, repr=False, compare=False)
    #: ``{"mu": ..., "Sigma": ...}`` of a normal prior on the log-worths (MAP fit; SEs from the posterior
    #: curvature), else None.
    normal: dict | None = field(default=None, repr=False)
    #: Names of the parameters whose estimate is on the boundary (runs off to +-infinity; see
    #: :class:`~survey_weights.exceptions.BoundaryWarning`): their numbers and standard errors are meaningless.
    boundary: tuple = field(default=(), repr=False)
    #: Coefficients beyond the item worths: comparison-level covariates (an order or home effect), respondent x
    #: item covariates, or the item-level predictors of a structured model (log-worth = x_j' gamma); empty
    #: otherwise. Their covariance is in :attr:`vcov_full` (between the items and the tie parameters).
    effects: pd.Series = field(default_factory=lambda: pd.Series(dtype=float, name="estimate"), repr=False)
    #: How :attr:`vcov` was computed: ``"model"`` (inverse information), ``"robust"`` (sandwich clustered by
    #: respondent) or ``"cluster"`` (sandwich clustered by a column); see ``models._robust``.
    vcov_type: str = field(default="model", repr=False)
    #: With sampling weights: ``{"n", "n_effective", "design_effect"}`` (Kish), else None.
    sampling: dict | None = field(default=None, repr=False)
    #: Effective number of respondents, Kish's ``(sum w)^2 / sum w^2`` of the frequency weights (equal to
    #: ``n_respondents`` when they are all equal; see :class:`~survey_weights.exceptions.DominantWeightsWarning`).
    n_effective: float | None = field(default=None, repr=False)

    _kind = "fit"

    # ---------------------------------------------------------------------------------------- derived values
    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def weights(self) -> pd.Series:
        b = self.log_worth.to_numpy()
        e = np.exp(b - b.max())
        return pd.Series(e / e.sum(), index=self.log_worth.index, name="weight")

    @cached_property
    def vcov_full(self) -> pd.DataFrame:
        src = self._cov
        names = label_index(tuple(self.items) + tuple(self.effects.index) + tuple(self.tie_params.index))
        V = np.full((len(names), len(names)), np.nan) if src is None else src.compute()
        object.__setattr__(self, "_cov", None)  # frees the factor it may hold; the result is cached
        return pd.DataFrame(V, index=names, columns=names.copy(), copy=False)

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the zero-sum log-worths (items x items); call it, ``fit.vcov(ref=...)``, for the
        covariance of the log-worths relative to an item or to the mean of several (as :meth:`coef`)."""
        n = self.n_items
        return _VcovFrame(self.vcov_full.iloc[:n, :n], fit=self)

    def _contrast(self, ref: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``(C, ref positions)``: log-worths relative to `ref` are ``C @ log_worth``."""
        n = self.n_items
        if ref is None:
            return np.eye(n), None
        refs = list(ref) if isinstance(ref, (list, tuple, np.ndarray, pd.Index)) and not (
            isinstance(ref, tuple) and ref in self.items) else [ref]
        bad = [r for r in refs if r not in self.items]
        if bad or not refs:
            raise ValueError(f"`ref` must be an item or a list of items (their mean is the reference). Got "
                             f"{ref!r}; not items: {bad[:5]}. Items: {list(self.items)[:10]}.")
        pos = np.array(sorted({self.items.index(r) for r in refs}))
        a = np.zeros(n)
        a[pos] = 1.0 / len(pos)
        return np.eye(n) - np.outer(np.ones(n), a), pos

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.clip(np.diag(self.vcov.to_numpy()), 0, None)), index=self.log_worth.index,
                         name="se")

    @property
    def tie_se(self) -> pd.Series:
        """Standard errors of the log tie parameters."""
        d = np.diag(self.vcov_full.to_numpy())[self.n_items + len(self.effects):]
        return pd.Series(np.sqrt(np.clip(d, 0, None)), index=self.tie_params.index, name="se_log")

    @property
    def effects_se(self) -> pd.Series:
        """Standard errors of :attr:`effects`."""
        n, e = self.n_items, len(self.effects)
        d = np.diag(self.vcov_full.to_numpy())[n:n + e]
        return pd.Series(np.sqrt(np.clip(d, 0, None)), index=self.effects.index, name="se")

    @cached_property
    def quasi_se(self) -> pd.Series:
        """Quasi-standard errors (Firth & de Menezes 2004; as R ``qvcalc``)."""
        q = quasi_variances(self.vcov.to_numpy())
        with np.errstate(invalid="ignore"):
            return pd.Series(np.sqrt(q), index=self.log_worth.index, name="quasi_se")

    @property
    def deviance(self) -> float:
        return -2.0 * self.loglik

    @property
    def design_effect(self) -> float:
        """Kish's design effect of the sampling weights, ``n / n_effective`` (1.0 without sampling weights)."""
        return 1.0 if self.sampling is None else float(self.sampling["design_effect"])

    @property
    def aic(self) -> float:
        """AIC; NaN under sampling weights (the fit maximises a pseudo-likelihood: AIC is not defined as such)."""
        if self.sampling is not None:
            return float("nan")
        return self.deviance + 2.0 * self.df_model

    @property
    def bic(self) -> float:
        if self.sampling is not None:  # a pseudo-likelihood: no BIC as such
            return float("nan")
        return self.deviance + np.log(self.n_obs) * self.df_model

    def coef(self, ref: Any = None) -> pd.DataFrame:
        """Log-worths relative to `ref`, then log tie parameters, with SEs.

        Parameters
        ----------
        ref : item, list of items or None
            None: zero-sum log-worths; an item: that item's log-worth is 0; a list: the *mean* log-worth of
            those items is 0 (as ``PlackettLuce::coef(ref = 2:3)``).

        Returns
        -------
        DataFrame with columns ``estimate`` and ``se`` (``se`` is NaN for a single reference item).
        """
        n = self.n_items
        V = self.vcov_full.to_numpy()
        b = self.log_worth.to_numpy()
        C, pos = self._contrast(ref)
        est = C @ b
        se = np.sqrt(np.clip(np.diag(C @ V[:n, :n] @ C.T), 0, None))
        if pos is not None and len(pos) == 1:
            est[pos] = 0.0
            se[pos] = np.nan
        t_est = np.log(self.tie_params.to_numpy())
        t_se = np.sqrt(np.clip(np.diag(V)[n + len(self.effects):], 0, None))
        idx = list(self.items) + list(self.effects.index) + list(self.tie_params.index)
        return pd.DataFrame({"estimate": np.concatenate([est, self.effects.to_numpy(), t_est]),
                             "se": np.concatenate([se, self.effects_se.to_numpy(), t_se])},
                            index=pd.Index(idx, name="item"))

    def summary(self, ref: Any = None) -> Summary:
        """Estimate, SE, z, p and quasi-SE per item (log-worth, zero-sum or relative to `ref`), ties, fit info."""
        from scipy import stats  # lazy: scipy.stats alone takes longer to import than the package

        c = self.coef(ref)
        n = self.n_items
        tab = c.iloc[:n].copy()
        tab["z"] = tab["estimate"] / tab["se"]
        tab["p"] = 2 * stats.norm.sf(np.abs(tab["z"]))
        tab["quasi_se"] = self.quasi_se.to_numpy()
        ties = c.iloc[n:].copy()  # the effects (if any), then the log tie parameters
        ties["z"] = ties["estimate"] / ties["se"]
        ties["p"] = 2 * stats.norm.sf(np.abs(ties["z"]))
        info = {"log-likelihood": self.loglik, "deviance": self.deviance, "AIC": self.aic, "BIC": self.bic,
                "df": self.df_model, "respondents": self.n_respondents, self._nobs_label: self.n_rankings,
                "npseudo": self.npseudo, "method": self.method, "iterations": self.n_iter,
                "converged": self.converged, "vcov": self.vcov_type}
        if getattr(self, "ties", None) not in (None, "davidson"):
            info["ties"] = self.ties
        if self.sampling is not None:
            info["log-likelihood"] = self.loglik  # a weighted pseudo-log-likelihood
            info["design effect (Kish)"] = self.design_effect
            info["effective n (Kish)"] = self.sampling["n_effective"]
        ref_txt = "zero-sum" if ref is None else f"reference {ref}"
        return Summary(f"{self._kind} fit (log-worth, {ref_txt})", tab, ties, info)

    _nobs_label = "rankings"

    def to_frame(self, *, level: float = 0.95) -> pd.DataFrame:
        """Tidy table of the estimates, one row per item.

        Parameters
        ----------
        level : float, default 0.95
            Confidence level of the weight intervals.

        Returns
        -------
        pandas.DataFrame
            Columns ``item``; ``weight`` (worth, the weights sum to 1); ``ci_low``, ``ci_high`` (interval of the
            weight at `level`); ``weight_se`` (delta-method SE of the weight); ``log_worth`` (zero-sum); ``se``
            (SE of the log-worth); ``quasi_se`` (quasi-SE of the log-worth).

        Notes
        -----
        The weight interval is the package's one recipe for a weight
        (:func:`~survey_weights.profiles.intervals.logit_interval`): with ``w = softmax(log_worth)`` and
        ``se_w`` its delta-method SE from :attr:`vcov`, ``expit(logit(w) -/+ z se_w / (w (1 - w)))``, a Wald
        interval on the logit scale (inside (0, 1), containing ``w``). :func:`~survey_weights.derive_profile`
        with ``safety=None`` gives the same intervals.
        """
        iv = weight_intervals(self.log_worth.to_numpy(), self.vcov.to_numpy(), level)
        return pd.DataFrame({"item": list(self.items), "weight": self.weights.to_numpy(), "ci_low": iv["ci_low"],
                             "ci_high": iv["ci_high"], "weight_se": iv["weight_se"],
                             "log_worth": self.log_worth.to_numpy(), "se": self.se.to_numpy(),
                             "quasi_se": self.quasi_se.to_numpy()})

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Dot plot of the weights with their 95% intervals (those of :meth:`to_frame`).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when None.
        **kwargs
            ``sort`` (default True: largest weight on top), ``color``
            (:func:`~survey_weights.plotting.plot_worth`).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from .plotting import plot_worth

        return plot_worth(self, ax=ax, **kwargs)

    def profiles(self, *, safety: Any = DEFAULT_SAFETY, min_cell_size: int | None = None,
                 level: float = 0.95) -> list:
        """The pooled :class:`~survey_weights.profiles.WeightProfile` of this fit, as a one-element list.

        Parameters
        ----------
        safety : float, dict or None, default ``{"floor": 0.2}``
            Constraint objective and its rule, as in :func:`~survey_weights.derive_profile` (None: none).
        min_cell_size : int, optional
            A fit of fewer respondents gives ``[]`` and a :class:`~survey_weights.exceptions.SmallGroupWarning`;
            default 10.
        level : float, default 0.95
            Confidence level of the intervals.

        Returns
        -------
        list of WeightProfile
            ``[derive_profile(self, name="pooled", source="pooled", ...)]`` (its criteria: the fit's items, then the
            constraint objective of `safety`, if any), or ``[]`` when withheld.
        """
        if not reportable({"pooled": self.n_respondents}, check_min_cell_size(min_cell_size), what="fit"):
            return []
        return [derive_profile(self, safety=safety, level=level, name="pooled", source="pooled")]

    # ---------------------------------------------------------------------------------------- predictions
    def _f(self, S: tuple[int, ...], beta: np.ndarray, delta: dict[int, float]) -> float:
        k = len(S)
        return delta.get(k, 0.0) * float(np.exp(np.mean(beta[list(S)])))

    def prob_ordering(self, ordering: Any) -> float:
        """Probability of an ordering of (some of) the items, best first; a tuple/set/list is a tie group.

        The items not in `ordering` are not compared (sub-ranking).
        """
        beta = self.log_worth.to_numpy()
        delta = {1: 1.0, **{int(str(k)[3:]): float(v) for k, v in self.tie_params.items()}}
        groups = []
        seen: set[int] = set()
        for g in ordering:
            members = list(g) if isinstance(g, (tuple, set, frozenset, list)) else [g]
            ids = []
            for it in members:
                if it not in self.items:
                    raise ValueError(f"`ordering` contains {it!r}, which is not an item of the fit.")
                i = self.items.index(it)
                if i in seen:
                    raise ValueError(f"`ordering` lists item {it!r} more than once.")
                seen.add(i)
                ids.append(i)
            groups.append(tuple(sorted(ids)))
        orders = sorted(delta)
        prob = 1.0
        remaining = sorted(seen)
        for g in groups:
            if len(remaining) >= 2:
                den = sum(self._f(S, beta, delta) for k in orders if k <= len(remaining)
                          for S in combinations(remaining, k))
                prob *= self._f(g, beta, delta) / den
            remaining = [i for i in remaining if i not in g]
        return float(prob)

    def prob_pairwise(self, a: Any, b: Any) -> tuple[float, float, float]:
        """(P(a beats b), P(tie), P(b beats a)) under the fitted model."""
        p_tie = self.prob_ordering([(a, b)]) if "tie2" in self.tie_params.index else 0.0
        p_a = self.prob_ordering([a, b])
        p_b = self.prob_ordering([b, a])
        return float(p_a), float(p_tie), float(p_b)

    def __repr__(self) -> str:
        top = self.weights.sort_values(ascending=False).head(5)
        tops = ", ".join(f"{k}={v:.3f}" for k, v in top.items())
        return (f"{type(self).__name__}(n_items={self.n_items}, loglik={self.loglik:.4f}, "
                f"converged={self.converged}, weights: {tops}{' ...' if self.n_items > 5 else ''})")


@dataclass(frozen=True, repr=False)
class PlackettLuceResult(FitResult):
    """Result of :func:`~survey_weights.models.fit_plackett_luce` (see :class:`FitResult`).

    ``ties`` is the reading of the ties: ``"davidson"`` (tie parameters) or an unknown order (``"breslow"``,
    ``"efron"``, ``"exact_marginal"``, ``"discrete_exact"``; no tie parameters).
    """

    ties: str = "davidson"

    _kind = "Plackett-Luce"


@dataclass(frozen=True, repr=False)
class BestWorstResult(PlackettLuceResult):
    """Result of :func:`~survey_weights.fit_best_worst` (see :class:`FitResult`): ``model`` is the best-worst
    model (``"maxdiff"``, ``"sequential"`` or ``"marginal"``), ``n_rankings`` the number of tasks, ``weights`` the
    shares of preference ``exp(v) / sum exp(v)``."""

    model: str = "maxdiff"
    _nobs_label = "tasks"

    @property
    def _kind(self) -> str:  # type: ignore[override]
        return f"Best-worst ({self.model})"


@dataclass(frozen=True, repr=False)
class BradleyTerryResult(FitResult):
    """Result of :func:`~survey_weights.models.fit_bradley_terry` (see :class:`FitResult`).

    ``n_rankings`` is the number of comparison rows; ``ties`` is the tie handling used.
    """

    ties: str | None = None
    _kind = "Bradley-Terry"
    _nobs_label = "comparisons"


class _VcovFrame(pd.DataFrame):
    """The covariance of the zero-sum log-worths, callable as ``vcov(ref=...)`` for another reference."""

    _metadata = ["_fit"]

    def __init__(self, *args: Any, fit: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fit = fit

    @property
    def _constructor(self) -> type:
        return pd.DataFrame

    def __call__(self, ref: Any = None) -> pd.DataFrame:
        fit = self._fit
        C, _ = fit._contrast(ref)
        V = C @ self.to_numpy() @ C.T
        return pd.DataFrame(V, index=self.index.copy(), columns=self.columns.copy())


_INDEX_CACHE: dict[tuple, pd.Index] = {}


def label_index(labels: tuple, name: Any = None) -> pd.Index:
    """``pd.Index(list(labels), name=name)``, cached by labels and their types (building a string Index costs
    ~0.1 ms, a large share of a small fit); each call returns a fresh Index object sharing the data."""
    key = tuple((type(x), x) for x in labels)
    idx = _INDEX_CACHE.get(key)
    if idx is None:
        if len(_INDEX_CACHE) >= 256:
            _INDEX_CACHE.clear()
        idx = _INDEX_CACHE[key] = pd.Index(list(labels))
    return idx.copy(name=name)
