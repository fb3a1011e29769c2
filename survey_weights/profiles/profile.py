"""Weight profiles: one weight per objective (the survey's criteria, any item set, plus an optional constraint
objective such as the study's safety) handed to MODPO.

A :class:`WeightProfile` is what leaves the statistics side of the package: one weight per objective, with intervals
and enough provenance (model, data hash, group, constraint rule) to be audited later. :func:`derive_profile` turns a
fitted Plackett-Luce / Bradley-Terry result over any items into one. The study's five criteria plus safety
(:data:`~survey_weights.criteria.ALL_CRITERIA`) are only the default of the examples: a profile carries its own
criteria, in order.
"""

from __future__ import annotations

import html
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..criteria import SAFETY
from ._constraint import constraint_rule, numeric_jacobian, profile_labels, profile_map
from ._metadata import check_not_respondent_level, jsonable
from .intervals import logit_interval, weight_se, z_value

__all__ = ["WeightProfile", "derive_profile", "DEFAULT_SAFETY", "KNOWN_SOURCES"]

#: Default constraint rule of :func:`derive_profile`: an objective named ``"safety"`` with at least 20 % of the
#: weight, and never below any rated criterion.
DEFAULT_SAFETY: dict[str, float] = {"floor": 0.2}
#: Values of :attr:`WeightProfile.source` the package itself produces.
KNOWN_SOURCES: tuple[str, ...] = ("pooled", "group", "class", "tree", "regression", "manual")
_TOL = 1e-9


def _as_weight_series(values: Any, what: str, criteria: tuple[str, ...] | None = None) -> pd.Series:
    """`values` as a float Series indexed by criterion name (str), in their own order or in `criteria` order."""
    if isinstance(values, Mapping):
        values = pd.Series(dict(values), dtype=object)
    if not isinstance(values, pd.Series):
        raise TypeError(f"`{what}` must be a pandas Series or dict keyed by criterion. Got {type(values).__name__}.")
    labels = [str(c) for c in values.index]
    if not labels:
        raise ValueError(f"`{what}` must name at least one criterion. Got an empty {type(values).__name__}.")
    if any(not c.strip() for c in labels):
        raise ValueError(f"`{what}` has an empty criterion name: {labels}. Fix: name every criterion.")
    dups = sorted({c for c in labels if labels.count(c) > 1})
    if dups:
        raise ValueError(f"`{what}` names criteria {dups} more than once. Fix: one entry per criterion.")
    try:
        vals = dict(zip(labels, (float(v) for v in values.to_numpy())))
    except (TypeError, ValueError):
        raise TypeError(f"`{what}` must hold numbers. Got {values.to_dict()!r}.") from None
    if criteria is not None:
        missing = [c for c in criteria if c not in vals]
        extra = [c for c in labels if c not in criteria]
        if missing or extra:
            raise ValueError(
                f"`{what}` must have one entry per criterion of `weights` {list(criteria)}. "
                f"Missing: {missing}; unexpected: {extra}."
            )
        labels = list(criteria)
    s = pd.Series([vals[c] for c in labels], index=pd.Index(labels, name="criterion"), name=what, dtype=float)
    if not np.all(np.isfinite(s.to_numpy())) or (s < 0).any() or (s > 1).any():
        raise ValueError(f"`{what}` must lie in [0, 1]. Got {s.round(4).to_dict()}.")
    return s


