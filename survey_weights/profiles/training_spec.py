"""The torch-free training specification of weight profiles: one :class:`TrainingSpec` per adapter.

A profile's weights take one path from :func:`~survey_weights.profiles.derive_profile` to the loss:
``WeightProfile`` (or a plain mapping) -> :func:`normalize_profiles` -> :class:`TrainingSpec`, whose
``criteria`` / ``weight_vector`` are the MODPO objective order and ``(w_k, w_-k)`` of
:func:`~survey_weights.modpo.modpo_loss`, and whose ``provenance`` (survey data hash, respondents, intervals,
safety rule, source and group) is written unchanged into each adapter's ``profile.json``.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from ..criteria import SAFETY
from ..exceptions import DataRecodeWarning

__all__ = ["PROVENANCE_FIELDS", "TrainingSpec", "check_coverage", "main_objective_of", "normalize_profiles",
           "objective_order", "profile_dirname"]

#: Keys of :attr:`TrainingSpec.provenance` (None where the input did not say, e.g. a plain mapping).
PROVENANCE_FIELDS: tuple[str, ...] = ("source", "group", "n_respondents", "survey_data_hash", "ci_low", "ci_high",
                                      "safety_rule", "model")
# provenance key -> attribute / key of a WeightProfile (or of its to_dict() form)
_SOURCE_OF = {f: ("data_hash" if f == "survey_data_hash" else f) for f in PROVENANCE_FIELDS}


@dataclass(frozen=True)
class TrainingSpec:
    """What one adapter is trained on: a profile's weights, its main objective and where the weights came from.

    Build it with :func:`normalize_profiles` (from WeightProfiles, mappings, or dicts).

    Attributes
    ----------
    name : str
        Profile name; the adapter directory is :attr:`dirname`.
    weights : tuple of (str, float)
        Every weight as given (zeros included), in the profile's order.
    main_objective : str
        The criterion whose pairs are trained on (:func:`main_objective_of`); its weight is > 0.
    constraint : str or None
        The profile's constraint objective (never its default main objective): a WeightProfile's own
        (:attr:`~survey_weights.profiles.WeightProfile.constraint`, None when it has none); ``"safety"`` for
        weights given as a plain mapping.
    provenance : dict
        :data:`PROVENANCE_FIELDS`: ``source``, ``group``, ``n_respondents``, ``survey_data_hash`` (the fitted
        survey's ``Rankings.data_hash()``), ``ci_low`` / ``ci_high`` (interval bounds per criterion),
        ``safety_rule`` and ``model`` (the fit). JSON values; None where unknown.
    """

    name: str
    weights: tuple[tuple[str, float], ...]
    main_objective: str
    provenance: dict[str, Any] = field(default_factory=lambda: dict.fromkeys(PROVENANCE_FIELDS))
    constraint: str | None = SAFETY

    @property
    def weight_dict(self) -> dict[str, float]:
        """Weights as a dict in stored order."""
        return dict(self.weights)

    @property
    def criteria(self) -> tuple[str, ...]:
        """Objective order of training, shape (K,): the main objective, then every other positive weight."""
        return tuple(objective_order(self, self.main_objective)[0])

    @property
    def weight_vector(self) -> tuple[float, ...]:
        """``(w_k, w_-k)`` in :attr:`criteria` order, shape (K,): the ``weights`` of ``modpo_loss``."""
        return tuple(objective_order(self, self.main_objective)[1])

    @property
    def dirname(self) -> str:
        """The adapter's directory name (:func:`profile_dirname`)."""
        return profile_dirname(self.name)

    def to_record(self, objective: str = "modpo") -> dict[str, Any]:
        """The spec's part of ``profile.json``: weights, objective order, main objective, margins, provenance.

        ``margin_criteria`` (the reward-model margins) are ``criteria[1:]`` under ``"modpo"`` and empty under
        ``"joint_dpo"``, which trains on every criterion's pairs.
        """
        crits, ws = objective_order(self, self.main_objective)
        return {"name": self.name, "dirname": self.dirname, "weights": self.weight_dict, "criteria_order": crits,
                "weight_vector": ws, "main_objective": self.main_objective,
                "margin_criteria": crits[1:] if objective == "modpo" else [], "constraint": self.constraint,
                "provenance": dict(self.provenance)}


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
    total = math.fsum(out.values())
    if abs(total - 1.0) > 1e-6:  # the MODPO loss divides by w_k: a scaled profile would change the effective beta
        warnings.warn(f"The weights of profile {name!r} sum to {total:.6g}, not 1; they were normalised to sum to 1 "
                      "(MODPO's effective beta must not depend on their scale). Fix: pass weights that sum to 1.",
                      DataRecodeWarning, stacklevel=4)
        out = {c: v / total for c, v in out.items()}
    return out


def _provenance(name: str, source: Any) -> dict[str, Any]:
    """Provenance of a WeightProfile-like object or profile dict (None for fields it lacks), as JSON values."""
    if source is None:
        return dict.fromkeys(PROVENANCE_FIELDS)
    if isinstance(source, Mapping):
        raw = {f: source.get(k) for f, k in _SOURCE_OF.items()}
    else:
        raw = {f: getattr(source, k, None) for f, k in _SOURCE_OF.items()}
    out = {f: ({str(c): float(v) for c, v in x.items()} if isinstance(x, pd.Series) else x) for f, x in raw.items()}
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"The provenance of profile {name!r} ({', '.join(PROVENANCE_FIELDS)}) must hold JSON values: {exc}. "
            "Fix: pass a WeightProfile, or plain str/number/dict values."
        ) from None
    return out


