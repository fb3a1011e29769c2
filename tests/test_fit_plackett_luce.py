"""fit_plackett_luce: methods agree, invariances, recovery, result API, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from survey_weights import Rankings
from survey_weights.exceptions import ConvergenceWarning
from survey_weights.models import fit_design, fit_plackett_luce
from survey_weights.models._likelihood import PLDesign
from survey_weights.models._optim import start_theta
from survey_weights.synthetic.sampling import sample_pl_rankings

BETA = np.array([0.8, 0.3, 0.0, -0.4, -0.7])


@pytest.fixture(scope="module")
def tied():
    return sample_pl_rankings(BETA, 300, delta={2: 0.6, 3: 0.2}, items=list("abcde"), rng=1)


@pytest.fixture(scope="module")
def tiefree():
    return sample_pl_rankings(BETA, 200, items=list("abcde"), size=4, rng=2)


def test_newton_mm_lbfgs_agree_tie_free(tiefree):
    for npseudo in (0.0, 0.5):
        a = fit_plackett_luce(tiefree, npseudo=npseudo)
        b = fit_plackett_luce(tiefree, npseudo=npseudo, method="mm", tol=1e-10)
        c = fit_plackett_luce(tiefree, npseudo=npseudo, method="lbfgs", tol=1e-10)
        assert a.converged and b.converged and c.converged
        np.testing.assert_allclose(a.log_worth, b.log_worth, atol=1e-6)
        np.testing.assert_allclose(a.log_worth, c.log_worth, atol=1e-5)
        np.testing.assert_allclose(a.se, b.se, atol=1e-5)


def test_newton_lbfgs_agree_with_ties(tied):
    a = fit_plackett_luce(tied)
    c = fit_plackett_luce(tied, method="lbfgs", tol=1e-10)
    assert list(a.tie_params.index) == ["tie2", "tie3"]
    np.testing.assert_allclose(a.log_worth, c.log_worth, atol=1e-5)
    np.testing.assert_allclose(a.tie_params, c.tie_params, rtol=1e-4)
    assert a.loglik >= c.loglik - 1e-8


def test_recovery_of_truth():
    r = sample_pl_rankings(BETA, 800, delta={2: 0.5}, items=list("abcde"), rng=3)
    res = fit_plackett_luce(r, npseudo=0)
    z = (res.log_worth.to_numpy() - (BETA - BETA.mean())) / res.se.to_numpy()
    assert np.all(np.abs(z) < 4)
    assert abs(np.log(res.tie_params["tie2"]) - np.log(0.5)) < 4 * res.tie_se["tie2"]


def test_invariances(tiefree, tied, rng):
    base = fit_plackett_luce(tied)
    # shuffled respondents
    perm = rng.permutation(tied.n_rankings)
    ords = _orderings(tied)
    r2 = Rankings.from_orderings([ords[i] for i in perm], items=list("abcde"))
    np.testing.assert_allclose(fit_plackett_luce(r2).log_worth, base.log_worth, atol=1e-9)
    # relabelled items permute the results
    r3 = Rankings.from_orderings(ords, items=list("edcba"))
    res3 = fit_plackett_luce(r3)
    np.testing.assert_allclose(res3.log_worth.loc[list("abcde")], base.log_worth, atol=1e-9)
    np.testing.assert_allclose(res3.vcov.loc[list("abcde"), list("abcde")], base.vcov, atol=1e-9)
    # frequency weights = duplicated rows
    k = rng.integers(1, 4, size=tied.n_rankings)
    rw = Rankings.from_orderings(ords, items=list("abcde"), weights=k)
    rd = Rankings.from_orderings([o for o, kk in zip(ords, k) for _ in range(kk)], items=list("abcde"))
    a, b = fit_plackett_luce(rw), fit_plackett_luce(rd)
    np.testing.assert_allclose(a.log_worth, b.log_worth, atol=1e-9)
    np.testing.assert_allclose(a.se, b.se, atol=1e-9)
    assert a.loglik == pytest.approx(b.loglik)
    # fast weighted refit through the design
    d = PLDesign.from_rankings(tied).reweight(k.astype(float))
    np.testing.assert_allclose(fit_design(d, start=base.theta).log_worth, a.log_worth, atol=1e-8)


def test_subranking_vs_topk_differ():
    ords = [["a", "b"], ["b", "c"], ["c", "a", "d"], ["d", "b"], ["a", "d", "c"]]
    sub = fit_plackett_luce(Rankings.from_orderings(ords, top_k=False))
    top = fit_plackett_luce(Rankings.from_orderings(ords, top_k=True))
    assert sub.loglik > top.loglik  # top-k adds more (unranked-is-worse) information to explain
    assert not np.allclose(sub.log_worth, top.log_worth)
    # a top-(n-1) ranking is the full ranking completed with the one unranked item last
    ords3 = [o for o in ords if len(o) == 3] + [["b", "a", "c"], ["d", "c", "b"]]
    full = [o + [i for i in "abcd" if i not in o] for o in ords3]
    comp = fit_plackett_luce(Rankings.from_orderings(full))
    top3 = fit_plackett_luce(Rankings.from_orderings(ords3, top_k=True))
    np.testing.assert_allclose(comp.log_worth, top3.log_worth, atol=1e-9)
    assert comp.loglik == pytest.approx(top3.loglik)


def test_result_api(tied):
    res = fit_plackett_luce(tied)
    assert res.weights.sum() == pytest.approx(1.0)
    assert res.log_worth.sum() == pytest.approx(0.0, abs=1e-12)
    assert res.vcov.shape == (5, 5) and res.vcov_full.shape == (7, 7)
    np.testing.assert_allclose(res.vcov.to_numpy().sum(1), 0, atol=1e-10)
    assert res.deviance == pytest.approx(-2 * res.loglik)
    assert res.aic == pytest.approx(res.deviance + 2 * 6)
    assert res.bic == pytest.approx(res.deviance + np.log(300) * 6)
    assert res.null_loglik < res.loglik
    c = res.coef("c")
    assert c.loc["c", "estimate"] == 0 and np.isnan(c.loc["c", "se"])
    s = res.summary()
    assert "tie2" in str(s) and "<table" in s._repr_html_() and s.as_text() == str(s)
    df = res.to_frame()
    assert list(df.columns) == ["item", "weight", "ci_low", "ci_high", "weight_se", "log_worth", "se", "quasi_se"]
    assert np.all((df.ci_low < df.weight) & (df.weight < df.ci_high))
    ax = res.plot()
    assert ax is not None
    # probabilities of all weak orderings of 3 items sum to 1 (sub-ranking of a, b, c)
    tot = 0.0
    for ordering in _weak_orderings(["a", "b", "c"]):
        tot += res.prob_ordering(ordering)
    assert tot == pytest.approx(1.0)
    pa, pt, pb = res.prob_pairwise("a", "e")
    assert pa + pt + pb == pytest.approx(1.0) and pa > pb
    with pytest.raises(AttributeError):
        res.loglik = 0  # frozen


def test_errors(tiefree, tied):
    with pytest.raises(ValueError, match="npseudo"):
        fit_plackett_luce(tiefree, npseudo=-1)
    with pytest.raises(ValueError, match="method"):
        fit_plackett_luce(tiefree, method="bfgs")
    with pytest.raises(ValueError, match="tie-free"):
        fit_plackett_luce(tied, method="mm")
    with pytest.raises(TypeError, match="Rankings"):
        fit_plackett_luce([["a", "b"]])
    r = Rankings.from_orderings([["a", "b", "c"], ["b", "c"], ["a", "c"]])
    with pytest.raises(ValueError, match="never lose: a"):
        fit_plackett_luce(r, npseudo=0)
    assert fit_plackett_luce(r).converged  # fine with pseudo-comparisons


def test_convergence_warning(tiefree):
    with pytest.warns(ConvergenceWarning):
        res = fit_plackett_luce(tiefree, max_iter=1)
    assert not res.converged


def test_scores_for_trees(tied):
    """Per-respondent estfun on a reference-item scale sums to ~0 at the MLE."""
    res = fit_plackett_luce(tied, npseudo=0)
    d = PLDesign.from_rankings(tied, npseudo=0)
    S = d.scores(res.theta)
    assert S.shape == (tied.n_respondents, 7)
    np.testing.assert_allclose(S.sum(0), 0, atol=1e-6)


def _orderings(r):
    out = []
    for k in range(r.n_rankings):
        it = r._item[r._ptr[k]:r._ptr[k + 1]]
        rk = r._rank[r._ptr[k]:r._ptr[k + 1]]
        groups = []
        for g in np.unique(rk):
            m = [r.items[i] for i in it[rk == g]]
            groups.append(m[0] if len(m) == 1 else tuple(m))
        out.append(groups)
    return out


def _weak_orderings(items):
    n = len(items)
    res = []
    for labels in itertools.product(range(n), repeat=n):
        used = sorted(set(labels))
        if used != list(range(len(used))):
            continue
        res.append([tuple(i for i, lab in zip(items, labels) if lab == g) for g in used])
    return res


def test_newton_stops_at_floating_point_noise():
    """Regression: Newton once kept halving steps below the objective's rounding noise and never converged."""
    orders = ["cebda", "bcead", "cebda", "cbeda", "cbeda", "cedba", "bacde", "dcbae", "cedab", "cabde",
              "adecb", "cdeba", "dceba", "cdeba", "decba"]
    r = Rankings.from_orderings([list(s) for s in orders], items=list("abcde"))
    newton = fit_plackett_luce(r)
    lbfgs = fit_plackett_luce(r, method="lbfgs")
    assert newton.converged and newton.n_iter < 15
    np.testing.assert_allclose(newton.log_worth, lbfgs.log_worth, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# fast paths (performance work)
def _check_result_consistency(res, design):
    """Log-likelihoods derived without extra data passes, and the covariance (possibly from the optimiser's
    Cholesky factor) equal the direct computations."""
    n, p = design.n_items, design.n_params
    assert res.loglik == pytest.approx(design.loglik(res.theta, pseudo=False), rel=1e-12, abs=1e-9)
    assert res.null_loglik == pytest.approx(design.loglik(np.zeros(p), pseudo=False), rel=1e-12)
    Hd = design.hess(res.theta, pseudo=False) if res.hessian is None else res.hessian.copy()
    if design.npseudo > 0:
        Hd -= design.penalty(res.theta, 2)[2]
    V = np.zeros((p, p))
    V[1:, 1:] = np.linalg.inv(-Hd[1:, 1:])
    C = np.eye(p)
    C[:n, :n] -= 1.0 / n
    np.testing.assert_allclose(res.vcov_full.to_numpy(), C @ V @ C.T, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("npseudo", [0.0, 0.5])
def test_result_consistency(tiefree, tied, npseudo):
    for r in (tiefree, tied):
        d = PLDesign.from_rankings(r, npseudo=npseudo)
        _check_result_consistency(fit_design(d), d)


def test_warm_start_on_large_tie_free_data(monkeypatch):
    """Large tie-free designs start Newton from a subsample fit: same optimum, fewer iterations."""
    from survey_weights.models import _likelihood

    monkeypatch.setattr(_likelihood, "_WARM_ROWS", 300)
    rng = np.random.default_rng(7)
    beta = rng.normal(size=8)
    R = 3000
    idx = np.argsort(-(beta + rng.gumbel(size=(R, 8))), axis=1)
    r = Rankings._from_arrays(list(range(8)), np.arange(0, R * 8 + 1, 8), idx.ravel(), np.tile(np.arange(1, 9), R),
                              np.zeros(R, bool), np.arange(R), np.arange(R))
    for npseudo in (0.0, 0.5):
        d = PLDesign.from_rankings(r, npseudo=npseudo)
        st = start_theta(d)
        assert np.abs(st).max() > 0.1  # not the zero start
        warm = fit_design(d)
        cold = fit_design(d, start=np.zeros(d.n_params))
        assert warm.converged and cold.converged and warm.n_iter < cold.n_iter
        np.testing.assert_allclose(warm.log_worth, cold.log_worth, atol=1e-8)
        np.testing.assert_allclose(warm.se, cold.se, rtol=1e-6)
        assert warm.loglik == pytest.approx(cold.loglik, rel=1e-12)
        _check_result_consistency(warm, d)


def test_disconnected_with_many_repeated_edges():
    """check_connected keeps the distinct edges of many rankings and still names the culprits."""
    ords = [["a", "b", "c"], ["b", "a", "c"]] * 200
    r = Rankings.from_orderings(ords)
    with pytest.raises(ValueError, match="never win: c"):
        fit_plackett_luce(r, npseudo=0)


def test_reference_equal_to_the_mean_of_several_items():
    """coef(ref=[...]) / vcov(ref=...) as PlackettLuce::coef(ref = 2:3): the mean log-worth of the reference
    items is 0; one item in a list is that item as reference; all items is the zero-sum scale."""
    r = Rankings.from_orderings([["a", ("b", "c"), "d"], ["b", "a", "d"], [("a", "d"), "c"], ["c", "b", "a", "d"],
                                 ["d", "c", "a"]])
    fit = fit_plackett_luce(r)
    b, V = fit.log_worth.to_numpy(), fit.vcov.to_numpy()
    c = fit.coef(ref=["b", "c"])
    C = np.eye(4) - np.outer(np.ones(4), [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(c["estimate"].iloc[:4], C @ b, atol=1e-12)
    np.testing.assert_allclose(c["se"].iloc[:4], np.sqrt(np.diag(C @ V @ C.T)), atol=1e-12)
    assert c.loc[["b", "c"], "estimate"].mean() == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(fit.vcov(ref=["b", "c"]).to_numpy(), C @ V @ C.T, atol=1e-12)
    pd.testing.assert_frame_equal(fit.coef(ref=["a"]), fit.coef(ref="a"))
    np.testing.assert_allclose(fit.coef(ref=list("abcd"))["estimate"], fit.coef()["estimate"], atol=1e-12)
    np.testing.assert_allclose(fit.vcov(ref=None).to_numpy(), V)
    assert fit.summary(ref=["b", "c"]) is not None
    with pytest.raises(ValueError, match="ref"):
        fit.coef(ref=["b", "zz"])
