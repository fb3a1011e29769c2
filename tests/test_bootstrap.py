"""Tests of survey_weights.subgroups.bootstrap (respondent-level bootstrap, percentile and BCa intervals)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from survey_weights.criteria import SURVEY_CRITERIA
from survey_weights.data import Rankings
from survey_weights.models import fit_bradley_terry, fit_plackett_luce
from survey_weights.simulate import simulate_survey
from survey_weights.subgroups.bootstrap import bootstrap
from survey_weights.synthetic.sampling import sample_weak_orders

sample_rankings = sample_weak_orders  # vectorised Davidson-Luce sampler shared with the benchmark


@pytest.fixture(scope="module")
def survey() -> Rankings:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Rankings.from_ratings(simulate_survey(335, seed=3), list(SURVEY_CRITERIA), respondent="respondent_id")


def test_determinism_and_shapes(survey: Rankings) -> None:
    a = bootstrap(survey, n_boot=60, seed=42, progress=False)
    b = bootstrap(survey, n_boot=60, seed=42, progress=False, batch_size=7)
    c = bootstrap(survey, n_boot=60, seed=43, progress=False)
    np.testing.assert_allclose(a.replicates.to_numpy(), b.replicates.to_numpy(), atol=1e-10)
    assert not np.allclose(a.replicates.to_numpy(), c.replicates.to_numpy())
    assert a.replicates.shape == (60, 5) and list(a.replicates.columns) == list(SURVEY_CRITERIA)
    np.testing.assert_allclose(a.replicates.sum(axis=1), 1.0)
    assert a.converged.all() and a.n_failed == 0
    ci = a.ci()
    assert list(ci.columns) == ["estimate", "ci_low", "ci_high", "se"]
    assert (ci["ci_low"] < ci["estimate"]).all() and (ci["estimate"] < ci["ci_high"]).all()
    fr = a.to_frame()
    assert list(fr.columns[:4]) == ["item", "weight", "ci_low", "ci_high"]
    np.testing.assert_allclose(fr["ci_low"].to_numpy(), ci["ci_low"].to_numpy())
    np.testing.assert_allclose(fr["se"].to_numpy(), a.ci(scale="log_worth")["se"].to_numpy())
    assert "bootstrap" in str(a.summary())


def test_replicates_equal_weighted_refits(survey: Rankings) -> None:
    res = bootstrap(survey, n_boot=20, seed=5, progress=False)
    fit = fit_plackett_luce(survey)
    np.testing.assert_allclose(res.estimate.to_numpy(), fit.weights.to_numpy(), atol=1e-8)
    counts = np.random.default_rng(5).multinomial(survey.n_respondents, np.full(survey.n_respondents,
                                                                                 1 / survey.n_respondents), size=20)
    for k in (0, 13):
        refit = fit_plackett_luce(survey.with_respondent_weights(counts[k]))
        np.testing.assert_allclose(res.replicates.iloc[k].to_numpy(), refit.weights.to_numpy(), atol=1e-7)


def test_replicate_without_a_tie_order() -> None:
    """A replicate that resamples none of the few respondents with a five-way tie converges, to the fit of the
    resampled respondents alone (a model without tie5)."""
    r = sample_rankings(np.array([0.4, 0.2, 0.0, -0.2, -0.4]), {2: np.log(0.4), 5: np.log(0.01)}, 300,
                        np.random.default_rng(3))
    n = r.n_respondents
    five = np.flatnonzero(np.diff(r._ptr) == np.bincount(np.repeat(np.arange(n), np.diff(r._ptr)),
                                                         weights=r._rank == 1))
    assert 1 <= len(five) <= 4 and r.max_tie_order == 5
    res = bootstrap(r, n_boot=40, seed=7, progress=False)
    counts = np.random.default_rng(7).multinomial(n, np.full(n, 1 / n), size=40)
    lacking = np.flatnonzero(counts[:, five].sum(axis=1) == 0)
    assert len(lacking) > 0 and res.converged.all()
    for k in lacking[:2]:
        keep = counts[k] > 0
        refit = fit_plackett_luce(r.subset(keep).with_respondent_weights(counts[k][keep]))
        assert "tie5" not in refit.tie_params.index
        np.testing.assert_allclose(res.replicates.iloc[k].to_numpy(), refit.weights.to_numpy(), atol=1e-7)


def test_paired_and_npseudo0(survey: Rankings) -> None:
    pairs = survey.to_pairwise()
    res = bootstrap(pairs, n_boot=10, seed=1, ties="davidson", progress=False)
    np.testing.assert_allclose(res.estimate.to_numpy(), fit_bradley_terry(pairs, ties="davidson").weights, atol=1e-8)
    res0 = bootstrap(survey, n_boot=10, seed=1, npseudo=0, progress=False)
    np.testing.assert_allclose(res0.estimate.to_numpy(), fit_plackett_luce(survey, npseudo=0).weights, atol=1e-8)


def test_bca(survey: Rankings) -> None:
    res = bootstrap(survey, n_boot=200, seed=9, method="bca", progress=False)
    bca, pct = res.ci(), res.ci(method="percentile")
    assert res.jackknife["weight"].shape == (survey.n_respondents, 5)
    assert (bca["ci_low"] < bca["estimate"]).all() and (bca["estimate"] < bca["ci_high"]).all()
    assert np.abs(bca["ci_low"] - pct["ci_low"]).max() < 0.03  # close to percentile for a smooth statistic
    lw = res.ci(scale="log_worth")
    assert abs(lw["estimate"].sum()) < 1e-10
    with pytest.raises(ValueError, match="jackknife"):
        bootstrap(survey, n_boot=20, seed=1, progress=False).ci(method="bca")


def test_errors(survey: Rankings) -> None:
    with pytest.raises(ValueError, match="`n_boot` must be >= 2"):
        bootstrap(survey, n_boot=1)
    with pytest.raises(ValueError, match="Unknown `method`"):
        bootstrap(survey, method="basic")


def test_coverage_small() -> None:
    """95% percentile intervals of the weights cover the truth (small version; the full run is in benchmarks)."""
    beta = np.array([0.6, 0.2, 0.0, -0.3, -0.5])
    truth = np.exp(beta) / np.exp(beta).sum()
    rng = np.random.default_rng(2024)
    hits = []
    for _ in range(40):
        r = sample_rankings(beta, {2: np.log(0.4), 3: np.log(0.3)}, 200, rng)
        ci = bootstrap(r, n_boot=100, seed=rng, progress=False).ci()
        hits.append(((ci["ci_low"] <= truth) & (truth <= ci["ci_high"])).to_numpy())
    cover = np.mean(hits)
    assert 0.86 <= cover <= 0.995, cover
