"""The designs of the plain fits: :class:`PLDesign` (rankings) and :class:`BTDesign` (paired comparisons).

``PLDesign`` runs on one of the engine's two ranking kernels -- the general choice-set kernel
(:class:`~._choice.ChoiceDesign`, ties of any order) or, for tie-free rankings, the suffix-sum kernel
(:class:`~._tie_free.TieFreeEngine`, equal to the general one and much faster on 100,000 rankings).
``BTDesign`` is the pairwise kernel (one logistic or Davidson term per distinct pair, dense n x n Hessian; equal
to the general kernel on two-item sets, tested) that the 1,000-item benchmark needs.  All share
:class:`~._design.Design` (pseudo-comparisons, wrappers), the Newton driver and the covariance routine.

Parameterisation
----------------
Every design works on one parameter vector ``theta`` of length ``p = n_items + len(tie_orders)``::

    theta = (beta_0, ..., beta_{n-1}, log delta_{k_1}, ..., log delta_{k_T})

* ``beta_i`` is the (raw, unconstrained) log-worth of item ``i`` (``items[i]``).
* ``tie_orders`` (``design.tie_orders``) are the tie orders ``k >= 2`` present in the data, ascending;
  ``log delta_k`` is the tie parameter of order k on the log scale (PlackettLuce's "tie2", "tie3", ... are
  ``exp`` of these).  Unobserved intermediate orders have ``delta = 0`` and no parameter.
* With ``npseudo > 0`` each item plays ``npseudo`` wins and ``npseudo`` losses against a ghost item whose
  log-worth is fixed at 0, so all of ``beta`` is identified.  With ``npseudo = 0`` the likelihood is
  invariant to ``beta + c``; fit on ``design.free(ref)`` (all parameters except ``beta[ref]``, which stays 0).

Methods (all designs)
---------------------
``fgh(theta, need=2, pseudo=True)`` -> ``(f, g, H)``: objective value, gradient (p,) and Hessian (p, p);
``need`` = 0/1/2 computes only f / f, g / f, g, H.  ``loglik``, ``grad``, ``hess`` are single-output
wrappers.  ``pseudo=True`` includes the ghost pseudo-comparisons (the fitted objective); results report
the data log-likelihood (``pseudo=False``).

``scores(theta, weighted=True)`` -> (n_respondents, p) array of per-respondent score contributions
(gradient of each respondent's data log-likelihood, times its frequency weight when ``weighted``); their
column sums equal ``grad(theta, pseudo=False)``.  This is ``estfun`` for M-fluctuation tests.

``reweight(respondent_weights)`` -> a new design on the same data with other frequency weights (no
re-parsing: O(n_stages)); use it with ``start=`` for fast bootstrap / EM refits
(:func:`survey_weights.models.plackett_luce.fit_design`).

Examples
--------
>>> d = PLDesign.from_rankings(rankings, npseudo=0)       # doctest: +SKIP
>>> theta = fit_design(d).theta                             # doctest: +SKIP
>>> S = d.scores(theta)            # (N, p), per-respondent estfun  # doctest: +SKIP
>>> H = d.hess(theta, pseudo=False)                         # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ._choice import ChoiceDesign
from ._design import Design, pseudo_terms
from ._stages import choice_stages, dense_key_space
from ._tie_free import TieFreeEngine

__all__ = ["PLDesign", "BTDesign", "pseudo_terms"]

_WARM_ROWS = 10_000  # rankings in the subsample whose fit starts Newton on large tie-free data


# ----------------------------------------------------------------------------------------------------------
def _fit_weights(data: Any) -> np.ndarray:
    """Frequency x sampling weights of a data object (objects without sampling weights: the frequency weights)."""
    return getattr(data, "fit_weights", data.respondent_weights)


class _RawRankings:
    """The CSR arrays of a Rankings object, as :func:`~._stages.choice_stages` reads them."""

    def __init__(self, n: int, ptr: np.ndarray, item: np.ndarray, rank: np.ndarray, top_k: np.ndarray,
                 resp: np.ndarray, unranked: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.n_items, self._ptr, self._item, self._rank, self._top_k, self._resp = n, ptr, item, rank, top_k, resp
        self._unranked_ptr, self._unranked_item = unranked if unranked is not None else (None, None)


class PLDesign(Design):
    """Plackett-Luce (Davidson-Luce ties, sub-rankings, top-k) design; see the module docstring."""

    def __init__(self, *, items: tuple, engine: Any, tie_orders: tuple[int, ...], npseudo: float,
                 resp_w: np.ndarray, n_rankings: int, arrays: dict[str, np.ndarray]) -> None:
        self.items = items
        self.n_items = len(items)
        self.engine = engine
        self.tie_orders = tie_orders
        self.npseudo = float(npseudo)
        self.respondent_weights = resp_w
        self.n_respondents = len(resp_w)
        self.n_rankings = n_rankings
        self._arrays = arrays

    @classmethod
    def from_arrays(cls, items: Any, ptr: np.ndarray, item: np.ndarray, rank: np.ndarray, top_k: np.ndarray,
                    resp: np.ndarray, respondent_weights: np.ndarray, *, npseudo: float = 0.5,
                    engine: str = "auto", unranked: tuple[np.ndarray, np.ndarray] | None = None) -> PLDesign:
        """Build from the CSR arrays of :class:`~survey_weights.data.Rankings` (see docs/design.md);
        `unranked` is ``(ptr, item)`` of each ranking's declared shown-but-unranked items, or None."""
        items = tuple(range(items)) if isinstance(items, (int, np.integer)) else tuple(items)
        n = len(items)
        ptr = np.asarray(ptr, dtype=np.int64)
        item = np.asarray(item, dtype=np.int64)
        rank = np.asarray(rank, dtype=np.int64)
        top_k = np.asarray(top_k, dtype=bool)
        resp = np.asarray(resp, dtype=np.int64)
        rw = np.asarray(respondent_weights, dtype=float)
        if unranked is not None:
            unranked = (np.asarray(unranked[0], dtype=np.int64), np.asarray(unranked[1], dtype=np.int64))
        # tie group sizes
        R = len(ptr) - 1
        rid = np.repeat(np.arange(R), np.diff(ptr))
        if len(item):
            newg = np.ones(len(item), dtype=bool)
            newg[1:] = (rid[1:] != rid[:-1]) | (rank[1:] != rank[:-1])
            sizes = np.bincount(np.cumsum(newg) - 1)
        else:
            sizes = np.zeros(0, int)
        tie_orders = tuple(int(k) for k in np.flatnonzero(np.bincount(sizes)) if k >= 2) if len(sizes) else ()
        if engine == "auto":
            engine = "dense" if not tie_orders else "generic"
        if engine == "dense":
            if tie_orders:
                raise ValueError("engine='dense' needs tie-free rankings; use engine='generic'.")
            eng: Any = TieFreeEngine.build(n, ptr, item, top_k, resp, rw, unranked)
        elif engine == "generic":
            raw = _RawRankings(n, ptr, item, rank, top_k, resp, unranked)
            eng = ChoiceDesign.from_stages(choice_stages(raw), n_respondents=len(rw), respondent_weights=rw,
                                           npseudo=0.0, items=items, n_rankings=R)
        else:
            raise ValueError(f"Unknown `engine` {engine!r}. Choose one of {{'auto', 'dense', 'generic'}}.")
        arrays = {"ptr": ptr, "item": item, "rank": rank, "top_k": top_k, "resp": resp}
        if unranked is not None:
            arrays["unranked_ptr"], arrays["unranked_item"] = unranked
        return cls(items=items, engine=eng, tie_orders=tie_orders, npseudo=npseudo, resp_w=rw,
                   n_rankings=R, arrays=arrays)

    @classmethod
    def from_rankings(cls, rankings: Any, *, npseudo: float = 0.5, engine: str = "auto") -> PLDesign:
        """Build from a :class:`~survey_weights.data.Rankings` object."""
        r = rankings
        u_ptr = getattr(r, "_unranked_ptr", None)
        return cls.from_arrays(r.items, r._ptr, r._item, r._rank, r._top_k, r._resp, _fit_weights(r),
                               npseudo=npseudo, engine=engine,
                               unranked=None if u_ptr is None else (u_ptr, r._unranked_item))

    def reweight(self, respondent_weights: Any) -> PLDesign:
        """Same data, other respondent frequency weights (fast; for bootstrap / EM / subgroup fits)."""
        rw = np.asarray(respondent_weights, dtype=float)
        if rw.shape != (self.n_respondents,):
            raise ValueError(f"`respondent_weights` must have length {self.n_respondents}. Got shape {rw.shape}.")
        d = PLDesign(items=self.items, engine=self.engine.reweight(rw), tie_orders=self.tie_orders,
                     npseudo=self.npseudo, resp_w=rw, n_rankings=self.n_rankings, arrays=self._arrays)
        d.prior = self.prior
        return d

    def warm_subsample(self) -> PLDesign | None:
        """For large tie-free data, the design of a random subsample whose fit starts Newton (None otherwise).

        The subsample (about ``_WARM_ROWS`` rankings, weights scaled up, at least 0.5 pseudo-comparisons so
        the estimate exists) costs a fraction of one full evaluation and lands within sampling error of the
        optimum, which saves the full-data Newton iterations from the zero start
        (:func:`~survey_weights.models._optim.start_theta`).
        """
        eng = self.engine
        if not isinstance(eng, TieFreeEngine) or eng.n_rows <= 3 * _WARM_ROWS:
            return None
        d = PLDesign(items=self.items, engine=eng.subsample(_WARM_ROWS / eng.n_rows, np.random.default_rng(0)),
                     tie_orders=self.tie_orders, npseudo=max(self.npseudo, 0.5), resp_w=self.respondent_weights,
                     n_rankings=self.n_rankings, arrays=self._arrays)
        d.prior = self.prior
        return d

    def with_npseudo(self, npseudo: float) -> PLDesign:
        d = PLDesign(items=self.items, engine=self.engine, tie_orders=self.tie_orders, npseudo=npseudo,
                     resp_w=self.respondent_weights, n_rankings=self.n_rankings, arrays=self._arrays)
        d.prior = self.prior
        return d

    @property
    def tie_free(self) -> bool:
        return not self.tie_orders

    def _data_fgh(self, theta: np.ndarray, need: int) -> tuple[float, Any, Any]:
        eng = self.engine
        return eng.fgh(theta, need) if isinstance(eng, TieFreeEngine) else eng.fgh(theta, need, pseudo=False)

    def _chosen(self) -> np.ndarray:
        eng = self.engine
        return eng.chosen_stat if isinstance(eng, TieFreeEngine) else eng.lin

    def null_loglik(self) -> float:
        """``loglik(zeros, pseudo=False)`` in closed form (equal worths, all tie parameters 1)."""
        return self.engine.null_loglik()

    def total_weight(self) -> float:
        """Sum over rankings of their weights (the n used for BIC)."""
        return float(self.respondent_weights[self._arrays["resp"]].sum())

    def scores(self, theta: np.ndarray, *, weighted: bool = True) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        N = self.n_respondents
        w = self.respondent_weights if weighted else np.ones(N)
        eng = self.engine
        if isinstance(eng, TieFreeEngine):
            _, resp, G = eng.ranking_scores(theta)
            return self._sum_by_resp(resp, w[resp], G, N)
        return eng.scores(theta, weighted=False) * w[:, None]

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Directed 'beats or ties' edges (winner, loser) whose reachability equals the comparison graph's."""
        a = self._arrays
        ptr, item, rank, top_k = a["ptr"], a["item"], a["rank"], a["top_k"]
        R = len(ptr) - 1
        rid = np.repeat(np.arange(R), np.diff(ptr))
        same_r = rid[1:] == rid[:-1] if len(item) else np.zeros(0, bool)
        src = [item[:-1][same_r]]
        dst = [item[1:][same_r]]
        tie = same_r & (rank[1:] == rank[:-1])
        src.append(item[1:][tie])
        dst.append(item[:-1][tie])
        # top-k: every item of the last tie group beats every unranked item
        n = self.n_items
        for r in np.flatnonzero(top_k & (np.diff(ptr) < n) & (np.diff(ptr) > 0)):
            ent = item[ptr[r]:ptr[r + 1]]
            last = ent[rank[ptr[r]:ptr[r + 1]] == rank[ptr[r + 1] - 1]]
            unr = np.setdiff1d(np.arange(n), ent)
            src.append(np.repeat(last, len(unr)))
            dst.append(np.tile(unr, len(last)))
        if "unranked_ptr" in a:  # declared shown-but-unranked items: the last tie group beats each of them
            u_ptr, u_item = a["unranked_ptr"], a["unranked_item"]
            for r in np.flatnonzero((np.diff(u_ptr) > 0) & (np.diff(ptr) > 0)):
                ent = item[ptr[r]:ptr[r + 1]]
                last = ent[rank[ptr[r]:ptr[r + 1]] == rank[ptr[r + 1] - 1]]
                unr = u_item[u_ptr[r]:u_ptr[r + 1]]
                src.append(np.repeat(last, len(unr)))
                dst.append(np.tile(unr, len(last)))
        return np.concatenate(src), np.concatenate(dst)


