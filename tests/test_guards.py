"""Statistics guards of issue 15.5 (data and engine): items nobody answered, disconnected comparison networks with
pseudo-comparisons, frequency weights that sum to zero, and a few heavy weights dominating a fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights.exceptions import DataRecodeWarning, DisconnectedNetworkWarning, DominantWeightsWarning
from survey_weights.models import fit_design
from survey_weights.models._likelihood import PLDesign
from survey_weights.models.plackett_luce import n_effective


def ratings(n=40, seed=1, items="abcd"):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.integers(1, 6, size=(n, len(items))), columns=list(items)).astype(float)


# --------------------------------------------------------------------------------------------- items without answers
def test_item_nobody_answered_is_an_error_naming_it():
    df = ratings().assign(e=np.nan)
    with pytest.raises(ValueError, match=r"'e'.*no answers.*nobody answered 'e'.*empty_items='drop'"):
        sw.Rankings.from_ratings(df, list("abcde"), scale=(1, 5))


def test_item_nobody_answered_dropped_with_a_warning_when_asked():
    df = ratings().assign(e=np.nan)
    with pytest.warns(DataRecodeWarning, match=r"Dropped 1 item.*'e'"):
        r = sw.Rankings.from_ratings(df, list("abcde"), scale=(1, 5), empty_items="drop")
    assert r.items == ("a", "b", "c", "d")
    full = sw.Rankings.from_ratings(df, list("abcd"), scale=(1, 5))
    assert r.data_hash() == full.data_hash()  # the same rankings as leaving the item out
    fit = sw.fit_plackett_luce(r)
    assert list(fit.weights.index) == ["a", "b", "c", "d"]


def test_item_answered_only_by_dropped_respondents_is_empty():
    df = ratings(n=10).assign(e=np.nan)
    df.loc[0, :] = [np.nan, np.nan, np.nan, np.nan, 4.0]  # the only answer to e: a respondent with one rating
    with pytest.raises(ValueError, match="'e' was answered only by respondents dropped"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataRecodeWarning)
            sw.Rankings.from_ratings(df, list("abcde"))


def test_from_wide_and_from_orderings_refuse_empty_items():
    wide = pd.DataFrame({"a": [1, 2, 1], "b": [2, 1, 2], "c": [np.nan] * 3})
    with pytest.raises(ValueError, match="'c'.*no answers"):
        sw.Rankings.from_wide(wide, ["a", "b", "c"])
    with pytest.warns(DataRecodeWarning, match="'c'"):
        assert sw.Rankings.from_wide(wide, ["a", "b", "c"], empty_items="drop").items == ("a", "b")
    # top-k: an item nobody ranked still loses to every ranked one, so it is not empty
    assert sw.Rankings.from_wide(wide, ["a", "b", "c"], top_k=True).items == ("a", "b", "c")
    with pytest.raises(ValueError, match="'z'.*no answers"):
        sw.Rankings.from_orderings([["a", "b"], ["b", "a"]], items=["a", "b", "z"])
    with pytest.warns(DataRecodeWarning, match="'z'"):
        r = sw.Rankings.from_orderings([["a", "b"], ["b", "a"]], items=["a", "b", "z"], empty_items="drop")
    assert r.items == ("a", "b")


def test_empty_items_option_checked():
    with pytest.raises(ValueError, match="`empty_items` must be 'raise' or 'drop'. Got 'ignore'"):
        sw.Rankings.from_ratings(ratings(), list("abcd"), empty_items="ignore")
    with pytest.raises(ValueError, match="`empty_items`"):
        sw.Rankings.from_orderings([["a", "b"]], empty_items=None)


# ----------------------------------------------------------------------------------------- disconnected networks
def two_islands():
    return sw.Rankings.from_orderings([["a", "b"], ["b", "a"], ["a", "b"], ["c", ("d", "e")], ["e", "c", "d"]] * 3)


def test_disconnected_network_warns_with_pseudo_comparisons_naming_components():
    with pytest.warns(DisconnectedNetworkWarning, match=r"2 components.*\{c, d, e\}; \{a, b\}.*npseudo=0.5"):
        fit = sw.fit_plackett_luce(two_islands())
    assert np.isclose(fit.weights.sum(), 1.0)
    with pytest.warns(DisconnectedNetworkWarning, match="normal prior"):
        sw.fit_plackett_luce(two_islands(), normal={"Sigma": 4.0})
    with pytest.raises(ValueError, match="not strongly connected"):  # unchanged: no MLE without the penalty
        sw.fit_plackett_luce(two_islands(), npseudo=0)


def test_disconnected_paired_comparisons_warn():
    pc = two_islands().to_pairwise()
    with pytest.warns(DisconnectedNetworkWarning, match=r"\{a, b\}"):
        sw.fit_bradley_terry(pc, ties="davidson")


def test_disconnected_network_is_refused_by_bias_reduction():
    """Firth's estimate does not exist there (before: a ConvergenceWarning for rankings, a LinAlgError for pairs)."""
    with pytest.raises(ValueError, match=r"\{c, d, e\}; \{a, b\}.*Firth.*does not exist"):
        sw.fit_plackett_luce(two_islands(), bias_reduction=True)
    pc = sw.Rankings.from_orderings([["a", "b"], ["b", "a"], ["c", "d"], ["d", "c"]]).to_pairwise()
    with pytest.raises(ValueError, match=r"\{a, b\}; \{c, d\}"):
        sw.fit_bradley_terry(pc, bias_reduction=True)


