"""Data objects: construction, recoding, validation messages, derivations."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from survey_weights import DataRecodeWarning, PairedComparisons, Rankings


def ratings_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rid": ["r1", "r2", "r3", "r4", "r5"],
            "a": [5, 4, 3, 5, np.nan],
            "b": [4, 4, 3, 5, 2],
            "c": [1, 5, 3, 4, np.nan],
            "sex": ["f", "m", "f", "m", "f"],
            "w": [1.0, 2.0, 1.0, 1.0, 1.0],
        }
    )


def orderings_of(r: Rankings) -> list[list[tuple]]:
    out = []
    for k in range(r.n_rankings):
        items = [r.items[i] for i in r._item[r._ptr[k] : r._ptr[k + 1]]]
        ranks = r._rank[r._ptr[k] : r._ptr[k + 1]]
        groups: dict[int, list] = {}
        for it, rk in zip(items, ranks):
            groups.setdefault(int(rk), []).append(it)
        out.append([tuple(sorted(groups[g])) for g in sorted(groups)])
    return out


# ------------------------------------------------------------------------------------------------- from_ratings
def test_from_ratings_ties_and_drops():
    df = ratings_frame()
    with pytest.warns(DataRecodeWarning) as rec:
        r = Rankings.from_ratings(df, ["a", "b", "c"], respondent="rid", scale=(1, 5), covariates=["sex"], weights="w")
    messages = [str(w.message) for w in rec]
    assert len(messages) == 1 and "fewer than two" in messages[0] and "'r5'" in messages[0]
    assert list(r.respondent_ids) == ["r1", "r2", "r3", "r4"]  # r3 (all rated 3) is one three-way tie
    assert orderings_of(r) == [[("a",), ("b",), ("c",)], [("c",), ("a", "b")], [("a", "b", "c")],
                               [("a", "b"), ("c",)]]
    assert r.max_tie_order == 3
    assert list(r.covariates["sex"]) == ["f", "m", "f", "m"]
    np.testing.assert_array_equal(r.respondent_weights, [1.0, 2.0, 1.0, 1.0])


def test_from_ratings_all_tied_drop():
    df = ratings_frame()
    with pytest.warns(DataRecodeWarning) as rec:
        r = Rankings.from_ratings(df, ["a", "b", "c"], respondent="rid", scale=(1, 5), covariates=["sex"],
                                  weights="w", all_tied="drop")
    messages = [str(w.message) for w in rec]
    assert any("all ratings equal" in m and "'r3'" in m for m in messages)
    assert any("fewer than two" in m and "'r5'" in m for m in messages)
    assert list(r.respondent_ids) == ["r1", "r2", "r4"]
    assert orderings_of(r) == [[("a",), ("b",), ("c",)], [("c",), ("a", "b")], [("a", "b"), ("c",)]]
    assert r.max_tie_order == 2
    assert list(r.covariates["sex"]) == ["f", "m", "m"]
    np.testing.assert_array_equal(r.respondent_weights, [1.0, 2.0, 1.0])


def test_from_ratings_missing_item_is_subranking():
    df = pd.DataFrame({"a": [5, 3], "b": [np.nan, 4], "c": [2, 1]})
    r = Rankings.from_ratings(df, ["a", "b", "c"])
    assert orderings_of(r) == [[("a",), ("c",)], [("b",), ("a",), ("c",)]]
    assert not r._top_k.any()


@pytest.mark.parametrize(
    "change, exc, pattern",
    [
        ({"a": [5, 4, 3, 9, 1]}, ValueError, r"column 'a' holds 9.*outside `scale`.*'r4'"),
        ({"b": [4, 4.5, 3, 5, 2]}, ValueError, r"column 'b' holds 4.5.*not a whole number.*'r2'"),
        ({"c": [1, "x", 3, 4, 2]}, TypeError, r"column 'c' holds non-numeric value 'x'.*'r2'"),
        ({"rid": ["r1", "r1", "r3", "r4", "r5"]}, ValueError, r"Duplicate respondent ids.*'r1'"),
        ({"rid": ["r1", None, "r3", "r4", "r5"]}, ValueError, r"Missing respondent ids.*row position\(s\) 1"),
    ],
)
def test_from_ratings_errors(change, exc, pattern):
    df = ratings_frame().assign(**change)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataRecodeWarning)
        with pytest.raises(exc, match=pattern):
            Rankings.from_ratings(df, ["a", "b", "c"], respondent="rid", scale=(1, 5))


def test_from_ratings_bad_columns():
    df = ratings_frame()
    with pytest.raises(ValueError, match=r"'zz'.*`items`.*Available columns"):
        Rankings.from_ratings(df, ["a", "zz"], respondent="rid")
    with pytest.raises(ValueError, match=r"Respondent column 'id'.*`respondent`"):
        Rankings.from_ratings(df, ["a", "b"], respondent="id")
    with pytest.raises(TypeError, match=r"`items` must be a list"):
        Rankings.from_ratings(df, "a", respondent="rid")
    with pytest.raises(ValueError, match="empty"):
        Rankings.from_ratings(df.iloc[:0], ["a", "b"])
    with pytest.raises(TypeError, match="DataFrame"):
        Rankings.from_ratings(df.to_numpy(), ["a", "b"])
    with pytest.raises(ValueError, match=r"Weight column 'w'.*>= 0.*'r2'"):
        Rankings.from_ratings(df.assign(w=[1, -1, 1, 1, 1]), ["a", "b", "c"], respondent="rid", weights="w")


def test_covariates_frame_and_errors():
    df = ratings_frame().iloc[:2]
    cov = pd.DataFrame({"age": [30, 40]}, index=["r2", "r1"])
    r = Rankings.from_ratings(df, ["a", "b", "c"], respondent="rid", covariates=cov)
    assert list(r.covariates["age"]) == [40, 30]  # aligned to respondent order
    with pytest.raises(ValueError, match=r"no row for respondent ids 'r2'"):
        Rankings.from_ratings(df, ["a", "b", "c"], respondent="rid", covariates=cov.iloc[1:])
    with pytest.raises(ValueError, match=r"'nope'.*`covariates`"):
        Rankings.from_ratings(df, ["a", "b", "c"], respondent="rid", covariates=["nope"])


# --------------------------------------------------------------------------------------------------- from_wide
def test_from_wide_subranking_and_topk():
    df = pd.DataFrame({"a": [1, 2, np.nan], "b": [2, 1, 1], "c": [np.nan, 2, np.nan]})
    with pytest.warns(DataRecodeWarning, match="fewer than two"):
        sub = Rankings.from_wide(df, ["a", "b", "c"])
    assert sub.n_rankings == 2
    assert orderings_of(sub) == [[("a",), ("b",)], [("b",), ("a", "c")]]
    top = Rankings.from_wide(df, ["a", "b", "c"], top_k=True)
    assert top.n_rankings == 3 and top._top_k.all()
    pairs = top.to_pairwise().to_frame()
    # row 0: a > b ranked, c unranked -> a beats c and b beats c as well
    r0 = pairs[pairs.respondent == 0]
    assert set(map(tuple, r0[["item_a", "item_b", "winner"]].to_numpy())) == {
        ("a", "b", "a"),
        ("a", "c", "a"),
        ("b", "c", "b"),
    }


def test_from_wide_errors():
    df = pd.DataFrame({"a": [1, 4], "b": [2, 1]})
    with pytest.raises(ValueError, match=r"Rank column 'a' holds 4, outside 1..2.*respondent ids 1"):
        Rankings.from_wide(df, ["a", "b"])
    with pytest.raises(ValueError, match="not a whole number"):
        Rankings.from_wide(pd.DataFrame({"a": [1.5], "b": [1]}), ["a", "b"])


# ---------------------------------------------------------------------------------------------- from_orderings
def test_from_orderings_ties_groups_and_items():
    r = Rankings.from_orderings(
        [["a", ("b", "c"), "d"], ["c", {"a", "d"}], ["d", "b"]], respondent_ids=["x", "x", "y"], weights=[2, 2, 1]
    )
    assert r.items == ("a", "b", "c", "d")
    assert r.n_rankings == 3 and r.n_respondents == 2
    np.testing.assert_array_equal(r._resp, [0, 0, 1])
    np.testing.assert_array_equal(r.respondent_weights, [2.0, 1.0])
    assert orderings_of(r)[1] == [("c",), ("a", "d")]


@pytest.mark.parametrize(
    "orderings, kwargs, pattern",
    [
        ([["a", "b", "a"]], {}, r"Ordering 0.*'a' more than once"),
        ([["a", ("b", "a")]], {}, r"more than once"),
        ([["a", "z"]], {"items": ["a", "b"]}, r"Unknown item\(s\) 'z'"),
        ([], {}, r"empty"),
        ([["a", "b"]], {"respondent_ids": [1, 2]}, r"`respondent_ids` has 2 entries"),
        ([["a", "b"], ["b", "a"]], {"respondent_ids": [1, 1], "weights": [1, 2]}, r"differs between rows"),
    ],
)
def test_from_orderings_errors(orderings, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        Rankings.from_orderings(orderings, **kwargs)


def test_orderings_and_wide_agree():
    df = pd.DataFrame({"a": [1, 3, 2], "b": [2, 1, 2], "c": [3, 2, 1]})
    w = Rankings.from_wide(df, ["a", "b", "c"])
    o = Rankings.from_orderings([["a", "b", "c"], ["b", "c", "a"], ["c", ("a", "b")]])
    for name in ("_ptr", "_rank", "_top_k", "_resp"):
        np.testing.assert_array_equal(getattr(w, name), getattr(o, name))
    assert orderings_of(w) == orderings_of(o)
    assert w.data_hash() == o.data_hash()


# ------------------------------------------------------------------------------------------------ derivations
def test_subset_and_weights_are_immutable_copies():
    r = Rankings.from_orderings([["a", "b"], ["b", "c", "a"], ["c", "a"]], respondent_ids=["p", "q", "s"])
    s = r.subset(np.array([False, True, True]))
    assert list(s.respondent_ids) == ["q", "s"]
    assert orderings_of(s) == [[("b",), ("c",), ("a",)], [("c",), ("a",)]]
    s2 = r.subset([2, 0])
    assert list(s2.respondent_ids) == ["s", "p"]
    w = r.with_respondent_weights([1, 0, 3])
    np.testing.assert_array_equal(w.respondent_weights, [1, 0, 3])
    np.testing.assert_array_equal(r.respondent_weights, [1, 1, 1])
    with pytest.raises(ValueError):
        r._item[0] = 3
    with pytest.raises(Exception):
        r.items = ("x",)


def test_to_pairwise_counts_ties():
    r = Rankings.from_orderings([["a", ("b", "c")]])
    p = r.to_pairwise()
    f = p.to_frame()
    assert len(f) == 3
    assert f.winner.isna().sum() == 1
    assert p.has_ties


# ------------------------------------------------------------------------------------------------ paired
def test_paired_from_long():
    df = pd.DataFrame(
        {
            "resp": [1, 1, 2, 3],
            "A": ["x", "x", "y", "z"],
            "B": ["y", "z", "z", "x"],
            "win": ["x", np.nan, "z", "x"],
            "n": [3, 1, 2, 1],
            "g": ["u", "u", "v", "u"],
        }
    )
    p = PairedComparisons.from_long(df, "A", "B", "win", respondent="resp", weight="n", covariates=["g"])
    assert p.items == ("x", "y", "z")
    np.testing.assert_array_equal(p._outcome, [1, 0, -1, -1])
    np.testing.assert_array_equal(p._w, [3, 1, 2, 1])
    assert p.n_respondents == 3 and list(p.covariates["g"]) == ["u", "v", "u"]
    assert p.subset([0]).n_comparisons == 2


@pytest.mark.parametrize(
    "change, pattern",
    [
        ({"win": ["x", "q", "z"]}, r"holds 'q', which is in neither 'A' nor 'B'.*respondent ids 1"),
        ({"B": ["x", "z", "x"]}, r"Self-comparisons: item 'x'"),
        ({"n": [1, -2, 1]}, r"Weight column 'n'.*>= 0"),
        ({"g": ["u", "v", "u"], "resp": [1, 1, 2]}, r"Covariate 'g' differs between rows.*respondent ids 1"),
    ],
)
def test_paired_errors(change, pattern):
    df = pd.DataFrame({"resp": [0, 1, 2], "A": ["x", "y", "z"], "B": ["y", "z", "x"], "win": ["x", "z", "x"],
                       "n": [1, 1, 1], "g": ["u", "u", "u"]}).assign(**change)
    with pytest.raises(ValueError, match=pattern):
        PairedComparisons.from_long(df, "A", "B", "win", respondent="resp", weight="n", covariates=["g"])


def test_vectorised_from_ratings_matches_slow_reference(rng=np.random.default_rng(7)):
    x = rng.integers(1, 6, size=(400, 6)).astype(float)
    x[rng.random(x.shape) < 0.1] = np.nan
    df = pd.DataFrame(x, columns=list("abcdef"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataRecodeWarning)
        r = Rankings.from_ratings(df, list("abcdef"))
        r_drop = Rankings.from_ratings(df, list("abcdef"), all_tied="drop")
    got = dict(zip(r.respondent_ids, orderings_of(r)))
    got_drop = dict(zip(r_drop.respondent_ids, orderings_of(r_drop)))
    n_all_tied = 0
    for i, row in df.iterrows():
        vals = row.dropna()
        if len(vals) < 2:
            assert i not in got and i not in got_drop
            continue
        expected = [tuple(sorted(vals.index[vals == v])) for v in sorted(vals.unique(), reverse=True)]
        assert got[i] == expected
        if vals.nunique() < 2:
            n_all_tied += 1
            assert i not in got_drop
        else:
            assert got_drop[i] == expected
    assert n_all_tied > 0 and r.n_respondents - r_drop.n_respondents == n_all_tied
