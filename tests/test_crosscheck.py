"""Cross-checks against independent implementations: choix (I-LSR) and statsmodels ConditionalLogit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from survey_weights import PairedComparisons, Rankings
from survey_weights.models import fit_bradley_terry, fit_plackett_luce
from survey_weights.synthetic.sampling import sample_pl_arrays

choix = pytest.importorskip("choix")


@pytest.fixture(scope="module")
def data():
    beta = np.array([1.0, 0.5, 0.2, 0.0, -0.3, -0.9])
    a = sample_pl_arrays(beta, 150, size=4, rng=7)
    ords = [a["item"][a["ptr"][k]:a["ptr"][k + 1]].tolist() for k in range(150)]
    return ords, Rankings.from_orderings(ords, items=list(range(6)))


def test_choix_rankings(data):
    ords, r = data
    ours = fit_plackett_luce(r, npseudo=0)
    ref = choix.ilsr_rankings(6, [np.array(o) for o in ords], tol=1e-12, max_iter=1000)
    np.testing.assert_allclose(ours.log_worth.to_numpy(), ref - ref.mean(), atol=1e-6)
    ll = choix.log_likelihood_rankings([np.array(o) for o in ords], ref)
    assert ours.loglik == pytest.approx(ll, abs=1e-8)


def test_choix_pairwise(rng):
    beta = np.linspace(-1.5, 1.5, 8)
    pairs = []
    for _ in range(600):
        i, j = rng.choice(8, 2, replace=False)
        pairs.append((i, j) if rng.random() < 1 / (1 + np.exp(beta[j] - beta[i])) else (j, i))
    ref = choix.ilsr_pairwise(8, pairs, tol=1e-12, max_iter=1000)
    df = pd.DataFrame(pairs, columns=["w", "l"]).assign(winner=lambda d: d["w"])
    ours = fit_bradley_terry(PairedComparisons.from_long(df, "w", "l", "winner", items=list(range(8))), npseudo=0)
    np.testing.assert_allclose(ours.log_worth.to_numpy(), ref - ref.mean(), atol=1e-6)


def test_statsmodels_conditional_logit(data):
    from statsmodels.discrete.conditional_models import ConditionalLogit

    ords, r = data
    rows = []
    g = 0
    for o in ords:  # explode: one group per stage
        for j in range(len(o) - 1):
            for i in o[j:]:
                rows.append((g, i, int(i == o[j])))
            g += 1
    ex = pd.DataFrame(rows, columns=["g", "item", "y"])
    X = pd.get_dummies(ex["item"]).astype(float).iloc[:, 1:]  # item 0 = reference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ConditionalLogit(ex["y"], X, groups=ex["g"]).fit(method="newton", maxiter=100, tol=1e-12, disp=0)
    ours = fit_plackett_luce(r, npseudo=0).coef(0).iloc[1:6]
    np.testing.assert_allclose(ours["estimate"].to_numpy(), fit.params.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(ours["se"].to_numpy(), fit.bse.to_numpy(), atol=1e-4)


@pytest.mark.parametrize("alpha", [0.05, 1.0])
def test_normal_prior_equals_choix_alpha(data, alpha):
    """A normal prior N(0, 1 / (2 alpha)) on the log-worths is choix's L2 penalty `alpha` (MAP estimate); the
    standard errors are the inverse curvature of the log posterior."""
    ords, r = data
    ref = choix.opt_rankings(6, [np.array(o) for o in ords], alpha=alpha, method="Newton-CG", tol=1e-12)
    ours = fit_plackett_luce(r, normal={"mu": 0.0, "Sigma": 1.0 / (2.0 * alpha)}, tol=1e-12)
    assert ours.npseudo == 0.0 and ours.normal is not None and ours.converged
    np.testing.assert_allclose(ours.theta, ref, atol=1e-6)  # raw log-worths: the prior identifies them
    from survey_weights.models._likelihood import PLDesign

    d = PLDesign.from_rankings(r, npseudo=0.0)
    H = d.hess(ours.theta, pseudo=False) - 2.0 * alpha * np.eye(6)
    C = np.eye(6) - 1.0 / 6
    np.testing.assert_allclose(ours.vcov.to_numpy(), C @ np.linalg.inv(-H) @ C, rtol=1e-6, atol=1e-10)


def test_normal_prior_keeps_small_groups_finite_and_checks_input():
    from survey_weights import Rankings

    r = Rankings.from_orderings([["a", "b", "c"], ["a", "c", "b"]])  # a never loses: no MLE
    with pytest.raises(ValueError, match="never"):
        fit_plackett_luce(r, npseudo=0)
    fit = fit_plackett_luce(r, normal={"mu": [0, 0, 0], "Sigma": [1.0, 1.0, 1.0]})
    assert np.all(np.isfinite(fit.log_worth)) and np.all(np.isfinite(fit.se)) and fit.weights.idxmax() == "a"
    with pytest.raises(ValueError, match="positive definite"):
        fit_plackett_luce(r, normal={"Sigma": [[1, 2, 0], [2, 1, 0], [0, 0, 1]]})
    with pytest.raises(TypeError, match="normal"):
        fit_plackett_luce(r, normal={"sigma": 1.0})
    with pytest.raises(ValueError, match="mu"):
        fit_plackett_luce(r, normal={"mu": [0, 1], "Sigma": 1.0})
    with pytest.raises(ValueError, match="mm"):
        fit_plackett_luce(r, normal={"Sigma": 1.0}, method="mm")


def test_normal_prior_bradley_terry_equals_choix_pairwise(rng):
    beta = np.linspace(-1.0, 1.0, 6)
    pairs = []
    for _ in range(150):
        i, j = rng.choice(6, 2, replace=False)
        pairs.append((i, j) if rng.random() < 1 / (1 + np.exp(beta[j] - beta[i])) else (j, i))
    ref = choix.opt_pairwise(6, pairs, alpha=0.3, method="Newton-CG", tol=1e-12)
    df = pd.DataFrame(pairs, columns=["w", "l"]).assign(winner=lambda d: d["w"])
    ours = fit_bradley_terry(PairedComparisons.from_long(df, "w", "l", "winner", items=list(range(6))),
                             normal={"Sigma": 1.0 / 0.6}, tol=1e-12)
    np.testing.assert_allclose(ours.theta, ref, atol=1e-6)
