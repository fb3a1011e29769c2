"""Regression of item worths on respondent covariates (Plackett-Luce with ties; Bradley-Terry-Davidson for pairs).

The log-worth of item j for respondent i is ``x_i' beta_j``: ``x_i`` holds an intercept, dummy-coded categorical
covariates (reference = first level) and numeric covariates (standardised by default). Each ranking is the
usual sequence of Davidson-Luce choices (``docs/design.md``): at a stage with choice set A the chosen tie group C
has probability ``f_i(C) / sum_S f_i(S)`` over the subsets S of A of the observed tie orders, with
``log f_i(S) = log delta_|S| + mean_{j in S} x_i' beta_j``. Tie parameters are shared by all respondents. The model
is a conditional logit over these alternatives; its log-likelihood, gradient and Hessian are computed here in
vectorised numpy (module :func:`survey_weights.bootstrap` reuses the same design for batched refits).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._util.threads import single_thread_blas
from .._util.validation import check_scalar, format_ids
from ..data.rankings import PairedComparisons, Rankings
from ..exceptions import ConvergenceWarning
from ._provenance import records_data
from ._regression_result import WorthRegressionResult, _model_matrix, _Term

__all__ = ["WorthRegressionResult", "fit_regression"]

_MAX_ITEMS = 61  # items + the ghost item must fit in a 64-bit mask


# ---------------------------------------------------------------------------------------------------------------------
# choice-set expansion (shared with bootstrap.py)
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Stages:
    """One row per choice stage: respondent position, choice-set and chosen bitmasks, base weight."""

    resp: np.ndarray
    amask: np.ndarray
    cmask: np.ndarray
    base: np.ndarray
    orders: tuple[int, ...]
    n_items: int


def _popcount(m: np.ndarray, n_bits: int) -> np.ndarray:
    return sum(((m >> np.uint64(j)) & np.uint64(1)).astype(np.int64) for j in range(n_bits))


def _stages(data: Rankings | PairedComparisons, *, ties: str | None = "davidson") -> _Stages:
    """Expand rankings (or pairs) into choice stages. ``ties`` only matters for pairs (None = no tie alternative)."""
    J = data.n_items
    if J > _MAX_ITEMS:
        raise ValueError(f"At most {_MAX_ITEMS} items are supported here; the data have {J}.")
    one = np.uint64(1)
    if isinstance(data, PairedComparisons):
        a = one << data._a.astype(np.uint64)
        b = one << data._b.astype(np.uint64)
        out = data._outcome
        if ties is None and (out == 0).any():
            raise ValueError(
                f"The paired comparisons hold {int((out == 0).sum())} ties but `ties` is None. "
                "Fix: pass ties='davidson' to model them."
            )
        resp, base = data._resp.astype(np.int64), data._w.astype(float)
        if ties == "half":  # a tie = half a win for each side
            t = out == 0
            c = np.concatenate([np.where(out == -1, b, a), b[t]])
            base = np.concatenate([np.where(t, 0.5, 1.0) * base, 0.5 * base[t]])
            return _Stages(np.concatenate([resp, resp[t]]), np.concatenate([a | b, (a | b)[t]]), c, base, (1,), J)
        if ties not in (None, "davidson"):
            raise ValueError(f"Unknown `ties` {ties!r}. Choose one of {{None, 'davidson', 'half'}}.")
        c = np.where(out == 1, a, np.where(out == -1, b, a | b))
        return _Stages(resp, a | b, c, base, (1, 2) if (out == 0).any() else (1,), J)
    if not isinstance(data, Rankings):
        raise TypeError(f"`data` must be Rankings or PairedComparisons. Got {type(data).__name__} instead.")
    item, rank = data._item.astype(np.uint64), data._rank
    R = data.n_rankings
    ranking = np.repeat(np.arange(R), np.diff(data._ptr))
    bit = one << item
    new = np.ones(len(item), bool)
    new[1:] = (ranking[1:] != ranking[:-1]) | (rank[1:] != rank[:-1])
    gstart = np.flatnonzero(new)
    gmask = np.add.reduceat(bit, gstart)
    gsize = np.diff(np.append(gstart, len(item)))
    granking = ranking[gstart]
    total = np.add.reduceat(bit, data._ptr[:-1])  # disjoint bits: sum == or
    with np.errstate(over="ignore"):  # wrap-around is exact modulo 2**64
        cs = np.cumsum(gmask, dtype=np.uint64)
        excl = cs - gmask
        first = np.searchsorted(granking, np.arange(R))
        remaining = total[granking] - (excl - excl[first[granking]])
    full = (one << np.uint64(J)) - one
    remaining = remaining | np.where(data._top_k[granking], full ^ total[granking], np.uint64(0))
    keep = _popcount(remaining, J) >= 2
    orders = tuple(sorted({1} | set(np.unique(gsize).tolist())))
    return _Stages(data._resp[granking[keep]].astype(np.int64), remaining[keep], gmask[keep],
                   np.ones(int(keep.sum())), orders, J)


def _alternatives(usets: np.ndarray, orders: Sequence[int], n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """All subsets of each choice set with a size in `orders`: (alternative masks, set index), grouped by set."""
    masks, owner = [], []
    for s, m in enumerate(usets.tolist()):
        members = [j for j in range(n_bits) if (m >> j) & 1]
        for k in orders:
            for comb in itertools.combinations(members, k):
                masks.append(sum(1 << j for j in comb))
                owner.append(s)
    return np.array(masks, dtype=np.uint64), np.array(owner, dtype=np.int64)


@dataclass
class _Design:
    """Conditional-logit design: ``ll(theta) = lin . theta - sum_s W_s logsumexp_{a in s}(Z_a . theta)``.

    ``Z`` (A x p) rows are alternatives, grouped by choice set (``starts``); record c chooses row ``chosen[c]`` of
    set ``rec_set[c]``; record weights are ``inc.T @ respondent_weights`` (+ the fixed pseudo weights ``v_fixed``).
    """

    Z: np.ndarray
    starts: np.ndarray
    alt_set: np.ndarray
    chosen: np.ndarray
    rec_set: np.ndarray
    inc: sp.csr_matrix  # N x C (real records only; pseudo records have no respondent)
    v_fixed: np.ndarray  # C, the pseudo-data weights (0 for real records)
    n_sets: int
    tie_orders: tuple[int, ...]
    n_item_params: int

    def weights(self, w: np.ndarray, *, pseudo: bool = True) -> tuple[np.ndarray, np.ndarray]:
        v = np.asarray(self.inc.T @ w, dtype=float).ravel()
        if pseudo:
            v = v + self.v_fixed
        return v @ self.Z[self.chosen], np.bincount(self.rec_set, v, minlength=self.n_sets)

    def evaluate(self, theta: np.ndarray, lin: np.ndarray, W: np.ndarray, *, deriv: bool = True):
        eta = self.Z @ theta
        mx = np.maximum.reduceat(eta, self.starts)
        e = np.exp(eta - mx[self.alt_set])
        den = np.add.reduceat(e, self.starts)
        ll = float(lin @ theta - W @ (mx + np.log(den)))
        if not deriv:
            return ll, None, None
        p = e / den[self.alt_set]
        wp = W[self.alt_set] * p
        zbar = np.add.reduceat(p[:, None] * self.Z, self.starts, axis=0)
        grad = lin - wp @ self.Z
        info = (self.Z * wp[:, None]).T @ self.Z - (zbar * W[:, None]).T @ zbar
        return ll, grad, info


def _build_design(st: _Stages, X: np.ndarray | None, free: np.ndarray, n_resp: int, *, npseudo: float,
                  aggregate: bool) -> _Design:
    """Design for log-worth ``B x_i`` with free entries `free` (J x q) of B, plus log delta per tie order > 1."""
    J = st.n_items
    q = 1 if X is None else X.shape[1]
    one = np.uint64(1)
    ghost = one << np.uint64(J)
    # records: real stages (aggregated to unique (set, chosen) pairs when there are no covariates)
    if aggregate:
        key = np.stack([st.amask, st.cmask], axis=1)
        ukey, rec_of_stage = np.unique(key, axis=0, return_inverse=True)
        rec_of_stage = rec_of_stage.ravel()
        usets, rec_set = np.unique(ukey[:, 0], return_inverse=True)
        rec_c = ukey[:, 1]
        set_x = np.zeros(len(usets), np.int64)
    else:
        rec_of_stage = np.arange(len(st.amask))
        usets, rec_set = st.amask, np.arange(len(st.amask))
        rec_c, set_x = st.cmask, st.resp
    n_real = len(rec_c)
    inc = sp.csr_matrix((st.base, (st.resp, rec_of_stage)), shape=(n_resp, n_real))
    # pseudo data: item j vs the ghost, npseudo wins and npseudo losses (no tie alternative, as in the engine)
    items = np.arange(J, dtype=np.uint64)
    uniq = np.unique(usets)
    alt_mask, alt_set = _alternatives(uniq, st.orders, J)
    pos = np.searchsorted(uniq, usets)
    all_sets = usets
    if npseudo > 0:
        ps_sets = (one << items) | ghost
        pm, po = _alternatives(ps_sets, (1,), J + 1)
        alt_mask, alt_set = np.concatenate([alt_mask, pm]), np.concatenate([alt_set, po + len(uniq)])
        pos = np.concatenate([pos, len(uniq) + np.arange(J)])
        all_sets = np.concatenate([usets, ps_sets])
    # map every set (possibly repeated, non-aggregated) to its alternatives
    ustart = np.searchsorted(alt_set, np.arange(alt_set.max() + 2))
    lens = ustart[pos + 1] - ustart[pos]
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    take = np.repeat(ustart[pos] - starts, lens) + np.arange(lens.sum())
    am = alt_mask[take]
    a_set = np.repeat(np.arange(len(all_sets)), lens)
    # chosen rows
    chosen_c = np.concatenate([rec_c, one << items, np.full(J, ghost)]) if npseudo > 0 else rec_c
    chosen_set = np.concatenate([rec_set, len(usets) + np.arange(J), len(usets) + np.arange(J)]) \
        if npseudo > 0 else rec_set
    lookup = {(s, m): i for i, (s, m) in enumerate(zip(a_set.tolist(), am.tolist()))}
    try:
        chosen = np.array([lookup[(s, m)] for s, m in zip(chosen_set.tolist(), chosen_c.tolist())], np.int64)
    except KeyError as exc:  # pragma: no cover - orders always contain the observed sizes
        raise RuntimeError("Internal error: a chosen tie group is not among the alternatives.") from exc
    # rows of Z
    bits = ((am[:, None] >> np.arange(J + 1, dtype=np.uint64)) & one).astype(float)
    size = bits.sum(axis=1)
    M = bits[:, :J] / size[:, None]
    if X is None:
        xrow = np.ones((len(am), 1))
    else:
        Xs = np.vstack([X, np.eye(q)[:1]])  # last row: the reference respondent (pseudo data)
        sx = np.concatenate([set_x, np.full(J if npseudo > 0 else 0, len(X))])
        xrow = Xs[sx[a_set]]
    Zb = (M[:, :, None] * xrow[:, None, :]).reshape(len(am), J * q)[:, free.ravel()]
    tie_orders = tuple(k for k in st.orders if k > 1)
    Zt = (size[:, None] == np.array(tie_orders)[None, :]).astype(float)
    v_fixed = np.zeros(len(chosen))
    v_fixed[n_real:] = npseudo
    inc = sp.csr_matrix((inc.data, inc.indices, inc.indptr), shape=(n_resp, len(chosen)))
    return _Design(np.hstack([Zb, Zt]), starts, a_set, chosen, chosen_set, inc, v_fixed, len(all_sets),
                   tie_orders, Zb.shape[1])


def _newton(design: _Design, w: np.ndarray, theta0: np.ndarray | None = None, *, max_iter: int = 100,
            tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Maximise the penalised log-likelihood by Newton's method with step halving. Returns theta, info, iter, ok."""
    with single_thread_blas(True):  # threaded BLAS on tall-skinny products is pathological on a loaded box
        return _newton_loop(design, w, theta0, max_iter=max_iter, tol=tol)


