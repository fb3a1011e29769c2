"""Tests for survey_weights.subgroups.mixture (latent preference classes)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from survey_weights import SURVEY_CRITERIA, Rankings
from survey_weights.exceptions import SmallGroupWarning
from survey_weights.models._choice import ChoiceDesign
from survey_weights.subgroups.mixture import (
    MixtureResult,
    adjusted_rand_index,
    fit_mixture,
    select_n_classes,
)

BETAS = np.array([[1.5, 0.5, 0.0, -0.5, -1.5], [-1.5, -0.5, 0.0, 0.5, 1.5], [0.0, 1.5, -1.5, 1.0, -1.0]])
PROPS = np.array([0.5, 0.3, 0.2])
DELTA2 = 0.3


def sample_weak_order(rng: np.random.Generator, beta: np.ndarray, delta2: float) -> list[tuple[int, ...]]:
    """One Davidson-Luce draw (ties of order <= 2): choose among singletons and pairs of the remaining items."""
    left = list(range(len(beta)))
    out: list[tuple[int, ...]] = []
    while len(left) > 1:
        subs = [(i,) for i in left] + list(itertools.combinations(left, 2))
        f = np.array([np.exp(beta[s[0]]) if len(s) == 1 else delta2 * np.exp(0.5 * (beta[s[0]] + beta[s[1]]))
                      for s in subs])
        s = subs[rng.choice(len(subs), p=f / f.sum())]
        out.append(s)
        left = [i for i in left if i not in s]
    if left:
        out.append((left[0],))
    return out


def simulate_classes(n: int, *, seed: int, betas=BETAS, props=PROPS, per_resp: int = 2):
    """n respondents in latent classes, each giving `per_resp` weak orderings of the five survey criteria."""
    rng = np.random.default_rng(seed)
    items = list(SURVEY_CRITERIA)
    z = rng.choice(len(props), size=n, p=props)
    orders, ids = [], []
    for r in range(n):
        for _ in range(per_resp):
            o = sample_weak_order(rng, betas[z[r]], DELTA2)
            orders.append([tuple(items[i] for i in g) if len(g) > 1 else items[g[0]] for g in o])
            ids.append(f"r{r}")
    return Rankings.from_orderings(orders, items=items, respondent_ids=ids), z


def bayes_membership(r: Rankings, betas=BETAS, props=PROPS) -> np.ndarray:
    d = ChoiceDesign.from_data(r)
    assert d.tie_orders == (2,)
    ll = np.column_stack([d.respondent_loglik(np.append(b, np.log(DELTA2))) for b in betas]) + np.log(props)
    return ll.argmax(axis=1)


@pytest.fixture(scope="module")
def data():
    return simulate_classes(335, seed=1)


@pytest.fixture(scope="module")
def fit3(data):
    return fit_mixture(data[0], 3, seed=7)


def test_ari():
    assert adjusted_rand_index([0, 0, 1, 2], [0, 0, 1, 1]) == pytest.approx(0.5714285714)
    assert adjusted_rand_index([1, 1, 0, 0], ["b", "b", "a", "a"]) == 1.0
    assert adjusted_rand_index([0, 0, 0, 0], [0, 1, 2, 3]) == 0.0


def test_recovery_close_to_bayes_classifier(data, fit3):
    r, z = data
    bayes = adjusted_rand_index(bayes_membership(r), z)
    got = adjusted_rand_index(fit3.membership.to_numpy(), z)
    assert bayes > 0.6  # well separated
    assert got >= bayes - 0.05
    # class 1 is the largest; its worths follow the planted ordering of the majority class
    assert fit3.proportions.is_monotonic_decreasing
    assert fit3.proportions.iloc[0] == pytest.approx(0.5, abs=0.08)
    np.testing.assert_array_equal(np.argsort(-fit3.log_worth.loc[1].to_numpy()), [0, 1, 2, 3, 4])
    assert fit3.tie_params.columns.tolist() == ["tie2"]


def test_result_shapes(data, fit3):
    r, _ = data
    assert isinstance(fit3, MixtureResult) and fit3.n_classes == 3
    assert fit3.posterior.shape == (r.n_respondents, 3)
    np.testing.assert_allclose(fit3.posterior.sum(axis=1), 1.0)
    assert (fit3.membership == fit3.posterior.idxmax(axis=1)).all()
    np.testing.assert_allclose(fit3.class_weights.sum(axis=1), 1.0)
    assert fit3.proportions.sum() == pytest.approx(1.0)
    assert fit3.n_params == 3 * 5 + 2
    assert fit3.icl >= fit3.bic
    fr = fit3.to_frame()
    assert {"class", "proportion", "n", "item", "log_worth", "weight"} <= set(fr.columns) and len(fr) == 15
    assert len(fit3.fits) == 3
    # GEM stops on the likelihood change, so the converged refit agrees to ~1e-4
    np.testing.assert_allclose(fit3.fits[0].weights.to_numpy(), fit3.class_weights.loc[1].to_numpy(), atol=1e-3)


def test_deterministic_with_seed(data, fit3):
    again = fit_mixture(data[0], 3, seed=7)
    pd.testing.assert_series_equal(again.membership, fit3.membership)
    assert again.loglik == fit3.loglik
    other = fit_mixture(data[0], 3, seed=8, n_starts=4)  # labels ordered by size: same solution, same labels
    assert adjusted_rand_index(other.membership, fit3.membership) > 0.95
    assert (other.membership == fit3.membership).mean() > 0.97


@pytest.mark.slow
def test_bic_selects_true_number_of_classes(data):
    best, table = select_n_classes(data[0], 4, seed=3, n_starts=4)
    assert best.n_classes == 3
    assert table["chosen"].sum() == 1 and table.loc[table["chosen"], "n_classes"].item() == 3
    assert list(table["n_classes"]) == [1, 2, 3, 4]


def test_one_class_equals_pooled_fit(data):
    from survey_weights.models.plackett_luce import fit_plackett_luce

    one = fit_mixture(data[0], 1, seed=0)
    pooled = fit_plackett_luce(data[0])
    assert one.loglik == pytest.approx(pooled.loglik, abs=1e-6)
    np.testing.assert_allclose(one.log_worth.loc[1].to_numpy(), pooled.log_worth.to_numpy(), atol=1e-6)


def test_profiles_and_small_classes(fit3):
    profs = fit3.profiles(safety=0.2)
    assert [p.source for p in profs] == ["class"] * 3
    assert profs[0].n_respondents == int(fit3.class_sizes.iloc[0])
    with pytest.warns(SmallGroupWarning):
        kept = fit3.profiles(min_cell_size=int(fit3.class_sizes.min()) + 1)
    assert len(kept) == 2


def test_bad_input(data):
    r = data[0]
    with pytest.raises(ValueError, match="n_classes"):
        fit_mixture(r, 0, seed=1)
    with pytest.raises(ValueError, match="n_classes"):
        fit_mixture(r, 10_000, seed=1)
    with pytest.raises(ValueError, match="criterion"):
        select_n_classes(r, 2, criterion="aic", seed=1)
    with pytest.raises(TypeError, match="Rankings"):
        fit_mixture(pd.DataFrame({"a": [1]}), 2, seed=1)
    with pytest.raises(ValueError, match="same length"):
        adjusted_rand_index([0, 1], [0])
