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

from functools import lru_cache
from itertools import combinations
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._util.threads import single_thread_blas

_CHUNK_ELEMS = 4_000_000  # elements per temporary (~32 MB) in the Hessian build
_KMIN_CHUNK_ELEMS = 320_000  # (items x rows) per cache-resident chunk of the tie-free item-space Hessian


def _cumsum0(X: np.ndarray, *, reverse: bool = False) -> np.ndarray:
    """Cumulative sum down axis 0 of a 2-D array (numpy's strided axis-0 accumulate is slow: add rows)."""
    out = np.empty(X.shape)
    if len(X) == 0:
        return out
    rows = range(len(X) - 1, -1, -1) if reverse else range(len(X))
    prev = None
    for m in rows:
        if prev is None:
            out[m] = X[m]
        else:
            np.add(out[prev], X[m], out=out[m])
        prev = m
    return out


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

    def null_loglik(self) -> float:
        """Data log-likelihood at theta = 0 (every item equally likely): -sum_r w_r sum_j log |A_rj|."""
        f = 0.0
        for b in self.blocks:
            L, s = b["idx"].shape[1], b["s"]
            f -= float(b["w"].sum()) * float(np.log(np.arange(L - s + 1, L + 1, dtype=float)).sum())
        return f

    @property
    def n_rows(self) -> int:
        return int(sum(len(b["w"]) for b in self.blocks))

    @staticmethod
    def _layout(b: dict[str, Any]) -> np.ndarray:
        """Positions reversed and transposed, (L, R_b): row 0 is the last position, so cumulative sums down
        axis 0 are the suffix sums of the choice sets (cached in the block; shared by reweight/copies)."""
        T = b.get("T")
        if T is None:
            T = b["T"] = np.ascontiguousarray(b["idx"][:, ::-1].T).astype(np.intp, copy=False)
        return T

    def fgh(self, theta: np.ndarray, need: int = 2) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        n = self.n_items
        beta = theta[:n]
        shift = float(beta.max()) if n else 0.0
        a = np.exp(beta - shift)
        # chosen items' log-worths: sum_r w_r sum_{stages} (beta - shift) = chosen_stat @ beta - shift * W
        f = float(self.chosen_stat @ (beta - shift))
        gsum = np.zeros(n) if need >= 1 else None  # sum over entries of w E c1, by item
        K = np.zeros((n, n)) if need >= 2 else None  # a-free off-diagonal part: H_off = a a^T * K
        Hpos = np.zeros((n, n)) if need >= 2 else None
        for b in self.blocks:
            T, s, w = self._layout(b), b["s"], b["w"]
            L = T.shape[0]
            E = np.take(a, T)
            Scum = _cumsum0(E)
            Ss = Scum[L - s:]  # stage j is row L-1-j
            with np.errstate(divide="ignore"):
                f -= float(np.sum(np.log(Ss) @ w))
            if need == 0:
                continue
            inv = 1.0 / Ss
            c1 = _cumsum0(inv, reverse=True)  # sum over stages up to j, in the same rows
            WE = E * w
            WE[L - s:] *= c1
            if L > s:
                WE[: L - s] *= c1[0]
            gsum += np.bincount(T.ravel(), weights=WE.ravel(), minlength=n)
            if need >= 2:
                inv *= inv
                c2 = _cumsum0(inv, reverse=True)
                if n <= 4 * L:
                    K += self._kmin(T, c2, w, s)
                else:
                    Hpos += self._offdiag_pos(T, E, c2, w, s)
        g = H = None
        if need >= 1:
            g = self.chosen_stat - gsum
        if need >= 2:
            H = K * np.multiply.outer(a, a) + Hpos
            H[np.diag_indices(n)] -= gsum
        return f, g, H

    def _kmin(self, T: np.ndarray, c2: np.ndarray, w: np.ndarray, s: int) -> np.ndarray:
        """K[i, k] = sum_r w_r c2_r[min(pos_r(i), pos_r(k))] (0 when i or k is not in row r).

        ``H_off = sum_r w_r sum_j d_rj z_rj z_rj^T`` with ``z_rj = a * 1[pos_r >= j]`` and ``c2`` the cumulative
        sum of ``d = 1/S^2`` over stages, which is non-decreasing in position: so
        ``c2[min(pos_i, pos_k)] = min(G_i, G_k)`` with ``G = c2`` at each item's position (0 if absent).  That is
        n^2/2 mins and GEMVs per row instead of a (rows x stages) x n GEMM.  Columns are processed in
        cache-sized chunks.
        """
        n = self.n_items
        L, R = T.shape
        K = np.zeros((n, n))
        chunk = max(1, min(R, _KMIN_CHUNK_ELEMS // max(1, n)))
        G = np.empty((n, chunk))
        buf = np.empty((n, chunk))
        with single_thread_blas(R * n > 20000):
            for a0 in range(0, R, chunk):
                a1 = min(R, a0 + chunk)
                r = a1 - a0
                Gc = G if r == chunk else np.empty((n, r))
                Gc.fill(0.0)
                flat = T[:, a0:a1] * r + np.arange(r)
                Gv = Gc.reshape(-1)
                Gv[flat[L - s:]] = c2[:, a0:a1]
                if L > s:
                    Gv[flat[: L - s]] = c2[0, a0:a1]
                bb = buf[:, :r]
                wc = w[a0:a1]
                for i in range(n):
                    m = n - i
                    np.minimum(Gc[i], Gc[i:], out=bb[:m])
                    K[i, i:] += bb[:m] @ wc
        iu = np.triu_indices(n, 1)
        K[iu[1], iu[0]] = K[iu]
        return K

    def _offdiag_pos(self, T: np.ndarray, E: np.ndarray, c2: np.ndarray, w: np.ndarray, s: int) -> np.ndarray:
        """Position space (many items, short rankings): T_r[l, l'] = E_l E_l' min(C_l, C_l') scattered to items."""
        n = self.n_items
        L, R = T.shape
        C = np.empty((L, R))
        C[L - s:] = c2
        if L > s:
            C[: L - s] = c2[0]
        chunk = max(1, _CHUNK_ELEMS // max(1, L * L))
        flat = np.zeros(n * n)
        for a0 in range(0, R, chunk):
            a1 = min(R, a0 + chunk)
            Ec = E[:, a0:a1] * np.sqrt(w[a0:a1])
            Cc = C[:, a0:a1]
            V = Ec[:, None, :] * Ec[None, :, :] * np.minimum(Cc[:, None, :], Cc[None, :, :])
            Ti = T[:, a0:a1]
            Kk = Ti[:, None, :] * n + Ti[None, :, :]
            flat += np.bincount(Kk.ravel(), weights=V.ravel(), minlength=n * n)
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


def _combos(m: int, k: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """k-subsets of range(m) in itertools order (c, k), and (for m <= 62) their position bit masks sorted,
    with the sorting permutation (to look a chosen set up by its mask).  Small ones are cached (read-only)."""
    from math import comb

    return _combos_cached(m, k) if comb(m, k) <= 20_000 else _combos_build(m, k)


@lru_cache(maxsize=256)
def _combos_cached(m: int, k: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    return _combos_build(m, k)


def _combos_build(m: int, k: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    comb = np.array(list(combinations(range(m), k)), dtype=np.int64).reshape(-1, k)
    comb.flags.writeable = False
    if m > 62:
        return comb, None, None
    tm = np.left_shift(np.uint64(1), comb.astype(np.uint64)).sum(axis=1, dtype=np.uint64)
    order = np.argsort(tm, kind="stable")
    tms = tm[order]
    tms.flags.writeable = False
    order.flags.writeable = False
    return comb, tms, order


def _n_comb(m: int, k: int) -> int:
    from math import comb

    return comb(m, k)


def _member_masks(mem: np.ndarray, nw: int) -> np.ndarray:
    """Bit masks (..., nw) of the item sets in the last axis of ``mem`` (distinct items: sums are ORs)."""
    out = np.zeros(mem.shape[:-1] + (nw,), dtype=np.uint64)
    word = mem // 64
    bit = np.left_shift(np.uint64(1), (mem % 64).astype(np.uint64))
    for wd in range(nw):
        out[..., wd] = np.where(word == wd, bit, np.uint64(0)).sum(axis=-1, dtype=np.uint64)
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
        if n <= 32 and len(A):  # pack (A, C) into one integer: sorting integers, not rows (same order)
            packed = (A[:, 0] << np.uint64(n)) | C[:, 0]
            upk, uid = np.unique(packed, return_inverse=True)
            uid = uid.ravel()
            ukeys = np.stack([upk >> np.uint64(n), upk & np.uint64((1 << n) - 1)], axis=1)
        elif len(A):
            ukeys, uid = np.unique(np.concatenate([A, C], axis=1), axis=0, return_inverse=True)
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
        # alternatives of stage u occupy rows alt_ptr[u]:alt_ptr[u+1], ordered by (order k, combination)
        sizes = np.unique(uAsz)
        n_per = {int(sz): sum(_n_comb(int(sz), k) for k in orders if k <= sz) for sz in sizes}
        cnt = np.zeros(U, dtype=np.int64)
        for sz in sizes:
            cnt[uAsz == sz] = n_per[int(sz)]
        alt_ptr = np.concatenate([[0], np.cumsum(cnt)]).astype(np.int64)
        n_alt = int(alt_ptr[-1])
        alt_stage_a = np.repeat(np.arange(U), cnt)
        alt_k_a = np.zeros(n_alt, dtype=np.int64)
        chosen = np.full(U, -1, dtype=np.int64)
        dense = n_alt * p <= 3_000_000
        X: Any = np.zeros((n_alt, p), order="F") if dense else None  # X.T is C-contiguous: fast row ops
        rows_l, cols_l, vals_l = [], [], []
        # chosen set as a bit mask of positions within the (sorted) choice set, when the sets are small
        small = int(sizes.max(initial=0)) <= 62
        if small and U:
            Cbool = np.unpackbits(uC.astype("<u8").view(np.uint8), axis=1, bitorder="little")[:, :n].astype(bool)
            pos = np.cumsum(Abool, axis=1) - 1
            pm = np.where(Cbool, np.left_shift(np.uint64(1), np.maximum(pos, 0).astype(np.uint64)),
                          np.uint64(0)).sum(axis=1, dtype=np.uint64)
        for sz in sizes:
            us = np.flatnonzero(uAsz == sz)
            items_s = np.nonzero(Abool[us])[1].reshape(len(us), sz)
            base = alt_ptr[us][:, None]
            off = 0
            for ki, k in enumerate(orders):
                if k > sz:
                    continue
                comb, tm_sorted, tm_order = _combos(int(sz), int(k))
                mem = items_s[:, comb]  # (U_s, c, k)
                c = comb.shape[0]
                arows = base + off + np.arange(c)[None, :]  # (U_s, c)
                alt_k_a[arows.ravel()] = k
                if dense:  # distinct (row, col) cells: plain assignment
                    X[arows[:, :, None], mem] = 1.0 / k
                    if k >= 2:
                        X[arows, n + ki - 1] = 1.0
                else:
                    rows_l.append(np.repeat(arows.ravel(), k))
                    cols_l.append(mem.reshape(-1))
                    vals_l.append(np.full(arows.size * k, 1.0 / k))
                    if k >= 2:
                        rows_l.append(arows.ravel())
                        cols_l.append(np.full(arows.size, n + ki - 1, dtype=np.int64))
                        vals_l.append(np.ones(arows.size))
                # the chosen alternative: the combination of positions equal to the chosen set
                sel = np.flatnonzero(uCsz[us] == k)
                if len(sel):
                    if small:
                        pms = pm[us[sel]]
                        j = np.minimum(np.searchsorted(tm_sorted, pms), c - 1)
                        ok = tm_sorted[j] == pms
                        chosen[us[sel[ok]]] = base[sel[ok], 0] + off + tm_order[j[ok]]
                    else:
                        am = _member_masks(mem[sel], nw)
                        r_, c_ = np.nonzero(np.all(am == uC[us[sel]][:, None, :], axis=2))
                        chosen[us[sel[r_]]] = arows[sel[r_], c_]
                off += c
        if U and not (np.all(chosen >= alt_ptr[:-1]) and np.all(chosen < alt_ptr[1:])):
            raise AssertionError("internal: chosen alternatives not found")
        if dense:
            Xc: Any = X[chosen]
        else:
            if n_alt:
                rows, cols, vals = np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(vals_l)
            else:
                rows = cols = np.zeros(0, np.int64)
                vals = np.zeros(0)
            X = sp.csr_matrix((vals, (rows, cols)), shape=(n_alt, p))
            Xc = X[chosen]
        eng = cls(
            n_items=n, n_params=p, X=X, dense=dense, alt_stage=alt_stage_a,
            alt_ptr=alt_ptr, chosen=chosen, Xc=Xc, st_uid=uid, st_resp=st_resp,
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
            return np.add.reduceat(self.X.T * pr, self.alt_ptr[:-1], axis=1).T
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
            XT = self.X.T
            A = (XT * wp) @ XT.T
        else:
            A = np.asarray((self.X.T @ self.X.multiply(wp[:, None])).todense())
        H = -(A - (xb * self.uw[:, None]).T @ xb)
        return f, g, H

    def null_loglik(self) -> float:
        """Data log-likelihood at theta = 0: every alternative of a stage equally likely."""
        return -float(self.uw @ np.log(np.diff(self.alt_ptr))) if self.n_units else 0.0

    def unit_scores(self, theta: np.ndarray) -> np.ndarray:
        """(n_units, p) unweighted score of each distinct stage: x_chosen - E[x]."""
        _, _, pr = self._probs(theta)
        xc = self.Xc if isinstance(self.Xc, np.ndarray) else self.Xc.toarray()
        return xc - self._xbar(pr)
