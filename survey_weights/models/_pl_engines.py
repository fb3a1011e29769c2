"""Vectorised Plackett-Luce likelihood engines (private; used by :mod:`._likelihood`).

Two engines compute the *data* part of the weighted log-likelihood, its gradient and Hessian in
``theta = (beta_0..beta_{n-1}, log delta_k for k in tie_orders)``:

* :class:`TieFreeEngine` -- no ties anywhere (D = 1).  Rankings are grouped into dense blocks of equal
  length; every stage is handled by suffix sums, so the cost is O(R * L) for the value and gradient and one
  chunked GEMM for the Hessian.
* :class:`GenericEngine` -- ties of any order (Davidson-Luce).  Every stage is a conditional logit over
  "alternatives" ``S`` (all subsets of the choice set with ``|S|`` in ``{1} + tie_orders``), with linear
  predictor ``log delta_|S| + mean(beta_S)``.  Identical stages (same choice set, same chosen set) are
  aggregated with summed weights.

Both engines expose ``fgh(theta, need)``, ``chosen_stat``, ``stage_scores(theta)`` (a sparse
(n_respondents x n_units) map times a dense (n_units x p) matrix) and ``reweight(resp_w)``.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import scipy.sparse as sp

try:  # BLAS threading on a loaded 2-core box is pathological for tall-skinny GEMMs
    from threadpoolctl import ThreadpoolController as _TPC
except ImportError:  # pragma: no cover
    _TPC = None
_CONTROLLER: Any = None

_CHUNK_ELEMS = 4_000_000  # elements per temporary (~32 MB) in the Hessian build


def _blas1(big: bool) -> Any:
    """Single-threaded BLAS for the big tall-skinny GEMM (the controller is created once, lazily)."""
    global _CONTROLLER
    if not big or _TPC is None:
        import contextlib

        return contextlib.nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = _TPC()
    return _CONTROLLER.limit(limits=1, user_api="blas")


# ----------------------------------------------------------------------------------------------------------
# tie-free engine
# ----------------------------------------------------------------------------------------------------------
class TieFreeEngine:
    """Dense suffix-sum engine for data without ties.

    Each ranking becomes a row of item indices in choice order; for a top-k ranking with unranked items
    the unranked items are appended (in any order).  ``s`` is the number of stages of that row: ``m`` for a
    top-k ranking with unranked items, ``m - 1`` otherwise.  Rows are grouped into blocks of equal
    ``(L, s)``.
    """

    def __init__(self, n_items: int, blocks: list[dict[str, Any]], n_resp: int) -> None:
        self.n_items = n_items
        self.n_params = n_items
        self.blocks = blocks
        self.n_resp = n_resp
        self.chosen_stat = np.zeros(n_items)
        for b in blocks:
            self.chosen_stat += np.bincount(
                b["idx"][:, : b["s"]].ravel(),
                weights=np.repeat(b["w"], b["s"]),
                minlength=n_items,
            )

    @classmethod
    def build(
        cls,
        n_items: int,
        ptr: np.ndarray,
        item: np.ndarray,
        top_k: np.ndarray,
        resp: np.ndarray,
        resp_w: np.ndarray,
    ) -> TieFreeEngine:
        m = np.diff(ptr)
        has_unranked = top_k & (m < n_items)
        L = np.where(has_unranked, n_items, m)
        s = np.where(has_unranked, m, m - 1)
        keep = s >= 1
        blocks = []
        code = (L * (n_items + 2) + s) * (n_items + 2) + m
        codes = np.flatnonzero(np.bincount(code[keep])) if keep.any() else []
        for cv in codes:
            rows = np.flatnonzero(keep & (code == cv))
            Lv, sv, mv = int(L[rows[0]]), int(s[rows[0]]), int(m[rows[0]])
            pos = ptr[rows][:, None] + np.arange(mv)[None, :]
            ranked = item[pos].astype(np.int64)
            if Lv > mv:  # append unranked items of top-k rankings
                key = np.broadcast_to(np.arange(n_items) + n_items, (len(rows), n_items)).copy()
                np.put_along_axis(key, ranked, np.arange(mv)[None, :], axis=1)
                idx = np.argsort(key, axis=1, kind="stable")
            else:
                idx = ranked
            blocks.append(
                {"idx": np.ascontiguousarray(idx), "s": int(sv), "rows": rows,
                 "resp": resp[rows], "w": resp_w[resp[rows]].astype(float)}
            )
        return cls(n_items, blocks, len(resp_w))

    def reweight(self, resp_w: np.ndarray) -> TieFreeEngine:
        blocks = [dict(b, w=resp_w[b["resp"]].astype(float)) for b in self.blocks]
        return TieFreeEngine(self.n_items, blocks, self.n_resp)

    def subsample(self, frac: float, rng: np.random.Generator) -> TieFreeEngine:
        """Engine on a random subset of rows with weights scaled by ``1/frac`` (approximate Hessians)."""
        blocks = []
        for b in self.blocks:
            keep = rng.random(len(b["w"])) < frac
            if keep.any():
                blocks.append(dict(b, idx=b["idx"][keep], w=b["w"][keep] / frac, resp=b["resp"][keep],
                                   rows=b["rows"][keep]))
        return TieFreeEngine(self.n_items, blocks, self.n_resp)

    @property
    def n_rows(self) -> int:
        return int(sum(len(b["w"]) for b in self.blocks))

    def fgh(self, theta: np.ndarray, need: int = 2) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        n = self.n_items
        beta = theta[:n]
        shift = float(beta.max()) if n else 0.0
        a = np.exp(beta - shift)
        f = 0.0
        g = np.zeros(n) if need >= 1 else None
        H = np.zeros((n, n)) if need >= 2 else None
        for b in self.blocks:
            idx, s, w = b["idx"], b["s"], b["w"]
            E = a[idx]
            S = np.cumsum(E[:, ::-1], axis=1)[:, ::-1][:, :s]
            with np.errstate(divide="ignore"):
                f += float(w @ ((beta[idx[:, :s]] - shift).sum(axis=1) - np.log(S).sum(axis=1)))
            if need == 0:
                continue
            inv = 1.0 / S
            c1 = np.cumsum(inv, axis=1)
            L = idx.shape[1]
            if L > s:
                c1 = np.concatenate([c1, np.repeat(c1[:, -1:], L - s, axis=1)], axis=1)
            wEc = (w[:, None] * E) * c1
            g -= np.bincount(idx.ravel(), weights=wEc.ravel(), minlength=n)
            if need >= 2:
                H[np.diag_indices(n)] -= np.bincount(idx.ravel(), weights=wEc.ravel(), minlength=n)
                H += self._offdiag(idx, E, inv * inv, w, s)
        if need >= 1:
            g += self.chosen_stat
        return f, g, H

    def _offdiag(self, idx: np.ndarray, E: np.ndarray, d: np.ndarray, w: np.ndarray, s: int) -> np.ndarray:
        """sum_r w_r sum_j d_rj z_rj z_rj^T, z_rj = E restricted to the choice set of stage j."""
        n = self.n_items
        R, L = idx.shape
        out = np.zeros((n, n))
        if n <= 4 * L:  # item space: one GEMM over (rows*stages) x n
            js = np.arange(s)
            chunk = max(1, _CHUNK_ELEMS // max(1, s * n))
            with _blas1(R * s > 20000):
                for a0 in range(0, R, chunk):
                    a1 = min(R, a0 + chunk)
                    r = a1 - a0
                    V = np.zeros((r, n))
                    Q = np.full((r, n), -1, dtype=np.int32)
                    rows = np.arange(r)[:, None]
                    V[rows, idx[a0:a1]] = E[a0:a1]
                    Q[rows, idx[a0:a1]] = np.arange(L, dtype=np.int32)[None, :]
                    Z = (Q[:, None, :] >= js[None, :, None]) * V[:, None, :]
                    Z *= np.sqrt(w[a0:a1, None] * d[a0:a1])[:, :, None]
                    Z = Z.reshape(-1, n)
                    out += Z.T @ Z
            return out
        # position space: T_r = (E E^T) * c2[min(l, l')], scattered into item space
        mi = np.minimum(np.minimum.outer(np.arange(L), np.arange(L)), s - 1)
        chunk = max(1, _CHUNK_ELEMS // max(1, L * L))
        flat = np.zeros(n * n)
        for a0 in range(0, R, chunk):
            a1 = min(R, a0 + chunk)
            c2 = np.cumsum(d[a0:a1], axis=1)
            Ec = E[a0:a1] * np.sqrt(w[a0:a1, None])
            T = Ec[:, :, None] * Ec[:, None, :] * c2[:, mi]
            I = idx[a0:a1]
            K = I[:, :, None] * n + I[:, None, :]
            flat += np.bincount(K.ravel(), weights=T.ravel(), minlength=n * n)
        return flat.reshape(n, n)

    def ranking_scores(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unweighted per-row score vectors: (rows (R_used,), resp (R_used,), G (R_used, n))."""
        n = self.n_items
        beta = theta[:n]
        a = np.exp(beta - beta.max())
        rows_all, resp_all, G_all = [], [], []
        for b in self.blocks:
            idx, s = b["idx"], b["s"]
            E = a[idx]
            S = np.cumsum(E[:, ::-1], axis=1)[:, ::-1][:, :s]
            c1 = np.cumsum(1.0 / S, axis=1)
            L = idx.shape[1]
            if L > s:
                c1 = np.concatenate([c1, np.repeat(c1[:, -1:], L - s, axis=1)], axis=1)
            val = -E * c1
            val[:, :s] += 1.0
            G = np.zeros((len(idx), n))
            np.put_along_axis(G, idx, val, axis=1)
            rows_all.append(b["rows"])
            resp_all.append(b["resp"])
            G_all.append(G)
        if not G_all:
            return np.zeros(0, int), np.zeros(0, int), np.zeros((0, n))
        return np.concatenate(rows_all), np.concatenate(resp_all), np.vstack(G_all)


