"""One result vocabulary: to_frame(), summary(), plot(), weights and profiles() mean the same on every result class
(FitResult under every tie reading, BestWorstResult, GroupedFitResult, WorthRegressionResult, PreferenceTree,
MixtureResult, BootstrapResult, IndividualWeights)."""

from __future__ import annotations

import copy
import inspect
import warnings

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights.criteria import SURVEY_CRITERIA
from survey_weights.exceptions import SmallGroupWarning
from survey_weights.profiles import WeightProfile, derive_profile
from survey_weights.results import Summary

KINDS = ["fit", "groups", "regression", "tree", "mixture", "bootstrap", "ties_efron", "best_worst", "individual"]
#: leading key column of the tidy table (None: one fit)
KEY = {"fit": None, "groups": "group", "regression": None, "tree": "node", "mixture": "class", "bootstrap": None,
       "ties_efron": None, "best_worst": None, "individual": "respondent"}
#: index name of a multi-fit result's weights
ROWS = {"groups": "group", "regression": "cell", "tree": "node", "mixture": "class", "individual": "respondent"}


@pytest.fixture(scope="module")
def rankings() -> sw.Rankings:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sw.DataRecodeWarning)
        return sw.Rankings.from_ratings(sw.load_example_survey(), SURVEY_CRITERIA, respondent="respondent_id",
                                        scale=(1, 5), covariates=["age_group", "severity"])


def _best_worst_tasks(seed: int = 3) -> sw.Rankings:
    """A MaxDiff of the five criteria simulated from known log-worths (60 respondents x 5 tasks of 4 items)."""
    rng = np.random.default_rng(seed)
    items = list(SURVEY_CRITERIA)
    v = dict(zip(items, [0.0, 0.3, -0.2, 0.5, 0.1]))
    rows = []
    for r in range(60):
        for t in range(5):
            shown = list(rng.choice(items, size=4, replace=False))
            pairs = [(b, w) for b in shown for w in shown if b != w]
            p = np.exp([v[b] - v[w] for b, w in pairs])
            b, w = pairs[rng.choice(len(pairs), p=p / p.sum())]
            rows.append({"respondent": f"r{r}", "task": t, "shown": shown, "best": b, "worst": w})
    return sw.Rankings.from_best_worst(pd.DataFrame(rows), respondent="respondent", task="task", shown="shown",
                                       best="best", worst="worst", items=items)


@pytest.fixture(scope="module")
def results(rankings: sw.Rankings) -> dict:
    return {
        "fit": sw.fit_plackett_luce(rankings),
        "groups": sw.fit_by_group(rankings, "age_group"),
        "regression": sw.fit_regression(rankings, ["severity"]),
        "tree": sw.fit_tree(rankings, ["age_group", "severity"], minsize=30),
        "mixture": sw.fit_mixture(rankings, 2, seed=0, n_starts=2),
        "bootstrap": sw.bootstrap(rankings, n_boot=100, seed=1, progress=False),
        "ties_efron": sw.fit_plackett_luce(rankings, ties="efron"),
        "best_worst": sw.fit_best_worst(_best_worst_tasks(), model="maxdiff"),
        "individual": sw.fit_individual(rankings.subset(np.arange(60))),
    }


