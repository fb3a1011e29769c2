"""Tests for survey_weights.profiles (WeightProfile, derive_profile)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit
from scipy.stats import norm

from survey_weights.criteria import ALL_CRITERIA, SURVEY_CRITERIA
from survey_weights.profiles import WeightProfile, derive_profile

BETA = np.array([0.9, 0.35, -0.45, -0.3, -0.5])


def make_fit(beta=BETA, scale=0.01, items=SURVEY_CRITERIA, seed=0, n=335):
    """Stand-in for a FitResult: zero-sum log-worths and a zero-sum covariance."""
    beta = np.asarray(beta, float) - np.mean(beta)
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(len(beta), len(beta)))
    c = np.eye(len(beta)) - 1.0 / len(beta)
    v = scale * c @ (a @ a.T / len(beta) + np.eye(len(beta))) @ c
    w = np.exp(beta) / np.exp(beta).sum()
    idx = pd.Index(items)
    return SimpleNamespace(
        items=tuple(items), log_worth=pd.Series(beta, index=idx), weights=pd.Series(w, index=idx),
        vcov=pd.DataFrame(v, index=idx, columns=idx), n_respondents=n, npseudo=0.5, method="mm",
        loglik=-1234.5, converged=True,
    )


def profile_map(beta, rule, val):
    p = np.exp(beta - beta.max())
    p /= p.sum()
    s = val if rule == "fixed" else max(val, p.max() / (1 + p.max()))
    return np.concatenate([(1 - s) * p, [s]])


def delta_se(fit, rule, val, h=1e-6):
    beta = fit.log_worth.to_numpy()
    J = np.column_stack([
        (profile_map(beta + h * e, rule, val) - profile_map(beta - h * e, rule, val)) / (2 * h)
        for e in np.eye(len(beta))
    ])
    return np.sqrt(np.diag(J @ fit.vcov.to_numpy() @ J.T))


def test_fixed_share_is_exact_and_ratios_match_fit():
    fit = make_fit()
    p = derive_profile(fit, safety=0.25)
    assert p.weights["safety"] == 0.25
    assert p.weights.sum() == pytest.approx(1.0, abs=1e-12)
    surv = p.weights[list(SURVEY_CRITERIA)]
    np.testing.assert_allclose(surv / surv.sum(), fit.weights.to_numpy(), rtol=1e-12)
    assert p.safety_rule == {"name": "safety", "rule": "fixed", "share": 0.25} and p.constraint == "safety"
    assert p.ci_low["safety"] == p.ci_high["safety"] == 0.25
    assert p.criteria == ALL_CRITERIA
    assert p.model["name"] and p.model["npseudo"] == 0.5 and p.n_respondents == 335


def test_share_dict_equals_float():
    fit = make_fit()
    assert derive_profile(fit, safety={"share": 0.3}) == derive_profile(fit, safety=0.3)


def test_floor_rule_active_and_inactive():
    fit = make_fit()
    pmax = fit.weights.max()
    top = pmax / (1 + pmax)
    # floor below the top criterion: safety ties the top survey criterion
    p = derive_profile(fit, safety={"floor": 0.05})
    assert p.weights["safety"] == pytest.approx(top, rel=1e-12)
    assert p.weights["safety"] == pytest.approx(p.weights[list(SURVEY_CRITERIA)].max(), rel=1e-12)
    assert p.safety_rule["rule"] == "floor" and p.safety_rule["floor"] == 0.05
    # floor above: safety gets the floor exactly
    q = derive_profile(fit, safety={"floor": 0.4})
    assert q.weights["safety"] == 0.4
    # default rule: never below any criterion
    d = derive_profile(fit)
    assert d.weights["safety"] >= d.weights[list(SURVEY_CRITERIA)].max() - 1e-12
    assert d.weights["safety"] >= 0.2
    for prof in (p, q, d):
        surv = prof.weights[list(SURVEY_CRITERIA)]
        np.testing.assert_allclose(surv / surv.sum(), fit.weights.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("safety", [0.2, {"floor": 0.05}, {"floor": 0.45}])
def test_intervals_contain_point_and_match_delta_method(safety):
    fit = make_fit(scale=0.02)
    p = derive_profile(fit, safety=safety, level=0.9)
    assert ((p.ci_low <= p.weights) & (p.weights <= p.ci_high)).all()
    assert (p.ci_low >= 0).all() and (p.ci_high <= 1).all()
    rule = "fixed" if isinstance(safety, float) else "floor"
    val = safety if isinstance(safety, float) else safety["floor"]
    se = delta_se(fit, rule, val)
    z = norm.ppf(0.95)
    w = p.weights.to_numpy()
    moving = se > 0  # a fixed safety share has a zero-width interval
    assert np.all(p.ci_low.to_numpy()[~moving] == w[~moving]) and np.all(p.ci_high.to_numpy()[~moving] == w[~moving])
    # logit-scale Wald interval: half width z se / (w (1 - w)) on both sides of logit(w)
    half = z * se[moving] / (w[moving] * (1 - w[moving]))
    np.testing.assert_allclose(logit(p.ci_high.to_numpy()[moving]) - logit(w[moving]), half, rtol=1e-5)
    np.testing.assert_allclose(logit(w[moving]) - logit(p.ci_low.to_numpy()[moving]), half, rtol=1e-5)


def test_delta_method_agrees_with_simulation():
    fit = make_fit(scale=0.002)
    p = derive_profile(fit, safety={"floor": 0.05})
    rng = np.random.default_rng(1)
    draws = rng.multivariate_normal(fit.log_worth.to_numpy(), fit.vcov.to_numpy(), size=20000, method="eigh")
    pr = np.exp(draws - draws.max(axis=1, keepdims=True))
    pr /= pr.sum(axis=1, keepdims=True)
    s = np.maximum(0.05, pr.max(axis=1) / (1 + pr.max(axis=1)))
    sims = np.column_stack([(1 - s)[:, None] * pr, s])
    w = p.weights.to_numpy()
    se = (logit(p.ci_high.to_numpy()) - logit(p.ci_low.to_numpy())) / (2 * norm.ppf(0.975)) * w * (1 - w)
    np.testing.assert_allclose(sims.std(axis=0), se, rtol=0.05)


def test_criteria_mapping_and_reordering():
    labels = ["E", "AL", "SMC", "TR", "PA"]
    fit = make_fit(items=labels)
    ref = derive_profile(make_fit(), safety=0.2)
    got = derive_profile(fit, safety=0.2, criteria=dict(zip(labels, SURVEY_CRITERIA)))
    assert got == ref
    # a fit with items in another order gives the same profile
    perm = [3, 0, 4, 1, 2]
    f2 = make_fit(items=SURVEY_CRITERIA)
    shuffled = SimpleNamespace(**vars(f2))
    order = [SURVEY_CRITERIA[i] for i in perm]
    shuffled.items = tuple(order)
    shuffled.weights = f2.weights[order]
    shuffled.log_worth = f2.log_worth[order]
    shuffled.vcov = f2.vcov.loc[order, order]
    a, b = derive_profile(shuffled, safety=0.2), derive_profile(f2, safety=0.2)
    assert a.criteria == (*order, "safety") and b.criteria == ALL_CRITERIA  # the fit's order, then the constraint
    for got, want in ((a.weights, b.weights), (a.ci_low, b.ci_low), (a.ci_high, b.ci_high)):
        np.testing.assert_allclose(got[list(ALL_CRITERIA)].to_numpy(), want[list(ALL_CRITERIA)].to_numpy(),
                                   rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"safety": 1.2}, "between 0 and 1"),
        ({"safety": 0.0}, "between 0 and 1"),
        ({"safety": {"cap": 0.2}}, "floor"),
        ({"safety": "high"}, "safety"),
        ({"level": 1.5}, "level"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        derive_profile(make_fit(), **kwargs)


def test_bad_items():
    with pytest.raises(ValueError, match="item named 'safety'.*safety=None"):
        derive_profile(make_fit(items=[*SURVEY_CRITERIA[:4], "safety"]))
    with pytest.raises(ValueError, match="renames \\['z'\\]"):
        derive_profile(make_fit(items=["a", "b", "c", "d", "e"]), criteria={"z": "empathy"})
    with pytest.raises(ValueError, match="more than once"):
        derive_profile(make_fit(items=["a", "b", "c", "d", "e"]), criteria={"a": "b"})
    with pytest.raises(TypeError, match="criteria"):
        derive_profile(make_fit(), criteria=["x"])
    with pytest.raises(TypeError, match="fitted result"):
        derive_profile(object())
    # a partial renaming keeps the other labels
    p = derive_profile(make_fit(items=["a", "b", "c", "d", "e"]), criteria={"a": "empathy"})
    assert p.criteria == ("empathy", "b", "c", "d", "e", "safety")


def test_group_name_and_dict_round_trip():
    p = derive_profile(make_fit(n=48), group={"age_group": "18-24"}, source="group", data_hash="abc")
    assert p.name == "age_group=18-24" and p.group == {"age_group": "18-24"} and p.n_respondents == 48
    d = p.to_dict()
    assert WeightProfile.from_dict(d) == p
    assert "respondent_id" not in str(d)
    assert "age_group=18-24" in repr(p) and "<table>" in p._repr_html_()


def test_weightprofile_validation():
    w = dict(zip(ALL_CRITERIA, [0.3, 0.2, 0.1, 0.1, 0.1, 0.2]))
    with pytest.raises(ValueError, match="sum to 1"):
        WeightProfile("x", {**w, "safety": 0.3})
    with pytest.raises(ValueError, match="sum to 1"):
        WeightProfile("x", {k: v for k, v in w.items() if k != "safety"})
    with pytest.raises(ValueError, match="Missing: \\['safety'\\]"):
        WeightProfile("x", w, ci_low={k: v for k, v in w.items() if k != "safety"}, ci_high=w)
    with pytest.raises(ValueError, match="more than once"):
        WeightProfile("x", pd.Series([0.5, 0.5], index=["a", "a"]))
    with pytest.raises(ValueError, match="at least one criterion"):
        WeightProfile("x", {})
    with pytest.raises(ValueError, match="not one of the profile's criteria"):
        WeightProfile("x", w, safety_rule={"name": "harm", "rule": "fixed", "share": 0.2})
    with pytest.raises(ValueError, match="contain"):
        WeightProfile("x", w, ci_low={k: v + 0.01 for k, v in w.items()}, ci_high=w)
    with pytest.raises(ValueError, match="both"):
        WeightProfile("x", w, ci_low=w)
    with pytest.raises(ValueError, match="respondent-level"):
        WeightProfile("x", w, model={"respondent_ids": [1, 2]})
    p = WeightProfile("x", w, model={"path": ("a", 1)})
    assert p.model == {"path": ["a", 1]}
    with pytest.raises(Exception):
        p.name = "y"  # frozen


def test_derive_profile_from_real_fit():
    data = pytest.importorskip("survey_weights.data")
    models = pytest.importorskip("survey_weights.models.plackett_luce")
    import warnings

    from survey_weights.simulate import simulate_survey

    df = simulate_survey(335, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = data.Rankings.from_ratings(df, items=list(SURVEY_CRITERIA), respondent="respondent_id")
    fit = models.fit_plackett_luce(r)
    p = derive_profile(fit, data_hash=r.data_hash())
    assert p.model["name"] == "plackett_luce" and p.model["npseudo"] == fit.npseudo
    assert p.n_respondents == fit.n_respondents and p.data_hash == r.data_hash()
    surv = p.weights[list(SURVEY_CRITERIA)]
    np.testing.assert_allclose(surv / surv.sum(), fit.weights[list(SURVEY_CRITERIA)].to_numpy(), rtol=1e-12)
    assert ((p.ci_low <= p.weights) & (p.weights <= p.ci_high)).all()


def test_safety_none_gives_no_constraint_objective():
    fit = make_fit(scale=0.02)
    p = derive_profile(fit, safety=None)
    assert p.criteria == SURVEY_CRITERIA and "safety" not in p.weights.index  # none at all, not a zero share
    assert p.safety_rule == {"rule": "none"} and p.constraint is None
    np.testing.assert_array_equal(p.weights.to_numpy(), fit.weights.to_numpy())


def test_fit_table_and_profile_give_identical_intervals():
    """The one recipe: FitResult.to_frame() and derive_profile(safety=None) agree bit for bit, at any level."""
    import warnings

    from survey_weights.data import Rankings
    from survey_weights.models import fit_plackett_luce
    from survey_weights.simulate import simulate_survey

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = Rankings.from_ratings(simulate_survey(200, seed=4), list(SURVEY_CRITERIA), respondent="respondent_id")
    fit = fit_plackett_luce(r)
    for level in (0.95, 0.8):
        tab = fit.to_frame(level=level).set_index("item").loc[list(SURVEY_CRITERIA)]
        prof = derive_profile(fit, safety=None, level=level)
        for col, got in (("weight", prof.weights), ("ci_low", prof.ci_low), ("ci_high", prof.ci_high)):
            np.testing.assert_array_equal(got[list(SURVEY_CRITERIA)].to_numpy(), tab[col].to_numpy(), err_msg=col)
    # with a safety share the survey weights are scaled by (1 - s): same recipe on (1 - s) w with SE (1 - s) se_w
    prof = derive_profile(fit, safety=0.3)
    tab = fit.to_frame().set_index("item").loc[list(SURVEY_CRITERIA)]
    w, se = 0.7 * tab["weight"].to_numpy(), 0.7 * tab["weight_se"].to_numpy()
    half = norm.ppf(0.975) * se / (w * (1 - w))
    np.testing.assert_allclose(logit(prof.ci_low[list(SURVEY_CRITERIA)].to_numpy()), logit(w) - half, rtol=1e-12)
    np.testing.assert_allclose(logit(prof.ci_high[list(SURVEY_CRITERIA)].to_numpy()), logit(w) + half, rtol=1e-12)