def test_connected_network_fits_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("error", sw.SurveyWeightsWarning)
        fit = sw.fit_plackett_luce(sw.Rankings.from_ratings(ratings(), list("abcd"), scale=(1, 5)))
    assert fit.n_effective == pytest.approx(40.0)


# ------------------------------------------------------------------------------------------------ zero total weight
def test_zero_total_weight_is_an_error_at_construction():
    df = ratings().assign(w=0.0)
    with pytest.raises(ValueError, match="weights in column 'w' sum to 0.*40 respondents"):
        sw.Rankings.from_ratings(df, list("abcd"), weights="w")
    r = sw.Rankings.from_ratings(ratings(), list("abcd"))
    with pytest.raises(ValueError, match="sum to 0"):
        r.with_respondent_weights(np.zeros(r.n_respondents))
    with pytest.raises(ValueError, match="sum to 0"):
        sw.Rankings.from_orderings([["a", "b"], ["b", "a"]], weights=[0, 0])
    # some zero weights are fine
    assert r.with_respondent_weights(np.r_[0.0, np.ones(r.n_respondents - 1)]).n_respondents == 40


def test_zero_total_weight_is_an_error_at_fit_time():
    r = sw.Rankings.from_ratings(ratings(), list("abcd"))
    design = PLDesign.from_rankings(r).reweight(np.zeros(r.n_respondents))
    with pytest.raises(ValueError, match="frequency weights of all 40 respondents are 0"):
        fit_design(design)
    with pytest.raises(ValueError, match="are 0"):
        fit_design(design, check=False)
    long = pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "win": ["x", "z"], "w": [0.0, 0.0]})
    pc = sw.PairedComparisons.from_long(long, "a", "b", "win", weight="w")
    with pytest.raises(ValueError, match="are 0"):
        sw.fit_bradley_terry(pc)


# ------------------------------------------------------------------------------------------------ dominant weights
def test_one_heavy_weight_warns_with_the_effective_number():
    df = ratings().assign(w=1.0)
    df.loc[7, "w"] = 1e6
    r = sw.Rankings.from_ratings(df, list("abcd"), weights="w")
    with pytest.warns(DominantWeightsWarning, match=r"effective number of respondents.*is 1\.0, against 40"):
        fit = sw.fit_plackett_luce(r)
    assert fit.n_effective == pytest.approx(n_effective(df["w"]))
    assert fit.n_effective < 1.001 and fit.n_respondents == 40
    with pytest.warns(DominantWeightsWarning, match="is 1.0, against 40"):
        sw.fit_plackett_luce(r, bias_reduction=True)


def test_n_effective_is_kish_and_ignores_the_weight_scale():
    assert n_effective([2, 2, 2]) == pytest.approx(3.0)
    assert n_effective([1, 0, 3]) == pytest.approx(16 / 10)
    assert n_effective([0, 0]) == 0.0
    df = ratings().assign(w=np.linspace(1, 2, 40))  # mild weights: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", DominantWeightsWarning)
        fit = sw.fit_plackett_luce(sw.Rankings.from_ratings(df, list("abcd"), weights="w"))
    assert 38 < fit.n_effective < 40


def test_new_warnings_are_public_survey_weights_warnings():
    for w in (sw.DisconnectedNetworkWarning, sw.DominantWeightsWarning):
        assert issubclass(w, sw.SurveyWeightsWarning) and w.__name__ in sw.__all__
    assert not issubclass(sw.DisconnectedNetworkWarning, sw.ConvergenceWarning)  # judges refit on those
