"""Weight vectors drawn per step of a conditioned run: the default :class:`ProfileSampler` and the checks every
sampler's output passes (:func:`check_draw`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..profiles.training_spec import normalize_profiles

__all__ = ["ProfileSampler", "check_draw", "sampler_fingerprint"]

_TOL = 1e-6


class ProfileSampler:
    """The default weight sampler: weight profiles with Dirichlet jitter around them, and the simplex corners.

    Each of ``per_step`` rows is, with probability ``corner_prob``, a corner ``e_c`` (``c`` uniform over the
    criteria; plain DPO on ``c``), otherwise a draw from ``Dirichlet(1 + κ·p)`` around a profile ``p`` chosen
    uniformly (its mode is ``p``; the larger ``κ = concentration``, the tighter). Without profiles the other rows
    are uniform on the simplex, ``Dirichlet(1, …, 1)``.

    Parameters
    ----------
    profiles : weight profiles in any form of :func:`~survey_weights.profiles.training_spec.normalize_profiles`,
        optional. Criteria they leave out weigh 0.
    concentration : float, default 50.0
        κ > 0.
    corner_prob : float, default 0.2
        In [0, 1].
    per_step : int, default 1
        Rows per step (each trains on ``batch_size / per_step`` pairs); must divide the per-process batch.

    Examples
    --------
    >>> import numpy as np
    >>> s = ProfileSampler({"pooled": {"empathy": 0.7, "safety": 0.3}}, per_step=2)
    >>> w = s(np.random.default_rng(0), ("empathy", "safety"))
    >>> w.shape, bool(np.allclose(w.sum(1), 1))
    ((2, 2), True)
    """

    def __init__(self, profiles: Any = None, *, concentration: float = 50.0, corner_prob: float = 0.2,
                 per_step: int = 1) -> None:
        if isinstance(concentration, bool) or not isinstance(concentration, (int, float)) or not concentration > 0:
            raise ValueError(f"`concentration` must be a float > 0. Got {concentration!r}. Fix: e.g. 50.")
        if isinstance(corner_prob, bool) or not isinstance(corner_prob, (int, float)) or not 0 <= corner_prob <= 1:
            raise ValueError(f"`corner_prob` must be in [0, 1]. Got {corner_prob!r}. Fix: e.g. 0.2.")
        if isinstance(per_step, bool) or not isinstance(per_step, int) or per_step < 1:
            raise ValueError(f"`per_step` must be an int >= 1. Got {per_step!r}.")
        self.specs = normalize_profiles(profiles) if profiles is not None else []
        self.concentration, self.corner_prob, self.per_step = float(concentration), float(corner_prob), per_step

    def __repr__(self) -> str:
        return (f"ProfileSampler({len(self.specs)} profiles, concentration={self.concentration:g}, "
                f"corner_prob={self.corner_prob:g}, per_step={self.per_step})")

    def centres(self, criteria: Sequence[str]) -> np.ndarray:
        """The profiles as weight vectors in ``criteria`` order, shape (P, C).

        Raises
        ------
        ValueError
            A profile names a criterion outside ``criteria``.
        """
        crits = list(criteria)
        for s in self.specs:
            extra = [c for c in s.weight_dict if c not in crits]
            if extra:
                raise ValueError(f"Profile {s.name!r} of the weight sampler names criteria {extra} outside "
                                 f"`criteria` {crits}. Fix: add them to `criteria` or drop them from the profile.")
        return np.array([[s.weight_dict.get(c, 0.0) for c in crits] for s in self.specs]).reshape(-1, len(crits))

    def __call__(self, rng: np.random.Generator, criteria: Sequence[str]) -> np.ndarray:
        """``per_step`` weight vectors, shape (per_step, C), drawn with ``rng``."""
        n = len(criteria)
        centres = self.centres(criteria)
        out = np.empty((self.per_step, n))
        for i in range(self.per_step):
            if rng.random() < self.corner_prob:
                out[i] = np.eye(n)[rng.integers(n)]
            elif len(centres):
                out[i] = rng.dirichlet(1.0 + self.concentration * centres[rng.integers(len(centres))])
            else:
                out[i] = rng.dirichlet(np.ones(n))
        return out

    def fingerprint(self) -> str:
        """What the draws depend on (part of a conditioned run's resume key)."""
        return json.dumps({"sampler": "ProfileSampler", "profiles": [[s.name, s.weight_dict] for s in self.specs],
                           "concentration": self.concentration, "corner_prob": self.corner_prob,
                           "per_step": self.per_step}, sort_keys=True)


def sampler_fingerprint(sampler: Any) -> str:
    """``sampler.fingerprint()`` when it has one, else its qualified name."""
    fp = getattr(sampler, "fingerprint", None)
    if callable(fp):
        return str(fp())
    return f"{getattr(sampler, '__module__', '?')}.{getattr(sampler, '__qualname__', type(sampler).__qualname__)}"


def check_draw(raw: Any, criteria: Sequence[str], *, step: int, local_batch: int) -> np.ndarray:
    """A sampler's output as weight vectors, shape (m, C), each row renormalised to sum to 1 exactly.

    Raises
    ------
    ValueError
        Not shape (m, C) with ``m`` dividing ``local_batch``; rows not on the simplex (a negative or non-finite
        weight, or a sum off 1 by more than 1e-6).
    TypeError
        Not numbers.
    """
    crits = list(criteria)
    try:
        w = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`weight_sampler` must return numbers, an array of shape (m, {len(crits)}). At step {step} "
                        f"it returned {type(raw).__name__}.") from None
    if w.ndim != 2 or w.shape[1] != len(crits) or w.shape[0] < 1:
        raise ValueError(f"`weight_sampler` must return an array of shape (m, C={len(crits)}): one weight vector per "
                         f"row, columns in `criteria` order {crits}. At step {step} it returned shape {w.shape}. "
                         "Fix: return e.g. rng.dirichlet(np.ones(C), size=1).")
    if local_batch % w.shape[0]:
        raise ValueError(f"`weight_sampler` returned {w.shape[0]} rows at step {step}; the rows split the "
                         f"per-process batch of {local_batch} pairs, so their number must divide it. Fix: return "
                         "fewer rows or change `batch_size`.")
    bad = ~np.isfinite(w).all(1) | (w < 0).any(1) | (np.abs(w.sum(1) - 1) > _TOL)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"`weight_sampler` rows must lie on the simplex (weights >= 0 summing to 1); at step {step} "
                         f"row {i} is {w[i].tolist()} (sum {w[i].sum():.6g}). Fix: return w / w.sum(axis=1, "
                         "keepdims=True) of non-negative weights.")
    return w / w.sum(1, keepdims=True)
