"""Gradient, Hessian, scores and engine agreement of the vectorised likelihoods."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime, check_grad

from survey_weights.models._likelihood import BTDesign, PLDesign
from survey_weights.synthetic.sampling import sample_pl_arrays


def random_arrays(rng, R, n, *, ties=False, topk_frac=0.3, min_len=2, max_len=None):
    max_len = n if max_len is None else max_len
    ptr, item, rank, topk = [0], [], [], []
    for _ in range(R):
        m = int(rng.integers(min_len, max_len + 1))
        its = rng.permutation(n)[:m]
        if ties:
            _, rk = np.unique(np.sort(rng.integers(1, m + 1, size=m)), return_inverse=True)
            rk = rk + 1
        else:
            rk = np.arange(1, m + 1)
        item += list(its)
        rank += list(rk)
        ptr.append(len(item))
        topk.append(rng.random() < topk_frac)
    resp = np.sort(rng.integers(0, max(1, R // 2), size=R))
    _, resp = np.unique(resp, return_inverse=True)
    N = resp.max() + 1
    return np.array(ptr), np.array(item), np.array(rank), np.array(topk), resp, rng.random(N) + 0.5


def fd_hessian(d, th):
    return np.array([approx_fprime(th, lambda t, i=i: d.grad(t)[i], 1e-6) for i in range(len(th))])


CASES = [
    ("dense", False, 6, 2, None),  # sub-rankings + top-k, item-space Hessian
    ("generic", False, 6, 2, None),
    ("generic", True, 6, 2, None),  # ties of orders up to 6
    ("dense", False, 20, 2, 4),  # many items, short rankings: position-space Hessian branch
]


@pytest.mark.parametrize("engine,ties,n,min_len,max_len", CASES)
@pytest.mark.parametrize("npseudo", [0.0, 0.5])
def test_pl_gradient_hessian_scores(rng, engine, ties, n, min_len, max_len, npseudo):
    arr = random_arrays(rng, 50, n, ties=ties, min_len=min_len, max_len=max_len)
    d = PLDesign.from_arrays(n, *arr, npseudo=npseudo, engine=engine)
    if ties:
        assert len(d.tie_orders) >= 2
    th = rng.normal(size=d.n_params) * 0.5
    assert check_grad(d.loglik, d.grad, th) < 1e-4 * max(1, np.abs(d.grad(th)).max())
    H = d.hess(th)
    np.testing.assert_allclose(H, H.T, atol=1e-10)
    np.testing.assert_allclose(fd_hessian(d, th), H, atol=2e-4)
    S = d.scores(th)
    assert S.shape == (d.n_respondents, d.n_params)
    np.testing.assert_allclose(S.sum(0), d.grad(th, pseudo=False), atol=1e-9)


def test_engines_agree_tie_free(rng):
    arr = random_arrays(rng, 80, 7)
    d1 = PLDesign.from_arrays(7, *arr, npseudo=0.5, engine="dense")
    d2 = PLDesign.from_arrays(7, *arr, npseudo=0.5, engine="generic")
    th = rng.normal(size=7)
    for a, b in zip(d1.fgh(th), d2.fgh(th)):
        np.testing.assert_allclose(a, b, atol=1e-9)
    np.testing.assert_allclose(d1.scores(th), d2.scores(th), atol=1e-10)


def test_ties_d2_d3_sampled_and_unobserved_order(rng):
    # only orders 1 and 3 observed: order 2 has delta = 0 and no parameter
    ptr = np.array([0, 3, 6, 9])
    item = np.array([0, 1, 2, 1, 2, 3, 3, 0, 1])
    rank = np.array([1, 1, 1, 1, 2, 3, 1, 2, 3])
    d = PLDesign.from_arrays(4, ptr, item, rank, np.zeros(3, bool), np.arange(3), np.ones(3), npseudo=0)
    assert d.tie_orders == (3,)
    th = np.array([0.1, -0.2, 0.3, 0.0, np.log(0.4)])
    # hand computation: ranking 1: {0,1,2} tied from {0,1,2}: alternatives singletons + the triple
    b = th[:4]
    den = np.exp(b[:3]).sum() + 0.4 * np.exp(b[:3].mean())
    l1 = np.log(0.4 * np.exp(b[:3].mean()) / den)
    l2 = b[1] - np.log(np.exp(b[[1, 2, 3]]).sum() + 0.4 * np.exp(b[[1, 2, 3]].mean())) + b[2] - np.log(
        np.exp(b[[2, 3]]).sum())
    l3 = b[3] - np.log(np.exp(b[[3, 0, 1]]).sum() + 0.4 * np.exp(b[[3, 0, 1]].mean())) + b[0] - np.log(
        np.exp(b[[0, 1]]).sum())
    assert d.loglik(th) == pytest.approx(l1 + l2 + l3, abs=1e-12)
    a = sample_pl_arrays(rng.normal(size=5), 60, delta={2: 0.5, 3: 0.3}, rng=rng)
    d = PLDesign.from_arrays(5, a["ptr"], a["item"], a["rank"], a["top_k"], a["resp"], np.ones(60), npseudo=0.5)
    th = rng.normal(size=d.n_params) * 0.3
    assert check_grad(d.loglik, d.grad, th) < 1e-4
    np.testing.assert_allclose(fd_hessian(d, th), d.hess(th), atol=2e-4)


def test_reweight_equals_duplicated_rows(rng):
    n = 5
    arr = list(random_arrays(rng, 30, n, ties=True))
    ptr, item, rank, topk, resp, w = arr
    k = rng.integers(1, 4, size=w.shape)  # integer frequency weights
    d_w = PLDesign.from_arrays(n, ptr, item, rank, topk, resp, np.ones_like(w), npseudo=0.5).reweight(k)
    # duplicate every ranking of respondent i k_i times
    R = len(ptr) - 1
    reps = k[resp]
    rows = np.repeat(np.arange(R), reps)
    lens = np.diff(ptr)[rows]
    ptr2 = np.concatenate([[0], np.cumsum(lens)])
    item2 = np.concatenate([item[ptr[r]:ptr[r + 1]] for r in rows])
    rank2 = np.concatenate([rank[ptr[r]:ptr[r + 1]] for r in rows])
    d_dup = PLDesign.from_arrays(n, ptr2, item2, rank2, topk[rows], np.arange(len(rows)), np.ones(len(rows)),
                                 npseudo=0.5)
    th = rng.normal(size=d_w.n_params)
    for a, b in zip(d_w.fgh(th), d_dup.fgh(th)):
        np.testing.assert_allclose(a, b, atol=1e-9)


@pytest.mark.parametrize("ties", ["davidson", "half"])
def test_bt_gradient_hessian_scores(rng, ties):
    n, P = 6, 300
    a = rng.integers(0, n, P)
    b = (a + rng.integers(1, n, P)) % n
    o = rng.choice([-1, 0, 1], P)
    w = rng.integers(1, 4, P).astype(float)
    resp = np.arange(P) // 3
    d = BTDesign.from_arrays(n, a, b, o, w, resp, rng.random(P // 3) + 0.5, npseudo=0.5, ties=ties)
    assert d.tie_orders == ((2,) if ties == "davidson" else ())
    th = rng.normal(size=d.n_params) * 0.5
    assert check_grad(d.loglik, d.grad, th) < 1e-4
    np.testing.assert_allclose(fd_hessian(d, th), d.hess(th), atol=2e-4)
    np.testing.assert_allclose(d.scores(th).sum(0), d.grad(th, pseudo=False), atol=1e-9)
    np.testing.assert_allclose(d.scores(th, sparse=True).toarray(), d.scores(th))


def test_bt_equals_pl_on_two_item_rankings(rng):
    n, P = 5, 200
    a = rng.integers(0, n, P)
    b = (a + rng.integers(1, n, P)) % n
    o = rng.choice([-1, 0, 1], P)
    w = rng.integers(1, 4, P).astype(float)
    d = BTDesign.from_arrays(n, a, b, o, w, np.arange(P), np.ones(P), npseudo=0.5, ties="davidson")
    item = np.empty(2 * P, int)
    item[0::2] = np.where(o >= 0, a, b)
    item[1::2] = np.where(o >= 0, b, a)
    rank = np.ones(2 * P, int)
    rank[1::2] = np.where(o == 0, 1, 2)
    dp = PLDesign.from_arrays(n, np.arange(0, 2 * P + 1, 2), item, rank, np.zeros(P, bool), np.arange(P), w,
                              npseudo=0.5)
    th = rng.normal(size=n + 1)
    for x, y in zip(d.fgh(th), dp.fgh(th)):
        np.testing.assert_allclose(x, y, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------
# fast paths (performance work): each is checked against an independent or the general computation
def brute_force_loglik(n, ptr, item, rank, top_k, resp, rw, beta, log_delta):
    """Davidson-Luce log-likelihood stage by stage with explicit subsets (slow, independent reference)."""
    from itertools import combinations

    delta = {1: 1.0, **{k: np.exp(v) for k, v in log_delta.items()}}
    f = 0.0
    for r in range(len(ptr) - 1):
        its, rks = item[ptr[r]:ptr[r + 1]], rank[ptr[r]:ptr[r + 1]]
        remaining = set(its.tolist())
        if top_k[r]:
            remaining |= set(range(n))
        for g in np.unique(rks):
            C = its[rks == g].tolist()
            if len(remaining) >= 2:
                den = sum(d * np.exp(np.mean(beta[list(S)])) for k, d in delta.items()
                          for S in combinations(sorted(remaining), k))
                f += rw[resp[r]] * (np.log(delta[len(C)]) + np.mean(beta[C]) - np.log(den))
            remaining -= set(C)
    return f


@pytest.mark.parametrize("n", [40, 70])  # one 64-bit word with n > 32 (no key packing), two words
def test_generic_engine_many_items_vs_brute_force(rng, n):
    R = 25
    ptr, item, rank = [0], [], []
    for _ in range(R):
        m = int(rng.integers(2, 6))
        its = rng.choice(n, size=m, replace=False)
        _, rk = np.unique(np.sort(rng.integers(1, m + 1, size=m)), return_inverse=True)
        item += list(its)
        rank += list(rk + 1)
        ptr.append(len(item))
    ptr, item, rank = np.array(ptr), np.array(item), np.array(rank)
    top_k = np.zeros(R, bool)
    resp = np.arange(R)
    rw = rng.random(R) + 0.5
    d = PLDesign.from_arrays(n, ptr, item, rank, top_k, resp, rw, npseudo=0, engine="generic")
    th = rng.normal(size=d.n_params) * 0.5
    ld = {k: th[n + i] for i, k in enumerate(d.tie_orders)}
    ref = brute_force_loglik(n, ptr, item, rank, top_k, resp, rw, th[:n], ld)
    np.testing.assert_allclose(d.loglik(th), ref, rtol=1e-10)
    assert d.null_loglik() == pytest.approx(d.loglik(np.zeros(d.n_params), pseudo=False), rel=1e-12)
    # tie-free data: the generic engine (no packing for n > 32) agrees with the dense one
    arr = random_arrays(rng, 40, n, max_len=6)
    d1 = PLDesign.from_arrays(n, *arr, npseudo=0.5, engine="dense")
    d2 = PLDesign.from_arrays(n, *arr, npseudo=0.5, engine="generic")
    th = rng.normal(size=n)
    for a, b in zip(d1.fgh(th), d2.fgh(th)):
        np.testing.assert_allclose(a, b, atol=1e-9)


def test_generic_engine_sparse_branch_agrees_with_dense_engine(rng):
    """Many alternatives (n_alt * p > 3e6) switch the generic engine to a sparse X."""
    n = 60
    arr = random_arrays(rng, 150, n, min_len=55, topk_frac=0.0)
    d1 = PLDesign.from_arrays(n, *arr, npseudo=0.5, engine="dense")
    d2 = PLDesign.from_arrays(n, *arr, npseudo=0.5, engine="generic")
    assert not d2.engine.dense
    th = rng.normal(size=n) * 0.3
    for a, b in zip(d1.fgh(th), d2.fgh(th)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(d1.scores(th), d2.scores(th), atol=1e-9)


@pytest.mark.parametrize("max_len", [None, 4])  # item-space (min-kernel) and position-space Hessians
def test_tie_free_hessian_chunking_and_null(rng, monkeypatch, max_len):
    from survey_weights.models import _tie_free as _pl_engines

    n = 12
    arr = random_arrays(rng, 300, n, max_len=max_len, topk_frac=0.4)
    d = PLDesign.from_arrays(n, *arr, npseudo=0.0, engine="dense")
    dg = PLDesign.from_arrays(n, *arr, npseudo=0.0, engine="generic")
    th = rng.normal(size=n)
    H = d.hess(th)
    monkeypatch.setattr(_pl_engines, "_KMIN_CHUNK_ELEMS", 7 * n)  # 7-row chunks (and a ragged last one)
    monkeypatch.setattr(_pl_engines, "_CHUNK_ELEMS", 5 * 16)
    np.testing.assert_allclose(d.hess(th), H, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dg.hess(th), H, atol=1e-9)
    assert d.null_loglik() == pytest.approx(d.loglik(np.zeros(n), pseudo=False), rel=1e-12)
    assert dg.null_loglik() == pytest.approx(d.null_loglik(), rel=1e-12)


def test_tie_free_engine_extreme_worths(rng):
    """Values, gradients and Hessians stay finite when worths span 300 log units (beyond ~350 the squared
    inverse suffix sums overflow, as they always did)."""
    n = 8
    arr = random_arrays(rng, 100, n, topk_frac=0.3)
    d = PLDesign.from_arrays(n, *arr, npseudo=0.0, engine="dense")
    dg = PLDesign.from_arrays(n, *arr, npseudo=0.0, engine="generic")
    th = np.linspace(-150, 150, n)
    for a, b in zip(d.fgh(th), dg.fgh(th)):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("ties", [None, "davidson", "half"])
def test_bt_fast_paths(rng, ties):
    n, P = 7, 500
    a = rng.integers(0, n, P)
    b = (a + rng.integers(1, n, P)) % n
    o = rng.choice([-1, 0, 1] if ties else [-1, 1], P)
    w = rng.integers(1, 4, P).astype(float)
    d = BTDesign.from_arrays(n, a, b, o, w, np.arange(P), np.ones(P), npseudo=0.5, ties=ties)
    # the no-tie logistic path equals the PL design of the same comparisons as 2-item rankings
    item = np.empty(2 * P, int)
    item[0::2] = np.where(o >= 0, a, b)
    item[1::2] = np.where(o >= 0, b, a)
    rank = np.ones(2 * P, int)
    rank[1::2] = np.where(o == 0, 1, 2)
    if ties != "half":
        dp = PLDesign.from_arrays(n, np.arange(0, 2 * P + 1, 2), item, rank, np.zeros(P, bool), np.arange(P), w,
                                  npseudo=0.5)
        th = rng.normal(size=d.n_params)
        for x, y in zip(d.fgh(th), dp.fgh(th)):
            np.testing.assert_allclose(x, y, atol=1e-9)
    assert d.null_loglik() == pytest.approx(d.loglik(np.zeros(d.n_params), pseudo=False), rel=1e-12)
    # extreme differences: finite values and the right limits
    th = np.zeros(d.n_params)
    th[:n] = np.linspace(-400, 400, n)
    f, g, H = d.fgh(th)
    assert np.isfinite(f) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))
    # the start is finite and centred
    st = d.start()
    assert st.shape == (d.n_params,) and np.all(np.isfinite(st)) and abs(st[:n].sum()) < 1e-9


class _Pairs:
    """The arrays of a PairedComparisons object, as the engine's stage expansion reads them."""

    def __init__(self, n, a, b, o, w, resp, rw):
        self.n_items, self._a, self._b, self._outcome, self._w, self._resp = n, a, b, o, w, resp
        self.respondent_weights, self.n_respondents, self.items = rw, len(rw), tuple(range(n))


