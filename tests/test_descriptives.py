"""The naive top-rated share and its dependence on listing order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights.data.descriptives import top_rated_share


def test_tie_breaks_by_hand():
    df = pd.DataFrame({"a": [5, 5, 4, np.nan], "b": [5, 3, 5, np.nan], "c": [5, 1, 1, np.nan]})
    first = top_rated_share(df, ["a", "b", "c"])
    np.testing.assert_allclose(first, [2 / 3, 1 / 3, 0])
    split = top_rated_share(df, ["a", "b", "c"], tie_break="split")
    np.testing.assert_allclose(split, [(1 / 3 + 1) / 3, (1 / 3 + 1) / 3, (1 / 3) / 3])
    rnd = top_rated_share(df, ["a", "b", "c"], tie_break="random", seed=1)
    assert rnd.sum() == pytest.approx(1) and rnd.equals(top_rated_share(df, ["a", "b", "c"], tie_break="random", seed=1))


def test_listing_order_inflates_first_item_while_fit_does_not_move():
    survey = sw.load_example_survey()
    crit = list(sw.SURVEY_CRITERIA)
    fwd = top_rated_share(survey, crit)
    rev = top_rated_share(survey, crit[::-1])
    assert fwd["empathy"] > rev["empathy"] + 0.3  # tie-breaking, not preference, makes empathy "dominant"
    split = top_rated_share(survey, crit, tie_break="split")
    assert split.equals(top_rated_share(survey, crit[::-1], tie_break="split").reindex(crit))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sw.DataRecodeWarning)
        f1 = sw.fit_plackett_luce(sw.Rankings.from_ratings(survey, crit, respondent="respondent_id"))
        f2 = sw.fit_plackett_luce(sw.Rankings.from_ratings(survey, crit[::-1], respondent="respondent_id"))
    np.testing.assert_allclose(f1.weights[crit], f2.weights[crit], atol=1e-8)


def test_errors():
    with pytest.raises(ValueError, match="tie_break"):
        top_rated_share(pd.DataFrame({"a": [1]}), ["a"], tie_break="last")
    with pytest.raises(ValueError, match="No respondent rated"):
        top_rated_share(pd.DataFrame({"a": [np.nan]}), ["a"])