def _entries(profiles: Any) -> list[tuple[Any, Any, Any]]:
    """(name, weights, provenance source or None) of every profile in an accepted form."""
    if isinstance(profiles, TrainingSpec) or (hasattr(profiles, "name") and hasattr(profiles, "weights")):
        profiles = [profiles]
    if isinstance(profiles, Mapping):
        return [(name, w, None) for name, w in profiles.items()]
    if not isinstance(profiles, Iterable) or isinstance(profiles, (str, bytes)):
        raise TypeError(
            f"`profiles` must be a mapping name -> weights or a list of profiles. Got {profiles!r}."
        )
    out = []
    for p in profiles:
        if isinstance(p, TrainingSpec):
            out.append((p.name, p.weight_dict, p))
        elif hasattr(p, "name") and hasattr(p, "weights"):
            out.append((p.name, p.weights, p))
        elif isinstance(p, Mapping) and "name" in p and "weights" in p:
            out.append((p["name"], p["weights"], p))
        else:
            raise TypeError(
                "Each profile must have `.name` and `.weights` (or be a dict with those keys). "
                f"Got {type(p).__name__} instead."
            )
    return out


def normalize_profiles(profiles: Any, *, main_objective: str | Mapping[str, str] | None = None
                       ) -> list[TrainingSpec]:
    """Turn weight profiles in any accepted form into one :class:`TrainingSpec` each.

    Accepted: a mapping ``{name: {criterion: weight}}`` (or ``{name: Series}``), one object or a list of
    objects with ``.name`` and ``.weights`` (e.g. :class:`survey_weights.profiles.WeightProfile`, whose
    provenance is kept), a list of dicts with keys ``name`` and ``weights`` (e.g. ``WeightProfile.to_dict()``),
    or TrainingSpecs (returned as they are unless ``main_objective`` overrides theirs).

    Parameters
    ----------
    profiles : see above
    main_objective : str or mapping profile name -> str, optional
        Overrides the default main objective (see :func:`main_objective_of`).

    Raises
    ------
    TypeError
        Unsupported form, or provenance that is not JSON.
    ValueError
        Empty, negative/non-finite weights, all-zero profile, duplicate names, names that collide as
        directory names (see :func:`profile_dirname`), or a main objective with weight 0.
    """
    entries = _entries(profiles)
    if not entries:
        raise ValueError("`profiles` is empty. Fix: pass at least one weight profile.")
    out: list[TrainingSpec] = []
    seen: dict[str, str] = {}
    for name, weights, source in entries:
        if isinstance(source, TrainingSpec) or source is None:
            constraint = SAFETY if source is None else source.constraint
        elif isinstance(source, Mapping):
            constraint = source.get("constraint", SAFETY)
        else:
            constraint = getattr(source, "constraint", SAFETY)
        if constraint is not None and not isinstance(constraint, str):
            raise TypeError(f"The constraint objective of profile {name!r} must be a criterion name or None. "
                            f"Got {constraint!r}.")
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
        if isinstance(source, TrainingSpec):
            spec = source
            if main_objective is not None:
                spec = replace(spec, main_objective=main_objective_of(spec, main_objective))
        else:
            spec = TrainingSpec(name, tuple(_weights_to_dict(name, weights).items()), "", _provenance(name, source),
                                constraint)
            spec = replace(spec, main_objective=main_objective_of(spec, main_objective))
        out.append(spec)
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


def main_objective_of(profile: TrainingSpec, override: str | Mapping[str, str] | None = None) -> str:
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


def objective_order(profile: TrainingSpec, main: str) -> tuple[list[str], list[float]]:
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