def _newton_loop(design: _Design, w: np.ndarray, theta0: np.ndarray | None, *, max_iter: int,
                 tol: float) -> tuple[np.ndarray, np.ndarray, int, bool]:
    lin, W = design.weights(w)
    theta = np.zeros(design.Z.shape[1]) if theta0 is None else np.array(theta0, float)
    ll, g, H = design.evaluate(theta, lin, W)
    for it in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, g, rcond=None)[0]
        t = 1.0
        while True:
            ll_new = design.evaluate(theta + t * step, lin, W, deriv=False)[0]
            if ll_new >= ll - 1e-12 * (1 + abs(ll)):
                break
            t /= 2
            if t < 1e-8:
                return theta, H, it, False
        theta = theta + t * step
        ll, g, H = design.evaluate(theta, lin, W)
        if np.max(np.abs(t * step)) < tol or np.max(np.abs(g)) < tol:
            return theta, H, it, True
    return theta, H, max_iter, False


def _vcov(info: np.ndarray, info_data: np.ndarray, *, drop: int | None) -> np.ndarray:
    """Covariance as the engine (and R's PlackettLuce): inverse *data* information (pseudo data excluded) with
    free parameter `drop` (item 0's intercept) fixed; the penalised information if that is singular."""
    p = len(info)
    keep = np.ones(p, bool)
    if drop is not None:
        keep[drop] = False
    V = np.zeros((p, p))
    A = info_data[np.ix_(keep, keep)]
    try:
        L = np.linalg.cholesky(A)
        if np.min(np.diag(L)) ** 2 < 1e-12 * np.max(np.abs(np.diag(A))):
            raise np.linalg.LinAlgError("ill-conditioned")
        V[np.ix_(keep, keep)] = np.linalg.inv(A)
        return V
    except np.linalg.LinAlgError:
        return np.linalg.pinv(info)


