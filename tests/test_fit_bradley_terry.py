"""fit_bradley_terry: ties options, equivalence with PL on 2-item rankings, methods, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey_weights import PairedComparisons, Rankings
from survey_weights.models import fit_bradley_terry, fit_plackett_luce


def _pairs(rng, n=6, P=400, ties=True):
    beta = np.linspace(-1, 1, n)
    a = rng.integers(0, n, P)
    b = (a + rng.integers(1, n, P)) % n
    pa = np.exp(beta[a]) / (np.exp(beta[a]) + np.exp(beta[b]) + 0.5 * np.exp((beta[a] + beta[b]) / 2))
    pt = 0.5 * np.exp((beta[a] + beta[b]) / 2) / (np.exp(beta[a]) + np.exp(beta[b]) +
                                                  0.5 * np.exp((beta[a] + beta[b]) / 2))
    u = rng.random(P)
    win = np.where(u < pa, a, np.where(u < pa + pt, -1, b))
    if not ties:
        win = np.where(win < 0, a, win)
    items = [f"i{k}" for k in range(n)]
    df = pd.DataFrame({"a": [items[k] for k in a], "b": [items[k] for k in b],
                       "winner": [items[k] if k >= 0 else np.nan for k in win], "resp": np.arange(P) // 2})
    return df, items


def test_bt_equals_pl_with_ties(rng):
    df, items = _pairs(rng)
    pc = PairedComparisons.from_long(df, "a", "b", "winner", respondent="resp", items=items)
    bt = fit_bradley_terry(pc, ties="davidson")
    ords = [[w, (lo if w == hi else hi)] if isinstance(w, str) else [(lo, hi)]
            for lo, hi, w in zip(df.a, df.b, df.winner)]
    pl = fit_plackett_luce(Rankings.from_orderings(ords, items=items, respondent_ids=df.resp.tolist()))
    np.testing.assert_allclose(bt.log_worth, pl.log_worth, atol=1e-8)
    np.testing.assert_allclose(bt.se, pl.se, atol=1e-8)
    np.testing.assert_allclose(bt.tie_params, pl.tie_params, rtol=1e-8)
    assert bt.loglik == pytest.approx(pl.loglik)
    assert bt.n_rankings == len(df)


def test_ties_options(rng):
    df, items = _pairs(rng)
    pc = PairedComparisons.from_long(df, "a", "b", "winner", respondent="resp", items=items)
    with pytest.raises(ValueError, match="ties='davidson'"):
        fit_bradley_terry(pc)
    half = fit_bradley_terry(pc, ties="half")
    assert len(half.tie_params) == 0
    # half = every tie replaced by one win each with weight 1/2
    t = df[df.winner.isna()]
    dup = pd.concat([df[df.winner.notna()].assign(w=1.0), t.assign(winner=t.a, w=0.5), t.assign(winner=t.b, w=0.5)])
    pc2 = PairedComparisons.from_long(dup, "a", "b", "winner", weight="w", items=items)
    np.testing.assert_allclose(fit_bradley_terry(pc2).log_worth, half.log_worth, atol=1e-9)
    with pytest.raises(ValueError, match="ties"):
        fit_bradley_terry(pc, ties="rao-kupper")


def test_methods_agree_and_mm(rng):
    df, items = _pairs(rng, ties=False)
    pc = PairedComparisons.from_long(df, "a", "b", "winner", items=items)
    a = fit_bradley_terry(pc, npseudo=0)
    b = fit_bradley_terry(pc, npseudo=0, method="mm", tol=1e-11)
    c = fit_bradley_terry(pc, npseudo=0, method="lbfgs", tol=1e-10)
    np.testing.assert_allclose(a.log_worth, b.log_worth, atol=1e-7)
    np.testing.assert_allclose(a.log_worth, c.log_worth, atol=1e-5)
    assert a.summary().info["comparisons"] == len(df)


def test_disconnected_bt():
    df = pd.DataFrame({"a": ["x", "x", "y"], "b": ["y", "z", "z"], "winner": ["x", "x", "y"]})
    pc = PairedComparisons.from_long(df, "a", "b", "winner")
    with pytest.raises(ValueError, match="never lose: x"):
        fit_bradley_terry(pc, npseudo=0)
    assert fit_bradley_terry(pc).converged


@pytest.mark.parametrize("ties", [None, "davidson"])
def test_bt_start_and_result_consistency(rng, ties):
    """The win-rate start reaches the same optimum as the zero start; the result's log-likelihoods and
    covariance (reusing Newton's Cholesky factor) equal direct computations."""
    from survey_weights.models import fit_design
    from survey_weights.models._likelihood import BTDesign

    df, items = _pairs(rng, n=12, P=3000, ties=ties is not None)
    pc = PairedComparisons.from_long(df, "a", "b", "winner", items=items)
    for npseudo in (0.0, 0.5):
        d = BTDesign.from_paired(pc, npseudo=npseudo, ties=ties)
        warm = fit_design(d)
        cold = fit_design(d, start=np.zeros(d.n_params))
        assert warm.converged and cold.converged and warm.n_iter <= cold.n_iter
        np.testing.assert_allclose(warm.theta - warm.theta[0], cold.theta - cold.theta[0], atol=1e-8)
        np.testing.assert_allclose(warm.vcov_full, cold.vcov_full, rtol=1e-5, atol=1e-10)
        n, p = d.n_items, d.n_params
        assert warm.loglik == pytest.approx(d.loglik(warm.theta, pseudo=False), rel=1e-12)
        assert warm.null_loglik == pytest.approx(d.loglik(np.zeros(p), pseudo=False), rel=1e-12)
        if npseudo == 0:
            Hd = warm.hessian
            V = np.zeros((p, p))
            V[1:, 1:] = np.linalg.inv(-Hd[1:, 1:])
            C = np.eye(p)
            C[:n, :n] -= 1.0 / n
            np.testing.assert_allclose(warm.vcov_full.to_numpy(), C @ V @ C.T, rtol=1e-8, atol=1e-12)


def _big_pairs(rng, n, P=None, ring=False):
    """Tie-free comparisons of many items: random opponents (well connected) or a ring (poorly conditioned)."""
    beta = rng.normal(size=n) * 0.7
    if ring:  # each item meets only its neighbours: the Hessian is a cycle Laplacian (condition ~ n^2)
        a = np.repeat(np.arange(n), 30)
        b = (a + 1) % n
    else:
        a = rng.integers(0, n, P)
        b = (a + rng.integers(1, n, P)) % n
    win = rng.random(len(a)) < 1 / (1 + np.exp(beta[b] - beta[a]))
    w, lo = np.where(win, a, b), np.where(win, b, a)
    if ring:  # make sure every neighbour pair has a win each way (strongly connected)
        w = np.concatenate([w, np.arange(n), (np.arange(n) + 1) % n])
        lo = np.concatenate([lo, (np.arange(n) + 1) % n, np.arange(n)])
    return PairedComparisons._from_arrays(list(range(n)), w, lo, np.ones(len(w)), np.ones(len(w)),
                                          np.arange(len(w)), np.arange(len(w)))


@pytest.mark.parametrize("ring, npseudo", [(False, 0.0), (True, 0.0), (False, 0.5)])
def test_large_designs_conjugate_gradients_match_cholesky(rng, monkeypatch, ring, npseudo):
    """Newton systems of >= _PCG_MIN_DIM free parameters are solved by preconditioned CG; on a well-connected
    network CG is used throughout, on a ring it fails and the fit falls back to Cholesky.  Either way the fit
    equals the all-Cholesky fit."""
    from survey_weights.models import _optim

    pc = _big_pairs(rng, 420, P=40_000, ring=ring)
    calls = {"cg": 0, "cg_failed": 0}
    real_pcg = _optim._pcg

    def spy(*args, **kwargs):
        out = real_pcg(*args, **kwargs)
        calls["cg"] += 1
        calls["cg_failed"] += out is None
        return out

    monkeypatch.setattr(_optim, "_pcg", spy)
    fast = fit_bradley_terry(pc, npseudo=npseudo)
    assert calls["cg"] >= 1
    if ring:
        assert calls["cg_failed"] == 1 and calls["cg"] == 1  # failed once, then Cholesky for the rest
    else:
        assert calls["cg_failed"] == 0 and calls["cg"] == fast.n_iter
    monkeypatch.setattr(_optim, "_PCG_MIN_DIM", 10**9)
    chol = fit_bradley_terry(pc, npseudo=npseudo)
    assert fast.converged and chol.converged
    np.testing.assert_allclose(fast.log_worth, chol.log_worth, atol=1e-8)
    assert fast.loglik == pytest.approx(chol.loglik, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(fast.se, chol.se, rtol=1e-7)
    # the optimum: the gradient vanishes
    from survey_weights.models._likelihood import BTDesign

    d = BTDesign.from_paired(pc, npseudo=npseudo, ties=None)
    assert np.abs(d.grad(fast.theta)).max() < 1e-6


def test_covariance_is_computed_on_first_access_and_pickles(rng):
    import pickle

    df, items = _pairs(rng, n=6, P=400, ties=True)
    pc = PairedComparisons.from_long(df, "a", "b", "winner", respondent="resp")
    res = fit_bradley_terry(pc, ties="davidson")
    clone = pickle.loads(pickle.dumps(res))  # before the covariance exists
    assert res._cov is not None
    V = res.vcov_full
    assert res._cov is None  # the factor it held is released once the covariance is cached
    assert res.vcov_full is V
    np.testing.assert_allclose(clone.vcov_full, V, rtol=1e-14, atol=1e-16)
    assert list(V.index) == items + ["tie2"]
    again = pickle.loads(pickle.dumps(res))  # after: the cached covariance travels with it
    np.testing.assert_allclose(again.se, res.se)
