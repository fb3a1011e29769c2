"""Tests for survey_weights.data.survey: bundled synthetic survey, real-export loader, dummies."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey_weights.criteria import SURVEY_CRITERIA
from survey_weights.data.survey import ITEM_TEXTS, load_survey, multiselect_dummies
from survey_weights.exceptions import DataRecodeWarning
from survey_weights.simulate import DEFAULT_SEED, simulate_survey
from survey_weights.synthetic import load_example_survey
from survey_weights.synthetic import survey as synthetic_survey

DATA = Path(__file__).resolve().parent.parent / "data"
CRIT = list(SURVEY_CRITERIA)


def test_bundled_csv_is_reproducible():
    csv = DATA / "survey_synthetic_335.csv"
    assert csv.is_file(), "data/survey_synthetic_335.csv is missing; run data/make_synthetic.py"
    pd.testing.assert_frame_equal(pd.read_csv(csv, keep_default_na=False), simulate_survey(335, seed=DEFAULT_SEED))


def test_bundled_truth_matches_simulator():
    truth = json.loads((DATA / "survey_synthetic_335_truth.json").read_text())
    _, t = simulate_survey(335, seed=DEFAULT_SEED, return_truth=True)
    assert truth == json.loads(json.dumps(t.to_dict()))


def test_load_example_survey_quiet_and_fallback(monkeypatch, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load_example_survey()
    assert df.shape == (335, 19) and list(df.columns[-5:]) == CRIT
    assert df["respondent_id"].is_unique
    monkeypatch.setattr(synthetic_survey, "_DATA_DIR", tmp_path)  # as in a wheel install: no data/
    pd.testing.assert_frame_equal(load_example_survey(), df)


def real_export(n=6):
    df = simulate_survey(n, seed=3)
    att = {1: "Strongly disagree", 2: "Disagree", 3: "Neutral", 4: "Agree", 5: "Strongly agree"}
    trust = {1: "Very low", 2: "Low", 3: "Moderate", 4: "High", 5: "Very high"}
    raw = pd.DataFrame({
        "ResponseId": [f"R_{i}" for i in range(n)],
        "Q1": df["age_group"], "Q2": df["gender"], "Q3": df["ethnicity"].str.replace(";", ","),
        "Q4": df["diagnoses"].str.replace(";", ","), "Q5": df["severity"],
        "Q6": df["treatment"].str.replace(";", ","),
        "Q6.1": df["ai_use"].str.replace(";", ","),
        "7a": df["att_accessible"].map(att), "7b": df["att_empathetic"].map(att),
        "7c": df["att_errors_concern"].map(att), "7d": df["att_complement"].map(att),
        "7e": df["att_trust"].map(trust),
    })
    for text, crit in ITEM_TEXTS.items():
        raw[text] = df[crit]
    raw["Q4_8_TEXT"] = ["my own words"] * n
    raw["Any other comments?"] = [f"long answer number {i} " * 3 for i in range(n)]
    return raw, df


def test_load_survey_maps_study_layout(tmp_path):
    raw, df = real_export()
    path = tmp_path / "export.csv"
    raw.to_csv(path, index=False)
    with pytest.warns(DataRecodeWarning, match="free-text"):
        got = load_survey(path, sep=",")
    expected = df.drop(columns=["respondent_id", "population"]).reset_index(drop=True)
    assert got["respondent_id"].tolist() == list(raw["ResponseId"])
    pd.testing.assert_frame_equal(got.drop(columns="respondent_id"), expected, check_dtype=False)
    assert "Q4_8_TEXT" not in got.columns and "Any other comments?" not in got.columns


def test_load_survey_canonical_round_trip():
    df = simulate_survey(30, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = load_survey(df)
    pd.testing.assert_frame_equal(got, df)


def test_load_survey_likert_words_and_prefixed_codes():
    raw = pd.DataFrame({"id": [1, 2, 3], **{c: ["5 - Extremely important", "Very important", 3] for c in CRIT}})
    got = load_survey(raw)
    assert got["empathy"].tolist() == [5, 4, 3]


def test_load_survey_bad_rating_names_column_value_and_ids():
    raw, _ = real_export()
    raw = raw.drop(columns=["Q4_8_TEXT", "Any other comments?"])
    col = "Empathy in responses (showing warmth and compassion)"
    raw[col] = raw[col].astype(object)
    raw.loc[[1, 4], col] = "7"
    with pytest.raises(ValueError, match=r"'empathy'.*'7'.*R_1, 'R_4'|'empathy'.*7.*R_1"):
        load_survey(raw)
    raw.loc[[1, 4], col] = "Sometimes"
    with pytest.raises(ValueError, match="empathy.*Sometimes.*2 respondent"):
        load_survey(raw)


def test_load_survey_structural_errors(tmp_path):
    df = simulate_survey(10, seed=1)
    with pytest.raises(ValueError, match="not found.*patient_autonomy"):
        load_survey(df.drop(columns="patient_autonomy"))
    dup = df.copy()
    dup.loc[3, "respondent_id"] = 1
    with pytest.raises(ValueError, match="unique.*1"):
        load_survey(dup)
    with pytest.raises(FileNotFoundError):
        load_survey(tmp_path / "missing.csv")
    two = df.assign(Q1=df["age_group"])
    with pytest.raises(ValueError, match="both map to 'age_group'"):
        load_survey(two)
    assert "age_group" in load_survey(two, rename={"Q1": "age_first_answer"}).columns


def test_load_survey_without_ids_assigns_them():
    df = simulate_survey(5, seed=2).drop(columns="respondent_id")
    assert load_survey(df)["respondent_id"].tolist() == [1, 2, 3, 4, 5]


def test_multiselect_dummies():
    df = pd.DataFrame({"diagnoses": ["Depression;PTSD", "Anxiety", None, "PTSD"]}, index=[10, 11, 12, 13])
    d = multiselect_dummies(df, "diagnoses")
    assert list(d.columns) == ["diagnoses_depression", "diagnoses_ptsd", "diagnoses_anxiety"]
    assert d.index.tolist() == [10, 11, 12, 13]
    assert d["diagnoses_ptsd"].tolist() == [True, False, False, True]
    assert not d.loc[12].any()
    full = simulate_survey(50, seed=1)
    t = multiselect_dummies(full, "treatment", prefix="tx")
    assert "tx_talk_therapy_counseling" in t.columns
    np.testing.assert_array_equal(t.sum(axis=1) >= 1, True)
    with pytest.raises(ValueError, match="not found"):
        multiselect_dummies(full, "nope")