@dataclass(frozen=True, eq=False)
class WeightProfile:
    """Weights of the objectives (any criteria, in order) for one group of respondents.

    Parameters
    ----------
    name : str
        Unique label, e.g. ``"pooled"`` or ``"age_group=18-24"``.
    weights : pandas.Series or dict
        One share per criterion, summing to 1; any criterion names (str), in the order given (a dict's insertion
        order, a Series' index order): the survey's rated criteria and, optionally, a constraint objective (the
        study's ``"safety"``). Stored as a float Series in that order (:attr:`criteria`).
    ci_low, ci_high : pandas.Series, dict or None
        Pointwise interval bounds (both or neither) over the same criteria, containing `weights`.
    n_respondents : int
        Respondents behind the estimate (exports withhold small groups).
    source : str
        How the group was formed: ``"pooled"``, ``"group"``, ``"class"``, ``"tree"``, ``"regression"`` (a
        covariate cell of a worth regression) or ``"manual"``.
    group : dict or None
        The defining covariate values, e.g. ``{"age_group": "18-24"}``.
    safety_rule : dict
        How the constraint objective's share was set (see :func:`derive_profile`): ``{"name": criterion, "rule":
        "floor" | "fixed", "share": s, ...}``, or ``{"rule": "none"}`` for a profile without one. ``name``, when
        given, must be one of the criteria.
    model : dict
        Model provenance: ``name``, ``npseudo``, ``method``, ``loglik``, ...
    data_hash : str or None
        Hash of the data the fit used (``Rankings.data_hash()``).

    Raises
    ------
    ValueError
        Weights that do not lie in [0, 1] or sum to 1, intervals over other criteria or not containing the
        weights, or metadata that carries respondent-level data (a key such as ``"ResponseId"``, or a nested list
        with one value per respondent).

    Examples
    --------
    >>> p = WeightProfile("demo", {"cost": .5, "speed": .3, "comfort": .2}, n_respondents=40, source="manual")
    >>> p.criteria
    ('cost', 'speed', 'comfort')
    >>> w = {"empathy": .3, "active_listening": .2, "self_motivated_change": .1,
    ...      "trust_rapport": .1, "patient_autonomy": .1, "safety": .2}
    >>> p = WeightProfile("demo", w, n_respondents=40, source="manual")
    >>> round(float(p.weights.sum()), 12)
    1.0
    >>> p == WeightProfile.from_dict(p.to_dict())
    True
    """

    name: str
    weights: pd.Series
    ci_low: pd.Series | None = None
    ci_high: pd.Series | None = None
    n_respondents: int = 0
    source: str = "pooled"
    group: dict[str, Any] | None = None
    safety_rule: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    data_hash: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"`name` must be a non-empty str. Got {self.name!r}.")
        w = _as_weight_series(self.weights, "weights")
        if abs(w.sum() - 1.0) > _TOL:
            raise ValueError(f"`weights` must sum to 1. Got {w.sum()!r} for profile {self.name!r}; divide by the sum.")
        object.__setattr__(self, "weights", w)
        crit = tuple(w.index)
        if (self.ci_low is None) != (self.ci_high is None):
            raise ValueError("Give both `ci_low` and `ci_high`, or neither.")
        if self.ci_low is not None:
            lo = _as_weight_series(self.ci_low, "ci_low", crit)
            hi = _as_weight_series(self.ci_high, "ci_high", crit)
            bad = [c for c in crit if not (lo[c] - _TOL <= w[c] <= hi[c] + _TOL)]
            if bad:
                raise ValueError(f"Intervals must contain the weights; they do not for {bad} in profile {self.name!r}.")
            object.__setattr__(self, "ci_low", lo)
            object.__setattr__(self, "ci_high", hi)
        if isinstance(self.n_respondents, bool) or not isinstance(self.n_respondents, numbers.Integral) \
                or self.n_respondents < 0:
            raise ValueError(f"`n_respondents` must be an int >= 0. Got {self.n_respondents!r}.")
        object.__setattr__(self, "n_respondents", int(self.n_respondents))
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"`source` must be a non-empty str, e.g. one of {KNOWN_SOURCES}. Got {self.source!r}.")
        if self.group is not None and not isinstance(self.group, Mapping):
            raise TypeError(f"`group` must be a dict or None. Got {type(self.group).__name__}.")
        if not isinstance(self.safety_rule, Mapping) or not isinstance(self.model, Mapping):
            bad_name = "safety_rule" if not isinstance(self.safety_rule, Mapping) else "model"
            raise TypeError(f"`{bad_name}` must be a dict. Got {type(getattr(self, bad_name)).__name__}.")
        self.check_metadata()
        object.__setattr__(self, "group", None if self.group is None else jsonable(self.group, "group"))
        object.__setattr__(self, "safety_rule", jsonable(dict(self.safety_rule), "safety_rule"))
        object.__setattr__(self, "model", jsonable(dict(self.model), "model"))
        cname = self.safety_rule.get("name")
        if cname is not None and cname not in crit:
            raise ValueError(f"`safety_rule` names the constraint objective {cname!r}, which is not one of the "
                             f"profile's criteria {list(crit)}. Fix: add its weight or correct the name.")
        if self.data_hash is not None and not isinstance(self.data_hash, str):
            raise TypeError(f"`data_hash` must be a str or None. Got {type(self.data_hash).__name__}.")

    def check_metadata(self) -> None:
        """Refuse respondent-level data in ``group``, ``safety_rule`` and ``model`` (run again by every export).

        Raises
        ------
        ValueError
            A key that looks like a respondent identifier (``"ResponseId"``, ``"respondent_id"``, ``"email"``...) or
            a nested list / array / mapping with at least ``n_respondents`` entries (one per respondent).
        """
        for what in ("group", "safety_rule", "model"):
            check_not_respondent_level(getattr(self, what), self.n_respondents, what)

    # -- comparisons and views -------------------------------------------------------------
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WeightProfile):
            return NotImplemented
        def same(a: pd.Series | None, b: pd.Series | None) -> bool:
            if a is None or b is None:
                return a is b
            return bool(np.array_equal(a.to_numpy(), b.to_numpy())) and list(a.index) == list(b.index)
        return (
            self.name == other.name and same(self.weights, other.weights)
            and same(self.ci_low, other.ci_low) and same(self.ci_high, other.ci_high)
            and self.n_respondents == other.n_respondents and self.source == other.source
            and self.group == other.group and self.safety_rule == other.safety_rule
            and self.model == other.model and self.data_hash == other.data_hash
        )

    @property
    def criteria(self) -> tuple[str, ...]:
        """The objectives, in the profile's order (for :func:`derive_profile`: the fit's items, then the constraint
        objective, if any)."""
        return tuple(self.weights.index)

    @property
    def constraint(self) -> str | None:
        """Name of the constraint objective (one of :attr:`criteria`), or None when the profile has none.

        It is ``safety_rule["name"]``; a profile written before constraints were named (no ``"name"``, rule
        ``"fixed"`` or ``"floor"``) has the study's ``"safety"``.
        """
        name = self.safety_rule.get("name")
        if name is None and self.safety_rule.get("rule") in ("fixed", "floor") and SAFETY in self.criteria:
            return SAFETY
        return name

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: index ``criterion``; columns ``weight``, ``ci_low``, ``ci_high`` (NaN if none)."""
        nan = pd.Series(np.nan, index=self.weights.index)
        return pd.DataFrame({
            "weight": self.weights,
            "ci_low": self.ci_low if self.ci_low is not None else nan,
            "ci_high": self.ci_high if self.ci_high is not None else nan,
        })

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the export schema's profile entry); floats kept exactly."""
        def ser(s: pd.Series | None) -> dict[str, float] | None:
            return None if s is None else {c: float(v) for c, v in s.items()}
        return {
            "name": self.name, "criteria": list(self.criteria), "weights": ser(self.weights), "ci_low": ser(self.ci_low),
            "ci_high": ser(self.ci_high), "n_respondents": self.n_respondents, "source": self.source,
            "group": self.group, "safety_rule": self.safety_rule, "model": self.model,
            "data_hash": self.data_hash,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WeightProfile:
        """Inverse of :meth:`to_dict` (validates)."""
        if not isinstance(d, Mapping):
            raise TypeError(f"Expected a dict describing a profile. Got {type(d).__name__}.")
        missing = [k for k in ("name", "weights") if k not in d]
        if missing:
            raise ValueError(f"Profile entry lacks required key(s) {missing}. Got keys {sorted(d)}.")
        weights = d["weights"]
        crit = d.get("criteria")
        if crit is not None:
            if not isinstance(crit, (list, tuple)) or not all(isinstance(c, str) for c in crit):
                raise ValueError(f"Profile {d['name']!r}: `criteria` must be a list of str. Got {crit!r}.")
            if not isinstance(weights, Mapping) or sorted(map(str, weights)) != sorted(crit) \
                    or len(set(crit)) != len(crit):
                got = list(weights) if isinstance(weights, Mapping) else type(weights).__name__
                raise ValueError(f"Profile {d['name']!r}: its `weights` must have one entry per criterion it lists, "
                                 f"{list(crit)}. Got {got}. Was the file edited by hand?")
            weights = {c: weights[c] for c in crit}
        return cls(
            name=d["name"], weights=weights, ci_low=d.get("ci_low"), ci_high=d.get("ci_high"),
            n_respondents=d.get("n_respondents", 0), source=d.get("source", "pooled"), group=d.get("group"),
            safety_rule=d.get("safety_rule") or {}, model=d.get("model") or {}, data_hash=d.get("data_hash"),
        )

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Dot-and-whisker plot of the weights by criterion, with the intervals (when the profile has them).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when None.
        **kwargs
            ``title``, ``xlabel``, ``reference`` (:func:`~survey_weights.plotting.plot_profiles`).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ..plotting import plot_profiles

        return plot_profiles([self], ax=ax, **kwargs)

    def __repr__(self) -> str:
        head = f"WeightProfile({self.name!r}, source={self.source!r}, n_respondents={self.n_respondents}"
        if self.group:
            head += f", group={self.group!r}"
        lines = [head + ")"]
        for c in self.criteria:
            line = f"  {c:<22} {self.weights[c]:.3f}"
            if self.ci_low is not None:
                line += f"  [{self.ci_low[c]:.3f}, {self.ci_high[c]:.3f}]"
            lines.append(line)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td>{esc(c)}</td><td>{self.weights[c]:.3f}</td>"
            + (f"<td>[{self.ci_low[c]:.3f}, {self.ci_high[c]:.3f}]</td>" if self.ci_low is not None else "<td></td>")
            + "</tr>"
            for c in self.criteria
        )
        return (
            f"<div><b>WeightProfile {esc(self.name)}</b> ({esc(self.source)}, n = {self.n_respondents}"
            f"{', ' + esc(str(self.group)) if self.group else ''})"
            f"<table><tr><th>criterion</th><th>weight</th><th>interval</th></tr>{rows}</table></div>"
        )