# ---------------------------------------------------------------------------------------------------------------------
# covariate coding
# ---------------------------------------------------------------------------------------------------------------------
def _check_covariates(data: Rankings | PairedComparisons, covariates: Any) -> list[Any]:
    if covariates is None:
        return []
    covs = [covariates] if isinstance(covariates, str) else list(covariates)
    frame = data.covariates
    if covs and frame is None:
        raise ValueError(
            f"`covariates` {format_ids(covs)} were requested but `data` carries no covariates. "
            "Fix: build the data with covariates=[...] (e.g. Rankings.from_ratings(df, items, covariates=[...]))."
        )
    unknown = [c for c in covs if c not in frame.columns]
    if unknown:
        raise ValueError(
            f"Unknown covariate(s) {format_ids(unknown)} in `covariates`. Available: "
            f"{format_ids(list(frame.columns), limit=20)}. Fix: check the spelling."
        )
    if len(set(covs)) != len(covs):
        raise ValueError(f"`covariates` lists a name more than once: {format_ids(covs)}.")
    return covs


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _make_terms(frame: pd.DataFrame, covs: list[Any], *, standardize: bool) -> list[_Term]:
    terms = []
    for c in covs:
        s = frame[c]
        miss = s.isna().to_numpy()
        if miss.any():
            raise ValueError(
                f"Covariate {c!r} is missing for respondent ids {format_ids(list(frame.index[miss]))}. "
                "Fix: fill in the values, or subset the data to complete cases (data.subset(mask))."
            )
        if _is_categorical(s):
            if isinstance(s.dtype, pd.CategoricalDtype):
                levels = tuple(lv for lv in s.cat.categories if (s == lv).any())
            else:
                levels = tuple(sorted(s.unique(), key=lambda v: (str(type(v)), v)))
            if len(levels) < 2:
                raise ValueError(f"Covariate {c!r} is constant (only level {levels[0]!r}). Fix: drop it.")
            terms.append(_Term(str(c), "categorical", tuple(f"{c}[{lv}]" for lv in levels[1:]), levels))
        else:
            x = s.to_numpy(dtype=float)
            sd = float(x.std())
            if not sd > 0:
                raise ValueError(f"Covariate {c!r} is constant (value {x[0]!r}). Fix: drop it.")
            terms.append(_Term(str(c), "numeric", (str(c),), (), float(x.mean()) if standardize else 0.0,
                               sd if standardize else 1.0))
    return terms


