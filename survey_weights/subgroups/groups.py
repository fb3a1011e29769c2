"""Per-group fits with heterogeneity tests: :func:`fit_by_group` and :class:`GroupedFitResult`.

Respondents are split by one covariate (or by the crossing of several); each group gets its own Plackett-Luce
(Rankings) or Bradley-Terry (PairedComparisons) fit. Groups with fewer than ``min_cell_size`` respondents (counted
as heads with a positive frequency weight) are withheld *everywhere* (fits, tables, plots, profiles/exports, tests)
and named in a :class:`~survey_weights.exceptions.SmallGroupWarning`; a grouping column that identifies respondents
(one value per respondent) is refused.
"""

from __future__ import annotations

import itertools
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_option, check_scalar, format_ids
from ..data.rankings import PairedComparisons, Rankings
from ..exceptions import DataRecodeWarning, SmallGroupWarning
from ..profiles.cells import (
    check_min_cell_size,
    check_not_identifying,
    count_respondents,
    reportable,
    resolve_min_cell_size,
)
from ..profiles.profile import DEFAULT_SAFETY, derive_profile
from ..results import Summary
from ._lrtest import LRTestResult, holm, lr_test

__all__ = ["GroupedFitResult", "fit_by_group"]


def _fitter(data: Rankings | PairedComparisons, model: Any) -> Callable[..., Any]:
    if callable(model):
        return model
    from ..models import fit_best_worst, fit_bradley_terry, fit_plackett_luce

    if model is None:
        if isinstance(data, Rankings) and data.best_worst is not None:
            return fit_best_worst  # best-worst tasks: the maxdiff model (pass a callable for another one)
        if isinstance(data, Rankings):
            return fit_plackett_luce
        if isinstance(data, PairedComparisons):
            return fit_bradley_terry
        raise TypeError(f"`data` must be Rankings or PairedComparisons. Got {type(data).__name__} instead.")
    check_option(model, "model", ("plackett_luce", "bradley_terry"))
    if model == "plackett_luce" and not isinstance(data, Rankings):
        raise TypeError("model='plackett_luce' needs Rankings. Fix: pass model=None or model='bradley_terry'.")
    if model == "bradley_terry" and isinstance(data, Rankings):
        raise TypeError("model='bradley_terry' needs PairedComparisons. Fix: pass data.to_pairwise().")
    return fit_plackett_luce if model == "plackett_luce" else fit_bradley_terry


def _tup(key: Any, by: list[str]) -> tuple:
    return tuple(key) if len(by) > 1 else (key,)


def _label(by: list[str], key: Any) -> str:
    return ", ".join(f"{b}={v}" for b, v in zip(by, _tup(key, by)))


