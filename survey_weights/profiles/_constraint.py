"""The constraint objective of a weight profile (the study's safety, or one the analyst names) and its rules."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..criteria import SAFETY

__all__ = ["constraint_rule", "numeric_jacobian", "profile_labels", "profile_map"]


def constraint_rule(safety: Any) -> tuple[str | None, str, float]:
    """``(name, kind, value)`` of the `safety` option; kind is ``"none"``, ``"fixed"`` or ``"floor"``."""
    if safety is None:
        return None, "none", 0.0
    how = ("`safety` must be None (no constraint objective), a float share in (0, 1), {'share': s}, {'floor': f}, "
           "or one of those dicts with a 'name' for an objective other than 'safety'")
    if isinstance(safety, numbers.Real) and not isinstance(safety, bool):
        name, kind, val = SAFETY, "fixed", safety
    elif isinstance(safety, Mapping):
        unknown = sorted(map(str, set(safety) - {"name", "share", "floor"}))
        rules = [k for k in ("share", "floor") if k in safety]
        if unknown or len(rules) != 1:
            raise ValueError(
                f"{how}. Got {safety!r}: " + (f"unknown key(s) {unknown}" if unknown else
                                              "give exactly one of 'share' and 'floor'")
                + ". Example: safety={'floor': 0.2} or safety={'name': 'harm_avoidance', 'share': 0.25}."
            )
        name = safety.get("name", SAFETY)
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"`safety['name']` must be a non-empty str naming the constraint objective. Got {name!r}. "
                             "Example: safety={'name': 'harm_avoidance', 'floor': 0.2}.")
        kind, val = ("fixed" if rules[0] == "share" else "floor"), safety[rules[0]]
        if isinstance(val, bool) or not isinstance(val, numbers.Real):
            raise TypeError(f"`safety[{rules[0]!r}]` must be a number in (0, 1). Got {val!r}.")
    else:
        raise ValueError(f"{how}. Got {safety!r}. Example: safety=0.2, safety={{'floor': 0.2}} or safety=None.")
    val = float(val)
    if not (0.0 < val < 1.0):
        raise ValueError(f"`safety` share/floor must lie strictly between 0 and 1. Got {val!r}. "
                         "Fix: e.g. safety={'floor': 0.2}, or safety=None for no constraint objective.")
    return name, kind, val


def profile_map(kind: str, val: float) -> Callable[[np.ndarray], np.ndarray]:
    """log-worths (rated criteria) -> weights of the criteria and the constraint objective, under the rule."""
    def f(beta: np.ndarray) -> np.ndarray:
        p = np.exp(beta - beta.max())
        p /= p.sum()
        s = val if kind == "fixed" else max(val, p.max() / (1.0 + p.max()))
        return np.concatenate([(1.0 - s) * p, [s]])
    return f


def profile_labels(items: tuple, criteria: Any) -> list[str]:
    """The profile's criterion names of the fit's items (renamed by `criteria`), checked unique."""
    if criteria is None:
        labels = [str(i) for i in items]
    else:
        if not isinstance(criteria, Mapping):
            raise TypeError(f"`criteria` must be a dict {{fit item: criterion name}}. Got {type(criteria).__name__}.")
        unknown = [k for k in criteria if k not in items]
        if unknown:
            raise ValueError(f"`criteria` renames {unknown}, which the fit does not have: its items are {list(items)}. "
                             "Fix: use the fit's item labels as keys (the mapping need not cover every item).")
        labels = [str(criteria.get(i, i)) for i in items]
    dups = sorted({c for c in labels if labels.count(c) > 1})
    if dups:
        raise ValueError(f"The profile would name criteria {dups} more than once (the fit's items {list(items)}"
                         f"{' renamed by `criteria`' if criteria is not None else ''}). Fix: give distinct names.")
    return labels


def numeric_jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian of `f` at `x` (columns: d f / d x_j)."""
    cols = []
    for j in range(len(x)):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.column_stack(cols)
