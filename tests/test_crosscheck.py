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
