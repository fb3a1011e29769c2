"""Sampling weights and design-based (sandwich) standard errors: parity with R survival::clogit on mlogit's Game
rankings (shared/external/mlogit, tests/reference/game_weighted_naive.R), the sandwich by hand, Kish's design
effect, and the tests that stay valid under weights."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw

REF = Path(__file__).with_name("reference")


@pytest.fixture(scope="module")
def game(external_dir):
    g = pd.read_csv(external_dir / "mlogit" / "game.csv")
    plats = [c[3:] for c in g.columns if c.startswith("ch.")]
    df = g.rename(columns={f"ch.{p}": p for p in plats})
    return g, df, plats


def _rankings(game, weighted=False):
    g, df, plats = game
    return sw.Rankings.from_wide(df, plats, respondent="respondent", covariates=["hours", "age"],
                                 sampling_weights="sampling_weight" if weighted else None)


def _coef_pc(fit, ref):
    return fit.coef(ref="PC").loc[ref.index]


def test_game_model_and_cluster_robust_ses_equal_clogit(game, external_dir):
    ref = pd.read_csv(external_dir / "mlogit" / "game_pl_robust_se.csv").set_index("item")
    r = _rankings(game)
    model = sw.fit_plackett_luce(r, npseudo=0, tol=1e-12)
    robust = sw.fit_plackett_luce(r, npseudo=0, tol=1e-12, vcov="robust")
    assert model.vcov_type == "model" and robust.vcov_type == "robust"
    np.testing.assert_allclose(_coef_pc(model, ref)["estimate"], ref["log_worth_ref_PC"], atol=1e-6)
    np.testing.assert_allclose(_coef_pc(model, ref)["se"], ref["se_model"], rtol=1e-5)
    np.testing.assert_allclose(_coef_pc(robust, ref)["se"], ref["se_cluster"], rtol=1e-5)
    V = pd.read_csv(external_dir / "mlogit" / "game_pl_vcov_cluster.csv", index_col=0)
    np.testing.assert_allclose(robust.vcov(ref="PC").loc[V.index, V.columns], V, rtol=1e-5, atol=1e-12)
    ratio = _coef_pc(robust, ref)["se"] / _coef_pc(model, ref)["se"]
    assert 1.15 < ratio.min() and ratio.max() < 1.38  # the 1.15-1.37x (PC reference)
    # a cluster column with one respondent per cluster is the respondent-robust sandwich
    ids = sw.fit_plackett_luce(r, npseudo=0, tol=1e-12, vcov="cluster", cluster=np.arange(r.n_respondents))
    np.testing.assert_allclose(ids.vcov_full, robust.vcov_full, rtol=1e-10, atol=1e-14)


def test_game_sampling_weights_equal_clogit(game, external_dir):
    ref = pd.read_csv(external_dir / "mlogit" / "game_pl_robust_se.csv").set_index("item")
    naive = pd.read_csv(REF / "game_weighted_naive.csv").set_index("item")
    r = _rankings(game, weighted=True)
    fit = sw.fit_plackett_luce(r, npseudo=0, tol=1e-12)  # default: robust under sampling weights
    assert fit.vcov_type == "robust"
    c = _coef_pc(fit, ref)
    np.testing.assert_allclose(c["estimate"], ref["log_worth_weighted"], atol=1e-6)
    np.testing.assert_allclose(c["se"], ref["se_weighted_cluster"], rtol=1e-5)
    V = pd.read_csv(external_dir / "mlogit" / "game_pl_vcov_weighted_cluster.csv", index_col=0)
    np.testing.assert_allclose(fit.vcov(ref="PC").loc[V.index, V.columns], V, rtol=1e-5, atol=1e-12)
    with pytest.warns(sw.SurveyWeightsWarning, match="frequencies"):
        freq = sw.fit_plackett_luce(r, npseudo=0, tol=1e-12, vcov="model")
    np.testing.assert_allclose(_coef_pc(freq, ref)["se"], naive["se_naive"], rtol=1e-5)  # clogit's naive.var
    w = np.asarray(r.sampling_weights)
    assert fit.design_effect == pytest.approx(len(w) * (w ** 2).sum() / w.sum() ** 2, rel=1e-12)
    assert fit.sampling["n_effective"] == pytest.approx(w.sum() ** 2 / (w ** 2).sum(), rel=1e-12)
    assert np.isnan(fit.aic) and np.isnan(fit.bic) and "design effect" in fit.summary().as_text()


def test_game_regression_on_respondent_and_respondent_x_item_covariates(game, external_dir):
    g, _, plats = game
    r = _rankings(game)

    def pc(res):
        V, out = res.vcov, {}
        for t in res.terms:
            for it in res.items:
                if it == "PC":
                    continue
                c = pd.Series(0.0, index=V.index)
                c[(it, t)] += 1
                c[("PC", t)] -= 1
                out[it if t == "(Intercept)" else f"{it}:{t}"] = (res.coef.loc[it, t] - res.coef.loc["PC", t],
                                                                  float(np.sqrt(c @ V @ c)))
        return pd.DataFrame(out, index=["estimate", "se"]).T

    ref = pd.read_csv(external_dir / "mlogit" / "game_regression_hours_age.csv").set_index("term")
    m = sw.fit_regression(r, ["hours", "age"], npseudo=0, standardize=False, tol=1e-12)
    rb = sw.fit_regression(r, ["hours", "age"], npseudo=0, standardize=False, tol=1e-12, vcov="robust")
    np.testing.assert_allclose(pc(m).loc[ref.index, "estimate"], ref["estimate"], atol=1e-6)
    np.testing.assert_allclose(pc(m).loc[ref.index, "se"], ref["se_model"], rtol=1e-5)
    np.testing.assert_allclose(pc(rb).loc[ref.index, "se"], ref["se_cluster"], rtol=1e-5)
    assert m.loglik == pytest.approx(-529.4917, abs=1e-4) and rb.vcov_type == "robust"
    own = g.set_index("respondent")[[f"own.{p}" for p in plats]].rename(columns=lambda c: c[4:])
    o = sw.fit_regression(r, ["hours", "age"], npseudo=0, standardize=False, tol=1e-12, item_covariates={"own": own})
    ro = pd.read_csv(external_dir / "mlogit" / "game_regression_own_hours_age.csv").set_index("term")
    assert o.effects["own"] == pytest.approx(0.96337, abs=5e-6) and o.effects_se["own"] == pytest.approx(0.19040,
                                                                                                       abs=5e-6)
    assert o.effects["own"] == pytest.approx(ro.loc["own", "estimate"], abs=1e-6)
    assert o.loglik == pytest.approx(-516.552, abs=5e-4)
    rest = ro.index.drop("own")
    np.testing.assert_allclose(pc(o).loc[rest, "estimate"], ro.loc[rest, "estimate"], atol=1e-6)
    np.testing.assert_allclose(pc(o).loc[rest, "se"], ro.loc[rest, "se_model"], rtol=1e-5)


def test_sandwich_by_hand_strata_and_small_sample(rng):
    """A^-1 B A^-1 from the per-respondent scores; strata centre the cluster totals; G/(G-1) on request."""
    from survey_weights.models._likelihood import PLDesign

    survey = sw.load_example_survey()
    survey["site"] = np.where(survey["population"] == "UCLA", "u", "p") + (np.arange(len(survey)) % 7).astype(str)
    survey["sw"] = rng.uniform(0.5, 2.0, len(survey))
    r = sw.Rankings.from_ratings(survey, sw.SURVEY_CRITERIA, respondent="respondent_id",
                                 covariates=["site", "population"], sampling_weights="sw")
    fit = sw.fit_plackett_luce(r, npseudo=0)
    d = PLDesign.from_rankings(r, npseudo=0)
    S = d.scores(fit.theta, weighted=False) * r.sampling_weights[:, None]
    keep = np.ones(d.n_params, bool)
    keep[0] = False
    Ainv = np.zeros((d.n_params, d.n_params))
    Ainv[np.ix_(keep, keep)] = np.linalg.inv(-d.hess(fit.theta, pseudo=False)[np.ix_(keep, keep)])
    n = d.n_items
    C = np.eye(d.n_params)
    C[:n, :n] -= 1.0 / n
    np.testing.assert_allclose(fit.vcov_full, C @ Ainv @ (S.T @ S) @ Ainv @ C.T, rtol=1e-8, atol=1e-14)
    cl = sw.fit_plackett_luce(r, npseudo=0, vcov="cluster", cluster="site", strata="population")
    site, pop = pd.factorize(survey["site"])[0], survey["population"].to_numpy()
    B = np.zeros_like(Ainv)
    for h in np.unique(pop):
        ug = np.array([S[(site == g) & (pop == h)].sum(axis=0) for g in np.unique(site[pop == h])])
        cu = ug - ug.mean(axis=0)
        B += len(ug) / (len(ug) - 1) * cu.T @ cu
    np.testing.assert_allclose(cl.vcov_full, C @ Ainv @ B @ Ainv @ C.T, rtol=1e-8, atol=1e-14)
    ss = sw.fit_plackett_luce(r, npseudo=0, vcov="robust", small_sample=True)
    N = r.n_respondents
    np.testing.assert_allclose(ss.vcov_full, fit.vcov_full * N / (N - 1), rtol=1e-10)


def test_sampling_weight_and_vcov_input_errors():
    df = pd.DataFrame({"id": [1, 2, 3, 4], "a": [5, 4, 3, 2], "b": [1, 2, 3, 4], "c": [2, 3, 1, 5],
                       "w": [1.0, -2.0, 1.0, 1.0], "v": [1.0, 2.0, np.nan, 1.0]})
    with pytest.raises(ValueError, match=r"positive.*respondent ids 2"):
        sw.Rankings.from_ratings(df, list("abc"), respondent="id", sampling_weights="w")
    with pytest.raises(ValueError, match="respondent ids 3"):
        sw.Rankings.from_ratings(df, list("abc"), respondent="id", sampling_weights="v")
    with pytest.raises(ValueError, match="not in the frame"):
        sw.Rankings.from_ratings(df, list("abc"), respondent="id", sampling_weights="zz")
    r = sw.Rankings.from_ratings(df, list("abc"), respondent="id")
    with pytest.raises(ValueError, match="vcov"):
        sw.fit_plackett_luce(r, vcov="sandwich")
    with pytest.raises(ValueError, match="cluster"):
        sw.fit_plackett_luce(r, vcov="cluster")
    with pytest.raises(ValueError, match="site"):
        sw.fit_plackett_luce(r, vcov="cluster", cluster="site")
    long = pd.DataFrame({"r": [1, 1, 2], "a": ["x", "y", "x"], "b": ["y", "z", "z"], "win": ["x", "z", "x"],
                         "sw": [2.0, 3.0, 1.0]})
    with pytest.raises(ValueError, match="constant within a respondent"):
        sw.PairedComparisons.from_long(long, "a", "b", "win", respondent="r", sampling_weights="sw")
    pc = sw.PairedComparisons.from_long(long.assign(sw=[2.0, 2.0, 1.0]), "a", "b", "win", respondent="r",
                                        sampling_weights="sw")
    assert list(pc.sampling_weights) == [2.0, 1.0] and list(pc.subset([1]).sampling_weights) == [1.0]


def test_sampling_weights_flow_through_subsets_groups_and_hash():
    survey = sw.load_example_survey()
    w = np.where(survey["population"] == "UCLA", 0.6, 1.4)
    r = sw.Rankings.from_ratings(survey, sw.SURVEY_CRITERIA, respondent="respondent_id", covariates=["severity"],
                                 sampling_weights=w)
    plain = sw.Rankings.from_ratings(survey, sw.SURVEY_CRITERIA, respondent="respondent_id", covariates=["severity"])
    assert r.data_hash() != plain.data_hash()
    np.testing.assert_allclose(r.fit_weights, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sw.SmallGroupWarning)
        g = sw.fit_by_group(r, "severity")
    test = g.lr_test()  # under sampling weights: a Wald test with the groups' robust covariances
    assert "Wald" in test.hypothesis and "robust" in test.hypothesis
    assert test.df == (len(g.groups) - 1) * (len(sw.SURVEY_CRITERIA) - 1) and 0 <= test.pvalue <= 1
    assert all(g.fits[k].vcov_type == "robust" for k in g.groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sw.SurveyWeightsWarning)  # vcov="model" under sampling weights warns
        g_model = sw.fit_by_group(r, "severity", vcov="model")
    assert all(g_model.fits[k].vcov_type == "model" for k in g_model.groups)
    k0 = g.groups[0]
    assert not np.allclose(g_model.fits[k0].se, g.fits[k0].se)  # the choice reaches every group's SEs
    # the weighted point estimate equals the fit of the replicated data (integer weights x 5)
    rr = plain.with_respondent_weights(np.round(w * 5))
    a = sw.fit_plackett_luce(r.with_sampling_weights(np.round(w * 5)), npseudo=0)
    b = sw.fit_plackett_luce(rr, npseudo=0)
    np.testing.assert_allclose(a.log_worth, b.log_worth, atol=1e-9)
    with pytest.raises(ValueError, match="sampling weights"):
        sw.fit_tree(r, ["severity"], minsize=20)


MARGINS = {"age_group": {"18-24": 0.12, "25-34": 0.20, "35-44": 0.20, "45-54": 0.20, "55+": 0.28},
           "gender": {"Woman": 0.50, "Man": 0.46, "Non-binary": 0.03, "Prefer not to say": 0.01}}


def test_raking_meets_the_margins_trims_and_reports():
    survey = sw.load_example_survey()
    res = sw.rake(survey, MARGINS, respondent="respondent_id")
    assert res.converged and res.max_margin_error < 1e-6 and res.weights.mean() == pytest.approx(1.0)
    for col, t in MARGINS.items():
        got = res.weights.groupby(survey.set_index("respondent_id")[col]).sum() / res.weights.sum()
        for level, share in t.items():
            assert got[level] == pytest.approx(share, rel=1e-6)
    w = res.weights.to_numpy()
    assert res.design_effect == pytest.approx(len(w) * (w ** 2).sum() / w.sum() ** 2)
    assert set(res.margins.columns) >= {"margin", "level", "target", "achieved", "n", "n_effective"}
    trimmed = sw.rake(survey, MARGINS, respondent="respondent_id", trim=(0.3, 3.5))
    tw = trimmed.weights / trimmed.weights.mean()
    assert trimmed.converged and tw.min() >= 0.3 - 1e-6 and tw.max() <= 3.5 + 1e-6 and trimmed.n_trimmed > 0
    assert tw.max() / tw.min() < (res.weights.max() / res.weights.min()) / 1.5  # the spread is bounded
    with pytest.warns(sw.ConvergenceWarning, match="trimming bounds"):  # 55+: 9 % of the sample, 28 % target
        assert not sw.rake(survey, MARGINS, respondent="respondent_id", trim=(0.5, 2.0)).converged
    assert "design effect" in res.summary()
    # disclosure: a margin level with fewer than 10 respondents ("Prefer not to say", 3) has its counts masked
    small = res.margins["n"] < 10
    assert small.any()
    shown = res.to_frame()
    assert shown.loc[small, "n"].isna().all() and shown.loc[small, "n_effective"].isna().all()
    assert shown.loc[~small, "n"].notna().all()
    assert "<10" in res.summary() and not any(f" {n} " in res.summary() for n in res.margins.loc[small, "n"])
    with pytest.raises(ValueError, match="no target"):
        sw.rake(survey, {"age_group": {"18-24": 0.5, "25-34": 0.5}}, respondent="respondent_id")
    with pytest.raises(ValueError, match="no respondent has"):
        sw.rake(survey, {"gender": {**MARGINS["gender"], "Other": 0.1}}, respondent="respondent_id")
    with pytest.raises(ValueError, match="trim"):
        sw.rake(survey, MARGINS, respondent="respondent_id", trim=(2.0, 3.0))


def test_bootstrap_redoes_the_raking_in_every_replicate():
    survey = sw.load_example_survey()
    res = sw.rake(survey, MARGINS, respondent="respondent_id")
    r = sw.Rankings.from_ratings(survey, sw.SURVEY_CRITERIA, respondent="respondent_id", sampling_weights=res.weights)
    fixed = sw.bootstrap(r, n_boot=40, seed=3, progress=False)
    reraked = sw.bootstrap(r, n_boot=40, seed=3, progress=False, raking=res)
    assert fixed.replicates.shape == reraked.replicates.shape == (40, 5)
    assert not np.allclose(fixed.replicates, reraked.replicates)  # the weighting step moves the replicates
    np.testing.assert_allclose(fixed.estimate, reraked.estimate)  # the same full-data estimate
    # replicate 0 by hand: re-rake the resampled respondents, fit with those weights
    counts = np.random.default_rng(3).multinomial(r.n_respondents, np.full(r.n_respondents, 1 / r.n_respondents))
    w0 = res.replicate(counts)
    keep = counts > 0
    rep = r.subset(keep).with_respondent_weights(counts[keep]).with_sampling_weights(w0[keep])
    fit0 = sw.fit_plackett_luce(rep, tol=1e-12)
    np.testing.assert_allclose(reraked.replicates.iloc[0].to_numpy(), fit0.weights.to_numpy(), atol=1e-6)


def test_profiles_and_the_export_record_the_variance_type_and_design_effect(tmp_path):
    survey = sw.load_example_survey()
    res = sw.rake(survey, MARGINS, respondent="respondent_id")
    r = sw.Rankings.from_ratings(survey, sw.SURVEY_CRITERIA, respondent="respondent_id", sampling_weights=res.weights)
    fit = sw.fit_plackett_luce(r)
    prof = sw.derive_profile(fit, name="pooled", data_hash=r.data_hash())
    assert prof.model["vcov_type"] == "robust"
    assert prof.model["design_effect"] == pytest.approx(fit.design_effect)
    path = sw.export_profiles([prof], tmp_path / "w.json")[0]
    back = sw.read_profiles(path)[0]
    assert back.model["vcov_type"] == "robust" and back.model["design_effect"] == pytest.approx(fit.design_effect)
    plain = sw.derive_profile(sw.fit_plackett_luce(r.with_sampling_weights(None)), name="p")
    assert plain.model["vcov_type"] == "model" and "design_effect" not in plain.model
    # the weights' intervals follow the robust covariance
    model_fit = sw.fit_plackett_luce(r.with_sampling_weights(None), vcov="robust")
    assert not np.allclose(sw.derive_profile(model_fit).ci_low, plain.ci_low)
