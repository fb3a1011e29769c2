"""The engine's tie-free kernel: Plackett-Luce rankings without ties by suffix sums (private).

:class:`TieFreeEngine` computes the *data* part of the weighted log-likelihood, its gradient and Hessian in
``theta = beta`` for rankings without any tie (the general kernel, :mod:`._choice`, handles ties, covariates
and batched refits and gives the same numbers here -- tested).  Rankings are grouped into dense blocks of
equal length; every stage is handled by suffix sums, so the cost is O(R * L) for the value and gradient and
one chunked GEMM for the Hessian: the 100,000-ranking benchmark needs this.  It exposes ``fgh(theta, need)``,
``chosen_stat``, ``ranking_scores(theta)`` and ``reweight(resp_w)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
    the unranked items are appended (in any order), and so are a ranking's declared shown-but-unranked items.
    ``s`` is the number of stages of that row: ``m`` for a ranking with unranked items in its choice sets,
    ``m - 1`` otherwise.  Rows are grouped into blocks of equal
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
        unranked: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> TieFreeEngine:
        """`unranked`: ``(ptr, item)`` of each ranking's declared shown-but-unranked items (appended to its row)."""
        m = np.diff(ptr)
        u = np.zeros(len(m), dtype=np.int64) if unranked is None else np.diff(unranked[0])
        has_unranked = (top_k & (m < n_items)) | (u > 0)
        L = np.where(top_k & (m < n_items), n_items, m + u)
        s = np.where(has_unranked, m, m - 1)
        keep = s >= 1
        blocks = []
        code = ((L * (n_items + 2) + s) * (n_items + 2) + m) * 2 + (u > 0)
        codes = np.unique(code[keep]) if keep.any() else []
        for cv in codes:
            rows = np.flatnonzero(keep & (code == cv))
            Lv, sv, mv = int(L[rows[0]]), int(s[rows[0]]), int(m[rows[0]])
            pos = ptr[rows][:, None] + np.arange(mv)[None, :]
            ranked = item[pos].astype(np.int64)
            if cv % 2:  # append the declared unranked items
                upos = unranked[0][rows][:, None] + np.arange(Lv - mv)[None, :]
                idx = np.hstack([ranked, np.asarray(unranked[1], dtype=np.int64)[upos]])
            elif Lv > mv:  # append unranked items of top-k rankings
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
