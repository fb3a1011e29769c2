r"""Calibrated mixing of a conditioned run's components on a scored candidate pool (issue 10.7).

A conditioned run (:mod:`.conditioned`) exports the model at weights ``w`` as the shared LoRA plus criterion ``c``'s
at scale ``w_c``: ``ΔW(w) = ΔW_0 + Σ_c w_c ΔW_c``. At MODPO's optimum each component's log-ratio would be its
criterion's reward over β, and any mix would be the weighted-reward policy. A short run gets there unevenly: one
criterion's LoRA moves its criterion less than the oracle at the same distance would, another's moves a
neighbouring criterion more than its own (``docs/design.md``, "Why class 1's sides fail"). Calibration puts that
right with the run's own directions, on held-out candidates that carry a score per criterion:

1. On each calibration prompt ``x`` with candidates ``y_k``, the *basis* is every component's shift of the
   model's pool logits from the base, ``X_{xk,0} = ℓ_0(y_k) - ℓ_ref(y_k)`` (shared LoRA alone) and
   ``X_{xk,c} = ℓ_{0+c}(y_k) - ℓ_0(y_k)`` (shared plus criterion ``c`` at scale 1); ``ℓ`` is the summed or
   per-token log-probability (``normalise``, as the pool evaluation's).
2. MODPO's optimality condition says the model at ``w`` should shift the logits by ``w^T s(y)/β`` (up to a
   constant per prompt): the oracle tilt. To first order in the scales the model at scales ``u`` shifts them by
   ``X u``, so the best scales for ``w`` solve the ridge least squares
   ``min_u Σ_x Σ_k q_ref(k|x) (X u - w^T s / β - a_x)^2 + λ' ||u||^2`` (``a_x`` a free constant per prompt:
   the softmax ignores it; every column is centred under ``q_ref`` per prompt). The solution is linear in ``w``:
   ``u ∝ M w``, with ``M = (X^T Q X + λ' I)^{-1} X^T Q S`` of shape ``(1 + C, C)`` - the regression of every
   criterion's score on the run's learned directions. ``λ' = λ tr(X^T Q X) / (1 + C)``; λ is chosen by 5-fold
   cross-validation over prompts from a fixed grid (``ridge="cv"``) or given.
3. The direction ``M w`` is scaled so that the calibrated mix is exactly as far from the base on the calibration
   pool (mean KL of the pool distributions, first order) as the uncalibrated mix ``u = (1, w - centre)``: the
   calibration changes *where* an adapter moves, not *how far*, so distances stay comparable (issue 10.2).

The result is still one plain PEFT LoRA per weight vector (the same components, other scales), the weights stay
what the survey says, and what was calibrated, on which pool and how well, is recorded in every export's
``profile.json`` (``mixing``). Rewarded soups (Ramé et al. 2023, arXiv:2306.04488) choose their interpolation
coefficients on validation data in the same spirit. Keep the calibration pool apart from the evaluation pool: the
main job uses training-split prompts that no training pair uses and evaluates on the held-out test prompts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util.io import atomic_write_text
from .._util.simplex import mean_kl, softmax_rows

__all__ = ["CALIBRATION", "RIDGE_GRID", "MixingCalibration", "fit_mixing", "pool_fingerprint"]

CALIBRATION = "calibration.json"
#: λ grid of ``ridge="cv"`` (relative to ``tr(X^T Q X) / (1 + C)``).
RIDGE_GRID = tuple(float(x) for x in 10.0 ** np.arange(-4.0, 1.01, 0.5))
_NORMALISE = ("sum", "mean")


@dataclass(frozen=True)
class MixingCalibration:
    r"""A fitted calibration of a conditioned run's mixing (:func:`fit_mixing`; see the module docstring).

    Attributes
    ----------
    criteria : tuple of str
        The run's criteria, in its order (C).
    matrix : ndarray, shape (1 + C, C)
        ``M``: the calibrated scales at weights ``w`` are ``t · M w`` (shared LoRA first, then the criteria's),
        ``t`` set by :meth:`scales` so the distance from the base is the uncalibrated mix's.
    basis : ndarray, shape (P, K, 1 + C)
        The components' logit shifts on the calibration pool (0 on padding).
    ref : ndarray, shape (P, K)
        The base's logits there (``-inf`` on padding).
    ridge : float
        λ used (relative; see the module docstring).
    cv_error : dict float -> float
        With ``ridge="cv"``: the grid's held-out squared error relative to the largest λ's (else empty).
    r2 : dict criterion -> float
        In-sample share of each criterion's within-prompt score variance (under the base) that the basis explains.
    normalise : {"sum", "mean"}
    source : str
        What the pool was (e.g. its name and size).
    run_id : str
        The conditioned run it was fitted for ("" for a bare fit).
    pool_hash : str
        :func:`pool_fingerprint` of the calibration pool ("" for a bare fit).
    """

    criteria: tuple[str, ...]
    matrix: np.ndarray
    basis: np.ndarray = field(repr=False)
    ref: np.ndarray = field(repr=False)
    ridge: float
    cv_error: dict[float, float] = field(default_factory=dict, repr=False)
    r2: dict[str, float] = field(default_factory=dict)
    normalise: str = "sum"
    source: str = ""
    run_id: str = ""
    pool_hash: str = ""

    @property
    def n_prompts(self) -> int:
        """Calibration prompts (P)."""
        return int(self.basis.shape[0])

    @property
    def mask(self) -> np.ndarray:
        """Real candidates, shape (P, K)."""
        return np.isfinite(self.ref)

    @property
    def id(self) -> str:
        """Content hash (matrix, basis, run): recorded in exports so a changed calibration re-exports."""
        h = hashlib.sha256()
        for a in (self.matrix, self.basis, np.nan_to_num(self.ref, neginf=0.0)):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        h.update(f"{self.run_id}:{self.normalise}:{self.ridge!r}".encode())
        return h.hexdigest()[:16]

    def default_scales(self, w: Sequence[float], centre: Sequence[float] | None = None) -> np.ndarray:
        """The uncalibrated mix at ``w``: ``(1, w - centre)``, shape (1 + C,)."""
        w = self._w(w)
        c0 = np.zeros(len(w)) if centre is None else np.asarray(centre, dtype=float)
        return np.concatenate([[1.0], w - c0])

    def distance(self, scales: Sequence[float]) -> float:
        """Mean KL (nats) from the base on the calibration pool of the mix at ``scales`` (first order)."""
        u = np.asarray(scales, dtype=float)
        return mean_kl(softmax_rows(np.where(self.mask, self.ref + self.basis @ u, -np.inf)), softmax_rows(self.ref))

    def scales(self, w: Sequence[float], centre: Sequence[float] | None = None) -> np.ndarray:
        """The calibrated scales at weights ``w`` (criteria order), shape (1 + C,): ``t · M w`` with ``t >= 0``
        such that :meth:`distance` equals the uncalibrated mix's (bisection on ``log t``). Where the uncalibrated
        mix does not move (distance 0) or ``M w`` is 0, the uncalibrated scales are returned."""
        w = self._w(w)
        target = self.distance(self.default_scales(w, centre))
        d = self.matrix @ w
        if not target > 0 or not np.any(d):
            return self.default_scales(w, centre)
        lo, hi = -30.0, 30.0
        if self.distance(np.exp(hi) * d) < target:  # cannot reach it along M w: keep the run's own mix
            return self.default_scales(w, centre)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if self.distance(np.exp(mid) * d) > target:
                hi = mid
            else:
                lo = mid
        return float(np.exp(0.5 * (lo + hi))) * d

    def _w(self, w: Sequence[float]) -> np.ndarray:
        a = np.asarray(w, dtype=float)
        if a.shape != (len(self.criteria),) or not np.isfinite(a).all():
            raise ValueError(f"`w` must be {len(self.criteria)} finite weights in the order {list(self.criteria)}. "
                             f"Got {np.asarray(w).tolist()!r}.")
        return a

    def summary(self) -> dict[str, Any]:
        """JSON-ready record for ``profile.json`` (no arrays but ``matrix``)."""
        return {"id": self.id, "run_id": self.run_id, "source": self.source, "pool_hash": self.pool_hash,
                "n_prompts": self.n_prompts,
                "normalise": self.normalise, "ridge": self.ridge, "r2": dict(self.r2),
                "matrix": np.round(self.matrix, 6).tolist(), "rows": ["shared", *self.criteria]}

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (:meth:`from_dict` reads it back)."""
        return {"kind": "mixing_calibration", "schema_version": 1, "criteria": list(self.criteria),
                "matrix": self.matrix.tolist(), "basis": self.basis.tolist(),
                "ref": np.where(self.mask, self.ref, np.nan).tolist(), "ridge": self.ridge,
                "cv_error": {repr(k): v for k, v in self.cv_error.items()}, "r2": dict(self.r2),
                "normalise": self.normalise, "source": self.source, "run_id": self.run_id,
                "pool_hash": self.pool_hash}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "the record") -> MixingCalibration:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ValueError
            Not a mixing calibration of schema 1, or arrays of the wrong shapes.
        """
        if d.get("kind") != "mixing_calibration" or d.get("schema_version") != 1:
            raise ValueError(f"{where} is not a mixing calibration of schema 1. Fix: calibrate the run again.")
        crits = tuple(d["criteria"])
        ref = np.asarray(d["ref"], dtype=float)
        out = cls(crits, np.asarray(d["matrix"], dtype=float), np.asarray(d["basis"], dtype=float),
                  np.where(np.isnan(ref), -np.inf, ref), float(d["ridge"]),
                  {float(k): float(v) for k, v in d.get("cv_error", {}).items()},
                  {str(k): float(v) for k, v in d.get("r2", {}).items()}, str(d.get("normalise", "sum")),
                  str(d.get("source", "")), str(d.get("run_id", "")), str(d.get("pool_hash", "")))
        c = len(crits)
        if out.matrix.shape != (1 + c, c) or out.basis.shape != (*ref.shape, 1 + c):
            raise ValueError(f"{where}: matrix {out.matrix.shape} / basis {out.basis.shape} do not fit {c} criteria "
                             f"and a pool of shape {ref.shape}. Fix: calibrate the run again.")
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` to ``path`` atomically."""
        p = Path(path)
        atomic_write_text(p, json.dumps(self.to_dict()))
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MixingCalibration:
        """Read a :meth:`save`-d calibration (ValueError when it is not one)."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{str(p)!r} is not valid JSON ({exc.msg}). Fix: calibrate the run again.") from None
        return cls.from_dict(d, where=repr(str(p)))


def pool_fingerprint(pool: Any) -> str:
    """Content hash of a candidate pool (prompts, candidate texts, scores and criteria): a calibration is reused only
    for the very pool it was fitted on."""
    h = hashlib.sha256()
    h.update(json.dumps([list(pool.prompts), [list(t) for t in pool.texts], list(pool.criteria)]).encode())
    h.update(np.ascontiguousarray(np.nan_to_num(np.asarray(pool.scores, dtype=float), nan=-1e300)).tobytes())
    return h.hexdigest()[:16]


def _centred(a: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``a - E_q[a]`` per prompt (a: (P, K) or (P, K, D))."""
    w = q[..., None] if a.ndim == 3 else q
    return a - (a * w).sum(axis=1, keepdims=True)


