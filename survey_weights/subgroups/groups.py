"""Per-group fits with heterogeneity tests: :func:`fit_by_group` and :class:`GroupedFitResult`.

Respondents are split by one covariate (or by the crossing of several); each group gets its own Plackett-Luce
(Rankings) or Bradley-Terry (PairedComparisons) fit. Groups with fewer than ``min_group_size`` respondents are
withheld *everywhere* (fits, tables, plots, profiles/exports, tests) and named in a
:class:`~survey_weights.exceptions.SmallGroupWarning`.
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
from scipy import stats

from .._util.validation import check_option, check_scalar, format_ids
from ..data.rankings import PairedComparisons, Rankings
from ..exceptions import DataRecodeWarning, SmallGroupWarning
from ._lrtest import LRTestResult, holm, lr_test

__all__ = ["GroupedFitResult", "fit_by_group"]


def _fitter(data: Rankings | PairedComparisons, model: Any) -> Callable[..., Any]:
    if callable(model):
        return model
    from ..models import fit_bradley_terry, fit_plackett_luce

    if model is None:
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
        Respondents per kept group (index: group label ``"col=value, ..."``).
    small_groups : dict
        Withheld groups -> their number of respondents.
    min_group_size : int
    """

    by: list
    groups: list
    fits: dict
    n: pd.Series
    small_groups: dict
    min_group_size: int
    _data: Any = field(repr=False, default=None)
    _fit: Any = field(repr=False, default=None)
    _options: dict = field(repr=False, default_factory=dict)
    _pooled: Any = field(repr=False, default=None)

    def label(self, group: Any) -> str:
        """``"col=value, ..."`` label of a group."""
        return _label(self.by, group)

    @property
    def items(self) -> tuple:
        return self.fits[self.groups[0]].items

    def to_frame(self) -> pd.DataFrame:
        """Long table of the per-group estimates.

        Returns
        -------
        pandas.DataFrame
            One row per (group, item); columns ``group`` (label), one column per `by` covariate, ``item``,
            ``log_worth`` (zero-sum), ``se``, ``weight``, ``ci_low``, ``ci_high`` (95% interval of the weight,
            from the fit's ``to_frame``), ``n`` (respondents).
        """
        parts = []
        for g in self.groups:
            f = self.fits[g].to_frame()
            f.insert(0, "group", self.label(g))
            for b, v in zip(self.by, _tup(g, self.by)):
                f.insert(1, b, v)
            f["n"] = int(self.n[self.label(g)])
            parts.append(f)
        cols = ["group", *self.by, "item", "log_worth", "se", "weight", "ci_low", "ci_high", "n"]
        return pd.concat(parts, ignore_index=True)[cols]

    def weights_table(self) -> pd.DataFrame:
        """Weights, groups x items (rows sum to 1; index: group label)."""
        return pd.DataFrame([self.fits[g].weights.to_numpy() for g in self.groups],
                            index=pd.Index([self.label(g) for g in self.groups], name="group"),
                            columns=pd.Index(list(self.items), name="item"))

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
            raise ValueError("The LR test needs at least two groups of at least `min_group_size` respondents.")
        pooled = self.pooled_fit()
        ll = sum(self.fits[g].loglik for g in self.groups)
        df = sum(self.fits[g].df_model for g in self.groups) - pooled.df_model
        return lr_test(ll, pooled.loglik, df, f"same worths and tie parameters in every group of {self.by}")

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

    def profiles(self, **kwargs: Any) -> list:
        """One :class:`~survey_weights.profiles.WeightProfile` per kept group (``source="group"``).

        Parameters
        ----------
        **kwargs
            Passed to :func:`~survey_weights.profiles.derive_profile` (e.g. ``safety=``, ``level=``).

        Returns
        -------
        list of WeightProfile
            With ``group={col: value, ...}``; small groups are never included.
        """
        from ..profiles.profile import derive_profile

        return [derive_profile(self.fits[g], group=dict(zip(self.by, _tup(g, self.by))), source="group", **kwargs)
                for g in self.groups]

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

    def summary(self) -> str:
        """Printable summary: group sizes, weights, LR test, withheld groups."""
        tab = self.weights_table().round(3)
        tab.insert(0, "n", self.n.to_numpy())
        head = f"Per-group fits by {self.by}: {len(self.groups)} groups (min_group_size={self.min_group_size})"
        lines = [head, tab.to_string()]
        if len(self.groups) >= 2:
            lines.append(str(self.lr_test()))
        if self.small_groups:
            lines.append("Withheld (too small): " + "; ".join(f"{self.label(g)} (n={n})"
                                                              for g, n in self.small_groups.items()))
        return "\n".join(lines)

    def plot(self, ax: Any = None) -> Any:
        """Weights with 95% intervals per group (small groups are never shown); returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.6 + 0.5 * len(self.items)))
        df = self.to_frame()
        items = list(self.items)
        off = np.linspace(-0.3, 0.3, len(self.groups)) if len(self.groups) > 1 else np.zeros(1)
        for k, g in enumerate(self.groups):
            sub = df[df["group"] == self.label(g)].set_index("item").loc[items]
            y = np.arange(len(items)) + off[k]
            ax.errorbar(sub["weight"], y, xerr=[sub["weight"] - sub["ci_low"], sub["ci_high"] - sub["weight"]],
                        fmt="o", capsize=2, label=f"{self.label(g)} (n={int(self.n[self.label(g)])})")
        ax.set_yticks(np.arange(len(items)))
        ax.set_yticklabels(items)
        ax.set_xlabel("weight (95% CI)")
        ax.legend(fontsize="small")
        return ax

    def __repr__(self) -> str:
        return (f"GroupedFitResult(by={self.by}, groups={len(self.groups)}, n={[int(x) for x in self.n]}, "
                f"withheld={len(self.small_groups)})")

    _members: dict = field(repr=False, default_factory=dict)


def fit_by_group(
    data: Rankings | PairedComparisons,
    by: str | Sequence[str],
    *,
    min_group_size: int = 10,
    model: str | Callable[..., Any] | None = None,
    **fit_options: Any,
) -> GroupedFitResult:
    """Fit the model separately in every group of respondents.

    Parameters
    ----------
    data : Rankings or PairedComparisons
        Data with covariates (``data.covariates``).
    by : str or list of str
        Grouping covariate(s); several give crossed groups (value tuples).
    min_group_size : int, default 10
        Groups with fewer respondents are withheld from everything (fits, tables, plots, profiles, tests) and
        named in a :class:`~survey_weights.exceptions.SmallGroupWarning`.
    model : {None, "plackett_luce", "bradley_terry"} or callable, default None
        None picks Plackett-Luce for Rankings and Bradley-Terry for PairedComparisons; a callable is called as
        ``model(data, **fit_options)`` and must return a fit result.
    **fit_options
        Passed to the fit function (e.g. ``npseudo=0``, ``ties="davidson"``).

    Returns
    -------
    GroupedFitResult
        ``groups``, ``fits``, ``n``, ``to_frame()``, ``weights_table()``, ``lr_test()``, ``contrasts()``,
        ``profiles()``, ``plot()``.

    Raises
    ------
    ValueError
        Unknown `by` columns, data without covariates, or no group of at least `min_group_size` respondents.
    """
    check_scalar(min_group_size, "min_group_size", kind=numbers.Integral, min_val=1)
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
    small = {g: len(p) for g, p in members.items() if len(p) < min_group_size}
    kept = [g for g in members if g not in small]
    if small:
        warnings.warn(f"{len(small)} group(s) have fewer than min_group_size={min_group_size} respondents and are "
                      f"withheld from fits, tables, plots, exports and tests: "
                      + "; ".join(f"{_label(by_l, g)} (n={n})" for g, n in small.items()),
                      SmallGroupWarning, stacklevel=2)
    if not kept:
        raise ValueError(f"No group of {by_l} has at least min_group_size={min_group_size} respondents. "
                         "Fix: lower `min_group_size` or group more coarsely.")
    fits = {g: fit(data.subset(members[g]), **fit_options) for g in kept}
    used = np.sort(np.concatenate([members[g] for g in kept]))
    n = pd.Series([len(members[g]) for g in kept], index=pd.Index([_label(by_l, g) for g in kept], name="group"),
                  name="n")
    return GroupedFitResult(by=by_l, groups=kept, fits=fits, n=n, small_groups=small, min_group_size=min_group_size,
                            _data=data.subset(used), _fit=fit, _options=dict(fit_options),
                            _members={g: np.searchsorted(used, members[g]) for g in kept})