@dataclass
class GroupedFitResult:
    """Result of :func:`fit_by_group`.

    Attributes
    ----------
    by : list of str
        The grouping covariates.
    groups : list
        Kept groups in level order: the value of `by` (one covariate) or a tuple of values (several).
    fits : dict
        Group -> fit result (``PlackettLuceResult`` / ``BradleyTerryResult``).
    n : pandas.Series
        Respondents per kept group (index: group label ``"col=value, ..."``), counted as heads with a positive
        frequency weight.
    small_groups : dict
        Withheld groups -> their number of respondents.
    min_cell_size : int
        Groups with fewer respondents were withheld (also readable as the deprecated ``min_group_size``).
    """

    by: list
    groups: list
    fits: dict
    n: pd.Series
    small_groups: dict
    min_cell_size: int
    _data: Any = field(repr=False, default=None)
    _fit: Any = field(repr=False, default=None)
    _options: dict = field(repr=False, default_factory=dict)
    _pooled: Any = field(repr=False, default=None)

    @property
    def min_group_size(self) -> int:
        """Deprecated name of :attr:`min_cell_size`."""
        return self.min_cell_size

    def label(self, group: Any) -> str:
        """``"col=value, ..."`` label of a group."""
        return _label(self.by, group)

    @property
    def items(self) -> tuple:
        return self.fits[self.groups[0]].items

    def to_frame(self, *, level: float = 0.95) -> pd.DataFrame:
        """Long table of the per-group estimates.

        Parameters
        ----------
        level : float, default 0.95
            Confidence level of the weight intervals.

        Returns
        -------
        pandas.DataFrame
            One row per (group, item); columns ``group`` (label ``"col=value, ..."``), one column per `by`
            covariate, ``item``, ``weight``, ``ci_low``, ``ci_high`` (interval of the weight: the group fit's
            :meth:`~survey_weights.FitResult.to_frame`, delta method on the logit scale), ``weight_se``,
            ``log_worth`` (zero-sum), ``se`` (of the log-worth), ``n`` (respondents).
        """
        parts = []
        for g in self.groups:
            f = self.fits[g].to_frame(level=level)
            f.insert(0, "group", self.label(g))
            for b, v in zip(self.by, _tup(g, self.by)):
                f.insert(1, b, v)
            f["n"] = int(self.n[self.label(g)])
            parts.append(f)
        cols = ["group", *self.by, "item", "weight", "ci_low", "ci_high", "weight_se", "log_worth", "se", "n"]
        return pd.concat(parts, ignore_index=True)[cols]

    @property
    def weights(self) -> pd.DataFrame:
        """Weights, groups x items: index ``group`` (label), columns ``item``; each row sums to 1."""
        return pd.DataFrame([self.fits[g].weights.to_numpy() for g in self.groups],
                            index=pd.Index([self.label(g) for g in self.groups], name="group"),
                            columns=pd.Index(list(self.items), name="item"))

    def weights_table(self) -> pd.DataFrame:
        """The same as :attr:`weights` (kept for existing code)."""
        return self.weights

    def pooled_fit(self) -> Any:
        """The fit to all respondents of the kept groups together (the null model of :meth:`lr_test`)."""
        if self._pooled is None:
            self._pooled = self._fit(self._data, **self._options)
        return self._pooled

    def lr_test(self) -> LRTestResult:
        """Likelihood-ratio test of "the same worths (and tie parameters) in every group".

        ``statistic = 2 (sum_g loglik_g - loglik_pooled)`` over the kept groups only (small groups and
        respondents with a missing grouping value are excluded from both models); ``df`` = sum of the groups'
        ``df_model`` minus the pooled one. Each ``loglik`` is the fit's data log-likelihood at its estimate, with
        the `npseudo` used for the fits: with ``npseudo = 0`` this is the exact LR test; with ``npseudo > 0``
        (the default 0.5) it is the LR statistic evaluated at the penalised estimates, which are shrunk slightly
        towards equal worths, so the test is slightly conservative (pass ``npseudo=0`` to ``fit_by_group`` for
        the exact test).

        Returns
        -------
        LRTestResult
            ``statistic``, ``df``, ``pvalue``.
        """
        if len(self.groups) < 2:
            raise ValueError("The LR test needs at least two groups of at least `min_cell_size` respondents. Got "
                             f"{len(self.groups)} with min_cell_size={self.min_cell_size}. Fix: group more coarsely.")
        if any(getattr(self.fits[g], "sampling", None) is not None for g in self.groups):
            return self.wald_test()
        pooled = self.pooled_fit()
        ll = sum(self.fits[g].loglik for g in self.groups)
        df = sum(self.fits[g].df_model for g in self.groups) - pooled.df_model
        return lr_test(ll, pooled.loglik, df, f"same worths and tie parameters in every group of {self.by}")

    def wald_test(self) -> LRTestResult:
        """Wald test of "the same worths in every group" with each group fit's covariance (the robust sandwich
        under sampling weights, where the likelihood-ratio statistic has no chi-square reference).

        Differences ``b_g - b_1`` of the zero-sum log-worths against the first group (independent groups:
        covariance ``V_g + V_1`` on the diagonal blocks, ``V_1`` off it); ``df = (G - 1)(n_items - 1)``.
        """
        gs = list(self.groups)
        if len(gs) < 2:
            raise ValueError("The Wald test needs at least two groups of at least `min_group_size` respondents.")
        b = [self.fits[g].log_worth.to_numpy() for g in gs]
        V = [self.fits[g].vcov.to_numpy() for g in gs]
        J = len(b[0])
        d = np.concatenate([bg - b[0] for bg in b[1:]])
        S = np.kron(np.ones((len(gs) - 1, len(gs) - 1)), V[0])
        for k, Vg in enumerate(V[1:]):
            S[k * J:(k + 1) * J, k * J:(k + 1) * J] += Vg
        stat = float(d @ np.linalg.pinv(S, rcond=1e-10) @ d)
        df = (len(gs) - 1) * (J - 1)
        kind = getattr(self.fits[gs[0]], "vcov_type", "model")
        from scipy import stats

        return LRTestResult(stat, df, float(stats.chi2.sf(stat, df)),
                            f"same worths in every group of {self.by} (Wald, {kind} covariance)")

    def contrasts(self, *, level: float = 0.95) -> pd.DataFrame:
        """Wald contrasts between every pair of groups for every item, Holm-adjusted over all rows.

        The contrast is the difference of the groups' zero-sum log-worths; its SE is ``sqrt(se_1^2 + se_2^2)``
        (independent groups).

        Returns
        -------
        pandas.DataFrame
            Columns ``item``, ``group1``, ``group2``, ``estimate``, ``se``, ``z``, ``pvalue``, ``pvalue_holm``,
            ``ci_low``, ``ci_high`` (unadjusted Wald interval at `level`).
        """
        from scipy import stats  # lazy: scipy.stats alone takes longer to import than the package

        check_scalar(level, "level", min_val=0.0, max_val=1.0, include_min=False, include_max=False)
        rows = []
        for g1, g2 in itertools.combinations(self.groups, 2):
            f1, f2 = self.fits[g1], self.fits[g2]
            d = (f1.log_worth - f2.log_worth).to_numpy()
            se = np.sqrt(f1.se.to_numpy() ** 2 + f2.se.to_numpy() ** 2)
            for j, it in enumerate(self.items):
                rows.append((it, self.label(g1), self.label(g2), d[j], se[j]))
        out = pd.DataFrame(rows, columns=["item", "group1", "group2", "estimate", "se"])
        out["z"] = out["estimate"] / out["se"]
        out["pvalue"] = 2 * stats.norm.sf(np.abs(out["z"]))
        out["pvalue_holm"] = holm(out["pvalue"].to_numpy())
        zq = stats.norm.ppf(0.5 + level / 2)
        out["ci_low"] = out["estimate"] - zq * out["se"]
        out["ci_high"] = out["estimate"] + zq * out["se"]
        return out

    def profiles(self, *, safety: Any = DEFAULT_SAFETY, min_cell_size: int | None = None,
                 level: float = 0.95) -> list:
        """One :class:`~survey_weights.profiles.WeightProfile` per kept group (``source="group"``).

        Parameters
        ----------
        safety : float, dict or None, default ``{"floor": 0.2}``
            Constraint objective and its rule, as in :func:`~survey_weights.derive_profile` (None: none).
        min_cell_size : int, optional
            Groups with fewer respondents are withheld (:class:`~survey_weights.exceptions.SmallGroupWarning`);
            default the grouping's :attr:`min_cell_size` (groups below it were never fitted).
        level : float, default 0.95
            Confidence level of the intervals.

        Returns
        -------
        list of WeightProfile
            Named ``"col=value"`` (``"col1=v1,col2=v2"`` for crossed groups), with ``group={col: value, ...}`` and
            the group fit's data hash.
        """
        kept = reportable({self.label(g): int(self.n[self.label(g)]) for g in self.groups},
                          check_min_cell_size(min_cell_size, self.min_cell_size), what="group(s)")
        keep = [g for g in self.groups if self.label(g) in kept]
        return [derive_profile(self.fits[g], safety=safety, level=level, group=dict(zip(self.by, _tup(g, self.by))),
                               source="group", n_respondents=int(self.n[self.label(g)])) for g in keep]

    def bootstrap(self, *, n_boot: int = 1000, seed: int | None = None, **kwargs: Any) -> dict:
        """Respondent bootstrap within each kept group (independent seeds spawned from `seed`).

        Returns
        -------
        dict
            Group -> :class:`~survey_weights.bootstrap.BootstrapResult`.
        """
        from .bootstrap import bootstrap

        opts = {k: v for k, v in self._options.items() if k in ("npseudo", "ties")}
        opts.update(kwargs)
        seeds = np.random.SeedSequence(seed).spawn(len(self.groups))
        return {g: bootstrap(self._data.subset(self._members[g]), n_boot=n_boot,
                             seed=np.random.default_rng(s), **opts)
                for g, s in zip(self.groups, seeds)}

    def summary(self) -> Summary:
        """Group sizes and weights, the LR test, the withheld groups.

        Returns
        -------
        Summary
            ``table``: groups x (``n``, items) weights; ``notes``: the LR test and the withheld groups.
        """
        tab = self.weights.copy()
        tab.insert(0, "n", self.n.to_numpy())
        notes = [str(self.lr_test())] if len(self.groups) >= 2 else []
        if self.small_groups:
            notes.append("Withheld (too small): " + "; ".join(f"{self.label(g)} (n={n})"
                                                              for g, n in self.small_groups.items()))
        info = {"groups": len(self.groups), "respondents": int(self.n.sum()), "min_cell_size": self.min_cell_size}
        return Summary(f"Per-group fits by {self.by}: weights", tab, info=info, notes=tuple(notes))

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Weights with 95% intervals, one series per kept group (small groups are never shown).

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

        labels = {self.label(g): f"{self.label(g)} (n={int(self.n[self.label(g)])})" for g in self.groups}
        kwargs.setdefault("xlabel", "weight (95% CI)")
        return plot_intervals(self.to_frame(), key="group", ax=ax, labels=labels, reference=1.0 / len(self.items),
                              **kwargs)

    def __repr__(self) -> str:
        return (f"GroupedFitResult(by={self.by}, groups={len(self.groups)}, n={[int(x) for x in self.n]}, "
                f"withheld={len(self.small_groups)})")

    _members: dict = field(repr=False, default_factory=dict)


