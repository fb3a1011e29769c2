"""Privacy, enforced in one place (issue 15.4): respondent-level metadata is refused, grouping factors that identify
respondents are refused, the cell-size rule counts respondents, and no table, plot or text shows a withheld group."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights.criteria import ALL_CRITERIA
from survey_weights.exceptions import SmallGroupWarning
from survey_weights.profiles import WeightProfile, export_profiles

W = dict(zip(ALL_CRITERIA, [0.3, 0.2, 0.1, 0.1, 0.1, 0.2]))


# --------------------------------------------------------------------------------------------- metadata
@pytest.mark.parametrize("key", ["ResponseId", "respondent_id", "ID", "RecipientEmail", "record_id", "participant",
                                 "IPAddress", "respondent_ids"])
def test_identifier_keys_are_refused(key):
    with pytest.raises(ValueError, match=f"key '{key}' looks like a respondent identifier"):
        WeightProfile("x", W, n_respondents=50, group={key: "R_1"})
    with pytest.raises(ValueError, match="respondent identifier"):
        WeightProfile("x", W, n_respondents=50, model={"fit": {key: [1, 2]}})


@pytest.mark.parametrize("key", ["site_id", "age_group", "class", "region"])
def test_group_keys_that_are_not_identifiers_pass(key):
    assert WeightProfile("x", W, n_respondents=50, group={key: 3}).group == {key: 3}


@pytest.mark.parametrize("value", [list(range(50)), tuple(f"R_{i}" for i in range(60)), np.arange(50.0),
                                   pd.Series(np.ones(50)), {f"r{i}": i for i in range(50)}])
def test_values_with_one_entry_per_respondent_are_refused(value):
    with pytest.raises(ValueError, match="holds (50|60) values for a profile of 50 respondents"):
        WeightProfile("x", W, n_respondents=50, group={"age_group": value})
    with pytest.raises(ValueError, match="respondent-level"):
        WeightProfile("x", W, n_respondents=50, model={"extra": {"scores": value}})


def test_short_lists_pass():
    p = WeightProfile("x", W, n_respondents=50, model={"starts": [1.0, 2.0, 3.0], "path": ("a", 1)})
    assert p.model == {"starts": [1.0, 2.0, 3.0], "path": ["a", 1]}


def test_export_checks_metadata_again(tmp_path):
    p = WeightProfile("pooled", W, n_respondents=50, group={"age_group": "18-24"})
    p.group["ResponseId"] = ["R_1", "R_2"]  # dicts stay mutable after the profile was checked
    with pytest.raises(ValueError, match="'ResponseId' looks like a respondent identifier"):
        export_profiles([p], tmp_path / "w.json")
    assert not (tmp_path / "w.json").exists()
    q = WeightProfile("pooled", W, n_respondents=12, model={"name": "pl"})
    q.model["per_respondent"] = list(range(12))
    with pytest.raises(ValueError, match="holds 12 values for a profile of 12 respondents"):
        export_profiles([q], tmp_path / "w.json")


# ------------------------------------------------------------------------------------- shared survey
ITEMS = ["cost", "speed", "comfort", "range", "design"]


def _survey(n=120, seed=0, weights=None):
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east"], n, p=[0.45, 0.45, 0.10])
    lat = np.linspace(1.5, -1.5, len(ITEMS)) + rng.normal(0, 1.2, (n, len(ITEMS)))
    lat[:, 0] -= np.where(region == "north", 3.0, 0.0)  # north ranks cost low: a tree splits on region
    df = pd.DataFrame(np.clip(np.round(5 + 1.5 * lat), 0, 10), columns=ITEMS)
    df.insert(0, "rid", [f"R_{i:04d}" for i in range(n)])
    df["ResponseId"] = df["rid"]
    df["respondent_no"] = np.arange(n)
    df["score"] = rng.normal(size=n)  # continuous, all values different
    df["region"] = region
    df["fw"] = 1.0 if weights is None else weights
    return df


def _rankings(df, covariates=("region", "ResponseId", "respondent_no", "score"), index_ids=False):
    if index_ids:
        df = df.assign(rid=df["respondent_no"], num=df["respondent_no"])
    return sw.Rankings.from_ratings(df, ITEMS, respondent="rid", scale=(0, 10), covariates=list(covariates),
                                    weights="fw")


# ------------------------------------------------------------------------------------- one name
def test_min_cell_size_is_the_one_name_and_min_group_size_a_deprecated_alias():
    r = _rankings(_survey())
    with pytest.warns(SmallGroupWarning, match="min_cell_size=20"):
        g = sw.fit_by_group(r, "region", min_cell_size=20)
    assert g.min_cell_size == 20 and g.summary().info["min_cell_size"] == 20
    with pytest.warns(DeprecationWarning, match="`min_group_size` is deprecated.*min_cell_size"), \
            pytest.warns(SmallGroupWarning):
        old = sw.fit_by_group(r, "region", min_group_size=20)
    assert old.min_cell_size == old.min_group_size == 20 and old.groups == g.groups
    with pytest.raises(TypeError, match="give `min_cell_size` only"):
        sw.fit_by_group(r, "region", min_cell_size=20, min_group_size=20)
    import inspect

    for f in (sw.fit_by_group, sw.fit_tree, sw.fit_mixture, sw.fit_regression, sw.export_profiles):
        assert inspect.signature(f).parameters["min_cell_size"].default in (None, 10), f.__name__


# ------------------------------------------------------------------------------------- identifying factors
@pytest.mark.parametrize("column", ["ResponseId", "respondent_no", "score"])
def test_fit_by_group_refuses_a_column_that_identifies_respondents(column):
    r = _rankings(_survey())
    with pytest.raises(ValueError, match=f"`by` column '{column}' identifies respondents.*Fix:"):
        sw.fit_by_group(r, column)
    with pytest.raises(ValueError, match=f"'{column}' identifies respondents"):
        sw.fit_by_group(r, ["region", column])


def test_fit_by_group_refuses_a_crossing_that_identifies_respondents():
    df = _survey(30)
    df["a"] = np.repeat(np.arange(6), 5)
    df["b"] = np.tile(np.arange(5), 6)
    r = _rankings(df, covariates=("a", "b"))
    with pytest.raises(ValueError, match="columns \\['a', 'b'\\] together identify respondents"):
        sw.fit_by_group(r, ["a", "b"], min_cell_size=1)


def test_fit_tree_refuses_identifiers_but_splits_continuous_covariates():
    r = _rankings(_survey())
    with pytest.raises(ValueError, match="`covariates` column 'ResponseId' identifies respondents"):
        sw.fit_tree(r, ["region", "ResponseId"], minsize=20)
    with pytest.raises(ValueError, match="'respondent_no' identifies respondents: .*looks like an id"):
        sw.fit_tree(r, ["respondent_no"], minsize=20)
    ri = _rankings(_survey(), covariates=("num",), index_ids=True)  # integer ids, also a covariate
    with pytest.raises(ValueError, match="'num' identifies respondents: it holds the respondent ids"):
        sw.fit_tree(ri, ["num"], minsize=20)
    tree = sw.fit_tree(r, ["score"], minsize=20)  # a continuous covariate: all different, yet no identifier
    assert tree.n_leaves >= 1


# ------------------------------------------------------------------------------------- counting respondents
def test_groups_count_respondents_not_weights():
    df = _survey()
    east = np.flatnonzero(df["region"] == "east")
    w = np.ones(len(df))
    w[east[: len(east) - 7]] = 0.0  # east keeps 7 respondents with a positive weight
    w[east[-1]] = 1e6  # one heavy respondent is still one respondent
    r = _rankings(df.assign(fw=w), covariates=("region",))
    with pytest.warns(SmallGroupWarning, match="region=east \\(n=7\\)"):
        g = sw.fit_by_group(r, "region")
    assert "east" not in g.groups and g.small_groups == {"east": 7}
    assert all(p.n_respondents == int(g.n[p.name]) for p in g.profiles())  # heads with a positive weight


@pytest.mark.filterwarnings("ignore::survey_weights.exceptions.BoundaryWarning")  # 8 respondents: ties at a bound
def test_tree_mixture_and_regression_cells_count_respondents_with_positive_weight():
    df = _survey(40)
    w = np.ones(len(df))
    w[:32] = 0.0  # 8 respondents carry the whole fit
    r = _rankings(df.assign(fw=w * 5.0), covariates=("region",))
    tree = sw.fit_tree(r, ["region"], minsize=2, alpha=1e-12)
    assert tree.n_leaves == 1 and tree.cell_sizes[1] == 8
    with pytest.warns(SmallGroupWarning, match="fewer than min_cell_size=10"):
        assert tree.profiles() == []
    assert tree.to_frame().empty and tree.weights.empty
    mix = sw.fit_mixture(r, 1, seed=0)
    assert int(mix.class_sizes.sum()) == 8
    with pytest.warns(SmallGroupWarning):
        assert mix.profiles() == []
    reg = sw.fit_regression(r, [])
    assert reg.weights.empty
    with pytest.warns(SmallGroupWarning, match="pooled \\(n=8\\)"):
        assert reg.profiles() == []


# ------------------------------------------------------------------------------------- tables, text, plots
@pytest.fixture(scope="module")
def tree_with_a_small_leaf():
    r = _rankings(_survey(300, seed=3), covariates=("region",))
    tree = sw.fit_tree(r, ["region"], minsize=20)
    sizes = {i: tree.cell_sizes[i] for i in tree.leaf_ids}
    assert len(sizes) >= 2, sizes
    small = min(sizes, key=sizes.get)
    tree.min_cell_size = sizes[small] + 1  # withhold the smallest leaf
    return tree, small


def test_tree_tables_and_text_never_show_a_withheld_leaf(tree_with_a_small_leaf):
    tree, small = tree_with_a_small_leaf
    assert small not in set(tree.to_frame()["node"]) and small not in tree.weights.index
    summ = tree.summary()
    assert small not in summ.table.index
    assert f"Withheld (fewer than min_cell_size={tree.min_cell_size}" in str(summ) and f"[{small}] (n=" in str(summ)
    text = str(tree)
    w_small = tree.weights_of(small)
    assert "weights withheld" in text
    line = next(ln for ln in text.splitlines() if f"[{small}]" in ln)
    assert "weights withheld" in line
    assert all(f"{k} {v:.4f}" not in text for k, v in w_small.items())
    shown = [i for i in tree.leaf_ids if i != small]
    assert all(f"{k} {v:.4f}" in text for i in shown for k, v in tree.weights_of(i).items())
    pred = tree.predict(tree.covariates)
    assert pred.loc[pred["node"] == small, ITEMS].isna().all().all()
    assert pred.loc[pred["node"] != small, ITEMS].notna().all().all()


def test_tree_plot_draws_no_withheld_leaf(tree_with_a_small_leaf):
    tree, small = tree_with_a_small_leaf
    with pytest.warns(SmallGroupWarning, match=f"node\\(s\\) {small}"):
        ax = tree.plot()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend and not any(lab.startswith(f"[{small}]") for lab in legend)
    assert "withheld" in ax.get_title()


@pytest.fixture(scope="module")
def mixture_with_a_small_class():
    r = _rankings(_survey(200, seed=5), covariates=("region",))
    sizes = sw.fit_mixture(r, 2, seed=0, n_starts=3).class_sizes
    limit = int(sizes.min()) + 1
    return sw.fit_mixture(r, 2, seed=0, n_starts=3, min_cell_size=limit), int(sizes.idxmin())


@pytest.mark.filterwarnings("ignore::survey_weights.exceptions.BoundaryWarning")  # the small class's tie4
def test_mixture_tables_and_plot_never_show_a_withheld_class(mixture_with_a_small_class):
    mix, small = mixture_with_a_small_class
    assert small not in set(mix.to_frame()["class"]) and small not in mix.weights.index
    assert small in mix.class_weights.index  # the model's own attribute keeps it
    summ = mix.summary()
    assert small not in summ.table.index and f"class {small} (n=" in str(summ)
    with pytest.warns(SmallGroupWarning, match=f"class {small}"):
        ax = mix.plot()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend and not any(lab.startswith(f"class {small} ") for lab in legend)
    with pytest.warns(SmallGroupWarning):
        assert [p.group for p in mix.profiles()] == [{"class": c} for c in mix.weights.index]


def test_regression_weights_table_withholds_small_cells():
    r = _rankings(_survey(), covariates=("region",))
    reg = sw.fit_regression(r, ["region"], min_cell_size=20)
    n = r.covariates["region"].value_counts()
    assert set(reg.weights.index) == {f"region={k}" for k, v in n.items() if v >= 20}
    assert len(reg.weights) < len(n)


@pytest.mark.filterwarnings("ignore::survey_weights.exceptions.BoundaryWarning")
def test_bootstrap_profile_counts_respondents_with_positive_weight():
    df = _survey(40)
    w = np.ones(len(df))
    w[:31] = 0.0
    r = _rankings(df.assign(fw=w), covariates=("region",))
    boot = sw.bootstrap(r, n_boot=20, seed=0, progress=False)
    with pytest.warns(SmallGroupWarning, match="pooled \\(n=9\\)"):
        assert boot.profiles() == []
    assert boot.profiles(min_cell_size=9)[0].n_respondents == 9
