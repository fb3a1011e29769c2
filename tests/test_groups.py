"""Tests of survey_weights.subgroups.groups (per-group fits, LR test, Holm-adjusted contrasts, small-cell withholding)."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from survey_weights.criteria import SURVEY_CRITERIA
from survey_weights.data import Rankings
from survey_weights.exceptions import SmallGroupWarning
from survey_weights.models import fit_bradley_terry, fit_plackett_luce
from survey_weights.simulate import simulate_survey
from survey_weights.subgroups.groups import fit_by_group, holm

matplotlib.use("Agg")
COVS = ["age_group", "severity", "population", "gender"]


def _rankings(n: int, seed: int, heterogeneity: float = 1.0) -> Rankings:
    df = simulate_survey(n, seed=seed, heterogeneity=heterogeneity)
    df["young"] = np.where(df["age_group"] == "18-24", "18-24", "25+")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Rankings.from_ratings(df, list(SURVEY_CRITERIA), respondent="respondent_id",
                                     covariates=COVS + ["young"])


@pytest.fixture(scope="module")
def survey() -> Rankings:
    return _rankings(335, 11)


def test_group_fits_equal_subset_fits(survey: Rankings) -> None:
    g = fit_by_group(survey, "severity")
    assert g.groups == ["Mild", "Moderate", "Severe"]
    for lv in g.groups:
        mask = (survey.covariates["severity"] == lv).to_numpy()
        ref = fit_plackett_luce(survey.subset(mask))
        np.testing.assert_allclose(g.fits[lv].log_worth.to_numpy(), ref.log_worth.to_numpy(), atol=1e-10)
        assert g.n[g.label(lv)] == mask.sum()
    tab = g.to_frame()
    assert list(tab.columns) == ["group", "severity", "item", "weight", "ci_low", "ci_high", "weight_se", "log_worth",
                                 "se", "n"]
    assert len(tab) == 15
    wt = g.weights_table()
    assert wt.shape == (3, 5)
    np.testing.assert_allclose(wt.sum(axis=1), 1.0)
    pd.testing.assert_frame_equal(g.weights, wt)
    assert "LR test" in str(g.summary())


def test_lr_statistic_definition(survey: Rankings) -> None:
    g = fit_by_group(survey, "young")
    lr = g.lr_test()
    pooled = fit_plackett_luce(survey)
    assert lr.statistic == pytest.approx(2 * (sum(f.loglik for f in g.fits.values()) - pooled.loglik), rel=1e-10)
    assert lr.df == sum(f.df_model for f in g.fits.values()) - pooled.df_model
    assert lr.pvalue < 0.01  # 18-24 has a planted difference


def test_lr_null_pvalues_roughly_uniform() -> None:
    from survey_weights.synthetic.sampling import sample_weak_orders as sample_rankings

    rng = np.random.default_rng(77)
    beta = np.array([0.5, 0.2, 0.0, -0.2, -0.5])
    pv = []
    for _ in range(50):
        r = sample_rankings(beta, {2: np.log(0.4)}, 150, rng)
        cov = pd.DataFrame({"grp": rng.choice(["a", "b"], 150)}, index=r.respondent_ids)
        r = Rankings._from_arrays(r.items, r._ptr, r._item, r._rank, r._top_k, r._resp, r.respondent_ids, None, cov)
        pv.append(fit_by_group(r, "grp", npseudo=0).lr_test().pvalue)
    pv = np.array(pv)
    assert 0.02 <= np.mean(pv < 0.1) <= 0.24 and 0.35 <= pv.mean() <= 0.65, np.sort(pv)


def test_contrasts_holm(survey: Rankings) -> None:
    g = fit_by_group(survey, "severity")
    c = g.contrasts()
    assert len(c) == 3 * 5
    ref = multipletests(c["pvalue"], method="holm")[1]
    np.testing.assert_allclose(c["pvalue_holm"], ref, rtol=1e-12)
    row = c.iloc[0]
    f1, f2 = g.fits["Mild"], g.fits["Moderate"]
    assert row["estimate"] == pytest.approx(f1.log_worth.iloc[0] - f2.log_worth.iloc[0])
    assert row["se"] == pytest.approx(np.hypot(f1.se.iloc[0], f2.se.iloc[0]))
    rng = np.random.default_rng(0)
    p = rng.random(40) ** 3
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=1e-12)


def test_small_groups_withheld(survey: Rankings) -> None:
    with pytest.warns(SmallGroupWarning, match="Non-binary|Prefer not to say"):
        g = fit_by_group(survey, "gender", min_cell_size=20)
    assert g.small_groups and all(n < 20 for n in g.small_groups.values())
    withheld = set(g.small_groups)
    assert withheld.isdisjoint(g.groups) and withheld.isdisjoint(g.fits)
    assert withheld.isdisjoint(set(g.to_frame()["gender"]))
    labels = [t.get_text() for t in g.plot().get_legend().get_texts()]
    assert not any(str(w) in lab for w in withheld for lab in labels)
    profiles = g.profiles(safety=0.2)
    assert [p.group for p in profiles] == [{"gender": k} for k in g.groups]
    assert all(p.source == "group" and p.n_respondents >= 20 for p in profiles)
    # the LR test's pooled model uses only the kept groups' respondents
    assert g.pooled_fit().n_respondents == int(g.n.sum())


def test_crossed_groups_and_paired(survey: Rankings) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallGroupWarning)
        g = fit_by_group(survey, ["population", "severity"])
    assert all(isinstance(k, tuple) and len(k) == 2 for k in g.groups)
    pairs = survey.to_pairwise()
    gp = fit_by_group(pairs, "population", ties="davidson")
    mask = (survey.covariates["population"] == "UCLA").to_numpy()
    ref = fit_bradley_terry(pairs.subset(mask), ties="davidson")
    np.testing.assert_allclose(gp.fits["UCLA"].weights.to_numpy(), ref.weights.to_numpy(), atol=1e-10)
    boots = gp.bootstrap(n_boot=20, seed=1, progress=False)
    assert set(boots) == set(gp.groups)


def test_errors(survey: Rankings) -> None:
    with pytest.raises(ValueError, match="Unknown `by`.*'agegroup'"):
        fit_by_group(survey, "agegroup")
    with pytest.raises(ValueError, match="No group"), pytest.warns(SmallGroupWarning):
        fit_by_group(survey, "severity", min_cell_size=10_000)
    bare = Rankings._from_arrays(survey.items, survey._ptr, survey._item, survey._rank, survey._top_k, survey._resp,
                                 survey.respondent_ids, None, None)
    with pytest.raises(ValueError, match="no covariates"):
        fit_by_group(bare, "severity")
    with pytest.raises(TypeError, match="bradley_terry"):
        fit_by_group(survey, "severity", model="bradley_terry")
