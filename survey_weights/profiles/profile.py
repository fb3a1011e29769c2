"""Weight profiles: the six objective weights (five survey criteria + safety) handed to MODPO.

A :class:`WeightProfile` is what leaves the statistics side of the package: one weight per
objective, with intervals and enough provenance (model, data hash, group, safety rule) to be
audited later. :func:`derive_profile` turns a fitted Plackett-Luce / Bradley-Terry result into one.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..criteria import ALL_CRITERIA, SAFETY, SURVEY_CRITERIA
from .intervals import logit_interval, weight_se, z_value

__all__ = ["WeightProfile", "derive_profile", "DEFAULT_SAFETY", "KNOWN_SOURCES"]

#: Default safety rule of :func:`derive_profile`: at least 20 %, and never below any criterion.
DEFAULT_SAFETY: dict[str, float] = {"floor": 0.2}
#: Values of :attr:`WeightProfile.source` the package itself produces.
KNOWN_SOURCES: tuple[str, ...] = ("pooled", "group", "class", "tree", "regression", "manual")
_TOL = 1e-9
_FORBIDDEN_KEYS = {"respondent_id", "respondent_ids", "respondent"}


def _jsonable(obj: Any, where: str) -> Any:
    """Normalise to JSON-native types (tuples -> lists, numpy scalars -> Python); reject others."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        val = float(obj)
        if not math.isfinite(val):
            raise ValueError(f"`{where}` must hold finite numbers only. Got {val!r}.")
        return val
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"`{where}` keys must be str. Got {k!r} of type {type(k).__name__}.")
            if k in _FORBIDDEN_KEYS:
                raise ValueError(f"`{where}` must not carry respondent-level data (key {k!r}). Remove it.")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, where) for v in obj]
    raise TypeError(
        f"`{where}` must hold JSON-compatible values (str, number, bool, None, list, dict). "
        f"Got {obj!r} of type {type(obj).__name__}."
    )


def _as_weight_series(values: Any, what: str) -> pd.Series:
    if isinstance(values, Mapping):
        values = pd.Series(dict(values), dtype=float)
    if not isinstance(values, pd.Series):
        raise TypeError(f"`{what}` must be a pandas Series or dict keyed by criterion. Got {type(values).__name__}.")
    labels = set(map(str, values.index))
    if labels != set(ALL_CRITERIA) or len(values) != len(ALL_CRITERIA):
        missing = sorted(set(ALL_CRITERIA) - labels)
        extra = sorted(labels - set(ALL_CRITERIA))
        raise ValueError(
            f"`{what}` must have one entry per criterion in ALL_CRITERIA {list(ALL_CRITERIA)}. "
            f"Missing: {missing}; unexpected: {extra}."
        )
    s = pd.Series([float(values[c]) for c in ALL_CRITERIA], index=pd.Index(ALL_CRITERIA, name="criterion"),
                  name=what, dtype=float)
    if not np.all(np.isfinite(s.to_numpy())) or (s < 0).any() or (s > 1).any():
        raise ValueError(f"`{what}` must lie in [0, 1]. Got {s.round(4).to_dict()}.")
    return s