def _solve(x: np.ndarray, s: np.ndarray, q: np.ndarray, lam: float) -> np.ndarray:
    a = np.einsum("pk,pki,pkj->ij", q, x, x)
    b = np.einsum("pk,pki,pkc->ic", q, x, s)
    k = a.shape[0]
    if not np.trace(a) > 0:  # the components do not move the pool at all
        return np.zeros_like(b)
    try:
        return np.linalg.solve(a + lam * np.trace(a) / k * np.eye(k), b)
    except np.linalg.LinAlgError:  # collinear components without a ridge: the minimum-norm solution
        return np.linalg.lstsq(a, b, rcond=None)[0]


def _sse(x: np.ndarray, s: np.ndarray, q: np.ndarray, m: np.ndarray) -> float:
    return float(np.einsum("pk,pkc->", q, (s - x @ m) ** 2))


def fit_mixing(basis: np.ndarray, scores: np.ndarray, ref: np.ndarray, *, criteria: Sequence[str],
               ridge: float | str = "cv", folds: int = 5, normalise: str = "sum", source: str = "",
               run_id: str = "", pool_hash: str = "") -> MixingCalibration:
    r"""Fit the calibrated mixing from precomputed logits (see the module docstring).

    Parameters
    ----------
    basis : array, shape (P, K, 1 + C)
        Logit shifts of the shared LoRA alone and of each criterion's LoRA on top of it (scale 1).
    scores : array, shape (P, K, C)
        Each candidate's score on each criterion (criteria order); NaN on padding.
    ref : array, shape (P, K)
        The base's logits; ``-inf`` or NaN on padding (the real candidates: finite entries).
    criteria : sequence of str, length C
    ridge : float or "cv", default "cv"
        λ (>= 0, relative), or cross-validated over prompts from :data:`RIDGE_GRID`.
    folds : int, default 5
        Cross-validation folds (prompts ``i`` in fold ``i mod folds``; at most P).
    normalise, source, run_id, pool_hash
        Recorded.

    Returns
    -------
    MixingCalibration

    Raises
    ------
    ValueError
        Wrong shapes, non-finite values on real candidates, fewer than 2 prompts or candidates, a bad ``ridge``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.normal(size=(30, 5, 2))
    >>> x = np.concatenate([rng.normal(size=(30, 5, 1)), s @ np.array([[2.0, 0.0], [1.0, 1.0]])], axis=2)
    >>> cal = fit_mixing(x, s, np.zeros((30, 5)), criteria=["a", "b"], ridge=0.0)
    >>> cal.matrix.round(3) + 0.0  # the basis' criterion columns are s @ [[2, 0], [1, 1]]: M inverts it
    array([[ 0. ,  0. ],
           [ 0.5,  0. ],
           [-0.5,  1. ]])
    """
    crits = tuple(str(c) for c in criteria)
    c = len(crits)
    x = np.asarray(basis, dtype=float)
    s = np.asarray(scores, dtype=float)
    r = np.asarray(ref, dtype=float)
    if r.ndim != 2 or x.shape != (*r.shape, 1 + c) or s.shape != (*r.shape, c):
        raise ValueError(f"`basis` must have shape (P, K, {1 + c}), `scores` (P, K, {c}) and `ref` (P, K) for "
                         f"{c} criteria {list(crits)}. Got {x.shape}, {s.shape} and {r.shape}.")
    if normalise not in _NORMALISE:
        raise ValueError(f"`normalise` must be 'sum' or 'mean'. Got {normalise!r}.")
    mask = np.isfinite(r)
    if not (np.isfinite(x[mask]).all() and np.isfinite(s[mask]).all()):
        bad = sorted({int(i) for i in np.argwhere(mask & ~(np.isfinite(x).all(-1) & np.isfinite(s).all(-1)))[:, 0]})
        raise ValueError(f"`basis` or `scores` are not finite on real candidates of prompts {bad[:10]}. Fix: score "
                         "every candidate, or mark padding with -inf in `ref`.")
    p = r.shape[0]
    if p < 2 or mask.sum(axis=1).min() < 2:
        raise ValueError(f"Calibration needs >= 2 prompts with >= 2 candidates each. Got {p} prompts, at least "
                         f"{int(mask.sum(axis=1).min()) if p else 0} candidates. Fix: use a larger pool.")
    r = np.where(mask, r, -np.inf)
    x = np.where(mask[..., None], x, 0.0)
    s = np.where(mask[..., None], s, 0.0)
    q = softmax_rows(r)
    xc, sc = _centred(x, q), _centred(s, q)
    cv: dict[float, float] = {}
    if isinstance(ridge, str):
        if ridge != "cv":
            raise ValueError(f"`ridge` must be a number >= 0 or 'cv'. Got {ridge!r}.")
        k = max(2, min(int(folds), p))
        fold = np.arange(p) % k
        err = {lam: sum(_sse(xc[fold == f], sc[fold == f], q[fold == f], _solve(xc[fold != f], sc[fold != f],
                                                                                   q[fold != f], lam))
                        for f in range(k)) for lam in RIDGE_GRID}
        top = err[RIDGE_GRID[-1]] or 1.0
        cv = {lam: e / top for lam, e in err.items()}
        lam = min(err, key=lambda v: (err[v], -v))
    else:
        if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or not np.isfinite(ridge) or ridge < 0:
            raise ValueError(f"`ridge` must be a number >= 0 or 'cv'. Got {ridge!r}.")
        lam = float(ridge)
    m = _solve(xc, sc, q, lam)
    resid = np.einsum("pk,pkc->c", q, (sc - xc @ m) ** 2)
    total = np.einsum("pk,pkc->c", q, sc ** 2)
    r2 = {cr: float(1.0 - a / b) if b > 0 else float("nan") for cr, a, b in zip(crits, resid, total)}
    return MixingCalibration(crits, m, x, r, float(lam), cv, r2, normalise, str(source), str(run_id), str(pool_hash))
