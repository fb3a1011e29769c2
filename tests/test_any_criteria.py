"""Criteria are data, not constants (issue 15.1): any item set flows through derive_profile, WeightProfile, the
export and read_profiles, and every result's .profiles(); the constraint objective is optional and named."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights.criteria import ALL_CRITERIA
from survey_weights.profiles import WeightProfile, derive_profile, export_profiles, read_profiles
from survey_weights.profiles.export import SCHEMA_VERSION

ITEMS = ["cost", "speed", "comfort", "safety_record", "range", "design", "service", "resale"]


def survey(n=120, seed=0):
    """8 criteria rated 0-10 (not the study's), a region that shifts one item, a numeric age."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east"], n)
    lat = np.linspace(2, -2, len(ITEMS)) + rng.normal(0, 1.5, (n, len(ITEMS)))
    lat[:, 7] += np.where(region == "north", 1.5, 0.0)
    df = pd.DataFrame(np.clip(np.round(5 + 1.6 * lat), 0, 10), columns=ITEMS)
    df.insert(0, "rid", [f"R_{i:04d}" for i in range(n)])
    df["region"] = region
    df["age"] = rng.integers(18, 80, n).astype(float)
    return df


@pytest.fixture(scope="module")
def rankings():
    return sw.Rankings.from_ratings(survey(), ITEMS, respondent="rid", scale=(0, 10), covariates=["region", "age"])


@pytest.fixture(scope="module")
def fit(rankings):
    return sw.fit_plackett_luce(rankings)


def test_derive_profile_takes_any_items(fit):
    p = derive_profile(fit)  # the default constraint: "safety" with the floor rule
    assert p.criteria == (*ITEMS, "safety") and p.constraint == "safety"
    rated = p.weights[ITEMS]
    np.testing.assert_allclose((rated / rated.sum()).to_numpy(), fit.weights.to_numpy(), rtol=1e-12)
    assert p.weights["safety"] >= max(0.2, rated.max() - 1e-12)
    assert ((p.ci_low <= p.weights) & (p.weights <= p.ci_high)).all()


def test_safety_none_is_no_constraint_objective(fit):
    p = derive_profile(fit, safety=None)
    assert p.criteria == tuple(ITEMS) and p.constraint is None and p.safety_rule == {"rule": "none"}
    tab = fit.to_frame().set_index("item")
    np.testing.assert_array_equal(p.weights.to_numpy(), tab["weight"].to_numpy())
    np.testing.assert_array_equal(p.ci_low.to_numpy(), tab["ci_low"].to_numpy())
    np.testing.assert_array_equal(p.ci_high.to_numpy(), tab["ci_high"].to_numpy())


@pytest.mark.parametrize("rule", [{"floor": 0.3}, {"share": 0.25}])
def test_a_constraint_objective_of_the_analysts_name(fit, rule):
    p = derive_profile(fit, safety={"name": "harm_avoidance", **rule})
    assert p.criteria == (*ITEMS, "harm_avoidance") and "safety" not in p.criteria
    assert p.constraint == "harm_avoidance" and p.safety_rule["name"] == "harm_avoidance"
    share = p.weights["harm_avoidance"]
    if "share" in rule:
        assert share == 0.25 and p.safety_rule["rule"] == "fixed"
    else:  # the floor rule as documented: at least the floor, never below a rated criterion
        pmax = fit.weights.max()
        assert share == pytest.approx(max(0.3, pmax / (1 + pmax)), rel=1e-12)
    same = derive_profile(fit, safety=0.25 if "share" in rule else {"floor": 0.3})
    np.testing.assert_array_equal(p.weights.to_numpy(), same.weights.to_numpy())


@pytest.mark.parametrize("bad, exc, match", [
    ({"name": "", "floor": 0.2}, ValueError, "safety\\['name'\\]"),
    ({"name": "x"}, ValueError, "exactly one of 'share' and 'floor'"),
    ({"name": "x", "floor": 0.2, "share": 0.2}, ValueError, "exactly one"),
    ({"name": "x", "cap": 0.2}, ValueError, "unknown key"),
    ({"name": "x", "floor": "high"}, TypeError, "safety\\['floor'\\]"),
    ({"name": "cost", "floor": 0.2}, ValueError, "item named 'cost'"),
])
def test_bad_constraint_names_and_rules(fit, bad, exc, match):
    with pytest.raises(exc, match=match):
        derive_profile(fit, safety=bad)


def test_a_rated_safety_item_needs_no_constraint():
    idx = pd.Index(["empathy", "safety"])
    fake = pd.Series([0.3, -0.3], index=idx)
    from types import SimpleNamespace

    f = SimpleNamespace(items=("empathy", "safety"), log_worth=fake, weights=np.exp(fake) / np.exp(fake).sum(),
                        vcov=pd.DataFrame(np.eye(2) * 0.01, index=idx, columns=idx), n_respondents=50)
    assert derive_profile(f, safety=None).criteria == ("empathy", "safety")
    assert derive_profile(f, safety={"name": "harm", "share": 0.2}).criteria == ("empathy", "safety", "harm")


def test_weightprofile_keeps_any_criteria_in_order():
    w = {"zeta": 0.1, "alpha": 0.6, "mu": 0.3}
    p = WeightProfile("mine", w, ci_low={"alpha": 0.5, "mu": 0.2, "zeta": 0.05},
                      ci_high={"mu": 0.4, "zeta": 0.2, "alpha": 0.7}, n_respondents=30)
    assert p.criteria == ("zeta", "alpha", "mu") and list(p.ci_low.index) == list(p.criteria)
    assert p.constraint is None
    d = p.to_dict()
    assert d["criteria"] == ["zeta", "alpha", "mu"] and WeightProfile.from_dict(d) == p
    with pytest.raises(ValueError, match="one entry per criterion it lists"):
        WeightProfile.from_dict({**d, "criteria": ["zeta", "alpha"]})


def test_export_and_read_any_criteria(fit, tmp_path):
    profs = [derive_profile(fit, name="pooled"), derive_profile(fit, safety=None, name="rated only"),
             derive_profile(fit, safety={"name": "harm_avoidance", "share": 0.2}, name="harm")]
    for suffix in (".json", ".csv"):
        path = tmp_path / f"w{suffix}"
        export_profiles(profs, path)
        back = read_profiles(path)
        assert back == profs
        assert [b.criteria for b in back] == [p.criteria for p in profs]
    doc = json.loads((tmp_path / "w.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION == 2
    assert doc["criteria"] == [*ITEMS, "safety", "harm_avoidance"]
    assert [e["criteria"] for e in doc["profiles"]] == [list(p.criteria) for p in profs]


def test_read_profiles_checks_against_the_files_own_criteria(fit, tmp_path):
    path = tmp_path / "w.json"
    export_profiles(derive_profile(fit, name="pooled"), path)
    doc = json.loads(path.read_text())
    doc["criteria"] = doc["criteria"][:-1]  # the file no longer lists "safety"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not listed: \\['safety'\\]"):
        read_profiles(path)
    doc["criteria"] = []
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="`criteria` must be a non-empty list"):
        read_profiles(path)


def test_old_schema_version_1_files_still_read(tmp_path):
    w = dict(zip(ALL_CRITERIA, [0.3, 0.2, 0.1, 0.1, 0.1, 0.2]))
    entry = {"name": "pooled", "weights": w, "ci_low": None, "ci_high": None, "n_respondents": 335,
             "source": "pooled", "group": None, "safety_rule": {"rule": "floor", "floor": 0.2, "share": 0.2},
             "model": {"name": "plackett_luce"}, "data_hash": None}
    doc = {"schema_version": 1, "criteria": list(ALL_CRITERIA), "profiles": [entry], "package_version": "0.1"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    (p,) = read_profiles(path)
    assert p.criteria == ALL_CRITERIA and p.constraint == "safety"  # an unnamed rule of a v1 file is safety's
    rows = ["profile,criterion,weight,ci_low,ci_high,n_respondents,source,group,safety_rule,model,data_hash,"
            "schema_version"] + [f"pooled,{c},{v!r},,,335,pooled,,,,,1" for c, v in w.items()]
    (tmp_path / "old.csv").write_text("\n".join(rows) + "\n")
    assert read_profiles(tmp_path / "old.csv")[0].weights.to_dict() == w
    # a v1 profile that lacks one of the file's criteria is refused
    doc["profiles"][0]["weights"] = {**{k: v for k, v in w.items() if k != "safety"}, "empathy": 0.5}
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="do not match the file's criteria"):
        read_profiles(path)


def test_csv_with_a_criterion_twice_is_refused(fit, tmp_path):
    path = tmp_path / "w.csv"
    export_profiles(derive_profile(fit, safety=None), path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(ValueError, match="more than one row"):
        read_profiles(path)


@pytest.mark.parametrize("kind", ["fit", "groups", "tree", "mixture", "bootstrap", "regression"])
def test_every_results_profiles_take_any_items(rankings, kind):
    res = {
        "fit": lambda: sw.fit_plackett_luce(rankings),
        "groups": lambda: sw.fit_by_group(rankings, "region"),
        "tree": lambda: sw.fit_tree(rankings, ["region"], minsize=20),
        "mixture": lambda: sw.fit_mixture(rankings, 2, seed=0, n_starts=2),
        "bootstrap": lambda: sw.bootstrap(rankings, n_boot=30, seed=0, progress=False),
        "regression": lambda: sw.fit_regression(rankings, ["region"]),
    }[kind]()
    default, none, named = (res.profiles(), res.profiles(safety=None),
                            res.profiles(safety={"name": "harm_avoidance", "floor": 0.2}))
    assert default and len(default) == len(none) == len(named)
    assert all(p.criteria == (*ITEMS, "safety") for p in default)
    assert all(p.criteria == tuple(ITEMS) for p in none)
    assert all(p.criteria == (*ITEMS, "harm_avoidance") and p.constraint == "harm_avoidance" for p in named)
    assert all(abs(p.weights.sum() - 1) < 1e-9 for p in default + none + named)


def test_main_objective_is_the_largest_rated_criterion_never_the_constraint(fit):
    from survey_weights.profiles.training_spec import main_objective_of, normalize_profiles

    top = ITEMS[int(np.argmax(fit.weights.to_numpy()))]
    # a floor above every rated weight: the constraint objective is the largest weight, yet not the main objective
    prof = derive_profile(fit, safety={"name": "harm_avoidance", "floor": 0.6})
    assert prof.weights.idxmax() == "harm_avoidance"
    (norm,) = normalize_profiles([prof])
    assert norm.constraint == "harm_avoidance" and main_objective_of(norm) == top
    (none,) = normalize_profiles([derive_profile(fit, safety=None)])
    assert none.constraint is None and main_objective_of(none) == top
    # plain weights keep the study's convention: "safety" is the constraint objective
    (plain,) = normalize_profiles({"p": {"brevity": 0.3, "clarity": 0.2, "safety": 0.5}})
    assert main_objective_of(plain) == "brevity"
    (own,) = normalize_profiles([{"name": "p", "weights": {"a": 0.3, "b": 0.7}, "constraint": "b"}])
    assert main_objective_of(own) == "a"
    assert main_objective_of(normalize_profiles({"s": {"safety": 1.0}})[0]) == "safety"  # nothing else: itself