@pytest.mark.parametrize("kind", KINDS)
def test_to_frame_shares_column_names(results, kind):
    fr = results[kind].to_frame()
    if kind == "regression":  # coefficients, not weights: the coefficient table (documented)
        assert list(fr.columns) == ["item", "term", "estimate", "se", "z", "pvalue", "ci_low", "ci_high"]
        assert (fr["ci_low"] < fr["estimate"]).all() and (fr["estimate"] < fr["ci_high"]).all()
        return
    if kind == "individual":  # one row per respondent x criterion, exactly these columns (issue 13.4)
        assert list(fr.columns) == ["respondent", "criterion", "weight", "ci_low", "ci_high"]
        assert ((0 < fr["ci_low"]) & (fr["ci_low"] <= fr["weight"]) & (fr["weight"] <= fr["ci_high"])
                & (fr["ci_high"] < 1)).all()
        np.testing.assert_allclose(fr.groupby("respondent")["weight"].sum(), 1.0)
        return
    lead = [] if KEY[kind] is None else [KEY[kind]]
    assert list(fr.columns[: len(lead)]) == lead
    head = [c for c in fr.columns if c in ("item", "weight", "ci_low", "ci_high")]
    assert head == ["item", "weight", "ci_low", "ci_high"]
    assert {"log_worth", "se"} <= set(fr.columns)
    assert ((0 < fr["ci_low"]) & (fr["ci_low"] < fr["weight"]) & (fr["weight"] < fr["ci_high"])
            & (fr["ci_high"] < 1)).all()
    sums = fr.groupby(KEY[kind])["weight"].sum() if KEY[kind] else fr["weight"].sum()
    np.testing.assert_allclose(sums, 1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_summary_is_a_summary(results, kind):
    s = results[kind].summary()
    assert isinstance(s, Summary)
    text = str(s)
    assert text == s.as_text() and len(text.splitlines()) > 3
    assert "<table" in s._repr_html_()


@pytest.mark.parametrize("kind", KINDS)
def test_weights_have_one_meaning(results, kind):
    res = results[kind]
    w = res.weights
    if kind in ("fit", "bootstrap", "ties_efron", "best_worst"):
        assert isinstance(w, pd.Series) and list(w.index) == list(SURVEY_CRITERIA)
        assert w.sum() == pytest.approx(1.0, abs=1e-12)
        pd.testing.assert_series_equal(w, res.to_frame().set_index("item")["weight"], check_names=False)
    else:
        assert isinstance(w, pd.DataFrame) and list(w.columns) == list(SURVEY_CRITERIA)
        assert w.index.name == ROWS[kind] and len(w) >= 2
        np.testing.assert_allclose(w.sum(axis=1).to_numpy(), 1.0, atol=1e-12)
    if kind in ("groups", "tree", "mixture"):
        wide = res.to_frame().pivot(index=KEY[kind], columns="item", values="weight")
        np.testing.assert_allclose(wide.loc[w.index, list(SURVEY_CRITERIA)].to_numpy(), w.to_numpy(), atol=1e-12)


def test_the_old_weight_accessors_still_work(results):
    groups, tree, mixture, reg = results["groups"], results["tree"], results["mixture"], results["regression"]
    pd.testing.assert_frame_equal(groups.weights_table(), groups.weights)
    pd.testing.assert_frame_equal(mixture.class_weights, mixture.weights)
    leaf = tree.leaf_ids[0]
    np.testing.assert_allclose(tree.weights_of(leaf).to_numpy(), tree.weights.loc[leaf].to_numpy())
    assert tree.weights_of(1).sum() == pytest.approx(1.0)  # inner nodes too
    cells = pd.DataFrame({"severity": ["Mild", "Severe"]})
    np.testing.assert_allclose(reg.predict_weights(cells).to_numpy(),
                               reg.weights.loc[["severity=Mild", "severity=Severe"]].to_numpy(), atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_plot_renders_with_labels(results, kind, tmp_path):
    res = results[kind]
    ax = res.plot()
    path = tmp_path / f"{kind}.png"
    ax.figure.savefig(path)
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
    ticks = {t.get_text() for t in ax.get_yticklabels()}
    assert set(SURVEY_CRITERIA) <= ticks
    legend = [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else []
    expected = {"groups": "age_group=18-24 (n=", "mixture": "class 1 (", "regression": "severity[Severe]",
                "tree": f"[{res.leaf_ids[0]}]" if kind == "tree" else None}
    if kind in expected:
        assert any(lab.startswith(expected[kind]) for lab in legend), legend
    else:
        assert not legend
    assert "CI" in ax.get_xlabel()
    assert any(len(c.get_segments()) for c in ax.collections)  # the interval bars
    # an Axes passed in is drawn on and returned
    from matplotlib.figure import Figure

    given = Figure().subplots()
    assert res.plot(ax=given) is given


@pytest.mark.parametrize("kind", KINDS)
def test_profiles_one_signature(results, kind):
    res = results[kind]
    sig = inspect.signature(res.profiles)
    assert list(sig.parameters) == ["safety", "min_cell_size", "level"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values())
    assert sig.parameters["level"].default == 0.95
    before = res.to_frame()
    state = copy.copy(getattr(res, "min_cell_size", None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallGroupWarning)
        profs = res.profiles(safety=0.25, level=0.9)
    assert profs and all(isinstance(p, WeightProfile) for p in profs)
    assert all(p.weights["safety"] == 0.25 and p.model["level"] == 0.9 for p in profs)
    assert len({p.name for p in profs}) == len(profs)
    wide = res.profiles(safety=0.25, level=0.99)[0]
    assert (wide.ci_high - wide.ci_low).sum() > (profs[0].ci_high - profs[0].ci_low).sum()
    with pytest.warns(SmallGroupWarning):
        assert res.profiles(min_cell_size=100_000) == []
    pd.testing.assert_frame_equal(res.to_frame(), before)  # never mutated
    assert getattr(res, "min_cell_size", None) == state


def test_profiles_keep_names_groups_and_sources(results, rankings):
    fit, groups, tree, mixture, reg, boot = (results[k] for k in KINDS[:1] + ["groups", "tree", "mixture",
                                                                           "regression", "bootstrap"])
    assert [(p.name, p.source) for p in fit.profiles()] == [("pooled", "pooled")]
    assert fit.profiles()[0] == derive_profile(fit, name="pooled")
    g = groups.profiles()
    assert [p.name for p in g] == [f"age_group={lv}" for lv in groups.groups]
    assert all(p.source == "group" and p.group == {"age_group": lv} for p, lv in zip(g, groups.groups))
    m = mixture.profiles()
    assert [p.name for p in m] == ["class 1", "class 2"] and m[0].group == {"class": 1}
    assert all(p.source == "class" and p.data_hash == rankings.data_hash() for p in m)
    t = tree.profiles()
    assert all(p.source == "tree" and p.name.startswith("tree node ") for p in t)
    r = reg.profiles()
    assert [p.group for p in r] == [{"severity": lv} for lv in ("Mild", "Moderate", "Severe")]
    assert sum(p.n_respondents for p in r) == rankings.n_respondents
    b = boot.profiles()[0]
    assert b.name == "pooled" and b.n_respondents == rankings.n_respondents and b.data_hash == rankings.data_hash()


def test_group_and_leaf_tables_use_the_profile_recipe(results):
    """The same interval for the same weight: table rows equal derive_profile(fit, safety=None)."""
    groups, tree = results["groups"], results["tree"]
    fr = groups.to_frame()
    for g in groups.groups:
        prof = derive_profile(groups.fits[g], safety=None)
        rows = fr[fr["group"] == groups.label(g)].set_index("item").loc[list(SURVEY_CRITERIA)]
        np.testing.assert_array_equal(prof.ci_low[list(SURVEY_CRITERIA)].to_numpy(), rows["ci_low"].to_numpy())
        np.testing.assert_array_equal(prof.ci_high[list(SURVEY_CRITERIA)].to_numpy(), rows["ci_high"].to_numpy())
    fr = tree.to_frame()
    for i in tree.leaf_ids:
        prof = derive_profile(tree.leaf_fits[i], safety=None)
        rows = fr[fr["node"] == i].set_index("item").loc[list(SURVEY_CRITERIA)]
        np.testing.assert_allclose(prof.ci_low[list(SURVEY_CRITERIA)].to_numpy(), rows["ci_low"].to_numpy(),
                                   rtol=1e-6)


def test_regression_cell_profile_by_hand(results):
    """A cell's log-worths are intercept + its dummies; their covariance is the sum of the coefficient blocks."""
    from survey_weights.profiles import weight_intervals

    reg = results["regression"]
    C, V = reg.coef, reg.vcov
    terms = ["(Intercept)", "severity[Severe]"]
    b = C[terms].sum(axis=1).loc[list(SURVEY_CRITERIA)].to_numpy()
    Vc = sum(V.xs(t1, level="term").xs(t2, level="term", axis=1) for t1 in terms for t2 in terms)
    Vc = Vc.loc[list(SURVEY_CRITERIA), list(SURVEY_CRITERIA)].to_numpy()
    want = weight_intervals(b, Vc)
    np.testing.assert_allclose(reg.weights.loc["severity=Severe"].to_numpy(), want["weight"], rtol=1e-12)
    prof = next(p for p in reg.profiles(safety=None) if p.group == {"severity": "Severe"})
    np.testing.assert_allclose(prof.ci_low[list(SURVEY_CRITERIA)].to_numpy(), want["ci_low"], rtol=1e-10)
    np.testing.assert_allclose(prof.ci_high[list(SURVEY_CRITERIA)].to_numpy(), want["ci_high"], rtol=1e-10)
    assert prof.model["name"] == "plackett_luce_regression"


def test_bootstrap_profile_uses_the_bootstrap_covariance(results):
    from survey_weights.profiles import weight_intervals

    boot = results["bootstrap"]
    prof = boot.profiles(safety=None)[0]
    want = weight_intervals(boot.log_worth.to_numpy(), np.cov(boot.log_worth_replicates.to_numpy(), rowvar=False))
    np.testing.assert_allclose(prof.ci_low[list(SURVEY_CRITERIA)].to_numpy(), want["ci_low"], rtol=1e-12)
    np.testing.assert_allclose(prof.weights[list(SURVEY_CRITERIA)].to_numpy(), boot.weights.to_numpy(), rtol=1e-12)


def test_bad_min_cell_size(results):
    with pytest.raises(ValueError, match="min_cell_size"):
        results["fit"].profiles(min_cell_size=-1)
    with pytest.raises(TypeError, match="min_cell_size"):
        results["groups"].profiles(min_cell_size="10")


def test_export_asks_a_result_for_its_profiles(results, tmp_path):
    groups = results["groups"]
    with pytest.warns(SmallGroupWarning, match="age_group=45-54"):
        out = sw.export_profiles(groups, tmp_path / "groups.json", min_cell_size=29)
    names = [p.name for p in sw.read_profiles(out[0])]
    assert names == [f"age_group={g}" for g in groups.groups if groups.n[groups.label(g)] >= 29]
