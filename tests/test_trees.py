"""Tests for survey_weights.subgroups.trees (model-based preference trees) and the M-fluctuation machinery."""
from __future__ import annotations

import itertools
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey_weights import SURVEY_CRITERIA, PairedComparisons, Rankings
from survey_weights.exceptions import DataRecodeWarning, SmallGroupWarning
from survey_weights.models._choice import ChoiceDesign
from survey_weights.models._optim import newton
from survey_weights.simulate import simulate_survey
from survey_weights.subgroups._instability import suplm_pvalue
from survey_weights.subgroups.trees import PreferenceTree, fit_tree

EXTERNAL = Path(os.environ.get("SURVEY_WEIGHTS_EXTERNAL", Path(__file__).resolve().parents[1].parent / "shared" /
                               "external"))
REF = EXTERNAL / "reference_outputs"
needs_external = pytest.mark.skipif(
    not (EXTERNAL / "psychotree" / "topmodel2007.csv").exists(),
    reason=f"external reference data not found at {EXTERNAL} (set SURVEY_WEIGHTS_EXTERNAL)",
)
TOP_ITEMS = ["Barbara", "Anni", "Hana", "Fiona", "Mandy", "Anja"]
TOP_COV = ["gender", "age", "q1", "q2", "q3"]
SURVEY_COV = ["age_group", "gender", "severity", "ptsd", "population", "att_trust"]


# ----------------------------------------------------------------------------------------------------- data
def load_topmodel() -> PairedComparisons:
    """Topmodel2007 as in psychotree; factor levels in R's order (male/female, yes/no)."""
    df = pd.read_csv(EXTERNAL / "psychotree" / "topmodel2007.csv")
    rows = []
    for c in [c for c in df.columns if ":" in c]:
        a, b = c.split(":")
        v = df[c].to_numpy()
        rows.append(pd.DataFrame({"respondent": df["respondent"], "a": a, "b": b,
                                  "winner": np.where(v == 1, a, np.where(v == -1, b, None))}))
    long = pd.concat(rows, ignore_index=True).dropna(subset=["winner"])
    cov = df.set_index("respondent")[TOP_COV].copy()
    cov["gender"] = pd.Categorical(cov["gender"], categories=["male", "female"])
    for q in ("q1", "q2", "q3"):
        cov[q] = pd.Categorical(cov[q], categories=["yes", "no"])
    return PairedComparisons.from_long(long, "a", "b", "winner", respondent="respondent", items=TOP_ITEMS,
                                       covariates=cov)


def load_beans() -> Rankings:
    """beans as in ?beans: best/middle/worst of 3 trial varieties + 3 pairs vs Local, 4 rankings per farmer."""
    b = pd.read_csv(EXTERNAL / "plackettluce" / "beans.csv")
    n = len(b)
    var = b[["variety_a", "variety_b", "variety_c"]].to_numpy()
    code = {"A": 0, "B": 1, "C": 2}
    best, worst = b["best"].map(code).to_numpy(), b["worst"].map(code).to_numpy()
    middle = 3 - best - worst
    orders = [[var[i, best[i]], var[i, middle[i]], var[i, worst[i]]] for i in range(n)]
    ids = list(range(1, n + 1))
    for j, col in enumerate(["var_a", "var_b", "var_c"]):
        out = b[col].to_numpy()
        orders += [["Local", var[i, j]] if out[i] == "Worse" else [var[i, j], "Local"] for i in range(n)]
        ids += list(range(1, n + 1))
    cov = pd.DataFrame({
        "season": pd.Categorical(b["season"], categories=["Po - 15", "Ap - 15", "Pr - 16", "Po - 16", "Ap - 16"]),
        "year": pd.Categorical(b["year"].astype(str)),
        "maxTN": b["maxTN"].to_numpy(dtype=float)}, index=pd.Index(np.arange(1, n + 1), name="respondent"))
    return Rankings.from_orderings(orders, respondent_ids=ids, covariates=cov)


