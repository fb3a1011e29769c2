"""The optional soft `label` of the pair format, old files without it, and the shared-comparison design tools."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from survey_weights.preferences import (
    conflict_shares,
    read_preferences,
    shared_comparisons,
    validate_preferences,
    write_preferences,
)
from survey_weights.preferences.pairs import as_pairs_frame, data_hash

OLD_RECORDS = [  # the version-1 format: no `label`, extra score fields
    {"prompt": "I feel low.", "chosen": "That sounds hard.", "rejected": "Cheer up.", "criterion": "empathy",
     "prompt_id": "p1", "pair_id": "p1:empathy:a>b", "chosen_score": 0.5, "rejected_score": -0.5, "score_gap": 1.0},
    {"prompt": "I can't sleep.", "chosen": "Tell me more.", "rejected": "Whatever.", "criterion": "empathy",
     "prompt_id": "p2", "pair_id": "p2:empathy:a>c", "chosen_score": 0.2, "rejected_score": -0.1, "score_gap": 0.3},
]


def test_old_format_file_reads_unchanged_as_hard_labels(tmp_path):
    path = tmp_path / "empathy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in OLD_RECORDS), encoding="utf-8")
    df = read_preferences(path)
    assert "label" not in df.columns
    assert df["chosen"].tolist() == ["That sounds hard.", "Tell me more."]
    assert df["score_gap"].tolist() == [1.0, 0.3]
    frame = as_pairs_frame(path)
    assert list(frame.columns) == ["prompt", "chosen", "rejected", "criterion", "prompt_id", "pair_id"]
    # hashing, hence resume keys of adapters trained on old files, is unchanged by the new field
    assert data_hash(frame) == data_hash(frame.assign(label=np.nan))
    # a directory holding old files reads too
    assert len(read_preferences(tmp_path)) == 2


def test_soft_labels_round_trip_and_mix_with_hard_ones(tmp_path):
    df = pd.DataFrame(OLD_RECORDS).drop(columns=["chosen_score", "rejected_score", "score_gap"])
    df["label"] = [0.8, np.nan]  # the second pair keeps a hard label
    path = write_preferences(df, tmp_path / "empathy.jsonl")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["label"] == 0.8 and "label" not in lines[1]
    back = read_preferences(path)
    assert back["label"].dtype == float
    assert back["label"].iloc[0] == 0.8 and np.isnan(back["label"].iloc[1])
    frame = as_pairs_frame(back)
    assert "label" in frame.columns
    assert data_hash(frame) != data_hash(frame.assign(label=[0.7, np.nan]))


@pytest.mark.parametrize("bad", [1.5, -0.1, float("inf"), "high", True])
def test_invalid_labels_name_the_field(bad, tmp_path):
    df = pd.DataFrame(OLD_RECORDS[:1]).assign(label=[bad])
    with pytest.raises(ValueError, match="`label`"):
        validate_preferences(df)
    rec = dict(OLD_RECORDS[0], label=bad if not isinstance(bad, float) or np.isfinite(bad) else 2.0)
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps(rec) + "\n")
    with pytest.raises(ValueError, match=r"line 1: field `label`"):
        read_preferences(p)


def _shared():
    """Two comparisons labelled on three criteria; empathy and safety disagree on the first."""
    rows = [
        ("x", "Warm.", "Safe.", "empathy", 0.9), ("x", "Safe.", "Warm.", "safety", 0.8),
        ("x", "Warm.", "Safe.", "trust_rapport", 0.6),
        ("y", "Good.", "Bad.", "empathy", 0.7), ("y", "Good.", "Bad.", "safety", 0.9),
        ("y", "Bad.", "Good.", "trust_rapport", 0.5),
    ]
    return pd.DataFrame(rows, columns=["prompt", "chosen", "rejected", "criterion", "label"])


def test_shared_comparisons_by_hand():
    wide = shared_comparisons(_shared())
    assert len(wide) == 2
    # reply A is the text that sorts first: "Safe." < "Warm.", "Bad." < "Good."
    assert wide["reply_a"].tolist() == ["Safe.", "Bad."]
    assert wide["empathy"].round(6).tolist() == [0.1, 0.3]
    assert wide["safety"].round(6).tolist() == [0.8, 0.1]
    assert wide["trust_rapport"].round(6).tolist() == [0.4, 0.5]


def test_conflict_shares_by_hand():
    tab = conflict_shares(_shared()).set_index(["criterion_1", "criterion_2"])
    assert tab.loc[("empathy", "safety"), "conflict_share"] == 0.5   # x conflicts, y agrees
    assert tab.loc[("empathy", "safety"), "agree_share"] == 0.5
    # a label of 1/2 is neither: trust_rapport agrees with empathy on x and is undecided on y
    assert tab.loc[("empathy", "trust_rapport"), "conflict_share"] == 0.0
    assert tab.loc[("empathy", "trust_rapport"), "agree_share"] == 0.5
    assert tab.loc[("safety", "trust_rapport"), "conflict_share"] == 0.5
    assert (tab["n"] == 2).all()


def test_hard_labels_and_duplicates():
    hard = _shared().drop(columns="label")
    assert shared_comparisons(hard)["empathy"].tolist() == [0.0, 0.0]  # A ("Safe.", "Bad.") always rejected
    with pytest.raises(ValueError, match="two pairs for criterion 'empathy'"):
        shared_comparisons(pd.concat([hard, hard.iloc[:1]], ignore_index=True))
