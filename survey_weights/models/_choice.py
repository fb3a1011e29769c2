"""The engine's general kernel: a conditional logit over the alternatives of aggregated choice sets.

Every Plackett-Luce / Bradley-Terry model of the package with ties, respondent covariates or batched refits is
computed here (tie-free rankings and plain pairs also have specialised kernels in :mod:`._tie_free` and
:class:`._likelihood.BTDesign`, tested equal to this one).

Model
-----
A stage with choice set ``A`` and chosen tie group ``C`` (:mod:`._stages`) has probability
``f(C) / sum_{S subset A, |S| in orders} f(S)`` with ``log f(S) = log delta_|S| + mean_{j in S} x_i' b_j``
(Davidson-Luce ties; ``orders`` = 1 and the tie orders seen), for respondent ``i`` with covariate row ``x_i``
(``q`` columns, the first the intercept; without covariates ``x_i = (1,)`` and ``b_j`` is the log-worth).
``log f(S)`` is linear in ``theta = (vec(B) item-major: b_00..b_0(q-1), b_10, ..., then log delta_k)``:
the alternative's row ``z_S = (m_S kron x_i, e_|S|)`` with ``m_S`` the item shares ``1/|S|``.

Aggregation
-----------
*Sets* are the distinct (choice set, covariate pattern) pairs, each with its alternatives (rows of ``Z``);
*units* are the distinct (set, chosen alternative) pairs.  A respondent's data are a row of the sparse
incidence ``inc`` (respondents x units, stage base weights), so for respondent weights ``w`` the unit weights
are ``u = inc' w``, and the log-likelihood is ``lin . theta - sum_s W_s lse_s(theta)`` with
``lin = u' Z[chosen]`` and ``W_s`` the summed unit weights of set ``s``: these two vectors are sufficient
statistics, which trees and mixtures aggregate per respondent (:meth:`ChoiceDesign.respondent_stats`).
The pseudo-comparisons are the one closed form of :func:`._design.pseudo_terms`, on the intercepts.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from math import comb
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._best_worst import best_worst_tasks, stage_blocks
from ._design import Design, pseudo_terms
from ._stages import Stages, choice_stages, member_masks

__all__ = ["ChoiceDesign", "StatsView"]

_DENSE_ELEMS = 3_000_000  # alternatives x parameters kept dense below this
_MAX_TERMS = 5_000_000


def _combos(m: int, k: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    return _combos_cached(m, k) if comb(m, k) <= 20_000 else _combos_build(m, k)


@lru_cache(maxsize=256)
def _combos_cached(m: int, k: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    return _combos_build(m, k)


def _combos_build(m: int, k: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """k-combinations of positions 0..m-1, and (when m <= 62) their position masks sorted, with the order."""
    c = np.array(list(combinations(range(m), k)), dtype=np.int64).reshape(-1, k)
    c.flags.writeable = False
    if m > 62:
        return c, None, None
    tm = np.left_shift(np.uint64(1), c.astype(np.uint64)).sum(axis=1, dtype=np.uint64)
    order = np.argsort(tm, kind="stable")
    tms = tm[order]
    tms.flags.writeable = False
    order.flags.writeable = False
    return c, tms, order


def _patterns(covariates: np.ndarray | None, n_respondents: int) -> tuple[int, np.ndarray, np.ndarray]:
    """``(q, distinct covariate rows, pattern of each respondent)`` of a respondent model matrix (None: q = 1)."""
    if covariates is None:
        return 1, np.ones((1, 1)), np.zeros(n_respondents, dtype=np.int64)
    X = np.asarray(covariates, dtype=float)
    if X.ndim != 2 or X.shape[0] != n_respondents:
        raise ValueError(f"`covariates` must be (n_respondents={n_respondents}, q). Got {X.shape}.")
    return (X.shape[1], *_unique_rows(X))


def _unique_rows(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if M.shape[1] == 1:
        u, inv = np.unique(M[:, 0], return_inverse=True)
        return u[:, None], inv.ravel()
    u, inv = np.unique(M, axis=0, return_inverse=True)
    return u, inv.ravel()


class ChoiceDesign(Design):
    """Aggregated conditional-logit design of one data set (see the module docstring).

    Build with :meth:`from_data`.  Besides the :class:`~._design.Design` interface (``fgh``, ``free``,
    ``reweight``, ``scores``, ...) it offers sufficient statistics (:meth:`stats`, :meth:`respondent_stats`,
    :meth:`with_stats`), per-respondent log-likelihoods (:meth:`respondent_loglik`) and batched evaluation
    over many weight vectors (:meth:`fgh_batch`).
    """

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    # ------------------------------------------------------------------------------------------ construction
    @classmethod
    def from_data(cls, data: Any, *, npseudo: float = 0.5, ties: str | None = "davidson",
                  covariates: np.ndarray | None = None, respondent_weights: Any = None,
                  comparison_covariates: bool = False, respondent_item_covariates: np.ndarray | None = None,
                  item_basis: np.ndarray | None = None, extra_names: tuple = ()) -> ChoiceDesign:
        """Design of :class:`~survey_weights.data.Rankings` or :class:`~survey_weights.data.PairedComparisons`.

        Parameters
        ----------
        covariates : ndarray (n_respondents, q), optional
            Model matrix of respondent covariates whose first column is the intercept (all ones); log-worth
            of item j for respondent i is ``x_i' b_j``.  None: no covariates (q = 1).
        respondent_weights : array, optional
            Default: the data's frequency weights.
        comparison_covariates : bool
            Paired comparisons: one coefficient per comparison-level covariate of the data (``item_a``'s side
            minus ``item_b``'s; an order or home effect).
        respondent_item_covariates : ndarray (n_respondents, n_items, k), optional
            Covariates of a respondent x item (e.g. whether the respondent owns the item), one common
            coefficient each: the alternative ``S`` gets ``mean_{j in S} u_ij``.
        item_basis : ndarray (n_items, r), optional
            Structured worths: log-worth of item j is ``x_j' gamma`` (item-level predictors), no free worth per
            item.
        """
        st = choice_stages(data, ties=ties, comparison_covariates=comparison_covariates)
        rw = getattr(data, "fit_weights", data.respondent_weights) if respondent_weights is None else respondent_weights
        return cls.from_stages(st, n_respondents=data.n_respondents, respondent_weights=rw, npseudo=npseudo,
                               covariates=covariates, items=tuple(data.items), n_rankings=getattr(
                                   data, "n_rankings", len(st.resp)),
                               respondent_item_covariates=respondent_item_covariates, item_basis=item_basis,
                               extra_names=extra_names)

    @classmethod
    def from_stages(cls, st: Stages, *, n_respondents: int, respondent_weights: Any, npseudo: float = 0.5,
                    covariates: np.ndarray | None = None, items: tuple | None = None,
                    n_rankings: int | None = None, respondent_item_covariates: np.ndarray | None = None,
                    item_basis: np.ndarray | None = None, extra_names: tuple = ()) -> ChoiceDesign:
        n = st.n_items
        nw = st.n_words
        orders = (1, *st.tie_orders)
        pat_rows = _patterns(covariates, n_respondents)[1]
        # distinct choice sets (item masks) and their alternatives
        uA, a_of_stage = _unique_rows(st.A) if len(st.A) else (np.zeros((0, nw), np.uint64), np.zeros(0, int))
        Abool = np.unpackbits(uA.astype("<u8").view(np.uint8), axis=1, bitorder="little")[:, :n].astype(bool)
        asz = Abool.sum(axis=1)
        n_per = {int(s): sum(comb(int(s), k) for k in orders if k <= s) for s in np.unique(asz)}
        n_alt_A = np.array([n_per[int(s)] for s in asz], dtype=np.int64)
        if int(n_alt_A.sum()) * len(pat_rows) > _MAX_TERMS:
            raise ValueError("The tie orders and choice-set sizes give more than 5 million alternatives; the "
                             "Davidson-Luce tie model is too large for this data. Fix: reduce long tie groups.")
        altA_ptr = np.concatenate([[0], np.cumsum(n_alt_A)]).astype(np.int64)
        nAltA = int(altA_ptr[-1])
        mem_rows, mem_cols, mem_k = [], [], np.zeros(nAltA, dtype=np.int64)
        # chosen alternative of every stage (a row of its choice set's alternatives)
        st_alt = np.full(len(st.A), -1, dtype=np.int64)
        small = int(asz.max(initial=0)) <= 62
        if small and len(st.A):
            Cbool = np.unpackbits(st.C.astype("<u8").view(np.uint8), axis=1, bitorder="little")[:, :n].astype(bool)
            pos = np.cumsum(Abool, axis=1) - 1  # position of each item within its (sorted) choice set
            st_pm = np.where(Cbool, np.left_shift(np.uint64(1), np.maximum(pos[a_of_stage], 0).astype(np.uint64)),
                             np.uint64(0)).sum(axis=1, dtype=np.uint64)
        for s in np.unique(asz):
            a_ids = np.flatnonzero(asz == s)
            items_s = np.nonzero(Abool[a_ids])[1].reshape(len(a_ids), s)
            base = altA_ptr[a_ids][:, None]
            off = 0
            st_s = np.flatnonzero(np.isin(a_of_stage, a_ids))
            for k in orders:
                if k > s:
                    continue
                cmb, tm_sorted, tm_order = _combos(int(s), int(k))
                c = cmb.shape[0]
                arows = base + off + np.arange(c)[None, :]  # (A_s, c)
                mem_k[arows.ravel()] = k
                mem_rows.append(np.repeat(arows.ravel(), k))
                mem_cols.append(items_s[:, cmb].reshape(-1))
                sel = st_s[st.c_size[st_s] == k]
                if len(sel):
                    loc = np.searchsorted(a_ids, a_of_stage[sel])  # position of the stage's set among a_ids
                    if small:
                        pms = st_pm[sel]
                        j = np.minimum(np.searchsorted(tm_sorted, pms), c - 1)
                        ok = tm_sorted[j] == pms
                        st_alt[sel[ok]] = base[loc[ok], 0] + off + tm_order[j[ok]]
                    else:
                        am = member_masks(items_s[loc][:, cmb], nw)  # (sel, c, nw)
                        r_, c_ = np.nonzero(np.all(am == st.C[sel][:, None, :], axis=2))
                        st_alt[sel[r_]] = base[loc[r_], 0] + off + c_
                off += c
        if len(st.A) and np.any(st_alt < 0):
            raise AssertionError("internal: a chosen tie group is not among the alternatives")
        mem_r = np.concatenate(mem_rows) if mem_rows else np.zeros(0, np.int64)
        mem_c = np.concatenate(mem_cols) if mem_cols else np.zeros(0, np.int64)
        M = sp.csr_matrix((1.0 / mem_k[mem_r], (mem_r, mem_c)), shape=(nAltA, n))  # item shares m_S
        return cls._assemble(st.resp, st.base, M, mem_k, altA_ptr, a_of_stage, st_alt, st.tie_orders,
                             stage_covariates=(st.cov_item, st.cov_val), n_respondents=n_respondents,
                             respondent_weights=respondent_weights, npseudo=npseudo, covariates=covariates,
                             items=items, n_rankings=n_rankings,
                             respondent_item_covariates=respondent_item_covariates, item_basis=item_basis,
                             extra_names=extra_names)

    @classmethod
    def from_best_worst(cls, data: Any, *, model: str = "maxdiff", npseudo: float = 0.0,
                        covariates: np.ndarray | None = None, respondent_weights: Any = None,
                        respondent_item_covariates: np.ndarray | None = None, extra_names: tuple = ()
                        ) -> ChoiceDesign:
        """Design of best-worst tasks (:meth:`Rankings.from_best_worst`): the stages of the best-worst `model`
        (:func:`._best_worst.stage_blocks`; maxdiff: one choice among the ordered pairs, rows ``e_b - e_w``) as
        one conditional logit, so respondent covariates (log-worth ``x_i' b_j``), respondent x item covariates
        (the pair gets ``u_ib - u_iw``), sufficient statistics and batched refits work as for rankings.
        Without covariates its likelihood is :class:`._best_worst.BestWorstDesign`'s."""
        bw = best_worst_tasks(data, model)
        n = len(data.items)
        rows, cols, vals, resp, a_of, st_alt, ptr = [], [], [], [], [], [], [0]
        n_sets = 0
        for S, X, chosen, r in stage_blocks(bw, model):
            uS, inv = _unique_rows(S)
            A, m = X.shape
            nz_a, nz_c = np.nonzero(X)
            alt0 = ptr[-1] + np.arange(len(uS))[:, None] * A  # first alternative row of each distinct set
            rows.append(np.repeat(alt0, len(nz_a), axis=1).ravel() + np.tile(nz_a, len(uS)))
            cols.append(uS[:, nz_c].ravel())
            vals.append(np.tile(X[nz_a, nz_c], len(uS)))
            a_of.append(n_sets + inv)
            st_alt.append(alt0[inv, 0] + chosen)
            resp.append(r)
            ptr.extend(ptr[-1] + A * np.arange(1, len(uS) + 1))
            n_sets += len(uS)
        nalt = ptr[-1]
        M = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nalt, n))
        resp_ = np.concatenate(resp)
        rw = getattr(data, "fit_weights", data.respondent_weights) if respondent_weights is None else respondent_weights
        return cls._assemble(resp_, np.ones(len(resp_)), M, np.ones(nalt, dtype=np.int64),
                             np.asarray(ptr, dtype=np.int64), np.concatenate(a_of), np.concatenate(st_alt), (),
                             n_respondents=data.n_respondents, respondent_weights=rw, npseudo=npseudo,
                             covariates=covariates, items=tuple(data.items), n_rankings=bw.n_tasks,
                             respondent_item_covariates=respondent_item_covariates, item_basis=None,
                             extra_names=extra_names)

    @classmethod
    def _assemble(cls, resp: np.ndarray, base: np.ndarray, M: sp.csr_matrix, alt_k: np.ndarray,
                  altA_ptr: np.ndarray, a_of_stage: np.ndarray, st_alt: np.ndarray, tie_orders: tuple[int, ...], *,
                  stage_covariates: tuple = (None, None), n_respondents: int, respondent_weights: Any,
                  npseudo: float, covariates: np.ndarray | None, items: tuple | None, n_rankings: int | None,
                  respondent_item_covariates: np.ndarray | None, item_basis: np.ndarray | None,
                  extra_names: tuple) -> ChoiceDesign:
        """The design from the distinct choice sets' alternatives: row ``a`` of ``M`` (alternatives x items) is
        alternative ``a``'s item coefficients (``m_S``, or ``e_b - e_w`` of a best-worst pair), ``alt_k`` its tie
        order (1: none), the alternatives of set ``A`` the rows ``altA_ptr[A]:altA_ptr[A + 1]``; stage ``s``
        chooses row ``st_alt[s]`` of set ``a_of_stage[s]`` for respondent ``resp[s]`` with base weight ``base[s]``.
        Adds the respondent covariates (``m kron x_i``), the stage-level item covariates (``m . u``;
        ``stage_covariates`` = (item, values) per stage as :class:`Stages`) and the tie indicators, aggregates
        sets and units."""
        n = M.shape[1]
        T = len(tie_orders)
        cov_item, cov_val = stage_covariates
        q, pat_rows, pat = _patterns(covariates, n_respondents)
        n_alt_A = np.diff(altA_ptr)
        nAltA = int(altA_ptr[-1])
        # stage-level covariates of items (comparison-level, or respondent x item): a pattern id per stage
        upat = np.zeros(len(resp), dtype=np.int64)
        u_item = u_val = U_ri = None
        k_extra = 0
        if cov_val is not None:
            k_extra = cov_val.shape[1]
            uu, upat = _unique_rows(np.column_stack([cov_item.astype(float), cov_val]))
            u_item, u_val = uu[:, 0].astype(np.int64), uu[:, 1:]
        elif respondent_item_covariates is not None:
            V = np.asarray(respondent_item_covariates, dtype=float)
            if V.ndim != 3 or V.shape[:2] != (n_respondents, n):
                raise ValueError(f"`respondent_item_covariates` must be (n_respondents={n_respondents}, "
                                 f"n_items={n}, k). Got {V.shape}.")
            k_extra = V.shape[2]
            uu, rpat = _unique_rows(V.reshape(n_respondents, n * k_extra))
            upat, U_ri = rpat[resp], uu.reshape(-1, n, k_extra)
        n_ucols = n * q if item_basis is None else np.asarray(item_basis).shape[1]
        p = n_ucols + k_extra + T
        # sets = distinct (choice set, covariate pattern); units = distinct (set, chosen alternative)
        st_pat = pat[resp]
        P = len(pat_rows)
        PU = int(upat.max(initial=0)) + 1
        set_key = (a_of_stage.astype(np.int64) * P + st_pat) * PU + upat
        uset, set_of_stage = np.unique(set_key, return_inverse=True)
        set_of_stage = set_of_stage.ravel()
        set_u = uset % PU
        set_A, set_pat = (uset // PU) // P, (uset // PU) % P
        nS = len(uset)
        lens = n_alt_A[set_A]
        alt_ptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        n_alt = int(alt_ptr[-1])
        alt_set = np.repeat(np.arange(nS), lens)
        alt_A_row = np.repeat(altA_ptr[set_A] - alt_ptr[:-1], lens) + np.arange(n_alt)  # its row among A's
        unit_key = set_of_stage.astype(np.int64) * max(1, nAltA) + (st_alt - altA_ptr[a_of_stage])
        uunit, unit_of_stage = np.unique(unit_key, return_inverse=True)
        unit_of_stage = unit_of_stage.ravel()
        unit_set = (uunit // max(1, nAltA)).astype(np.int64)
        unit_row = alt_ptr[unit_set] + (uunit % max(1, nAltA))
        inc = sp.csr_matrix((base, (resp, unit_of_stage)), shape=(n_respondents, len(uunit)))
        inc.sum_duplicates()
        # rows of Z: item part m_S kron x_pattern, tie indicator
        Malt = M[alt_A_row]
        dense = n_alt * p <= _DENSE_ELEMS
        tie_col = np.zeros(n_alt, dtype=np.int64)
        kk = alt_k[alt_A_row]
        for t, k in enumerate(tie_orders):
            tie_col[kk == k] = n_ucols + k_extra + t + 1  # 0 = none
        if item_basis is not None:
            Zi = sp.csr_matrix(Malt @ np.asarray(item_basis, dtype=float))
        elif q == 1:
            Zi = Malt
        else:
            xr = pat_rows[set_pat[alt_set]]  # (n_alt, q)
            Mc = Malt.tocoo()
            rows = np.repeat(Mc.row, q)
            cols = (Mc.col[:, None] * q + np.arange(q)[None, :]).ravel()
            vals = (Mc.data[:, None] * xr[Mc.row]).ravel()
            Zi = sp.csr_matrix((vals, (rows, cols)), shape=(n_alt, n * q))
        has_t = tie_col > 0
        Zt = sp.csr_matrix((np.ones(int(has_t.sum())), (np.flatnonzero(has_t), tie_col[has_t] - 1)),
                           shape=(n_alt, p))
        Ze = sp.csr_matrix((n_alt, k_extra))
        if k_extra:  # alternative S: the mean over its items of their stage-level covariate values
            Mc = Malt.tocoo()
            su = set_u[alt_set[Mc.row]]
            if u_item is not None:
                vals = np.where((u_item[su] == Mc.col)[:, None], u_val[su], 0.0)
            else:
                vals = U_ri[su, Mc.col, :]
            E = np.zeros((n_alt, k_extra))
            np.add.at(E, Mc.row, Mc.data[:, None] * vals)
            Ze = sp.csr_matrix(E)
        Z: Any = sp.hstack([Zi, Ze, sp.csr_matrix((n_alt, T))]).tocsr() + Zt
        if dense:
            Z = np.asfortranarray(Z.toarray())
        d = cls(items=tuple(range(n)) if items is None else tuple(items), n_items=n, q=q, tie_orders=tuple(tie_orders),
                npseudo=float(npseudo), _n_params=p, Z=Z, dense=dense, alt_ptr=alt_ptr, alt_set=alt_set,
                unit_set=unit_set, unit_row=unit_row, inc=inc, n_sets=nS, n_respondents=int(n_respondents),
                n_rankings=int(len(resp) if n_rankings is None else n_rankings),
                _pseudo_idx=np.arange(n) * q, _tie_free=not tie_orders, n_extra=k_extra,
                n_item_cols=n_ucols, item_basis=None if item_basis is None else np.asarray(item_basis, float),
                extra_names=tuple(extra_names))
        d.Zc = Z[unit_row] if dense else Z[unit_row].toarray()
        d._set_weights(np.asarray(respondent_weights, dtype=float))
        return d

    # ------------------------------------------------------------------------------------------------ weights
    def _set_weights(self, rw: np.ndarray) -> None:
        if rw.shape != (self.n_respondents,):
            raise ValueError(f"`respondent_weights` must have length {self.n_respondents}. Got shape {rw.shape}.")
        self.respondent_weights = rw
        self.uw = np.asarray(self.inc.T @ rw).ravel()
        self.lin, self.Wset = self.stats_of_units(self.uw)

    def reweight(self, respondent_weights: Any) -> ChoiceDesign:
        """Same data, other respondent frequency weights (O(units); for bootstrap / EM / subgroup fits)."""
        d = ChoiceDesign(**self.__dict__)
        d._set_weights(np.asarray(respondent_weights, dtype=float))
        return d

    def with_npseudo(self, npseudo: float) -> ChoiceDesign:
        d = ChoiceDesign(**self.__dict__)
        d.npseudo = float(npseudo)
        return d

    def stats_of_units(self, uw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(lin, W)``: ``uw' Z[chosen]`` and the summed unit weights per set (rows when `uw` is 2-D)."""
        lin = uw @ self.Zc
        if uw.ndim == 1:
            return lin, np.bincount(self.unit_set, weights=uw, minlength=self.n_sets)
        agg = sp.csr_matrix((np.ones(len(self.unit_set)), (np.arange(len(self.unit_set)), self.unit_set)),
                            shape=(len(self.unit_set), self.n_sets))
        return lin, np.asarray((agg.T @ uw.T).T)

    def stats(self, respondent_weights: Any) -> tuple[np.ndarray, np.ndarray]:
        """Sufficient statistics ``(lin, W)`` of the data part for respondent weights (1-D or rows)."""
        w = np.asarray(respondent_weights, dtype=float)
        uw = np.asarray(self.inc.T @ w.T).T if w.ndim == 2 else np.asarray(self.inc.T @ w).ravel()
        return self.stats_of_units(uw)

    def respondent_stats(self) -> tuple[np.ndarray, sp.csr_matrix]:
        """Per-respondent statistics (unweighted): ``num`` (N x p) and set counts (N x n_sets, sparse), so that
        ``stats(w) == (w @ num, counts.T @ w)`` for any respondent weights ``w``."""
        agg = sp.csr_matrix((np.ones(len(self.unit_set)), (np.arange(len(self.unit_set)), self.unit_set)),
                            shape=(len(self.unit_set), self.n_sets))
        return np.asarray(self.inc @ self.Zc), (self.inc @ agg).tocsr()

    def with_stats(self, lin: np.ndarray, W: np.ndarray) -> StatsView:
        """A design view whose data part is given by sufficient statistics (pseudo terms still added)."""
        return StatsView(self, lin, W)

    # ------------------------------------------------------------------------------------------------ kernel
    def _eta(self, theta: np.ndarray) -> np.ndarray:
        return np.asarray(self.Z @ theta).ravel()

    def _lse_probs(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        st = self.alt_ptr[:-1]
        if not len(eta):
            return np.zeros(0), np.zeros(0)
        mx = np.maximum.reduceat(eta, st)
        e = np.exp(eta - mx[self.alt_set])
        den = np.add.reduceat(e, st)
        return mx + np.log(den), e / den[self.alt_set]

    def _zbar(self, pr: np.ndarray) -> np.ndarray:
        if self.dense:
            return np.add.reduceat(self.Z.T * pr, self.alt_ptr[:-1], axis=1).T
        M = sp.csr_matrix((pr, np.arange(len(pr)), self.alt_ptr), shape=(self.n_sets, len(pr)))
        return np.asarray((M @ self.Z).todense())

    def fgh_stats(self, theta: np.ndarray, lin: np.ndarray, W: np.ndarray, need: int = 2
                  ) -> tuple[float, Any, Any]:
        """Data log-likelihood, gradient and Hessian from sufficient statistics ``(lin, W)``."""
        p = self.n_params
        if self.n_sets == 0:
            return 0.0, (np.zeros(p) if need else None), (np.zeros((p, p)) if need >= 2 else None)
        eta = self._eta(theta)
        lse, pr = self._lse_probs(eta)
        f = float(lin @ theta - W @ lse)
        if need == 0:
            return f, None, None
        wp = W[self.alt_set] * pr
        g = lin - np.asarray(self.Z.T @ wp).ravel()
        if need < 2:
            return f, g, None
        zb = self._zbar(pr)
        if self.dense:
            ZT = self.Z.T
            A = (ZT * wp) @ ZT.T
        else:
            A = np.asarray((self.Z.T @ self.Z.multiply(wp[:, None])).todense())
        H = (zb * W[:, None]).T @ zb
        H -= A
        return f, g, H

    def _data_fgh(self, theta: np.ndarray, need: int) -> tuple[float, Any, Any]:
        return self.fgh_stats(theta, self.lin, self.Wset, need)

    # --------------------------------------------------------------------------------------- per respondent
    def respondent_loglik(self, theta: np.ndarray) -> np.ndarray:
        """Unweighted data log-likelihood contribution of every respondent (N,)."""
        eta = self._eta(np.asarray(theta, dtype=float))
        lse, _ = self._lse_probs(eta)
        return np.asarray(self.inc @ (eta[self.unit_row] - lse[self.unit_set])).ravel()

    def unit_scores(self, theta: np.ndarray) -> np.ndarray:
        """(units, p) unweighted score of each unit: ``z_chosen - E[z]`` over its set."""
        _, pr = self._lse_probs(self._eta(np.asarray(theta, dtype=float)))
        return self.Zc - self._zbar(pr)[self.unit_set]

    def scores(self, theta: np.ndarray, *, weighted: bool = True) -> np.ndarray:
        """Per-respondent score contributions (N, p); weighted by the respondent weights when `weighted`."""
        S = np.asarray(self.inc @ self.unit_scores(theta))
        return S * self.respondent_weights[:, None] if weighted else S

    # ---------------------------------------------------------------------------------------------- batched
    def fgh_batch(self, theta: np.ndarray, lin: np.ndarray, W: np.ndarray, *, deriv: bool = True,
                  pseudo: bool = True) -> tuple[np.ndarray, Any, Any]:
        """Objective, gradients and Hessians of B problems at once: ``theta`` and ``lin`` (B, p), ``W`` (B, S).

        Dense designs only (the bootstrap's aggregated designs are small). Returns (B,), (B, p), (B, p, p).
        """
        if not self.dense:
            raise ValueError("fgh_batch needs a dense design (few alternatives x parameters).")
        Z = self.Z
        eta = theta @ Z.T
        st = self.alt_ptr[:-1]
        mx = np.maximum.reduceat(eta, st, axis=1)
        e = np.exp(eta - mx[:, self.alt_set])
        den = np.add.reduceat(e, st, axis=1)
        f = np.einsum("bp,bp->b", lin, theta) - np.einsum("bs,bs->b", W, mx + np.log(den))
        g = H = None
        if deriv:
            P = e / den[:, self.alt_set]
            wp = W[:, self.alt_set] * P
            p = theta.shape[1]
            g = lin - wp @ Z
            zbar = np.add.reduceat(P[:, :, None] * Z[None, :, :], st, axis=1)
            ZZ = self.__dict__.get("_ZZ")
            if ZZ is None:
                ZZ = self._ZZ = (Z[:, :, None] * Z[:, None, :]).reshape(len(Z), p * p)
            H = np.einsum("bs,bsk,bsl->bkl", W, zbar, zbar) - (wp @ ZZ).reshape(-1, p, p)
        if pseudo and self.npseudo > 0:
            ix, t = self.pseudo_idx, self.pseudo_tie_idx
            pf, pg, ph = pseudo_terms(theta[:, ix], self.npseudo, 2 if deriv else 0,
                                      None if t is None else theta[:, t])
            f = f + pf
            if deriv:
                g[:, ix] += pg[0]
                H[:, ix, ix] += ph[0]
                if t is not None:
                    g[:, t] += pg[1]
                    H[:, ix, t] += ph[1]
                    H[:, t, ix] += ph[1]
                    H[:, t, t] += ph[2]
        if pseudo and self.prior is not None:
            ix = self.pseudo_idx
            d = theta[:, ix] - self.prior.mu
            Pd = d @ self.prior.precision
            f = f - 0.5 * np.einsum("bi,bi->b", d, Pd)
            if deriv:
                g[:, ix] -= Pd
                H[:, ix[:, None], ix] -= self.prior.precision
        return f, g, H

    # ------------------------------------------------------------------------------------------------- misc
    @property
    def n_params(self) -> int:
        return self._n_params

    @property
    def pseudo_idx(self) -> np.ndarray:
        """The items' intercepts (item-major layout: ``j * q``)."""
        return self._pseudo_idx

    @property
    def tie_free(self) -> bool:
        return self._tie_free

    def free(self, ref: int | None = 0) -> np.ndarray:
        """Free parameters: with covariates the slopes of item `ref` are fixed at 0 (the reference of the
        covariate effects); its intercept too when ``npseudo == 0``."""
        m = np.ones(self.n_params, dtype=bool)
        if ref is None or self.item_basis is not None:  # structured worths: every coefficient identified
            return m
        q = self.q
        m[ref * q + 1: ref * q + q] = False
        if self.npseudo == 0:
            m[ref * q] = False
        return m

    def total_weight(self) -> float:
        return float(self.uw.sum())

    def null_loglik(self) -> float:
        """Data log-likelihood at theta = 0: every alternative of a set equally likely."""
        return -float(self.Wset @ np.log(np.diff(self.alt_ptr))) if self.n_sets else 0.0

    def _chosen(self) -> np.ndarray:
        return self.lin


class StatsView(Design):
    """A :class:`ChoiceDesign` whose data part is fixed sufficient statistics (tree nodes, EM M-steps)."""

    def __init__(self, design: ChoiceDesign, lin: np.ndarray, W: np.ndarray) -> None:
        self.base, self.lin, self.W = design, lin, W
        self.items, self.n_items, self.q = design.items, design.n_items, design.q
        self.tie_orders, self.npseudo, self.prior = design.tie_orders, design.npseudo, design.prior

    @property
    def n_params(self) -> int:
        return self.base.n_params

    @property
    def pseudo_idx(self) -> np.ndarray:
        return self.base.pseudo_idx

    def free(self, ref: int | None = 0) -> np.ndarray:
        return self.base.free(ref)

    def _data_fgh(self, theta: np.ndarray, need: int) -> tuple[float, Any, Any]:
        return self.base.fgh_stats(theta, self.lin, self.W, need)
