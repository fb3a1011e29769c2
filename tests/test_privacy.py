"""Privacy, enforced in one place (issue 15.4): respondent-level metadata is refused, grouping factors that identify
respondents are refused, the cell-size rule counts respondents, and no table, plot or text shows a withheld group."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey_weights.criteria import ALL_CRITERIA
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
