"""Ties as an unknown order: the exploded (rank-ordered logit) likelihoods of weak orderings (private).

A weak ordering ``G_1 > G_2 > ... > G_K`` (tie groups) is exploded into stages ``s = 1..K-1`` with risk set
``R_s = G_s + ... + G_K`` (plus the unranked items of a top-k ranking) and events ``E_s = G_s``; a stage whose
events are its whole risk set (the last group) contributes nothing.  With ``w = exp(beta)``, ``W_A`` the summed
worths of a set, ``L = R \\ E`` and ``d = |E|``, a stage contributes (survival's ``clogit`` names):

* ``"breslow"``: ``sum_E beta - d log W_R``;
* ``"efron"``: ``sum_E beta - sum_{j<d} log(W_R - (j/d) W_E)``;
* ``"discrete_exact"``: ``sum_E beta - log sum_{A subset R, |A| = d} exp(sum_A beta)`` (the tie group chosen
  at once as a set: a different model, conditional logistic);
* ``"exact_marginal"``: ``log sum_{orders pi of E} prod_j w_{pi_j} / (W_L + sum_{k >= j} w_{pi_k})``, the
  Plackett-Luce probability that every item of E comes before every item of L, in any order (Allison &
  Christakis 1994; Stata's ``rologit, ties(exactm)``), summed over the ``d!`` orders by log-sum-exp.

Breslow and Efron approximate the probability of *one* order of each tie group: add ``sum_s log(d_s!)``
(:attr:`ExplodedDesign.log_dfact`) to compare their log-likelihoods with the exact marginal one.  There are no
tie parameters; with ``d = 1`` every method is the ordinary Plackett-Luce stage.  The pseudo-comparisons are the
base class's (two-item rankings without ties).  Value, gradient and Hessian are analytic for every method.
"""

from __future__ import annotations

from itertools import combinations, permutations
from math import comb, factorial, lgamma
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._design import Design
from ._stages import choice_stages

__all__ = ["EXPLODED_TIES", "ExplodedDesign"]

EXPLODED_TIES = ("breslow", "efron", "exact_marginal", "discrete_exact")
MAX_EXACT_ORDER = 7  # exact_marginal sums d! orders per stage: 5040 at d = 7
_MAX_SUBSETS = 100_000  # discrete_exact: subsets of one risk set
_CHUNK = 2_000_000  # elements of the largest temporary per chunk of stages