# ----------------------------------------------------------------------------------------------------------
# generic engine (ties)
# ----------------------------------------------------------------------------------------------------------
def _bits(items: np.ndarray, nw: int) -> np.ndarray:
    out = np.zeros((len(items), nw), dtype=np.uint64)
    out[np.arange(len(items)), items // 64] = np.left_shift(np.uint64(1), (items % 64).astype(np.uint64))
    return out


class GenericEngine:
    """Conditional-logit engine over aggregated stages; handles ties of any order."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    @classmethod
    def build(
        cls,
        n_items: int,
        ptr: np.ndarray,
        item: np.ndarray,
        rank: np.ndarray,
        top_k: np.ndarray,
        resp: np.ndarray,
        resp_w: np.ndarray,
        tie_orders: tuple[int, ...],
    ) -> GenericEngine:
        n = n_items
        nw = (n + 63) // 64
        R = len(ptr) - 1
        nnz = int(ptr[-1])
        ent_rank_id = np.repeat(np.arange(R), np.diff(ptr))
        item = item.astype(np.int64)
        # tie groups: consecutive entries with equal (ranking, rank)
        new_group = np.ones(nnz, dtype=bool)
        if nnz > 1:
            new_group[1:] = (ent_rank_id[1:] != ent_rank_id[:-1]) | (rank[1:] != rank[:-1])
        gid = np.cumsum(new_group) - 1
        n_groups = int(gid[-1]) + 1 if nnz else 0
        g_rank = ent_rank_id[new_group]
        g_size = np.bincount(gid, minlength=n_groups)
        gmask = np.zeros((n_groups, nw), dtype=np.uint64)
        eb = _bits(item, nw)
        for wd in range(nw):  # disjoint bits: sums are ORs
            np.add.at(gmask[:, wd], gid, eb[:, wd])
        # suffix sums within ranking (uint64 wrap-around makes differences exact)
        with np.errstate(over="ignore"):
            cs = np.concatenate([np.zeros((1, nw), np.uint64), np.cumsum(gmask, axis=0, dtype=np.uint64)])
            g_first = np.searchsorted(g_rank, np.arange(R), side="left")
            g_end = np.searchsorted(g_rank, np.arange(R), side="right")
            A = cs[g_end[g_rank]] - cs[np.arange(n_groups)]
            full_rank_mask = cs[g_end] - cs[g_first]
        cnt_cs = np.concatenate([[0], np.cumsum(g_size)])
        A_size = cnt_cs[g_end[g_rank]] - cnt_cs[np.arange(n_groups)]
        m = np.diff(ptr)
        unr = top_k & (m < n)
        if unr.any():
            full = np.zeros(nw, dtype=np.uint64)
            for wd in range(nw):
                nb = min(64, n - 64 * wd)
                full[wd] = np.uint64((1 << nb) - 1) if nb < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
            with np.errstate(over="ignore"):
                extra = np.where(unr[:, None], full[None, :] - full_rank_mask, np.uint64(0)).astype(np.uint64)
                A = A + extra[g_rank]
            A_size = A_size + np.where(unr, n - m, 0)[g_rank]
        keep = A_size >= 2
        A, C, Asz, Csz = A[keep], gmask[keep], A_size[keep], g_size[keep]
        st_resp = resp[g_rank[keep]]
        keys = np.concatenate([A, C], axis=1)
        if len(keys):
            ukeys, uid = np.unique(keys, axis=0, return_inverse=True)
            uid = uid.ravel()
        else:
            ukeys, uid = np.zeros((0, 2 * nw), np.uint64), np.zeros(0, int)
        U = len(ukeys)
        uA, uC = ukeys[:, :nw], ukeys[:, nw:]
        uAsz = np.zeros(U, int)
        uAsz[uid] = Asz
        uCsz = np.zeros(U, int)
        uCsz[uid] = Csz
        bad = sorted(set(int(k) for k in np.unique(uCsz)) - {1, *tie_orders})
        if bad:
            raise ValueError(f"internal: tie orders {bad} not in tie_orders {tie_orders}")
        # decode item sets
        Abool = np.unpackbits(uA.astype("<u8").view(np.uint8), axis=1, bitorder="little")[:, :n].astype(bool)
        orders = (1, *tie_orders)
        p = n + len(tie_orders)
        alt_stage, alt_k, mem_rows, mem_cols, alt_masks = [], [], [], [], []
        n_alt = 0
        for sz in np.unique(uAsz):
            us = np.flatnonzero(uAsz == sz)
            items_s = np.nonzero(Abool[us])[1].reshape(len(us), sz)
            for ki, k in enumerate(orders):
                if k > sz:
                    continue
                comb = np.array(list(combinations(range(sz), k)), dtype=np.int64)
                mem = items_s[:, comb]  # (U_s, c, k)
                c = comb.shape[0]
                na = len(us) * c
                alt_stage.append(np.repeat(us, c))
                alt_k.append(np.full(na, k))
                arows = n_alt + np.arange(na)
                mem_rows.append(np.repeat(arows, k))
                mem_cols.append(mem.reshape(-1))
                am = np.zeros((na, nw), dtype=np.uint64)
                flat = mem.reshape(na, k)
                for j in range(k):
                    am |= _bits(flat[:, j], nw)
                alt_masks.append(am)
                n_alt += na
        if n_alt:
            alt_stage_a = np.concatenate(alt_stage)
            alt_k_a = np.concatenate(alt_k)
            mrow = np.concatenate(mem_rows)
            mcol = np.concatenate(mem_cols)
            amask = np.concatenate(alt_masks)
        else:
            alt_stage_a = alt_k_a = mrow = mcol = np.zeros(0, int)
            amask = np.zeros((0, nw), np.uint64)
        order = np.argsort(alt_stage_a, kind="stable")
        inv_order = np.empty_like(order)
        inv_order[order] = np.arange(n_alt)
        alt_stage_a, alt_k_a, amask = alt_stage_a[order], alt_k_a[order], amask[order]
        mrow = inv_order[mrow]
        rows = np.concatenate([mrow, np.flatnonzero(alt_k_a >= 2)])
        kpos = {k: n + i for i, k in enumerate(tie_orders)}
        cols = np.concatenate([mcol, np.array([kpos[k] for k in alt_k_a[alt_k_a >= 2]], dtype=np.int64)])
        vals = np.concatenate([1.0 / alt_k_a[mrow], np.ones(int((alt_k_a >= 2).sum()))])
        X = sp.csr_matrix((vals, (rows, cols)), shape=(n_alt, p))
        chosen = np.flatnonzero(np.all(amask == uC[alt_stage_a], axis=1) & (alt_k_a == uCsz[alt_stage_a]))
        assert len(chosen) == U, "internal: chosen alternatives not unique"
        alt_ptr = np.searchsorted(alt_stage_a, np.arange(U + 1))
        dense = n_alt * p <= 3_000_000
        eng = cls(
            n_items=n, n_params=p, X=X.toarray() if dense else X, dense=dense, alt_stage=alt_stage_a,
            alt_ptr=alt_ptr, chosen=chosen, Xc=X[chosen], st_uid=uid, st_resp=st_resp,
            n_resp=len(resp_w), n_units=U,
        )
        eng._set_weights(resp_w)
        return eng

    def _set_weights(self, resp_w: np.ndarray) -> None:
        self.uw = np.bincount(self.st_uid, weights=resp_w[self.st_resp], minlength=self.n_units)
        self.chosen_stat = np.asarray(self.Xc.T @ self.uw).ravel()

    def reweight(self, resp_w: np.ndarray) -> GenericEngine:
        eng = GenericEngine(**self.__dict__)
        eng._set_weights(resp_w)
        return eng

    def _probs(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        eta = np.asarray(self.X @ theta).ravel()
        st = self.alt_ptr[:-1]
        mx = np.maximum.reduceat(eta, st) if len(eta) else np.zeros(0)
        e = np.exp(eta - mx[self.alt_stage])
        den = np.add.reduceat(e, st) if len(eta) else np.zeros(0)
        return eta, mx + np.log(den), e / den[self.alt_stage]

    def _xbar(self, pr: np.ndarray) -> np.ndarray:
        if self.dense:
            return np.add.reduceat(pr[:, None] * self.X, self.alt_ptr[:-1], axis=0)
        M = sp.csr_matrix((pr, np.arange(len(pr)), self.alt_ptr), shape=(self.n_units, len(pr)))
        return np.asarray((M @ self.X).todense())

    def fgh(self, theta: np.ndarray, need: int = 2) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        if self.n_units == 0:
            p = self.n_params
            return 0.0, (np.zeros(p) if need else None), (np.zeros((p, p)) if need >= 2 else None)
        eta, lse, pr = self._probs(theta)
        f = float(self.uw @ (eta[self.chosen] - lse))
        if need == 0:
            return f, None, None
        wp = self.uw[self.alt_stage] * pr
        g = self.chosen_stat - np.asarray(self.X.T @ wp).ravel()
        if need < 2:
            return f, g, None
        xb = self._xbar(pr)
        if self.dense:
            Xs = self.X * np.sqrt(wp)[:, None]
            A = Xs.T @ Xs
        else:
            A = np.asarray((self.X.T @ self.X.multiply(wp[:, None])).todense())
        H = -(A - (xb * self.uw[:, None]).T @ xb)
        return f, g, H

    def unit_scores(self, theta: np.ndarray) -> np.ndarray:
        """(n_units, p) unweighted score of each distinct stage: x_chosen - E[x]."""
        _, _, pr = self._probs(theta)
        xc = self.Xc.toarray()
        return xc - self._xbar(pr)
