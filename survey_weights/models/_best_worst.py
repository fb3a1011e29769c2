"""The engine's best-worst (MaxDiff, object case) design: three models of a task's (best, worst) answer.

A task shows the set ``S`` (``k = |S|`` items) and records the best ``b`` and the worst ``w``; ``v`` are the items'
log-worths (utilities), ``theta = v`` (no tie parameters).

* ``"maxdiff"``: ``P(b, w) = exp(v_b - v_w) / sum_{i != j in S} exp(v_i - v_j)`` (one choice among the
  ``k(k-1)`` ordered pairs, ``x = e_i - e_j``);
* ``"sequential"``: best by Plackett-Luce over ``S`` (``x = e_i``), then worst among ``S \\ {b}`` with
  utilities ``-v`` (``x = -e_i``);
* ``"marginal"``: best logit over ``S`` with ``v`` and, independently, worst logit over ``S`` with ``-v``.

Each model is a sum of conditional-logit *stages* whose alternatives have fixed rows ``X`` (A x k) in the
coordinates of the task's shown items. Tasks are grouped by ``k``; for a block of T tasks with shown items ``S``
(T x k, sorted) the utilities are ``eta = v[S] @ X.T`` (the sequential model's worst stage is over the set without
the best), and per task the score is ``x_chosen - p' X`` and the Hessian
``-(X' diag(p) X - xbar xbar')``, scattered into the items by ``S``. These are the same conditional logits as the
stacking of ``survival::clogit`` / ``support.BWS::bws.dataset``; the optimiser (:mod:`._optim`), the
pseudo-comparisons (:mod:`._design`) and the covariance (:mod:`._covariance`, :mod:`._robust`) are the engine's.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import permutations
from typing import Any

import numpy as np

from ._design import Design

__all__ = ["BEST_WORST_MODELS", "BestWorstDesign", "best_worst_tasks", "ordered_pairs", "stage_blocks"]

BEST_WORST_MODELS = ("maxdiff", "sequential", "marginal")


@lru_cache(maxsize=64)
def ordered_pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ordered pairs (i, j), i != j, of positions 0..k-1 and their rows ``e_i - e_j`` (k(k-1) x k)."""
    pr = np.array(list(permutations(range(k), 2)), dtype=np.int64).reshape(-1, 2)
    X = np.zeros((len(pr), k))
    X[np.arange(len(pr)), pr[:, 0]] = 1.0
    X[np.arange(len(pr)), pr[:, 1]] -= 1.0
    pr.flags.writeable = False
    X.flags.writeable = False
    return pr, X


def best_worst_tasks(data: Any, model: str) -> Any:
    """The data's best-worst tasks, with `model` checked (``ValueError`` naming the fix otherwise)."""
    bw = getattr(data, "best_worst", None)
    if bw is None:
        raise ValueError("The data carry no best-worst tasks. Fix: build them with Rankings.from_best_worst.")
    if model not in BEST_WORST_MODELS:
        raise ValueError(f"Unknown best-worst `model` {model!r}. Choose one of {BEST_WORST_MODELS}.")
    return bw