def survey(n: int = 335, *, seed: int, heterogeneity: float = 0.0) -> Rankings:
    df = simulate_survey(n, seed=seed, heterogeneity=heterogeneity)
    df["ptsd"] = df["diagnoses"].str.contains("PTSD").map({True: "yes", False: "no"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataRecodeWarning)
        return Rankings.from_ratings(df, items=list(SURVEY_CRITERIA), respondent="respondent_id", scale=(1, 5),
                                     covariates=SURVEY_COV)


@pytest.fixture(scope="module")
def topmodel_tree() -> PreferenceTree:
    return fit_tree(load_topmodel(), TOP_COV, minsize=5, npseudo=0)


@pytest.fixture(scope="module")
def beans_tree() -> PreferenceTree:
    return fit_tree(load_beans(), ["season", "year", "maxTN"], minsize=0.05 * 842, maxdepth=3)


# ----------------------------------------------------------------------------------------------- parity
@needs_external
def test_topmodel_structure_and_worths(topmodel_tree):
    tr = topmodel_tree
    assert tr.n_leaves == 4
    assert tr.rules() == {3: "age <= 52 & q2 in yes", 5: "age <= 52 & q2 in no & gender in male",
                          6: "age <= 52 & q2 in no & gender in female", 7: "age > 52"}
    fr = tr.to_frame()
    assert {"node", "n", "item", "log_worth", "weight"} <= set(fr.columns)
    assert fr.groupby("node")["n"].first().to_dict() == {3: 35, 5: 71, 6: 56, 7: 30}
    ref = pd.read_csv(REF / "topmodel2007_bttree_itempar.csv", index_col=0)
    got = fr.pivot(index="node", columns="item", values="weight").loc[[3, 5, 6, 7], TOP_ITEMS]
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), atol=1e-4)
    assert -tr.loglik == pytest.approx(1828.633035, abs=1e-4)


@needs_external
def test_topmodel_root_tests(topmodel_tree):
    t = topmodel_tree.tests(1)
    ref_stat = {"gender": 17.08798000298, "age": 32.35655308, "q1": 12.6319505277, "q2": 19.839221849993,
                "q3": 6.7585592263}
    for cov, v in ref_stat.items():
        assert t.loc[cov, "statistic"] == pytest.approx(v, abs=1e-3)
    # chi-square tests of the factors: Bonferroni-adjusted p-values as partykit prints them
    ref_p = {"gender": 0.02149244959, "q1": 0.1282763802, "q2": 0.006679995533, "q3": 0.7451514881}
    for cov, v in ref_p.items():
        assert t.loc[cov, "pvalue"] == pytest.approx(v, rel=1e-4)
    # supLM under the default pvalue="partykit": Hansen's approximation, partykit's number
    assert t.loc["age", "pvalue"] == pytest.approx(7.915466149e-04, rel=1e-5)
    assert topmodel_tree.settings["pvalue"] == "partykit"


@needs_external
def test_topmodel_exact_pvalue_same_tree(topmodel_tree):
    """pvalue="exact": the exact asymptotic supLM p-value (within a factor 2 of Hansen's here), same splits."""
    tr = fit_tree(load_topmodel(), TOP_COV, minsize=5, npseudo=0, pvalue="exact")
    t, t0 = tr.tests(1), topmodel_tree.tests(1)
    np.testing.assert_allclose(t["statistic"], t0["statistic"], rtol=0, atol=0)
    assert t0.loc["age", "pvalue"] < t.loc["age", "pvalue"] < 2 * t0.loc["age", "pvalue"]
    for cov in ("gender", "q1", "q2", "q3"):  # categorical: chi-square either way
        assert t.loc[cov, "pvalue"] == t0.loc[cov, "pvalue"]
    assert tr.rules() == topmodel_tree.rules() and tr.settings["pvalue"] == "exact"