def fit_by_group(
    data: Rankings | PairedComparisons,
    by: str | Sequence[str],
    *,
    min_cell_size: int | None = None,
    model: str | Callable[..., Any] | None = None,
    min_group_size: int | None = None,
    vcov: str | None = None,
    **fit_options: Any,
) -> GroupedFitResult:
    """Fit the model separately in every group of respondents.

    Parameters
    ----------
    data : Rankings or PairedComparisons
        Data with covariates (``data.covariates``).
    by : str or list of str
        Grouping covariate(s); several give crossed groups (value tuples). Any covariate of the data, except one
        that identifies respondents (all its values different, e.g. a respondent id column).
    min_cell_size : int, default 10
        Groups with fewer respondents (heads with a positive frequency weight, not summed weights) are withheld
        from everything (fits, tables, plots, profiles, tests) and named in a
        :class:`~survey_weights.exceptions.SmallGroupWarning`.
    model : {None, "plackett_luce", "bradley_terry"} or callable, default None
        None picks Plackett-Luce for Rankings, :func:`~survey_weights.fit_best_worst` (maxdiff) for best-worst
        Rankings and Bradley-Terry for PairedComparisons; a callable is called as ``model(data, **fit_options)``
        and must return a fit result.
    min_group_size : int, optional
        Deprecated old name of `min_cell_size` (a ``DeprecationWarning``).
    vcov : {None, "model", "robust", "cluster"}, optional
        Covariance of every group's fit, as in :func:`~survey_weights.fit_plackett_luce` (None: the fit's default,
        ``"robust"`` with sampling weights and ``"model"`` otherwise); it also decides whether :meth:`lr_test`
        is a likelihood-ratio or a Wald test.
    **fit_options
        Passed to the fit function (e.g. ``npseudo=0``, ``ties="davidson"``).

    Returns
    -------
    GroupedFitResult
        ``groups``, ``fits``, ``n``, ``weights``, ``to_frame()``, ``summary()``, ``lr_test()``, ``contrasts()``,
        ``profiles()``, ``plot()``.

    Raises
    ------
    ValueError
        Unknown `by` columns, data without covariates, a `by` column that identifies respondents, or no group of at
        least `min_cell_size` respondents.
    """
    min_cell_size = resolve_min_cell_size(min_cell_size, min_group_size, where="fit_by_group")
    if vcov is not None:
        fit_options["vcov"] = vcov
    check_scalar(min_cell_size, "min_cell_size", kind=numbers.Integral, min_val=1)
    fit = _fitter(data, model)
    by_l = [by] if isinstance(by, str) else list(by)
    if not by_l:
        raise ValueError("`by` must name at least one covariate.")
    cov = data.covariates
    if cov is None:
        raise ValueError("`data` carries no covariates, so it cannot be grouped. Fix: build it with "
                         "covariates=[...] (e.g. Rankings.from_ratings(df, items, covariates=['age_group'])).")
    unknown = [b for b in by_l if b not in cov.columns]
    if unknown:
        raise ValueError(f"Unknown `by` covariate(s) {format_ids(unknown)}. Available: "
                         f"{format_ids(list(cov.columns), limit=20)}.")
    check_not_identifying(cov, by_l, what="by", respondent_ids=data.respondent_ids)
    frame = cov[by_l]
    miss = frame.isna().any(axis=1).to_numpy()
    if miss.any():
        warnings.warn(f"{int(miss.sum())} respondent(s) with a missing value of {by_l} are left out of every "
                      f"group: respondent ids {format_ids(list(cov.index[miss]))}.", DataRecodeWarning, stacklevel=2)
    keys = pd.MultiIndex.from_frame(frame[~miss])
    levels = [list(c.cat.categories) if isinstance(c.dtype, pd.CategoricalDtype)
              else sorted(c.dropna().unique(), key=lambda v: (str(type(v)), v)) for _, c in frame.items()]
    pos_all = np.flatnonzero(~miss)
    members: dict[tuple, np.ndarray] = {}
    for key in itertools.product(*levels):
        sel = pos_all[np.all([keys.get_level_values(k) == v for k, v in enumerate(key)], axis=0)]
        if len(sel):
            members[tuple(key)] = sel
    if len(by_l) == 1:
        members = {g[0]: p for g, p in members.items()}
    rw = np.asarray(data.respondent_weights, dtype=float)
    sizes = {g: count_respondents(rw[p]) for g, p in members.items()}
    small = {g: n for g, n in sizes.items() if n < min_cell_size}
    kept = [g for g in members if g not in small]
    if small:
        warnings.warn(f"{len(small)} group(s) have fewer than min_cell_size={min_cell_size} respondents and are "
                      f"withheld from fits, tables, plots, exports and tests: "
                      + "; ".join(f"{_label(by_l, g)} (n={n})" for g, n in small.items()),
                      SmallGroupWarning, stacklevel=2)
    if not kept:
        raise ValueError(f"No group of {by_l} has at least min_cell_size={min_cell_size} respondents. "
                         "Fix: group more coarsely (or lower `min_cell_size` deliberately).")
    fits = {g: fit(data.subset(members[g]), **fit_options) for g in kept}
    used = np.sort(np.concatenate([members[g] for g in kept]))
    n = pd.Series([sizes[g] for g in kept], index=pd.Index([_label(by_l, g) for g in kept], name="group"),
                  name="n")
    return GroupedFitResult(by=by_l, groups=kept, fits=fits, n=n, small_groups=small, min_cell_size=min_cell_size,
                            _data=data.subset(used), _fit=fit, _options=dict(fit_options),
                            _members={g: np.searchsorted(used, members[g]) for g in kept})
