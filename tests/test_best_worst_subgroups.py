"""Regression, trees and ties pass-through on best-worst / tied data (issue 13: "groups, regression, trees and
bootstrap all working on best-worst data"): ChoiceDesign.from_best_worst is BestWorstDesign's likelihood; a tree
finds a planted split; fit_regression matches a direct scipy MLE of the same model; ties= reaches every refit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import survey_weights as sw
from survey_weights.models._best_worst import BestWorstDesign, ordered_pairs
from survey_weights.models._choice import ChoiceDesign
from survey_weights.synthetic import simulate_best_worst

ITEMS = list("abcde")


def _bw(df, covariates=None):
    return sw.Rankings.from_best_worst(df, respondent="respondent_id", task="task", shown="shown", best="best",
                                       worst="worst", covariates=covariates)


def _planted(n, *, seed, slope=None, group=None, n_tasks=6, k=4, design="balanced"):
    """Worths = base + z * slope + [grp == "A"] * group, with covariates z (numeric) and grp (A/B)."""
    rng = np.random.default_rng(seed)
    z, x = rng.normal(size=n), rng.integers(0, 2, n)
    v = np.tile([0.5, 0.0, -0.5, 0.2, -0.2], (n, 1))
    if slope is not None:
        v = v + np.outer(z, slope)
    if group is not None:
        v = v + np.outer(x, group)
    idx = pd.Index(np.arange(1, n + 1), name="respondent_id")
    cov = pd.DataFrame({"z": z, "grp": np.where(x == 1, "A", "B"), "noise": rng.normal(size=n)}, index=idx)
    df = simulate_best_worst(pd.DataFrame(v, index=idx, columns=ITEMS), n_tasks=n_tasks, items_per_task=k,
                             design=design, covariates=cov, seed=seed + 1)
    return df, cov


@pytest.mark.parametrize("model", ["maxdiff", "sequential", "marginal"])
def test_choice_design_is_the_best_worst_likelihood(model):
    df, _ = _planted(40, seed=1, n_tasks=5, design="random")
    short = df.index[::4]  # mixed set sizes (3 and 4 items)
    df["shown"] = [[b, w, next(x for x in s if x not in (b, w))] if i in short else s
                   for i, s, b, w in zip(df.index, df["shown"], df["best"], df["worst"])]
    r = _bw(df)
    th = np.random.default_rng(0).normal(size=5)
    for npseudo in (0.0, 0.5):
        a = BestWorstDesign.from_data(r, model=model, npseudo=npseudo)
        b = ChoiceDesign.from_best_worst(r, model=model, npseudo=npseudo)
        for x, y in zip(a.fgh(th), b.fgh(th)):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(a.scores(th), b.scores(th), atol=1e-12)
        np.testing.assert_allclose(a.respondent_loglik(th), b.respondent_loglik(th), atol=1e-12)
    num, counts = b.respondent_stats()  # sufficient statistics (trees, mixtures) reproduce the data part
    w = np.random.default_rng(1).random(r.n_respondents)
    np.testing.assert_allclose(b.reweight(w).fgh(th, pseudo=False)[0],
                               b.with_stats(w @ num, counts.T @ w).fgh(th, pseudo=False)[0], rtol=1e-12)


@pytest.mark.parametrize("model", ["maxdiff", "sequential"])
def test_tree_finds_the_planted_split(model):
    df, _ = _planted(500, seed=3, group=[-1.2, 0.4, 1.2, -0.6, 0.2])
    r = _bw(df, ["z", "grp", "noise"])
    tree = sw.fit_tree(r, ["z", "grp", "noise"], minsize=50, model=model)
    assert tree.n_leaves == 2 and tree.root.split.variable == "grp"
    assert tree.model == f"Best-worst ({model})"
    assert tree.root.tests["pvalue"].idxmin() == "grp" and tree.root.tests.loc["noise", "pvalue"] > 0.01
    for nid, fit in tree.leaf_fits.items():  # leaves refit by fit_best_worst, equal to the node's estimate
        sub = r.subset(tree.nodes[nid].positions)
        ref = sw.fit_best_worst(sub, model=model, npseudo=0.5)
        np.testing.assert_allclose(fit.weights, ref.weights, atol=1e-12)
        np.testing.assert_allclose(tree.weights_of(nid), ref.weights, atol=1e-6)
    none = sw.fit_tree(_bw(_planted(300, seed=4)[0], ["z", "grp"]), ["z", "grp"], minsize=50)
    assert none.n_leaves == 1  # no heterogeneity: no split


def _direct_mle(df, cov, items, gamma_u=None):
    """Maxdiff with log-worths x_i' B_j (+ gamma u_ij), item 0 the reference, by scipy BFGS (analytic gradient)."""
    J = len(items)
    pos = {x: j for j, x in enumerate(items)}
    X = np.column_stack([np.ones(len(cov)), cov["z"].to_numpy(), (cov["grp"] == "B").to_numpy(float)])
    row = {rid: i for i, rid in enumerate(cov.index)}
    R = np.array([row[i] for i in df["respondent_id"]])
    S = np.array([[pos[x] for x in s] for s in df["shown"]])
    pr, _ = ordered_pairs(S.shape[1])
    PB, PW = S[:, pr[:, 0]], S[:, pr[:, 1]]  # (T, pairs) items of every ordered pair
    bpos = np.array([list(s).index(b) for s, b in zip(df["shown"], df["best"])])
    wpos = np.array([list(s).index(w) for s, w in zip(df["shown"], df["worst"])])
    ch = bpos * (S.shape[1] - 1) + wpos - (wpos > bpos)
    q = X.shape[1]
    U = np.zeros((len(cov), J)) if gamma_u is None else gamma_u.loc[cov.index, items].to_numpy()
    T = np.arange(len(df))

    def nll(par):
        B = np.vstack([np.zeros(q), par[:(J - 1) * q].reshape(J - 1, q)])
        g = par[-1] if gamma_u is not None else 0.0
        V = X[R] @ B.T + g * U[R]  # (T, J)
        eta = V[T[:, None], PB] - V[T[:, None], PW]
        mx = eta.max(axis=1, keepdims=True)
        P = np.exp(eta - mx)
        P /= P.sum(axis=1, keepdims=True)
        f = -(eta[T, ch] - (mx[:, 0] + np.log(np.exp(eta - mx).sum(axis=1)))).sum()
        D = np.zeros((len(df), J))  # d loglik / d V
        np.add.at(D, (T, PB[T, ch]), 1.0)
        np.add.at(D, (T, PW[T, ch]), -1.0)
        np.add.at(D, (T[:, None].repeat(PB.shape[1], 1), PB), -P)
        np.add.at(D, (T[:, None].repeat(PB.shape[1], 1), PW), P)
        gB = (D.T @ X[R])[1:].ravel()
        grad = np.concatenate([gB, [np.sum(D * U[R])]]) if gamma_u is not None else gB
        return f, -grad

    n_par = (J - 1) * q + (gamma_u is not None)
    res = minimize(nll, np.zeros(n_par), jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 5000})
    B = np.vstack([np.zeros(q), res.x[:(J - 1) * q].reshape(J - 1, q)])
    return B - B.mean(axis=0), (res.x[-1] if gamma_u is not None else None), -res.fun


