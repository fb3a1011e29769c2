"""Tests of survey_weights.subgroups.regression (worth regression on respondent covariates)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad

from survey_weights.criteria import SURVEY_CRITERIA
from survey_weights.data import Rankings
from survey_weights.models import fit_bradley_terry, fit_plackett_luce
from survey_weights.models._choice import ChoiceDesign
from survey_weights.simulate import simulate_survey
from survey_weights.subgroups.regression import fit_regression


def sample_rankings(beta: np.ndarray, log_delta: dict, rng: np.random.Generator, covariates=None) -> Rankings:
    """Draw one Davidson-Luce weak ordering per row of `beta` (respondent log-worths)."""
    n, J = beta.shape
    ld = {1: 0.0, **log_delta}
    subsets = [c for k in sorted(ld) for c in itertools.combinations(range(J), k)]
    ptr, item, rank = [0], [], []
    for i in range(n):
        rem, g = set(range(J)), 1
        while rem:
            alts = [S for S in subsets if set(S) <= rem]
            lg = np.array([ld[len(S)] + beta[i, list(S)].mean() for S in alts])
            p = np.exp(lg - lg.max())
            S = alts[rng.choice(len(alts), p=p / p.sum())]
            item.extend(S)
            rank.extend([g] * len(S))
            rem -= set(S)
            g += 1
        ptr.append(len(item))
    return Rankings._from_arrays([f"i{j}" for j in range(J)], np.array(ptr), np.array(item), np.array(rank),
                                 np.zeros(n, bool), np.arange(n), np.arange(n), None, covariates)


@pytest.fixture(scope="module")
def survey() -> Rankings:
    df = simulate_survey(335, seed=7)
    df["severe"] = df["severity"] == "Severe"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Rankings.from_ratings(df, list(SURVEY_CRITERIA), respondent="respondent_id",
                                     covariates=["age_group", "severity", "att_trust", "severe", "population"])


@pytest.mark.parametrize("npseudo", [0.5, 0.0])
def test_no_covariates_equals_pooled_fit(survey: Rankings, npseudo: float) -> None:
    reg = fit_regression(survey, npseudo=npseudo)
    pooled = fit_plackett_luce(survey, npseudo=npseudo)
    np.testing.assert_allclose(reg.coef["(Intercept)"].to_numpy(), pooled.log_worth.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(reg.se["(Intercept)"].to_numpy(), pooled.se.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(reg.tie_params.to_numpy(), pooled.tie_params.to_numpy(), rtol=1e-6)
    assert reg.loglik == pytest.approx(pooled.loglik, abs=1e-6)
    w = reg.predict_weights(survey.covariates.head(3))
    np.testing.assert_allclose(w.to_numpy()[0], pooled.weights.to_numpy(), atol=1e-6)


@pytest.mark.parametrize("ties", ["davidson", "half"])
def test_no_covariates_equals_bradley_terry(survey: Rankings, ties: str) -> None:
    pairs = survey.to_pairwise()
    reg = fit_regression(pairs, ties=ties)
    bt = fit_bradley_terry(pairs, ties=ties)
    np.testing.assert_allclose(reg.coef["(Intercept)"].to_numpy(), bt.log_worth.to_numpy(), atol=1e-6)
    assert reg.loglik == pytest.approx(bt.loglik, abs=1e-6)


def test_saturated_categorical_equals_group_fits() -> None:
    """One categorical covariate, npseudo=0, tie-free data: the regression reproduces per-group fits exactly."""
    rng = np.random.default_rng(3)
    g = np.repeat(["a", "b", "c"], 120)
    beta = np.where((g == "a")[:, None], [0.5, 0, -0.5, 0.2], np.where((g == "b")[:, None], [-0.3, 0.3, 0, 0],
                                                                         [0, 0, 0.4, -0.4]))
    cov = pd.DataFrame({"g": g}, index=pd.Index(np.arange(len(g)), name="respondent"))
    r = sample_rankings(beta, {}, rng, cov)
    reg = fit_regression(r, ["g"], npseudo=0)
    for lv in ["a", "b", "c"]:
        fit = fit_plackett_luce(r.subset((cov["g"] == lv).to_numpy()), npseudo=0)
        pred = reg.predict_log_worth(pd.DataFrame({"g": [lv]})).iloc[0]
        np.testing.assert_allclose(pred.to_numpy(), fit.log_worth.to_numpy(), atol=1e-6)
    # the LR test of g equals the heterogeneity test of the group fits (same model pair)
    from survey_weights.subgroups.groups import fit_by_group

    gf = fit_by_group(r, "g", npseudo=0)
    assert reg.lr_test("g").statistic == pytest.approx(gf.lr_test().statistic, abs=1e-5)
    assert reg.lr_test("g").df == gf.lr_test().df == 6


def test_gradient_and_hessian(survey: Rankings) -> None:
    """The engine's covariate design: analytic gradient and Hessian (pseudo terms included) vs differences."""
    cov = survey.covariates
    X = np.column_stack([np.ones(len(cov)), (cov["severity"] == "Severe").to_numpy(float), cov["att_trust"] - 3])
    d = ChoiceDesign.from_data(survey, npseudo=0.5, covariates=X)
    assert d.n_params == 5 * 3 + len(d.tie_orders)
    rng = np.random.default_rng(0)
    th = rng.normal(0, 0.3, d.n_params)
    f = lambda t: d.fgh(t, 0)[0]
    g = lambda t: d.fgh(t, 1)[1]
    assert check_grad(f, g, th) < 1e-4 * (1 + np.abs(g(th)).max())
    eps = 1e-6
    H = np.array([(g(th + eps * e) - g(th - eps * e)) / (2 * eps) for e in np.eye(len(th))])
    np.testing.assert_allclose(H, d.fgh(th, 2)[2], atol=1e-4)
    # per-respondent scores sum to the data gradient; intercept-only covariates equal the plain design
    np.testing.assert_allclose(d.scores(th).sum(axis=0), d.grad(th, pseudo=False), atol=1e-8)
    plain, ones = ChoiceDesign.from_data(survey), ChoiceDesign.from_data(survey, covariates=X[:, :1])
    t0 = rng.normal(0, 0.3, plain.n_params)
    for a, b in zip(plain.fgh(t0), ones.fgh(t0)):
        np.testing.assert_allclose(a, b, atol=1e-10)