@needs_external
def test_topmodel_predict_matches_r_nodes(topmodel_tree):
    data = load_topmodel()
    ref = pd.read_csv(REF / "topmodel2007_bttree_node_assign.csv")["node"].to_numpy()
    pred = topmodel_tree.predict(data.covariates)
    np.testing.assert_array_equal(pred["node"].to_numpy(), ref)
    np.testing.assert_array_equal(topmodel_tree.membership.to_numpy(), ref)
    assert list(pred.columns) == ["node", *TOP_ITEMS]
    np.testing.assert_allclose(pred[TOP_ITEMS].sum(axis=1), 1.0)


@needs_external
@pytest.mark.slow
def test_beans_pltree_parity(beans_tree):
    tr = beans_tree
    assert tr.n_leaves == 3
    assert tr.nodes[1].split.variable == "maxTN"
    assert tr.nodes[1].split.threshold == pytest.approx(18.7175, abs=1e-9)
    assert tr.nodes[2].split.left_levels == ("Pr - 16",)
    assert tr.membership.value_counts().sort_index().to_dict() == {3: 47, 4: 489, 5: 306}
    ref = pd.read_csv(REF / "beans_pltree_itempar.csv", index_col=0)
    got = tr.to_frame().pivot(index="node", columns="item", values="weight")
    np.testing.assert_allclose(got.loc[[3, 4, 5], list(ref.columns)].to_numpy(), ref.to_numpy(), atol=1e-4)
    assert -tr.loglik == pytest.approx(3152.027183, abs=1e-3)
    root = {"season": 66.48653382579, "year": 16.1836945027, "maxTN": 56.10656568}
    node2 = {"season": 85.47066685, "year": 15.0127657215, "maxTN": 16.6193847099}
    for node, ref_stat in ((1, root), (2, node2)):
        t = tr.tests(node)
        for cov, v in ref_stat.items():
            assert t.loc[cov, "statistic"] == pytest.approx(v, abs=1e-3)
    assert tr.tests(1).loc["season", "pvalue"] == pytest.approx(0.01591325156, rel=1e-4)
    # supLM p-values (default pvalue="partykit") as partykit prints them (Bonferroni-adjusted)
    ref_p = {1: {"year": 0.2575366672, "maxTN": 2.625539661e-06}, 2: {"year": 0.3451169581, "maxTN": 0.9584748374}}
    for node, ref in ref_p.items():
        for cov, v in ref.items():
            assert tr.tests(node).loc[cov, "pvalue"] == pytest.approx(v, rel=1e-5)
    nodes = pd.read_csv(REF / "beans_pltree_node_assign.csv")["node"].to_numpy()
    np.testing.assert_array_equal(tr.predict(load_beans().covariates)["node"].to_numpy(), nodes)


# --------------------------------------------------------------------------------------------- behaviour
def test_node_statistics_fit_matches_plain_fit():
    """A tree node is fitted on per-respondent sufficient statistics of the engine's design: the same
    estimate and log-likelihood as the plain fit of those respondents."""
    from survey_weights.models.plackett_luce import fit_plackett_luce

    r = survey(120, seed=3)
    d = ChoiceDesign.from_data(r, npseudo=0.5)
    num, counts = d.respondent_stats()
    w = np.zeros(r.n_respondents)
    w[::2] = 1.0  # a node: every other respondent
    lin, W = d.stats(w)
    np.testing.assert_allclose(lin, w @ num, atol=1e-12)
    np.testing.assert_allclose(W, counts.T @ w, atol=1e-12)
    view = d.with_stats(lin, W)
    opt = newton(view, np.zeros(d.n_params), d.free(0), 100, 1e-10)
    res = fit_plackett_luce(r.subset(w > 0), tol=1e-10)
    assert opt.converged and view.loglik(opt.theta, pseudo=False) == pytest.approx(res.loglik, abs=1e-7)
    b = opt.theta[: r.n_items]
    np.testing.assert_allclose(b - b.mean(), res.log_worth.to_numpy(), atol=1e-6)