def stage_blocks(bw: Any, model: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The model's conditional-logit stages, in blocks of equal choice-set size: ``(S, X, chosen, resp)`` with
    ``S`` (T x m) the stage's choice set (item indices, sorted), ``X`` (A x m) its alternatives' rows in the
    coordinates of ``S``, ``chosen`` (T,) the alternative chosen and ``resp`` (T,) the respondent of each task.
    The sequential model's worst stage is a logit over ``S`` without the best (a set of ``k - 1`` items)."""
    out = []
    for k in np.unique(bw.sizes):
        k = int(k)
        tk = np.flatnonzero(bw.sizes == k)
        S = np.sort(bw.item[bw.ptr[tk][:, None] + np.arange(k)[None, :]], axis=1)
        bpos = np.argmax(S == bw.best[tk][:, None], axis=1)
        wpos = np.argmax(S == bw.worst[tk][:, None], axis=1)
        resp = bw.resp[tk]
        if model == "maxdiff":
            pr, X = ordered_pairs(k)
            chosen = bpos * (k - 1) + wpos - (wpos > bpos)  # position of (b, w) in permutations order
            assert np.all(pr[chosen, 0] == bpos) and np.all(pr[chosen, 1] == wpos)
            out.append((S, X, chosen, resp))
            continue
        out.append((S, np.eye(k), bpos, resp))
        if model == "marginal":
            out.append((S, -np.eye(k), wpos, resp))
        elif k > 1:
            rest = np.ones(S.shape, dtype=bool)
            rest[np.arange(len(tk)), bpos] = False
            out.append((S[rest].reshape(len(tk), k - 1), -np.eye(k - 1), wpos - (wpos > bpos), resp))
    return out


class BestWorstDesign(Design):
    """Best-worst design of a :class:`~survey_weights.data.Rankings` built by ``from_best_worst``."""

    tie_orders: tuple[int, ...] = ()

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    @classmethod
    def from_data(cls, data: Any, *, model: str = "maxdiff", npseudo: float = 0.0) -> BestWorstDesign:
        bw = best_worst_tasks(data, model)
        n = len(data.items)
        blocks = [{"S": S, "resp": r, "X": X, "chosen": ch} for S, X, ch, r in stage_blocks(bw, model)]
        d = cls(items=tuple(data.items), n_items=n, tie_orders=(), npseudo=float(npseudo), model=model,
                blocks=blocks, n_respondents=int(data.n_respondents), n_rankings=int(bw.n_tasks), _tasks=bw)
        d._set_weights(np.asarray(getattr(data, "fit_weights", data.respondent_weights), dtype=float))
        return d

    # ------------------------------------------------------------------------------------------------ weights
    def _set_weights(self, rw: np.ndarray) -> None:
        if rw.shape != (self.n_respondents,):
            raise ValueError(f"`respondent_weights` must have length {self.n_respondents}. Got shape {rw.shape}.")
        self.respondent_weights = rw

    def reweight(self, respondent_weights: Any) -> BestWorstDesign:
        d = BestWorstDesign(**self.__dict__)
        d._set_weights(np.asarray(respondent_weights, dtype=float))
        return d

    def with_npseudo(self, npseudo: float) -> BestWorstDesign:
        d = BestWorstDesign(**self.__dict__)
        d.npseudo = float(npseudo)
        return d

    @property
    def tie_free(self) -> bool:
        return True

    def total_weight(self) -> float:
        """Summed weight of the tasks."""
        return float(self.respondent_weights[self._tasks.resp].sum())

    # ------------------------------------------------------------------------------------------------ kernel
    @staticmethod
    def _stage(V: np.ndarray, X: np.ndarray, chosen: np.ndarray, need: int) -> tuple[np.ndarray, Any, Any]:
        """Per-task log-probability (T,), local score (T, m) and local Hessian (T, m, m) of one stage."""
        eta = V @ X.T  # (T, A)
        mx = eta.max(axis=1, keepdims=True)
        e = np.exp(eta - mx)
        den = e.sum(axis=1, keepdims=True)
        lse = (mx + np.log(den)).ravel()
        T = len(chosen)
        ll = eta[np.arange(T), chosen] - lse
        if need == 0:
            return ll, None, None
        p = e / den
        xbar = p @ X  # (T, m)
        g = X[chosen] - xbar
        if need < 2:
            return ll, g, None
        H = np.einsum("xk,xl,tx->tkl", X, X, p) - xbar[:, :, None] * xbar[:, None, :]
        return ll, g, -H

    def _task_terms(self, theta: np.ndarray, need: int):  # noqa: ANN202 - internal generator
        for b in self.blocks:
            yield (b, *self._stage(theta[b["S"]], b["X"], b["chosen"], need))

    def _data_fgh(self, theta: np.ndarray, need: int) -> tuple[float, Any, Any]:
        n = self.n_items
        rw = self.respondent_weights
        f = 0.0
        g = np.zeros(n) if need >= 1 else None
        H = np.zeros(n * n) if need >= 2 else None
        for b, ll, gl, Hl in self._task_terms(np.asarray(theta, dtype=float), need):
            wt = rw[b["resp"]]
            f += float(wt @ ll)
            S = b["S"]
            if need >= 1:
                g += np.bincount(S.ravel(), weights=(gl * wt[:, None]).ravel(), minlength=n)
            if need >= 2:
                idx = (S[:, :, None] * n + S[:, None, :]).ravel()
                H += np.bincount(idx, weights=(Hl * wt[:, None, None]).ravel(), minlength=n * n)
        return f, g, (H.reshape(n, n) if need >= 2 else None)

    def scores(self, theta: np.ndarray, *, weighted: bool = True) -> np.ndarray:
        """Per-respondent score contributions (N, n); weighted by the respondent weights when `weighted`."""
        n, N = self.n_items, self.n_respondents
        out = np.zeros(N * n)
        for b, _, gl, _ in self._task_terms(np.asarray(theta, dtype=float), 1):
            idx = (b["resp"][:, None] * n + b["S"]).ravel()
            out += np.bincount(idx, weights=gl.ravel(), minlength=N * n)
        S = out.reshape(N, n)
        return S * self.respondent_weights[:, None] if weighted else S

    def respondent_loglik(self, theta: np.ndarray) -> np.ndarray:
        """Unweighted data log-likelihood of every respondent (N,)."""
        out = np.zeros(self.n_respondents)
        for b, ll, _, _ in self._task_terms(np.asarray(theta, dtype=float), 0):
            out += np.bincount(b["resp"], weights=ll, minlength=self.n_respondents)
        return out

    def null_loglik(self) -> float:
        return self.loglik(np.zeros(self.n_params), pseudo=False)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Directed 'beats' edges: the best beats every other item shown, every item shown beats the worst."""
        bw = self._tasks
        sizes = bw.sizes
        t_of = np.repeat(np.arange(bw.n_tasks), sizes)
        it = bw.item
        b, w = bw.best[t_of], bw.worst[t_of]
        nb, nw = it != b, it != w
        return np.concatenate([b[nb], it[nw]]), np.concatenate([it[nb], w[nw]])

    def _chosen(self) -> np.ndarray:  # pragma: no cover - MM is not offered for best-worst data
        raise NotImplementedError("method='mm' does not apply to best-worst models")