def _check_rank(X: np.ndarray, names: list[str]) -> None:
    """Raise if a model-matrix column is a linear combination of earlier ones (or of the intercept)."""
    if np.linalg.matrix_rank(X) == X.shape[1]:
        return
    bad = [names[k] for k in range(1, X.shape[1]) if np.linalg.matrix_rank(X[:, : k + 1]) <= k]
    raise ValueError(
        f"The covariates are collinear: column(s) {format_ids(bad)} are linear combinations of earlier columns "
        "(e.g. a recode of another covariate, or a level present only together with another). "
        "Fix: drop one of the redundant covariates."
    )


# ---------------------------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------------------------
@records_data
def fit_regression(
    data: Rankings | PairedComparisons,
    covariates: str | Sequence[Any] | None = None,
    *,
    npseudo: float = 0.5,
    ties: str | None = "davidson",
    standardize: bool = True,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> WorthRegressionResult:
    """Regress item log-worths on respondent covariates (Plackett-Luce with ties, or Bradley-Terry for pairs).

    Parameters
    ----------
    data : Rankings or PairedComparisons
        Must carry the covariates (``data.covariates``) when any are requested.
    covariates : str, list of str or None, default None
        Covariate names. None or ``[]`` fits the intercept-only model, which equals the pooled fit
        (:func:`~survey_weights.models.plackett_luce.fit_plackett_luce` with the same `npseudo`). Non-numeric
        (or boolean) columns are dummy coded with the first level as reference (the category order of a
        ``Categorical``, else sorted); numeric columns enter linearly.
    npseudo : float, default 0.5
        Pseudo-comparisons of each item against a ghost item, placed at the *reference respondent* (intercept
        only): they keep the intercepts finite and shrink them slightly; covariate effects are not penalised.
    ties : {"davidson", "half", None}, default "davidson"
        Tie handling for PairedComparisons (ignored for Rankings, whose ties always follow Davidson-Luce).
    standardize : bool, default True
        Centre and scale numeric covariates (coefficients per standard deviation; intercept at the mean).
    max_iter, tol : int, float
        Newton iterations and step tolerance.

    Returns
    -------
    WorthRegressionResult
        ``coef``/``se`` (items x terms, zero-sum over items), ``tie_params``, ``loglik``, ``lr_test()``,
        ``predict_weights()``, ``weights`` (of the covariate cells), ``to_frame()``, ``summary()``, ``plot()``,
        ``profiles()``.

    Raises
    ------
    ValueError
        Unknown, missing-valued or constant covariates (naming the covariate and respondent ids).

    Notes
    -----
    Respondent i's log-worth of item j is ``x_i' beta_j``; the model is identified by letting only
    ``n_items - 1`` items carry free slopes and (with ``npseudo = 0``) intercepts, and is *reported* with
    zero-sum constraints over items for every term. With one categorical covariate and ``npseudo = 0`` the model
    is saturated and reproduces separate per-group fits' log-worths (tie parameters are shared, however).
    """
    check_scalar(npseudo, "npseudo", min_val=0.0)
    check_scalar(max_iter, "max_iter", kind=int, min_val=1)
    check_scalar(tol, "tol", min_val=0.0, include_min=False)
    covs = _check_covariates(data, covariates)
    st = _stages(data, ties=ties)
    terms = _make_terms(data.covariates, covs, standardize=standardize) if covs else []
    frame = data.covariates if data.covariates is not None else pd.DataFrame(index=data.respondent_ids)
    X = _model_matrix(frame, terms)
    names = ["(Intercept)"] + [c for t in terms for c in t.columns]
    _check_rank(X, names)
    J, q = data.n_items, X.shape[1]
    free = np.zeros((J, q), bool)
    free[1:, :] = True
    free[0, 0] = npseudo > 0
    design = _build_design(st, X, free, data.n_respondents, npseudo=float(npseudo), aggregate=False)
    theta, info, n_iter, ok = _newton(design, data.respondent_weights, max_iter=max_iter, tol=tol)
    if not ok:
        warnings.warn(f"The regression fit did not converge in {n_iter} Newton iterations (max_iter={max_iter}); "
                      "estimates may be inaccurate (often a covariate level in which an item is never or always "
                      "chosen). Fix: merge sparse levels, drop the covariate, or raise `max_iter`.",
                      ConvergenceWarning, stacklevel=2)
    lin, W = design.weights(data.respondent_weights, pseudo=False)
    with single_thread_blas(True):
        ll, _, info_data = design.evaluate(theta, lin, W)
    V = _vcov(info, info_data, drop=0 if npseudo > 0 else None)
    nb = design.n_item_params
    G = np.kron(np.eye(J) - 1.0 / J, np.eye(q))[:, free.ravel()]
    B = (G @ theta[:nb]).reshape(J, q)
    Vb = G @ V[:nb, :nb] @ G.T
    items = list(data.items)
    coef = pd.DataFrame(B, index=pd.Index(items, name="item"), columns=names)
    se = pd.DataFrame(np.sqrt(np.clip(np.diag(Vb), 0, None)).reshape(J, q), index=coef.index, columns=names)
    mi = pd.MultiIndex.from_product([items, names], names=["item", "term"])
    tie = pd.Series(np.exp(theta[nb:]), index=pd.Index(design.tie_orders, name="tie_order"), name="delta")

    def refit(sub: list[Any]) -> WorthRegressionResult:
        return fit_regression(data, sub, npseudo=npseudo, ties=ties, standardize=standardize,
                              max_iter=max_iter, tol=tol)

    return WorthRegressionResult(tuple(data.items), covs, names, coef, se, pd.DataFrame(Vb, index=mi, columns=mi),
                                 tie, ll, data.n_respondents, float(npseudo), ok, n_iter, terms, refit)