def test_no_split_on_null_data():
    tr = fit_tree(survey(seed=11), SURVEY_COV, minsize=30)
    assert tr.n_leaves == 1
    assert tr.rules() == {1: "root"}
    assert np.all(tr.tests(1)["pvalue"].dropna() > 0.05)


def test_false_split_rate_loose():
    # see benchmarks/bench_trees.py --false-splits for the 200-simulation estimate
    splits = sum(fit_tree(survey(200, seed=100 + s), SURVEY_COV, minsize=20).n_leaves > 1 for s in range(8))
    assert splits <= 2


def _planted(n: int, seed: int) -> Rankings:
    """x <= 0.5 vs x > 0.5 prefer opposite ends of 5 items; `noise` is an unrelated factor."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=n)
    noise = rng.choice(["a", "b", "c"], size=n)
    beta = np.where(x[:, None] <= 0.5, np.linspace(1, -1, 5), np.linspace(-1, 1, 5))
    orders = [list(np.argsort(-(b + rng.gumbel(size=5)))) for b in beta]
    cov = pd.DataFrame({"x": x, "noise": noise}, index=pd.Index(range(n), name="respondent"))
    return Rankings.from_orderings(orders, items=list(range(5)), respondent_ids=range(n), covariates=cov)


def test_finds_planted_split_and_routes_new_data():
    tr = fit_tree(_planted(300, seed=1), ["x", "noise"], minsize=20)
    assert tr.nodes[1].split.variable == "x"
    assert tr.nodes[1].split.threshold == pytest.approx(0.5, abs=0.05)
    assert tr.tests(1).loc["x", "pvalue"] < 1e-6
    pred = tr.predict(pd.DataFrame({"x": [0.1, 0.9, np.nan], "noise": ["a", "b", "z"]}, index=["u", "v", "w"]))
    assert list(pred.index) == ["u", "v", "w"]
    leaf_lo, leaf_hi = pred["node"].iloc[0], pred["node"].iloc[1]
    assert leaf_lo != leaf_hi
    w = tr.weights  # leaves x items
    assert w.loc[leaf_lo].iloc[0] > w.loc[leaf_lo].iloc[4] and w.loc[leaf_hi].iloc[4] > w.loc[leaf_hi].iloc[0]
    pd.testing.assert_series_equal(tr.weights_of(leaf_lo), w.loc[leaf_lo].rename("weight"), check_names=False)
    text = str(tr)
    assert "[1] root" in text and "[2] x <= 0.4" in text and "Number of terminal nodes" in text


def test_maxdepth_and_categorical_split():
    r = _planted(300, seed=2)
    cov = r.covariates.assign(xc=pd.cut(r.covariates["x"], [0, 0.25, 0.5, 0.75, 1.0], labels=list("ABCD")))
    tr = fit_tree(r, cov[["xc"]], minsize=20, maxdepth=2)
    assert tr.n_leaves == 2 and max(nd.depth for nd in tr.nodes.values()) == 2
    assert set(tr.nodes[1].split.left_levels) in ({"A", "B"}, {"C", "D"})
    assert fit_tree(r, ["x"], minsize=20, maxdepth=1).n_leaves == 1


def test_profiles_plot_and_small_cells():
    import matplotlib

    matplotlib.use("Agg")
    r = survey(400, seed=5, heterogeneity=3.0)
    tr = fit_tree(r, ["age_group", "ptsd"], minsize=40, min_cell_size=10)
    assert tr.n_leaves >= 2
    profs = tr.profiles(safety=0.2)
    assert len(profs) == tr.n_leaves
    assert all(p.source == "tree" for p in profs) and profs[0].group
    with pytest.warns(SmallGroupWarning):
        assert tr.profiles(min_cell_size=10_000) == []
    ax = tr.plot()
    assert len(ax.get_lines()) >= tr.n_leaves
    tr.min_cell_size = 10_000
    with pytest.warns(SmallGroupWarning):
        tr.plot()


@pytest.mark.parametrize("method", ["partykit", "exact"])
def test_suplm_pvalue_properties(method):
    chi2 = float(__import__("scipy").stats.chi2.sf(5.0, 3))
    assert suplm_pvalue(5.0, 3, 0.5 - 1e-12, method=method) == pytest.approx(chi2, rel=1e-4)
    ps = [suplm_pvalue(x, 4, 0.1, method=method) for x in (5.0, 10.0, 15.0, 20.0, 30.0)]
    assert all(a > b for a, b in itertools.pairwise(ps))
    # Monte Carlo of the discretised bridge (slightly smaller sup than the continuous limit)
    rng = np.random.default_rng(0)
    n, reps, k = 1000, 2000, 2
    steps = rng.normal(size=(reps, n, k)).cumsum(axis=1) / np.sqrt(n)
    t = np.arange(1, n + 1) / n
    bridge = steps - t[None, :, None] * steps[:, -1:, :]
    sel = (t >= 0.15) & (t <= 0.85)
    sup = (np.sum(bridge[:, sel] ** 2, axis=2) / (t[sel] * (1 - t[sel]))).max(axis=1)
    x = float(np.quantile(sup, 0.95))
    assert 0.04 < suplm_pvalue(x, k, 0.15, method=method) < 0.065


def test_bad_input():
    r = _planted(60, seed=0)
    with pytest.raises(ValueError, match="Unknown covariate"):
        fit_tree(r, ["nope"], minsize=10)
    with pytest.raises(ValueError, match="minsize"):
        fit_tree(r, ["x"], minsize=1)
    with pytest.raises(ValueError, match="maxdepth"):
        fit_tree(r, ["x"], minsize=10, maxdepth=0)
    with pytest.raises(TypeError, match="fit option"):
        fit_tree(r, ["x"], minsize=10, bogus=1)
    with pytest.raises(TypeError, match="Rankings or PairedComparisons"):
        fit_tree(pd.DataFrame({"a": [1]}), ["x"], minsize=10)
    tr = fit_tree(r, ["x"], minsize=10)
    with pytest.raises(ValueError, match="Unknown node"):
        tr.tests(99)
    with pytest.raises(ValueError, match="lacks the split covariate"):
        fit_tree(_planted(200, seed=1), ["x"], minsize=20).predict(pd.DataFrame({"y": [1.0]}))


@needs_external
def test_cemschoice_structure_with_davidson_ties():
    """psychotree's CEMSChoice bttree (its tie model differs, the partition is the same)."""
    df = pd.read_csv(EXTERNAL / "psychotree" / "cemschoice.csv")
    items = ["London", "Paris", "Milano", "StGallen", "Barcelona", "Stockholm"]
    rows = []
    for c in [c for c in df.columns if ":" in c and not c.startswith("p1998")]:
        a, b = c.split(":")
        rows.append(pd.DataFrame({"respondent": df["respondent"], "a": a, "b": b, "v": df[c].to_numpy()}))
    long = pd.concat(rows).dropna(subset=["v"])
    long["winner"] = np.where(long.v == 1, long.a, np.where(long.v == -1, long.b, None))
    cov = df.set_index("respondent")[["french", "spanish", "italian", "study", "work", "gender", "intdegree"]]
    pc = PairedComparisons.from_long(long, "a", "b", "winner", respondent="respondent", items=items, covariates=cov)
    tr = fit_tree(pc, list(cov.columns), minsize=5, npseudo=0, ties="davidson")
    assert tr.membership.value_counts().sort_index().to_dict() == {3: 8, 4: 41, 7: 60, 8: 105, 9: 89}
    assert tr.rules()[7] == "italian in poor & french in good & study in commerce"
    assert not tr.to_frame().query("node == 3")["reportable"].any()
    assert "tie2" in tr.leaf_fits[9].tie_params.index