def test_regression_matches_a_direct_mle():
    df, cov = _planted(80, seed=5, slope=[0.6, -0.3, 0.0, -0.5, 0.2], n_tasks=5)
    r = _bw(df, ["z", "grp"])
    fit = sw.fit_regression(r, ["z", "grp"], npseudo=0.0, standardize=False)
    B, _, ll = _direct_mle(df, cov, list(r.items))
    np.testing.assert_allclose(fit.coef.to_numpy(), B, atol=1e-6)
    assert fit.loglik == pytest.approx(ll, abs=1e-8)
    assert list(fit.tie_params) == []
    # respondent x item covariates: the pair (b, w) gains gamma (u_ib - u_iw)
    u = pd.DataFrame(np.random.default_rng(2).integers(0, 2, (80, 5)), index=cov.index, columns=ITEMS)
    fit_u = sw.fit_regression(r, ["z", "grp"], npseudo=0.0, standardize=False, item_covariates={"own": u})
    B, gam, _ = _direct_mle(df, cov, list(r.items), gamma_u=u)
    np.testing.assert_allclose(fit_u.coef.to_numpy(), B, atol=1e-6)
    assert fit_u.effects["own"] == pytest.approx(gam, abs=1e-6)


def test_regression_recovers_the_covariate_effect_and_intercept_only_is_the_pooled_fit():
    slope = np.array([0.6, -0.3, 0.0, -0.5, 0.2])
    df, _ = _planted(1500, seed=6, slope=slope)
    r = _bw(df, ["z", "grp"])
    fit = sw.fit_regression(r, ["z"], npseudo=0.0, standardize=False)
    z = (fit.coef["z"] - (slope - slope.mean())) / fit.se["z"]
    assert np.all(np.abs(z) < 4), z
    with warnings.catch_warnings():
        warnings.simplefilter("error", sw.DataRecodeWarning)
        for model in ("maxdiff", "sequential"):
            f0 = sw.fit_regression(r, None, model=model)
            ref = sw.fit_best_worst(r, model=model, npseudo=0.5)
            np.testing.assert_allclose(f0.coef["(Intercept)"], ref.coef()["estimate"], atol=1e-8)
    with pytest.raises(ValueError, match="model"):
        sw.fit_regression(r, ["z"], model="logit")
    with pytest.raises(ValueError, match="best-worst"):
        sw.fit_regression(_tied_rankings(), None, model="maxdiff")


def _tied_rankings():
    df = sw.load_example_survey()
    return sw.Rankings.from_ratings(df, list(sw.SURVEY_CRITERIA), covariates=["severity", "age_group"])


def test_ties_pass_through_groups_bootstrap_and_tree():
    r = _tied_rankings()
    g = sw.fit_by_group(r, "severity", ties="efron")
    for lev in g.groups:
        sub = r.subset((r.covariates["severity"] == lev).to_numpy())
        ref = sw.fit_plackett_luce(sub, ties="efron")
        np.testing.assert_allclose(g.fits[lev].weights, ref.weights, atol=1e-12)
        assert getattr(g.fits[lev], "ties", "efron") == "efron"
    dav = sw.fit_by_group(r, "severity")
    assert not np.allclose(dav.weights.to_numpy(), g.weights.to_numpy(), atol=1e-4)
    b = sw.bootstrap(r, n_boot=20, seed=1, progress=False, ties="efron")
    np.testing.assert_allclose(b.estimate, sw.fit_plackett_luce(r, ties="efron", npseudo=0.5).weights, atol=1e-7)
    assert b.converged.all()
    bd = sw.bootstrap(r, n_boot=20, seed=1, progress=False)
    assert not np.allclose(b.estimate, bd.estimate, atol=1e-4)
    with pytest.raises(ValueError, match="ties"):
        sw.bootstrap(r, n_boot=2, progress=False, ties="nonsense")
    with pytest.raises(ValueError, match="Davidson-Luce only"):
        sw.fit_tree(r, ["severity"], minsize=30, ties="efron")
    with pytest.raises(ValueError, match="best-worst"):
        sw.fit_tree(r, ["severity"], minsize=30, model="maxdiff")