@pytest.mark.parametrize("ties", [None, "davidson", "half"])
@pytest.mark.parametrize("npseudo", [0.0, 0.7])
def test_pair_kernel_equals_general_kernel(rng, ties, npseudo):
    """The specialised Bradley-Terry kernel is the general choice-set kernel on two-item sets."""
    from survey_weights.models._choice import ChoiceDesign

    n, P = 7, 400
    a = rng.integers(0, n, P)
    b = (a + rng.integers(1, n, P)) % n
    o = rng.choice([-1, 1] if ties is None else [-1, 0, 1], P)
    w = rng.integers(1, 4, P).astype(float)
    resp = np.arange(P) // 4
    rw = rng.random(P // 4) + 0.5
    bt = BTDesign.from_arrays(n, a, b, o, w, resp, rw, npseudo=npseudo, ties=ties)
    cd = ChoiceDesign.from_data(_Pairs(n, a, b, o, w, resp, rw), npseudo=npseudo, ties=ties)
    assert bt.tie_orders == cd.tie_orders and bt.n_params == cd.n_params
    th = rng.normal(size=bt.n_params) * 0.5
    for x, y in zip(bt.fgh(th), cd.fgh(th)):
        np.testing.assert_allclose(x, y, atol=1e-9)
    np.testing.assert_allclose(bt.scores(th), cd.scores(th), atol=1e-9)
    assert bt.null_loglik() == pytest.approx(cd.null_loglik(), rel=1e-12)


def test_general_kernel_batches_equal_single_evaluations(rng):
    """The general kernel's batched evaluation (bootstrap) equals one evaluation per weight vector."""
    from survey_weights.models._choice import ChoiceDesign

    arr = random_arrays(rng, 120, 6)
    gen = PLDesign.from_arrays(6, *arr, npseudo=0.5, engine="generic")
    assert isinstance(gen.engine, ChoiceDesign)
    cd = gen.engine.with_npseudo(0.5)
    W = rng.random((4, cd.n_respondents)) * 2
    lin, S = cd.stats(W)
    Th = rng.normal(size=(4, cd.n_params))
    fb, gb, Hb = cd.fgh_batch(Th, lin, S)
    for k in range(4):
        f, g, H = cd.reweight(W[k]).fgh(Th[k])
        assert fb[k] == pytest.approx(f, rel=1e-12, abs=1e-9)
        np.testing.assert_allclose(gb[k], g, atol=1e-9)
        np.testing.assert_allclose(Hb[k], H, atol=1e-9)