class ExplodedDesign(Design):
    """Exploded-stage design of :class:`~survey_weights.data.Rankings` for ``ties`` in :data:`EXPLODED_TIES`.

    ``theta`` is the items' raw log-worths (no tie parameters).  Stages are kept in blocks of equal
    ``(d, |L|)``: ``idx`` (stages, d + |L|) item indices, events first.
    """

    tie_orders: tuple[int, ...] = ()

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    @classmethod
    def from_rankings(cls, rankings: Any, *, ties: str, npseudo: float = 0.5,
                      respondent_weights: Any = None) -> ExplodedDesign:
        if ties not in EXPLODED_TIES:
            raise ValueError(f"Unknown `ties` {ties!r}. Choose one of {EXPLODED_TIES}.")
        st = choice_stages(rankings)
        n = st.n_items
        rw = np.asarray(getattr(rankings, "fit_weights", rankings.respondent_weights) if respondent_weights is None
                        else respondent_weights, dtype=float)
        keep = st.c_size < st.a_size
        bits = lambda M: np.unpackbits(np.ascontiguousarray(M).astype("<u8").view(np.uint8), axis=1,  # noqa: E731
                                       bitorder="little")[:, :n].astype(bool)
        A, C = bits(st.A[keep]), bits(st.C[keep])
        Lm = A & ~C
        d_all, m_all = C.sum(axis=1), Lm.sum(axis=1)
        resp, base = st.resp[keep], st.base[keep]
        if ties == "exact_marginal" and len(d_all) and int(d_all.max()) > MAX_EXACT_ORDER:
            raise ValueError(f"ties='exact_marginal' sums the d! orders of each tie group; this data has a tie "
                             f"group of {int(d_all.max())} items before others (at most {MAX_EXACT_ORDER}). "
                             "Fix: use ties='efron' (its close approximation) or 'davidson'.")
        blocks = []
        for key in np.unique(d_all * (n + 1) + m_all) if len(d_all) else []:
            rows = np.flatnonzero(d_all * (n + 1) + m_all == key)
            d, m = int(key // (n + 1)), int(key % (n + 1))
            if ties == "discrete_exact" and comb(d + m, d) > _MAX_SUBSETS:
                raise ValueError(f"ties='discrete_exact' needs the {comb(d + m, d)} subsets of a risk set of "
                                 f"{d + m} items; at most {_MAX_SUBSETS}. Fix: use ties='efron'.")
            ev = np.nonzero(C[rows])[1].reshape(len(rows), d)
            ls = np.nonzero(Lm[rows])[1].reshape(len(rows), m)
            blocks.append({"d": d, "idx": np.ascontiguousarray(np.hstack([ev, ls])), "resp": resp[rows],
                           "base": base[rows]})
        R = len(rankings._ptr) - 1
        d = cls(items=tuple(rankings.items), n_items=n, ties=ties, npseudo=float(npseudo), blocks=blocks,
                n_respondents=len(rw), n_rankings=R, _rank_resp=np.asarray(rankings._resp, dtype=np.int64),
                log_dfact=float(sum(lgamma(int(k) + 1) for k in d_all)) if len(d_all) else 0.0,
                tie_free=bool(not len(d_all) or int(d_all.max()) <= 1))
        d._set_weights(rw)
        return d

    # ------------------------------------------------------------------------------------------------ weights
    def _set_weights(self, rw: np.ndarray) -> None:
        if rw.shape != (self.n_respondents,):
            raise ValueError(f"`respondent_weights` must have length {self.n_respondents}. Got shape {rw.shape}.")
        self.respondent_weights = rw
        n = self.n_items
        self._chosen_stat = np.zeros(n)
        for b in self.blocks:
            b["w"] = b["base"] * rw[b["resp"]]
            self._chosen_stat += np.bincount(b["idx"][:, :b["d"]].ravel(), weights=np.repeat(b["w"], b["d"]),
                                             minlength=n)

    def reweight(self, respondent_weights: Any) -> ExplodedDesign:
        """Same data, other respondent weights."""
        d = ExplodedDesign(**self.__dict__)
        d.blocks = [dict(b) for b in self.blocks]
        d._set_weights(np.asarray(respondent_weights, dtype=float))
        return d

    def with_method(self, ties: str) -> ExplodedDesign:
        """The same stages under another exploded likelihood."""
        d = ExplodedDesign(**self.__dict__)
        d.ties = ties
        return d

    def total_weight(self) -> float:
        return float(self.respondent_weights[self._rank_resp].sum())

    def _chosen(self) -> np.ndarray:
        return self._chosen_stat

    def start(self) -> np.ndarray:
        """Zeros; for ``exact_marginal`` the Efron estimate (its close, concave approximation), so Newton starts
        where the exact marginal likelihood is concave."""
        th = np.zeros(self.n_params)
        if self.ties != "exact_marginal" or self.tie_free:
            return th
        from ._optim import newton

        eff = self.with_method("efron")
        opt = newton(eff, th, eff.free(0), 100, 1e-10)
        return opt.theta if np.all(np.isfinite(opt.theta)) else th

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Directed edges whose strong connectivity the MLE needs: every event beats every item of L; the
        events of a stage also reach each other under Breslow, Efron and the discrete model (a tie group's
        worths are pulled together there), not under the exact marginal likelihood."""
        src, dst = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for b in self.blocks:
            d, idx = b["d"], b["idx"]
            ev, ls = idx[:, :d], idx[:, d:]
            src.append(np.repeat(ev, ls.shape[1], axis=1).ravel())
            dst.append(np.tile(ls, (1, d)).ravel())
            if self.ties != "exact_marginal" and d >= 2:
                src.append(ev.ravel())
                dst.append(np.roll(ev, -1, axis=1).ravel())
        return np.concatenate(src), np.concatenate(dst)

    # ------------------------------------------------------------------------------------------------ kernel
    def _local(self, d: int, x: np.ndarray, need: int) -> tuple[np.ndarray, Any, Any]:
        """Per-stage value (S,), gradient (S, r) and Hessian (S, r, r) in the stage's own log-worths ``x``
        (events first)."""
        x = x - x.max(axis=1, keepdims=True)
        S, r = x.shape
        w = np.exp(x)
        e = np.zeros(r)
        e[:d] = 1.0
        W = w.sum(axis=1)
        xe = x[:, :d].sum(axis=1)
        meth = self.ties
        if meth == "breslow" or d == 1:
            f = xe - d * np.log(W)
            if need == 0:
                return f, None, None
            p = w / W[:, None]
            G = e - d * p
            H = None
            if need >= 2:
                H = d * (p[:, :, None] * p[:, None, :])
                H[:, np.arange(r), np.arange(r)] -= d * p
            return f, G, H
        if meth == "efron":
            c = np.arange(d) / d
            WE = w[:, :d].sum(axis=1)
            D = W[:, None] - c[None, :] * WE[:, None]  # (S, d)
            f = xe - np.log(D).sum(axis=1)
            if need == 0:
                return f, None, None
            a = w[:, None, :] * (1.0 - c[:, None] * e[None, :])[None, :, :]  # (S, d, r)
            aD = a / D[:, :, None]
            G = e - aD.sum(axis=1)
            H = None
            if need >= 2:
                H = np.einsum("sja,sjb->sab", aD, aD)
                H[:, np.arange(r), np.arange(r)] -= aD.sum(axis=1)
            return f, G, H
        if meth == "discrete_exact":
            cmb = np.array(list(combinations(range(r), d)), dtype=np.int64)
            Ind = np.zeros((len(cmb), r))
            Ind[np.arange(len(cmb))[:, None], cmb] = 1.0
            sA = x @ Ind.T  # (S, K)
            mx = sA.max(axis=1, keepdims=True)
            eA = np.exp(sA - mx)
            den = eA.sum(axis=1)
            f = xe - (mx[:, 0] + np.log(den))
            if need == 0:
                return f, None, None
            P = eA / den[:, None]
            mean = P @ Ind
            G = e - mean
            H = None
            if need >= 2:
                H = np.einsum("sk,ka,kb->sab", P, Ind, Ind)
                H -= mean[:, :, None] * mean[:, None, :]
                np.negative(H, out=H)
            return f, G, H
        # exact_marginal: log-sum-exp over the d! orders of the events
        M = _suffix_masks(d, r)  # (O, d, r)
        D = np.einsum("ojr,sr->soj", M, w)  # (S, O, d)
        g_o = -np.log(D).sum(axis=2)  # (S, O)
        mx = g_o.max(axis=1, keepdims=True)
        eo = np.exp(g_o - mx)
        den = eo.sum(axis=1)
        f = xe + mx[:, 0] + np.log(den)
        if need == 0:
            return f, None, None
        q = eo / den[:, None]
        dg = -np.einsum("ojr,soj->sor", M, 1.0 / D) * w[:, None, :]  # gradient of each order's log term
        gbar = np.einsum("so,sor->sr", q, dg)
        G = e + gbar
        H = None
        if need >= 2:
            K = np.einsum("soj,ojr,ojt->srt", q[:, :, None] / (D * D), M, M)
            H = K * (w[:, :, None] * w[:, None, :])
            H += np.einsum("so,sor,sot->srt", q, dg, dg)
            H -= gbar[:, :, None] * gbar[:, None, :]
            H[:, np.arange(r), np.arange(r)] += gbar
        return f, G, H

    def _chunks(self, b: dict) -> list[slice]:
        d, r = b["d"], b["idx"].shape[1]
        per = r * r * max(1, d) * (factorial(d) if self.ties == "exact_marginal" else
                                   comb(r, d) if self.ties == "discrete_exact" else 1)
        step = max(1, _CHUNK // per)
        S = len(b["w"])
        return [slice(a, min(S, a + step)) for a in range(0, S, step)]

    def _data_fgh(self, theta: np.ndarray, need: int) -> tuple[float, Any, Any]:
        n = self.n_items
        beta = np.asarray(theta, dtype=float)[:n]
        f = 0.0
        g = np.zeros(n) if need >= 1 else None
        Hflat = np.zeros(n * n) if need >= 2 else None
        for b in self.blocks:
            for sl in self._chunks(b):
                idx, w = b["idx"][sl], b["w"][sl]
                fs, G, Hs = self._local(b["d"], beta[idx], need)
                f += float(fs @ w)
                if need >= 1:
                    g += np.bincount(idx.ravel(), weights=(G * w[:, None]).ravel(), minlength=n)
                if need >= 2:
                    key = idx[:, :, None] * n + idx[:, None, :]
                    Hflat += np.bincount(key.ravel(), weights=(Hs * w[:, None, None]).ravel(), minlength=n * n)
        return f, g, (None if Hflat is None else Hflat.reshape(n, n))

    def stage_loglik(self, theta: np.ndarray) -> np.ndarray:
        """Unweighted data log-likelihood of every respondent (N,) (stage base weights included)."""
        out = np.zeros(self.n_respondents)
        beta = np.asarray(theta, dtype=float)[:self.n_items]
        for b in self.blocks:
            for sl in self._chunks(b):
                fs = self._local(b["d"], beta[b["idx"][sl]], 0)[0]
                out += np.bincount(b["resp"][sl], weights=fs * b["base"][sl], minlength=self.n_respondents)
        return out

    respondent_loglik = stage_loglik

    def scores(self, theta: np.ndarray, *, weighted: bool = True) -> np.ndarray:
        """Per-respondent score contributions (N, p); weighted by the respondent weights when `weighted`."""
        n, N = self.n_items, self.n_respondents
        beta = np.asarray(theta, dtype=float)[:n]
        S = np.zeros((N, n))
        for b in self.blocks:
            for sl in self._chunks(b):
                idx = b["idx"][sl]
                G = self._local(b["d"], beta[idx], 1)[1] * b["base"][sl][:, None]
                r = idx.shape[1]
                M = sp.csr_matrix((G.ravel(), (np.repeat(b["resp"][sl], r), idx.ravel())), shape=(N, n))
                S += M.toarray()
        return S * self.respondent_weights[:, None] if weighted else S


_MASKS: dict[tuple[int, int], np.ndarray] = {}


def _suffix_masks(d: int, r: int) -> np.ndarray:
    """``M[o, j, k]``: whether item k (events 0..d-1, then the rest) is still in the choice set at the j-th pick
    of order o of the events: the items of L always, an event when it is picked at j or later."""
    key = (d, r)
    M = _MASKS.get(key)
    if M is None:
        P = np.array(list(permutations(range(d))), dtype=np.int64)  # (O, d): the event picked at each step
        pos = np.argsort(P, axis=1)  # step at which each event is picked
        M = np.ones((len(P), d, r))
        M[:, :, :d] = (pos[:, None, :] >= np.arange(d)[None, :, None]).astype(float)
        M.flags.writeable = False
        _MASKS[key] = M
    return M