def test_recovers_planted_coefficients() -> None:
    rng = np.random.default_rng(11)
    n = 1500
    x = rng.normal(size=n)
    grp = rng.choice(["lo", "hi"], size=n)
    b0 = np.array([0.6, 0.2, -0.3, -0.5])
    bx = np.array([0.5, -0.5, 0.0, 0.0])
    bg = np.array([-0.4, 0.0, 0.8, -0.4])
    beta = b0 + np.outer(x, bx) + np.outer(grp == "lo", bg)
    cov = pd.DataFrame({"x": x, "grp": pd.Categorical(grp, categories=["hi", "lo"])},
                       index=pd.Index(np.arange(n), name="respondent"))
    r = sample_rankings(beta, {2: np.log(0.5)}, rng, cov)
    reg = fit_regression(r, ["x", "grp"], npseudo=0, standardize=False)
    assert reg.converged
    est = reg.coef
    for col, truth in [("(Intercept)", b0), ("x", bx), ("grp[lo]", bg)]:
        z = (est[col].to_numpy() - (truth - truth.mean())) / reg.se[col].to_numpy()
        assert np.all(np.abs(z) < 3.5), (col, z)
    assert reg.tie_params.iloc[0] == pytest.approx(0.5, rel=0.2)
    lr = reg.lr_tests()
    assert list(lr.index) == ["x", "grp"] and (lr["pvalue"] < 1e-6).all() and (lr["df"] == 3).all()
    tab = reg.to_frame()
    assert list(tab.columns) == ["item", "term", "estimate", "se", "z", "pvalue", "ci_low", "ci_high"]
    assert "Worth regression" in str(reg.summary())


def test_predict_weights_rows_sum_to_one(survey: Rankings) -> None:
    reg = fit_regression(survey, ["severity", "att_trust"])
    new = pd.DataFrame({"severity": ["Mild", "Severe", "Moderate"], "att_trust": [1, 3, 5]})
    w = reg.predict_weights(new)
    assert w.shape == (3, 5) and list(w.columns) == list(SURVEY_CRITERIA)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    np.testing.assert_allclose(reg.predict_log_worth(new).sum(axis=1), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="not seen in the fit"):
        reg.predict_weights(pd.DataFrame({"severity": ["Extreme"], "att_trust": [2]}))


def test_errors(survey: Rankings) -> None:
    with pytest.raises(ValueError, match="Unknown covariate.*'agee'"):
        fit_regression(survey, ["agee"])
    with pytest.raises(ValueError, match="collinear.*severe"):
        fit_regression(survey, ["severity", "severe"])
    cov = survey.covariates.copy()
    cov["const"] = 1.0
    cov["cat_const"] = "x"
    cov.loc[cov.index[:2], "att_trust"] = np.nan
    r2 = Rankings._from_arrays(survey.items, survey._ptr, survey._item, survey._rank, survey._top_k, survey._resp,
                               survey.respondent_ids, survey.respondent_weights, cov)
    with pytest.raises(ValueError, match="'const' is constant"):
        fit_regression(r2, ["const"])
    with pytest.raises(ValueError, match="'cat_const' is constant"):
        fit_regression(r2, ["cat_const"])
    with pytest.raises(ValueError, match=f"missing for respondent ids {cov.index[0]}, {cov.index[1]}"):
        fit_regression(r2, ["att_trust"])
    with pytest.raises(ValueError, match="no effect|not in the model"):
        fit_regression(survey, ["severity"]).lr_test("age_group")
    with pytest.raises(ValueError, match="`npseudo` must be >= 0"):
        fit_regression(survey, npseudo=-1)
