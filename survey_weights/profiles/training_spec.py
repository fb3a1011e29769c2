"""The torch-free training specification of weight profiles: their normalised form, adapter directory names and
the main-objective rule (which criterion's pairs an adapter trains on)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..criteria import SAFETY

__all__ = ["Profile", "check_coverage", "main_objective_of", "normalize_profiles", "objective_order",
           "profile_dirname"]


@dataclass(frozen=True)
class Profile:
    """A named weight vector over criteria (internal normalised form of a weight profile).

    ``constraint`` is the constraint objective (never the default main objective): a
    :class:`~survey_weights.profiles.WeightProfile`'s own (:attr:`~survey_weights.profiles.WeightProfile.constraint`,
    None when it has none); ``"safety"`` for weights given as a plain mapping.
    """

    name: str
    weights: tuple[tuple[str, float], ...]
    constraint: str | None = SAFETY

    @property
    def weight_dict(self) -> dict[str, float]:
        """Weights as a dict in stored order."""
        return dict(self.weights)


def _weights_to_dict(name: str, weights: Any) -> dict[str, float]:
    if isinstance(weights, pd.Series):
        items = list(weights.items())
    elif isinstance(weights, Mapping):
        items = list(weights.items())
    elif hasattr(weights, "to_dict"):
        items = list(weights.to_dict().items())
    else:
        raise TypeError(
            f"Weights of profile {name!r} must be a mapping or pandas Series criterion -> weight. "
            f"Got {type(weights).__name__} instead."
        )
    out: dict[str, float] = {}
    for crit, w in items:
        try:
            wf = float(w)
        except (TypeError, ValueError):
            raise TypeError(
                f"Weight of {crit!r} in profile {name!r} must be a number. Got {w!r}."
            ) from None
        if not math.isfinite(wf) or wf < 0:
            raise ValueError(
                f"Weights must be finite and >= 0; profile {name!r} has {crit!r}={w!r}. Fix: use a simplex."
            )
        out[str(crit)] = wf
    if not any(v > 0 for v in out.values()):
        raise ValueError(
            f"Profile {name!r} has no positive weight. Fix: give at least one criterion weight > 0."
        )
    return out


def normalize_profiles(profiles: Any) -> list[Profile]:
    """Turn weight profiles in any accepted form into a list of :class:`Profile`.

    Accepted: a mapping ``{name: {criterion: weight}}`` (or ``{name: Series}``), one object or a list of
    objects with ``.name`` and ``.weights`` (e.g. :class:`survey_weights.profiles.WeightProfile`, whose
    ``.constraint`` is kept), or a list of dicts with keys ``name`` and ``weights`` (and optionally
    ``constraint``). Plain weights have the constraint objective ``"safety"``.

    Raises
    ------
    TypeError
        Unsupported form.
    ValueError
        Empty, negative/non-finite weights, all-zero profile, duplicate names, or names that collide as
        directory names (see :func:`profile_dirname`).
    """
    if hasattr(profiles, "name") and hasattr(profiles, "weights"):
        profiles = [profiles]
    pairs: list[tuple[Any, Any]] = []
    constraints: list[str | None] = []
    if isinstance(profiles, Mapping):
        pairs = list(profiles.items())
    elif isinstance(profiles, Iterable) and not isinstance(profiles, (str, bytes)):
        for p in profiles:
            if hasattr(p, "name") and hasattr(p, "weights"):
                pairs.append((p.name, p.weights))
                constraints.append(getattr(p, "constraint", SAFETY))
            elif isinstance(p, Mapping) and "name" in p and "weights" in p:
                pairs.append((p["name"], p["weights"]))
                constraints.append(p.get("constraint", SAFETY))
            else:
                raise TypeError(
                    "Each profile must have `.name` and `.weights` (or be a dict with those keys). "
                    f"Got {type(p).__name__} instead."
                )
    else:
        raise TypeError(
            f"`profiles` must be a mapping name -> weights or a list of profiles. Got {profiles!r}."
        )
    if not pairs:
        raise ValueError("`profiles` is empty. Fix: pass at least one weight profile.")
    out: list[Profile] = []
    seen: dict[str, str] = {}
    constraints += [SAFETY] * (len(pairs) - len(constraints))
    for (name, weights), constraint in zip(pairs, constraints):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"Profile names must be non-empty strings. Got {name!r}.")
        slug = profile_dirname(name)
        if slug in seen:
            what = (
                "duplicate profile name"
                if seen[slug] == name
                else "profile names collide as directory names"
            )
            raise ValueError(
                f"{what}: {seen[slug]!r} and {name!r} both map to directory {slug!r}. Fix: rename one of them."
            )
        seen[slug] = name
        if constraint is not None and not isinstance(constraint, str):
            raise TypeError(f"The constraint objective of profile {name!r} must be a criterion name or None. "
                            f"Got {constraint!r}.")
        out.append(Profile(name=name, weights=tuple(_weights_to_dict(name, weights).items()), constraint=constraint))
    return out


def profile_dirname(name: str) -> str:
    """Directory name for a profile: lower-case, runs of characters outside ``[a-z0-9._-]`` become ``_``.

    Lower-casing keeps names distinct on case-insensitive file systems.
    """
    slug = re.sub(r"[^a-z0-9._-]+", "_", name.strip().lower()).strip("._")
    if not slug:
        raise ValueError(
            f"Profile name {name!r} gives an empty directory name. Fix: use letters or digits."
        )
    return slug


def main_objective_of(profile: Profile, override: str | Mapping[str, str] | None = None) -> str:
    """Pick the objective whose pairs are trained on.

    Default: the profile's largest *rated* criterion, i.e. any but its constraint objective (``profile.constraint``,
    e.g. the study's safety), ties broken by the profile's criteria order; if it has none with a positive weight,
    its largest criterion overall. ``override`` may be one criterion for every profile or a mapping profile name ->
    criterion.

    Raises
    ------
    ValueError
        The chosen main objective has weight 0 (MODPO divides by ``w_k``).
    """
    weights = profile.weight_dict
    if isinstance(override, Mapping):
        override = override.get(profile.name)
    if override is not None:
        if not isinstance(override, str):
            raise TypeError(f"`main_objective` must be a criterion name. Got {override!r}.")
        if weights.get(override, 0.0) <= 0:
            raise ValueError(
                f"The main objective {override!r} of profile {profile.name!r} must have a weight > 0 "
                f"(MODPO divides by w_k). Got {weights.get(override, 0.0)!r}. Fix: pick a criterion with "
                "positive weight."
            )
        return override
    order = list(weights)
    rated = [(w, -i, c) for i, (c, w) in enumerate(weights.items()) if w > 0 and c != profile.constraint]
    if rated:
        return max(rated)[2]
    return max((w, -order.index(c), c) for c, w in weights.items() if w > 0)[2]


def objective_order(profile: Profile, main: str) -> tuple[list[str], list[float]]:
    """Return ``(criteria, weights)`` with the main objective first and the other positive weights after."""
    weights = profile.weight_dict
    others = [c for c, w in weights.items() if c != main and w > 0]
    return [main, *others], [weights[main], *[weights[c] for c in others]]


def check_coverage(
    needed: Mapping[str, Sequence[str]], available: Iterable[str], *, what: str, fix: str
) -> None:
    """Raise one ValueError listing every profile -> criterion that ``available`` does not cover."""
    avail = set(available)
    missing = {name: sorted(set(crits) - avail) for name, crits in needed.items()}
    missing = {k: v for k, v in missing.items() if v}
    if missing:
        allm = sorted({c for v in missing.values() for c in v})
        detail = "; ".join(f"{k}: {v}" for k, v in missing.items())
        raise ValueError(f"Criteria {allm} are missing from {what} ({detail}). {fix}")