# ----------------------------------------------------------------------------------------------------------
class BTDesign(Design):
    """Bradley-Terry design, vectorised over distinct unordered pairs (dense n x n Hessian).

    ``ties``: ``"davidson"`` (tie parameter ``log delta_2``, ``tie_orders == (2,)``), ``"half"`` (a tie counts
    as half a win for each side) or ``None`` (no tied comparisons allowed).
    """

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    @classmethod
    def from_arrays(cls, items: Any, a: np.ndarray, b: np.ndarray, outcome: np.ndarray, w: np.ndarray,
                    resp: np.ndarray, respondent_weights: np.ndarray, *, npseudo: float = 0.5,
                    ties: str | None = "davidson") -> BTDesign:
        items = tuple(range(items)) if isinstance(items, (int, np.integer)) else tuple(items)
        n = len(items)
        a = np.asarray(a)
        b = np.asarray(b)
        out = np.asarray(outcome, dtype=np.int8)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        # outcome seen from lo: +1 lo wins, -1 hi wins, 0 tie
        o = np.where(a == lo, out, -out)
        key = lo.astype(np.int64)
        key *= n
        key += hi
        if dense_key_space(n, len(key)):  # marking instead of sorting
            mark = np.zeros(n * n, dtype=bool)
            mark[key] = True
            ukey = np.flatnonzero(mark)  # sorted distinct keys (nonzero of a bool mask is fast)
            rank = np.empty(n * n, dtype=np.int64)  # only the cells of seen keys are read
            rank[ukey] = np.arange(len(ukey))
            pid = rank[key]
        else:
            ukey, pid = np.unique(key, return_inverse=True)
        has_ties = bool(np.any(out == 0))
        tie_orders = (2,) if (ties == "davidson" and has_ties) else ()
        d = cls(items=items, n_items=n, tie_orders=tie_orders, npseudo=float(npseudo), ties=ties,
                i=ukey // n, j=ukey % n, pid=pid.ravel(), o=o, row_w=np.asarray(w, dtype=float),
                resp=np.asarray(resp, dtype=np.int64), n_respondents=len(respondent_weights),
                n_rankings=len(a))
        d._set_weights(np.asarray(respondent_weights, dtype=float))
        return d

    @classmethod
    def from_paired(cls, paired: Any, *, npseudo: float = 0.5, ties: str | None = "davidson") -> BTDesign:
        """Build from a :class:`~survey_weights.data.PairedComparisons` object."""
        p = paired
        return cls.from_arrays(p.items, p._a, p._b, p._outcome, p._w, p._resp, _fit_weights(p),
                               npseudo=npseudo, ties=ties)

    def _set_weights(self, rw: np.ndarray) -> None:
        self.respondent_weights = rw
        cw = self.row_w * rw[self.resp]
        U = len(self.i)
        self.cw = cw
        key = self.__dict__.get("_pkey")
        if key is None:  # outcome (-1, 0, +1 -> 0, 1, 2) x pair cell of each row, cached for reweighting
            key = self.o.astype(np.int64)
            key += 1
            key *= U
            key += self.pid
            self._pkey = key
        nji, t, nij = np.bincount(key, weights=cw, minlength=3 * U).reshape(3, U)
        if self.ties != "davidson" and t.any():  # half a win each (ties=None has no ties by validation)
            nij, nji, t = nij + t / 2, nji + t / 2, np.zeros(U)
        self.nij, self.nji, self.t = nij, nji, t
        self.ntot = nij + nji + t
        n = self.n_items
        # total weight of each item in the j (larger-index) slot of its pairs: the logistic gradient's constant
        self.tot_j = np.bincount(self.j, weights=self.ntot, minlength=n)
        ch = np.bincount(self.i, weights=nij + t / 2, minlength=n) + np.bincount(self.j, weights=nji + t / 2,
                                                                                 minlength=n)
        self._chosen_stat = np.concatenate([ch, [t.sum()] if self.tie_orders else []])

    def reweight(self, respondent_weights: Any) -> BTDesign:
        rw = np.asarray(respondent_weights, dtype=float)
        if rw.shape != (self.n_respondents,):
            raise ValueError(f"`respondent_weights` must have length {self.n_respondents}. Got shape {rw.shape}.")
        d = BTDesign(**self.__dict__)
        d._set_weights(rw)
        return d

    def with_npseudo(self, npseudo: float) -> BTDesign:
        d = BTDesign(**self.__dict__)
        d.npseudo = float(npseudo)
        return d

    @property
    def tie_free(self) -> bool:
        return not self.tie_orders

    def total_weight(self) -> float:
        return float(self.cw.sum())

    def _chosen(self) -> np.ndarray:
        return self._chosen_stat

    def null_loglik(self) -> float:
        """``loglik(zeros, pseudo=False)`` in closed form: 2 (or 3 with a tie parameter) equally likely outcomes."""
        return -float((self.nij + self.nji + self.t).sum()) * float(np.log(3.0 if self.tie_orders else 2.0))

    def _probs(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = self.n_items
        bi, bj = theta[:n][self.i], theta[:n][self.j]
        if self.tie_orders:
            et = theta[n] + 0.5 * (bi + bj)
            lse = np.logaddexp(np.logaddexp(bi, bj), et)
            return np.exp(bi - lse), np.exp(bj - lse), np.exp(et - lse), lse
        lse = np.logaddexp(bi, bj)
        return np.exp(bi - lse), np.exp(bj - lse), np.zeros_like(bi), lse

    def start(self) -> np.ndarray:
        """Starting theta: log-odds of each item's win rate, log tie parameter from the overall tie rate.

        Much closer to the optimum than zeros on large designs, which saves Newton iterations (each one
        factorises the dense n x n Hessian).
        """
        n = self.n_items
        th = np.zeros(self.n_params)
        N = self.ntot
        if n < 3 or not len(N) or float(N.sum()) <= 0:
            return th
        tot = np.bincount(self.i, weights=N, minlength=n) + np.bincount(self.j, weights=N, minlength=n)
        won = self._chosen_stat[:n]
        b = np.log(won + 0.5) - np.log(tot - won + 0.5)
        th[:n] = b - b.mean()
        if self.tie_orders:
            rate = float(self.t.sum()) / float(N.sum())
            th[n] = float(np.log(2.0 * max(rate, 1e-3) / max(1.0 - rate, 1e-3)))  # equal worths: t = d/(2+d)
        return th

    def _data_fgh(self, theta: np.ndarray, need: int) -> tuple[float, Any, Any]:
        n, p = self.n_items, self.n_params
        if not self.tie_orders:
            return self._fgh_noties(theta, need)
        bi, bj = theta[:n][self.i], theta[:n][self.j]
        pi, pj, pt, lse = self._probs(theta)
        N = self.ntot
        f = float(self.nij @ bi + self.nji @ bj - N @ lse)
        f += float(self.t @ (theta[n] + 0.5 * (bi + bj)))
        if need == 0:
            return f, None, None
        ai, aj = pi + pt / 2, pj + pt / 2
        g = self._chosen_stat - np.concatenate(
            [np.bincount(self.i, weights=N * ai, minlength=n) + np.bincount(self.j, weights=N * aj, minlength=n),
             [N @ pt]])
        if need < 2:
            return f, g, None
        cii = N * (pi + pt / 4 - ai * ai)
        cjj = N * (pj + pt / 4 - aj * aj)
        cij = N * (pt / 4 - ai * aj)
        H = np.zeros((p, p))
        # distinct unordered pairs: each off-diagonal cell is set once
        Hv = H.reshape(-1)
        ij, ji = self._flat_offdiag()
        Hv[ij] = -cij
        Hv[ji] = -cij
        H[np.arange(n), np.arange(n)] = -(np.bincount(self.i, weights=cii, minlength=n)
                                          + np.bincount(self.j, weights=cjj, minlength=n))
        cid = np.bincount(self.i, weights=N * (pt / 2 - ai * pt), minlength=n)
        cid += np.bincount(self.j, weights=N * (pt / 2 - aj * pt), minlength=n)
        H[:n, n] = H[n, :n] = -cid
        H[n, n] = -float(N @ (pt * (1 - pt)))
        return f, g, H

    def _fgh_noties(self, theta: np.ndarray, need: int) -> tuple[float, Any, Any]:
        """Logistic special case (no tie parameter): log P(i beats j) = -log(1 + exp(-(b_i - b_j))).

        One exp and one log per distinct pair; the Hessian is a weighted graph Laplacian, so its
        diagonal is minus the row sums of the off-diagonal part (no extra pass over the pairs).
        """
        n, p = self.n_items, self.n_params
        beta = theta[:n]
        d = beta[self.i]
        d -= beta[self.j]
        e = np.abs(d)
        np.negative(e, out=e)
        np.exp(e, out=e)  # e = exp(-|d|)
        N = self.ntot
        q = 1.0 + e
        np.reciprocal(q, out=q)  # q = 1 / (1 + e) = P(the better of the two wins)
        # log p_i = min(d, 0) + log q, log p_j = log p_i - d; N = nij + nji without ties.  log(q) equals
        # -log1p(e) to within an absolute 1e-16 (q is in [1/2, 1]) and costs half as much.
        lq = np.log(q)
        lq += np.minimum(d, 0.0)
        f = float(N @ lq - self.nji @ d)
        if need == 0:
            return f, None, None
        Npi = np.where(d >= 0, q, e * q)
        Npi *= N  # N * P(i beats j)
        g = self._chosen_stat - self.tot_j - (np.bincount(self.i, weights=Npi, minlength=n)
                                              - np.bincount(self.j, weights=Npi, minlength=n))
        if need < 2:
            return f, g, None
        c = e * q  # p_i p_j = e / (1 + e)^2 for either sign of d
        c *= q
        c *= N
        H = np.zeros((p, p))
        Hv = H.reshape(-1)
        ij, ji = self._flat_offdiag()
        Hv[ij] = c
        Hv[ji] = c
        Hv[:: p + 1] = -H.sum(axis=1)
        return f, g, H

    def _flat_offdiag(self) -> tuple[np.ndarray, np.ndarray]:
        """Flat positions of (i, j) and (j, i) in the p x p Hessian (cached; shared by reweighted copies)."""
        fl = self.__dict__.get("_flat_ij")
        if fl is None:
            p = self.n_params
            fl = self._flat_ij = (self.i * p + self.j, self.j * p + self.i)
        return fl

    def scores(self, theta: np.ndarray, *, weighted: bool = True, sparse: bool = False) -> Any:
        """Per-respondent scores (N, p); ``sparse=True`` returns a CSR matrix (for many items/respondents)."""
        theta = np.asarray(theta, dtype=float)
        n, p = self.n_items, self.n_params
        pi, pj, pt, _ = self._probs(theta)
        P = len(self.pid)
        pi, pj, pt = pi[self.pid], pj[self.pid], pt[self.pid]
        lo, hi = self.i[self.pid], self.j[self.pid]
        o = self.o
        if self.tie_orders:
            xi = (o == 1) + 0.5 * (o == 0)
            xj = (o == -1) + 0.5 * (o == 0)
            xt = (o == 0).astype(float)
        else:
            xi = (o == 1) + 0.5 * (o == 0)
            xj = (o == -1) + 0.5 * (o == 0)
            xt = np.zeros(P)
        vi = xi - (pi + pt / 2)
        vj = xj - (pj + pt / 2)
        rows = np.arange(P)
        cols = [lo, hi]
        vals = [vi, vj]
        rr = [rows, rows]
        if self.tie_orders:
            rr.append(rows)
            cols.append(np.full(P, n))
            vals.append(xt - pt)
        G = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rr), np.concatenate(cols))), shape=(P, p))
        rw = self.respondent_weights if weighted else np.ones(self.n_respondents)
        M = sp.csr_matrix((self.row_w * rw[self.resp], (self.resp, rows)), shape=(self.n_respondents, P))
        S = (M @ G).tocsr()
        return S if sparse else S.toarray()

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        pos = (self.nij + self.t) > 0
        neg = (self.nji + self.t) > 0
        return np.concatenate([self.i[pos], self.j[neg]]), np.concatenate([self.j[pos], self.i[neg]])

    def edge_mask(self) -> np.ndarray | None:
        """The directed edges of :meth:`edges` as a flat boolean ``n x n`` adjacency (row = winner), or None
        when that would be large next to the data (then use :meth:`edges`).  No boolean-mask gathers: the
        pair cells are distinct, so each cell is assigned once."""
        n = self.n_items
        if not dense_key_space(n, 2 * len(self.i)):  # up to two directed edges per pair
            return None
        mark = np.zeros(n * n, dtype=bool)
        fwd = self.i * n
        fwd += self.j
        mark[fwd] = (self.nij + self.t) > 0
        back = self.j * n
        back += self.i
        mark[back] = (self.nji + self.t) > 0
        return mark
