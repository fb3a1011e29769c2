"""Comparison-level covariates (an order / home effect) and structured worths (item-level predictors) in the one
engine, against BradleyTerry2::BTm (tests/reference/bt_home_structured.R) and statsmodels' conditional logit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey_weights import PairedComparisons, Rankings, fit_bradley_terry, fit_plackett_luce

REF = pd.read_csv(Path(__file__).with_name("reference") / "bt_home_structured.csv")
FEATURES = pd.DataFrame({"x1": [0.5, -1, 2, 0.3, 1.1, -0.4, 0.9], "x2": [1, 0, 0, 1, 1, 0, 1]},
                        index=["Baltimore", "Boston", "Cleveland", "Detroit", "Milwaukee", "New York", "Toronto"])


def _binomial_constant(external_dir) -> float:
    """R's logLik of the aggregated binomial GLM includes sum log C(n, k); the fits report the Bernoulli one."""
    from scipy.special import gammaln

    bb = pd.read_csv(external_dir / "bradleyterry2" / "baseball.csv")
    n, k = bb["home.wins"] + bb["away.wins"], bb["home.wins"]
    return float((gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)).sum())


def _baseball(external_dir, home: bool) -> PairedComparisons:
    bb = pd.read_csv(external_dir / "bradleyterry2" / "baseball.csv")
    rows = []
    for _, r in bb.iterrows():
        rows += [(r["home.team"], r["away.team"], r["home.team"], 1.0)] * int(r["home.wins"])
        rows += [(r["home.team"], r["away.team"], r["away.team"], 1.0)] * int(r["away.wins"])
    df = pd.DataFrame(rows, columns=["home", "away", "winner", "at_home"])  # item_a = the home team
    return PairedComparisons.from_long(df, "home", "away", "winner",
                                       comparison_covariates=["at_home"] if home else None)


def test_home_advantage_equals_btm(external_dir):
    ref = REF[REF["case"] == "home"].set_index("term")
    fit = fit_bradley_terry(_baseball(external_dir, True), npseudo=0, tol=1e-12)
    c = fit.coef(ref="Baltimore")
    teams = [t for t in ref.index if t not in ("at.home", "logLik")]
    np.testing.assert_allclose(c.loc[teams, "estimate"], ref.loc[teams, "estimate"], atol=1e-7)
    np.testing.assert_allclose(c.loc[teams, "se"], ref.loc[teams, "se"], rtol=1e-5)  # R's IRLS stops at 1e-8
    assert fit.effects["at_home"] == pytest.approx(ref.loc["at.home", "estimate"], abs=1e-7)
    assert fit.effects_se["at_home"] == pytest.approx(ref.loc["at.home", "se"], rel=1e-5)
    assert fit.loglik + _binomial_constant(external_dir) == pytest.approx(ref.loc["logLik", "estimate"], abs=1e-6)
    assert "at_home" in fit.summary().as_text()
    # without the covariate: the plain fit (the data carry it, so it must be switched off explicitly)
    plain = fit_bradley_terry(_baseball(external_dir, True), npseudo=0, comparison_covariates=False)
    ref_plain = fit_bradley_terry(_baseball(external_dir, False), npseudo=0)
    np.testing.assert_allclose(plain.log_worth, ref_plain.log_worth, atol=1e-9)
    assert len(plain.effects) == 0


def test_structured_abilities_equal_btm(external_dir):
    ref = REF[REF["case"] == "structured"].set_index("term")
    fit = fit_bradley_terry(_baseball(external_dir, False), item_covariates=FEATURES, tol=1e-12)
    np.testing.assert_allclose(fit.effects[["x1", "x2"]], ref.loc[["x1[..]", "x2[..]"], "estimate"], atol=1e-7)
    np.testing.assert_allclose(fit.effects_se[["x1", "x2"]], ref.loc[["x1[..]", "x2[..]"], "se"], rtol=1e-5)
    assert fit.loglik + _binomial_constant(external_dir) == pytest.approx(ref.loc["logLik", "estimate"], abs=1e-6)
    lw = FEATURES.to_numpy() @ fit.effects.to_numpy()
    np.testing.assert_allclose(fit.log_worth.to_numpy(), lw - lw.mean(), atol=1e-10)
    assert fit.df_model == 2 and abs(fit.weights.sum() - 1) < 1e-12


def test_structured_plackett_luce_equals_statsmodels_conditional_logit(rng):
    """Rankings without ties with item-level predictors: the exploded conditional logit with the predictors as
    regressors (statsmodels), independently computed."""
    from statsmodels.discrete.conditional_models import ConditionalLogit

    X = pd.DataFrame({"acid": [0.5, 0.5, 1.0, 0.0, 0.8], "sugar": [0.0, 10.0, 0.0, 10.0, 4.0]},
                     index=list("ABCDE"))
    gamma = np.array([1.2, -0.08])
    lw = X.to_numpy() @ gamma
    ords = [list(np.array(list("ABCDE"))[np.argsort(-(lw + rng.gumbel(size=5)))]) for _ in range(200)]
    fit = fit_plackett_luce(Rankings.from_orderings(ords), item_covariates=X, tol=1e-12)
    rows, strata = [], []
    for r, o in enumerate(ords):
        for s in range(4):
            for it in o[s:]:
                rows.append([float(it == o[s]), *X.loc[it]])
                strata.append(r * 10 + s)
    d = np.array(rows)
    res = ConditionalLogit(d[:, 0], d[:, 1:], groups=np.array(strata)).fit(disp=0, method="bfgs", maxiter=500,
                                                                             gtol=1e-10)
    np.testing.assert_allclose(fit.effects.to_numpy(), res.params, atol=1e-5)
    np.testing.assert_allclose(fit.effects_se.to_numpy(), res.bse, rtol=1e-4)


def test_covariate_input_errors():
    df = pd.DataFrame({"a": ["x", "y", "x"], "b": ["y", "z", "z"], "w": ["x", "z", "z"], "first": [1, "no", 0]})
    with pytest.raises(ValueError, match="first"):
        PairedComparisons.from_long(df, "a", "b", "w", comparison_covariates=["first"])
    pc = PairedComparisons.from_long(df.drop(columns="first"), "a", "b", "w")
    with pytest.raises(ValueError, match="comparison_covariates"):
        fit_bradley_terry(pc, comparison_covariates=True)
    with pytest.raises(ValueError, match="constant"):
        fit_bradley_terry(pc, item_covariates=pd.DataFrame({"c": [1.0, 1.0, 1.0]}, index=["x", "y", "z"]))
    with pytest.raises(ValueError, match="no row"):
        fit_bradley_terry(pc, item_covariates=pd.DataFrame({"c": [1.0, 2.0]}, index=["x", "y"]))
    with pytest.raises(TypeError, match="DataFrame"):
        fit_bradley_terry(pc, item_covariates=np.ones((3, 1)))