def _fit_attr(fit: Any, name: str) -> Any:
    if not hasattr(fit, name):
        raise TypeError(
            f"`fit` must be a fitted result (e.g. from fit_plackett_luce) with `.{name}`. "
            f"Got {type(fit).__name__} without it."
        )
    return getattr(fit, name)


def derive_profile(
    fit: Any,
    *,
    safety: float | Mapping[str, Any] | None = DEFAULT_SAFETY,
    name: str | None = None,
    level: float = 0.95,
    group: Mapping[str, Any] | None = None,
    source: str = "pooled",
    criteria: Mapping[str, str] | None = None,
    data_hash: str | None = None,
    n_respondents: int | None = None,
) -> WeightProfile:
    """Turn a fitted ranking model over any items into a :class:`WeightProfile`.

    The profile's criteria are the fit's items, in the fit's order, followed by the constraint objective (the
    study's ``"safety"`` by default), if any.

    Parameters
    ----------
    fit : FitResult
        A result of ``fit_plackett_luce`` / ``fit_bradley_terry`` over any items (needs ``items``, ``weights``,
        ``log_worth``, ``vcov``, ``n_respondents``).
    safety : float, dict or None, default ``{"floor": 0.2}``
        The *constraint objective*: an objective the respondents did not rate, added to the profile with a share
        set by the analyst (in the study: safety, kept as a non-negotiable objective).

        * ``None``: no constraint objective. The profile's criteria are the fit's items only, its weights are
          ``fit.weights`` unchanged and its intervals those of ``fit.to_frame()``.
        * a float ``s`` or ``{"share": s}``: an objective named ``"safety"`` with the fixed share ``s``.
        * ``{"floor": f}``: ``"safety"`` with share ``max(f, s*)``, where ``s* = p_max / (1 + p_max)`` is the
          share at which it exactly equals the largest rated criterion (``p_max`` is the largest of
          ``fit.weights``): it gets at least ``f`` and never ranks below any criterion.
        * ``{"name": "harm_avoidance", "share": s}`` or ``{"name": "harm_avoidance", "floor": f}``: the same
          rules for a constraint objective of another name (when the study's safety is not the analyst's).

        The name must not be one of the fit's items (an objective is either rated or set as a constraint).
    name : str, optional
        Profile label; default ``"pooled"`` or ``"key=value,..."`` built from `group`.
    level : float, default 0.95
        Confidence level of the pointwise intervals.
    group : dict, optional
        Covariate values defining the group, e.g. ``{"age_group": "18-24"}``.
    source : str, default "pooled"
        ``"pooled"``, ``"group"``, ``"class"``, ``"tree"``, ``"regression"``...
    criteria : dict, optional
        Renames items: ``{fit item label: criterion name}`` (items not in it keep their label).
    data_hash : str, optional
        Hash of the fitted data; default ``fit.data_hash`` or ``fit.rankings.data_hash()`` if present.
    n_respondents : int, optional
        Respondents behind the estimate; default ``fit.n_respondents``.

    Returns
    -------
    WeightProfile
        ``safety_rule`` records the rule: ``{"name": ..., "rule": "fixed", "share": s}``, ``{"name": ..., "rule":
        "floor", "floor": f, "share": s}`` or ``{"rule": "none"}``.

    Raises
    ------
    ValueError
        If the constraint objective's name is one of the fit's items, `criteria` renames an unknown item or makes
        two names equal, or an option is invalid.

    Notes
    -----
    With rated worths ``p = softmax(beta)`` (``= fit.weights``) and constraint share ``s``, the weights are
    ``w_c = (1 - s) p_c`` for the rated criteria and ``s`` for the constraint objective, so ratios among the rated
    criteria are those of ``fit.weights``. Intervals come from the delta method, ``Var(w) = J V J^T`` with
    ``V = fit.vcov`` (zero-sum log-worths) and ``J`` the Jacobian of the map ``beta -> w``: analytic
    ``(1 - s)(diag(p) - p p^T)`` for a fixed share, central differences when the floor rule is in force (then the
    constraint's share varies with ``beta`` too). Bounds follow the package's one recipe for a weight
    (:func:`~survey_weights.profiles.intervals.logit_interval`): ``expit(logit(w) -/+ z_{(1+level)/2} se /
    (w (1 - w)))``, a Wald interval on the logit scale, so bounds lie inside (0, 1) and contain ``w``. A fixed
    share has a zero-width interval.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> import numpy as np, pandas as pd
    >>> from survey_weights.criteria import SURVEY_CRITERIA
    >>> b = pd.Series([0.8, 0.3, -0.4, -0.2, -0.5], index=SURVEY_CRITERIA)
    >>> fake = SimpleNamespace(items=SURVEY_CRITERIA, log_worth=b, weights=np.exp(b) / np.exp(b).sum(),
    ...                        vcov=pd.DataFrame(0.0, index=b.index, columns=b.index), n_respondents=335)
    >>> p = derive_profile(fake, safety=0.25)
    >>> float(p.weights["safety"])
    0.25
    >>> derive_profile(fake, safety=None).criteria == SURVEY_CRITERIA
    True
    >>> derive_profile(fake, safety={"name": "harm_avoidance", "floor": 0.3}).criteria[-1]
    'harm_avoidance'
    """
    items = tuple(_fit_attr(fit, "items"))
    labels = profile_labels(items, criteria)
    cname, kind, val = constraint_rule(safety)
    if cname is not None and cname in labels:
        raise ValueError(
            f"The fit has an item named {cname!r}, the name of the constraint objective that `safety=` adds "
            f"(an objective is either rated or set as a constraint). Fix: safety=None if the respondents rated "
            f"{cname!r}, safety={{'name': 'another_name', ...}} for a different constraint objective, or rename the "
            "item with `criteria=`."
        )
    z_value(level)  # validates `level`
    order = list(items)
    p = np.asarray(pd.Series(_fit_attr(fit, "weights")).loc[order], dtype=float)
    if abs(p.sum() - 1.0) > 1e-12:
        p = p / p.sum()
    beta = np.asarray(pd.Series(_fit_attr(fit, "log_worth")).loc[order], dtype=float)
    vcov = _fit_attr(fit, "vcov")
    V = np.asarray(pd.DataFrame(vcov).loc[order, order], dtype=float) if vcov is not None else None
    index = labels if cname is None else [*labels, cname]
    s = val if kind != "floor" else max(val, p.max() / (1.0 + p.max()))
    w = p if kind == "none" else np.concatenate([(1.0 - s) * p, [s]])
    lo = hi = None
    if V is not None:
        if kind == "none":
            se = weight_se(beta, V)[1]
        elif kind == "fixed" or val >= p.max() / (1.0 + p.max()):
            # the constraint's share does not depend on beta: w_c = (1 - s) p_c is linear in p
            se = np.concatenate([(1.0 - s) * weight_se(beta, V)[1], [0.0]])
        else:
            J = numeric_jacobian(profile_map(kind, val), beta)
            se = np.sqrt(np.clip(np.diag(J @ V @ J.T), 0.0, None))
        low, high = logit_interval(w, se, level)
        lo, hi = pd.Series(low, index=index), pd.Series(high, index=index)
    if name is None:
        name = "pooled" if not group else ",".join(f"{k}={v}" for k, v in group.items())
    if data_hash is None:
        data_hash = getattr(fit, "data_hash", None)
        if callable(data_hash):
            data_hash = data_hash()
        if data_hash is None and hasattr(getattr(fit, "rankings", None), "data_hash"):
            data_hash = fit.rankings.data_hash()
    if kind == "none":
        rule: dict[str, Any] = {"rule": "none"}
    elif kind == "floor":
        rule = {"name": cname, "rule": "floor", "floor": val, "share": float(s)}
    else:
        rule = {"name": cname, "rule": "fixed", "share": float(s)}
    model = {"name": _model_name(fit), "level": float(level)}
    for attr in ("npseudo", "method", "loglik", "converged", "vcov_type"):
        v = getattr(fit, attr, None)
        if v is not None and isinstance(v, (str, bool, numbers.Real, np.bool_)):
            model[attr] = v
    sampling = getattr(fit, "sampling", None)
    if isinstance(sampling, Mapping):  # the survey design: sampling weights, Kish's design effect and effective n
        model["design_effect"] = float(sampling["design_effect"])
        model["n_effective"] = float(sampling["n_effective"])
    if n_respondents is None:
        n_respondents = int(getattr(fit, "n_respondents", 0) or 0)
    return WeightProfile(
        name=name, weights=pd.Series(w, index=index), ci_low=lo, ci_high=hi,
        n_respondents=n_respondents, source=source,
        group=dict(group) if group else None, safety_rule=rule, model=model,
        data_hash=data_hash if isinstance(data_hash, str) else None,
    )


def _model_name(fit: Any) -> str:
    cls = type(fit).__name__.lower()
    if "plackett" in cls:
        return "plackett_luce"
    if "bradley" in cls:
        return "bradley_terry"
    return str(getattr(fit, "model", None) or type(fit).__name__)