@dataclass(frozen=True, eq=False)
class WeightProfile:
    """Weights of the six objectives (``ALL_CRITERIA``) for one group of patients.

    Parameters
    ----------
    name : str
        Unique label, e.g. ``"pooled"`` or ``"age_group=18-24"``.
    weights : pandas.Series or dict
        One share per criterion in ``ALL_CRITERIA`` (the 5 survey criteria, then ``"safety"``),
        summing to 1. Stored as a float Series in ``ALL_CRITERIA`` order.
    ci_low, ci_high : pandas.Series, dict or None
        Pointwise interval bounds (both or neither), containing `weights`.
    n_respondents : int
        Respondents behind the estimate (exports withhold small groups).
    source : str
        How the group was formed: ``"pooled"``, ``"group"``, ``"class"``, ``"tree"``, ``"regression"`` (a
        covariate cell of a worth regression) or ``"manual"``.
    group : dict or None
        The defining covariate values, e.g. ``{"age_group": "18-24"}``.
    safety_rule : dict
        How the safety share was set (see :func:`derive_profile`).
    model : dict
        Model provenance: ``name``, ``npseudo``, ``method``, ``loglik``, ...
    data_hash : str or None
        Hash of the data the fit used (``Rankings.data_hash()``).

    Examples
    --------
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
        if (self.ci_low is None) != (self.ci_high is None):
            raise ValueError("Give both `ci_low` and `ci_high`, or neither.")
        if self.ci_low is not None:
            lo = _as_weight_series(self.ci_low, "ci_low")
            hi = _as_weight_series(self.ci_high, "ci_high")
            bad = [c for c in ALL_CRITERIA if not (lo[c] - _TOL <= w[c] <= hi[c] + _TOL)]
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
        object.__setattr__(self, "group", None if self.group is None else _jsonable(self.group, "group"))
        object.__setattr__(self, "safety_rule", _jsonable(dict(self.safety_rule), "safety_rule"))
        object.__setattr__(self, "model", _jsonable(dict(self.model), "model"))
        if self.data_hash is not None and not isinstance(self.data_hash, str):
            raise TypeError(f"`data_hash` must be a str or None. Got {type(self.data_hash).__name__}.")

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
        """The objectives, in order (``ALL_CRITERIA``)."""
        return tuple(self.weights.index)

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
            "name": self.name, "weights": ser(self.weights), "ci_low": ser(self.ci_low),
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
        return cls(
            name=d["name"], weights=d["weights"], ci_low=d.get("ci_low"), ci_high=d.get("ci_high"),
            n_respondents=d.get("n_respondents", 0), source=d.get("source", "pooled"), group=d.get("group"),
            safety_rule=d.get("safety_rule") or {}, model=d.get("model") or {}, data_hash=d.get("data_hash"),
        )

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


def _safety_rule(safety: Any) -> tuple[str, float]:
    if safety is None:
        return "none", 0.0
    if isinstance(safety, numbers.Real) and not isinstance(safety, bool):
        kind, val = "fixed", float(safety)
    elif isinstance(safety, Mapping) and len(safety) == 1 and next(iter(safety)) in ("share", "floor"):
        key = next(iter(safety))
        kind, val = ("fixed" if key == "share" else "floor"), safety[key]
        if isinstance(val, bool) or not isinstance(val, numbers.Real):
            raise TypeError(f"`safety[{key!r}]` must be a number in (0, 1). Got {val!r}.")
        val = float(val)
    else:
        raise ValueError(
            f"`safety` must be a float share in (0, 1), {{'share': s}}, {{'floor': f}} or None. Got {safety!r}. "
            "Example: safety=0.2 or safety={'floor': 0.2}."
        )
    if not (0.0 < val < 1.0):
        raise ValueError(f"`safety` share/floor must lie strictly between 0 and 1. Got {val!r}.")
    return kind, val


def _profile_map(kind: str, val: float) -> Callable[[np.ndarray], np.ndarray]:
    """log-worths (survey criteria) -> six weights, under the safety rule."""
    def f(beta: np.ndarray) -> np.ndarray:
        p = np.exp(beta - beta.max())
        p /= p.sum()
        s = val if kind == "fixed" else max(val, p.max() / (1.0 + p.max()))
        return np.concatenate([(1.0 - s) * p, [s]])
    return f


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
    safety: float | Mapping[str, float] | None = DEFAULT_SAFETY,
    name: str | None = None,
    level: float = 0.95,
    group: Mapping[str, Any] | None = None,
    source: str = "pooled",
    criteria: Mapping[str, str] | None = None,
    data_hash: str | None = None,
) -> WeightProfile:
    """Turn a fitted ranking model into a six-objective :class:`WeightProfile`.

    Parameters
    ----------
    fit : FitResult
        A result of ``fit_plackett_luce`` / ``fit_bradley_terry`` over the five survey criteria
        (needs ``items``, ``weights``, ``log_worth``, ``vcov``, ``n_respondents``).
    safety : float, dict or None, default ``{"floor": 0.2}``
        Safety was not rated in the survey; it is a constraint set by the analyst.
        A float ``s`` (or ``{"share": s}``) fixes safety's share at ``s``.
        ``{"floor": f}`` gives safety ``max(f, s*)``, where ``s* = p_max / (1 + p_max)`` is the
        share at which safety exactly equals the largest survey criterion (``p_max`` is the largest
        of ``fit.weights``): safety is at least ``f`` and never ranks below any criterion.
        None gives safety no share (weight 0, interval [0, 0]): the five survey weights are then
        ``fit.weights`` unchanged, with the same intervals as ``fit.to_frame()`` (for comparisons and
        checks; a profile meant for MODPO training should carry a safety share).
    name : str, optional
        Profile label; default ``"pooled"`` or ``"key=value,..."`` built from `group`.
    level : float, default 0.95
        Confidence level of the pointwise intervals.
    group : dict, optional
        Covariate values defining the group, e.g. ``{"age_group": "18-24"}``.
    source : str, default "pooled"
        ``"pooled"``, ``"group"``, ``"class"``, ``"tree"``, ``"regression"``...
    criteria : dict, optional
        Map from the fit's item labels to ``SURVEY_CRITERIA`` names, when they differ.
    data_hash : str, optional
        Hash of the fitted data; default ``fit.data_hash`` or ``fit.rankings.data_hash()`` if present.

    Returns
    -------
    WeightProfile

    Raises
    ------
    ValueError
        If the fit's items are not the five survey criteria (after `criteria`), or an option is invalid.

    Notes
    -----
    With survey worths ``p = softmax(beta)`` (``= fit.weights``) and safety share ``s``, the six
    weights are ``w_c = (1 - s) p_c`` for the survey criteria and ``w_safety = s``, so ratios among
    the survey criteria are those of ``fit.weights``. Intervals come from the delta method,
    ``Var(w) = J V J^T`` with ``V = fit.vcov`` (zero-sum log-worths) and ``J`` the Jacobian of the
    map ``beta -> w``: analytic ``(1 - s)(diag(p) - p p^T)`` for a fixed share, central differences
    when the floor rule is in force (then safety's share varies with ``beta`` too). Bounds follow the
    package's one recipe for a weight (:func:`~survey_weights.profiles.intervals.logit_interval`):
    ``expit(logit(w) -/+ z_{(1+level)/2} se / (w (1 - w)))``, a Wald interval on the logit scale, so
    bounds lie inside (0, 1) and contain ``w``. A fixed safety share has a zero-width interval.

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
    """
    items = tuple(_fit_attr(fit, "items"))
    if criteria is not None:
        unknown = [i for i in items if i not in criteria]
        if unknown:
            raise ValueError(f"`criteria` does not map the fit's item(s) {unknown}. Add them to the mapping.")
        items = tuple(criteria[i] for i in items)
    if SAFETY in items:
        raise ValueError("The fit contains 'safety', which the survey did not rate; safety is set by `safety=`.")
    if set(items) != set(SURVEY_CRITERIA) or len(items) != len(SURVEY_CRITERIA):
        raise ValueError(
            f"The fit's items must be the five survey criteria {list(SURVEY_CRITERIA)}. Got {list(items)}. "
            "Pass `criteria={fit_label: survey_criterion, ...}` if only the labels differ."
        )
    z_value(level)  # validates `level`
    kind, val = _safety_rule(safety)
    orig = tuple(_fit_attr(fit, "items"))
    order = [orig[items.index(c)] for c in SURVEY_CRITERIA]  # fit labels in SURVEY_CRITERIA order
    p = np.asarray(pd.Series(_fit_attr(fit, "weights")).loc[order], dtype=float)
    if abs(p.sum() - 1.0) > 1e-12:
        p = p / p.sum()
    beta = np.asarray(pd.Series(_fit_attr(fit, "log_worth")).loc[order], dtype=float)
    vcov = _fit_attr(fit, "vcov")
    V = np.asarray(pd.DataFrame(vcov).loc[order, order], dtype=float) if vcov is not None else None
    s = val if kind != "floor" else max(val, p.max() / (1.0 + p.max()))
    w = np.concatenate([(1.0 - s) * p, [s]])
    lo = hi = None
    if V is not None:
        if kind != "floor" or val >= p.max() / (1.0 + p.max()):
            # safety's share does not depend on beta: w_c = (1 - s) p_c is linear in p
            se = np.concatenate([(1.0 - s) * weight_se(beta, V)[1], [0.0]])
        else:
            J = _numeric_jacobian(_profile_map(kind, val), beta)
            se = np.sqrt(np.clip(np.diag(J @ V @ J.T), 0.0, None))
        low, high = logit_interval(w, se, level)
        lo, hi = pd.Series(low, index=ALL_CRITERIA), pd.Series(high, index=ALL_CRITERIA)
    if name is None:
        name = "pooled" if not group else ",".join(f"{k}={v}" for k, v in group.items())
    if data_hash is None:
        data_hash = getattr(fit, "data_hash", None)
        if callable(data_hash):
            data_hash = data_hash()
        if data_hash is None and hasattr(getattr(fit, "rankings", None), "data_hash"):
            data_hash = fit.rankings.data_hash()
    rule = {"rule": "floor", "floor": val, "share": float(s)} if kind == "floor" else {"rule": kind, "share": float(s)}
    model = {"name": _model_name(fit), "level": float(level)}
    for attr in ("npseudo", "method", "loglik", "converged"):
        v = getattr(fit, attr, None)
        if v is not None and isinstance(v, (str, bool, numbers.Real, np.bool_)):
            model[attr] = v
    return WeightProfile(
        name=name, weights=pd.Series(w, index=ALL_CRITERIA), ci_low=lo, ci_high=hi,
        n_respondents=int(getattr(fit, "n_respondents", 0) or 0), source=source,
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


def _numeric_jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    cols = []
    for j in range(len(x)):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.column_stack(cols)
