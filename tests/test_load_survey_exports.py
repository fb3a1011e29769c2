"""load_survey on real exports of any survey (issue 15.2): Qualtrics (three header rows) and REDCap / generic CSV,
Likert words through the analyst's labels, ordered categoricals, reverse-coded items, multi-select columns, and
no silent renaming outside the study's layout."""

from __future__ import annotations

import csv
import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights.criteria import SURVEY_CRITERIA
from survey_weights.data.survey import ITEM_TEXTS, load_survey
from survey_weights.exceptions import DataRecodeWarning

MATRIX = "How important is each aspect of a reply?\n(0 = not at all, 10 = extremely) - "
CRIT8 = ["Clarity", "Warmth", "Accuracy", "Brevity", "Safety", "Respect", "Curiosity", "Humour"]


def write_csv(path, rows):
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def qualtrics(tmp_path, n=6, *, name="export.csv", cell=None):
    """A Qualtrics-style export: ids, question texts (with line breaks), import ids; 8 items 0-10 as numbers
    and words, blank cells, a multi-select column, an IP address and a free-text column."""
    ids = ["StartDate", "IPAddress", "ResponseId", "Q1", "Q2", "Q6", *[f"Q7_{k}" for k in range(1, 9)], "Q8",
           "Q8_4_TEXT"]
    texts = ["Start Date", "IP Address", "Response ID", "How old are you?", "Gender", "Any concerns?",
             *[MATRIX + c for c in CRIT8], "Which apps do you use? (select all that apply)",
             "Which apps do you use? - Other - Text"]
    imports = [json.dumps({"ImportId": f"QID{k}"}) for k in range(len(ids))]
    rng = np.random.default_rng(5)
    data = []
    for i in range(n):
        ratings = [str(int(v)) for v in rng.integers(0, 11, size=8)]
        ratings[0] = "10 - Extremely important" if i % 2 else "0 - Not at all important"
        if i == 2:
            ratings[3] = ""  # blank: not answered
        apps = ["App A,App B", "App C", ""][i % 3]
        data.append([f"2024-05-0{i + 1} 10:00", f"10.0.0.{i}", f"R_{i}", "25-34", "Woman", "Some", *ratings, apps,
                     ""])
    if cell is not None:
        (row, col), value = cell
        data[row][ids.index(col)] = value
    return write_csv(tmp_path / name, [ids, texts, imports, *data])


def load_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataRecodeWarning)
        return load_survey(*args, **kwargs)


# --------------------------------------------------------------------------------------------------------- Qualtrics
def test_qualtrics_export_with_items_by_question_text(tmp_path):
    path = qualtrics(tmp_path)
    with pytest.warns(DataRecodeWarning) as rec:
        df = load_survey(path, items=CRIT8, scale=(0, 10), multiselect={"Q8": ","})
    msgs = " | ".join(str(w.message) for w in rec)
    assert "'IPAddress'" in msgs and "identify respondents" in msgs  # dropped, and said so
    assert "'Q8_4_TEXT'" in msgs and "free-text" in msgs
    assert "'ResponseId' -> 'respondent_id'" in msgs and "'Q7_1' -> 'Clarity'" in msgs  # renames reported
    assert list(df.columns[:9]) == ["respondent_id", *CRIT8]
    assert df["respondent_id"].tolist() == [f"R_{i}" for i in range(6)]
    assert df["Clarity"].tolist() == [0, 10, 0, 10, 0, 10]  # "10 - Extremely important" is 10
    assert pd.isna(df.loc[2, "Brevity"]) and str(df["Brevity"].dtype) == "Int64"  # blank stays missing
    assert df["Q8"].iloc[0] == "App A;App B" and df["Q8"].iloc[1] == "App C" and pd.isna(df["Q8"].iloc[2])
    assert {"Q1", "Q2", "Q6", "StartDate"} <= set(df.columns)  # generic headers are not the study's
    assert "age_group" not in df.columns and "treatment" not in df.columns
    assert df.attrs["export"] == "qualtrics" and df.attrs["scale"] == (0.0, 10.0)
    assert df.attrs["question_text"]["Q1"] == "How old are you?"
    assert "IPAddress" not in df.columns
    r = sw.Rankings.from_ratings(df, CRIT8, respondent="respondent_id", scale=(0, 10))
    assert r.n_items == 8 and r.n_respondents == 6


def test_qualtrics_frame_read_without_skipping_header_rows(tmp_path):
    raw = pd.read_csv(qualtrics(tmp_path), keep_default_na=False)  # as an analyst would: rows 0-1 are headers
    df = load_quiet(raw, items=[f"Q7_{k}" for k in range(1, 9)], scale=(0, 10))
    assert len(df) == 6 and df["Q7_1"].tolist() == [0, 10, 0, 10, 0, 10]
    assert df.attrs["export"] == "qualtrics"


def test_bad_cell_names_file_line_column_value_and_fix(tmp_path):
    path = qualtrics(tmp_path, cell=((3, "Q7_2"), "eleven"))
    # header on line 1, question texts on lines 2-10 (each matrix text holds a line break), import ids on 11
    with pytest.raises(ValueError, match=r"export\.csv: column 'Warmth' \(header 'Q7_2'\).*0-10.*Got 'eleven'.*"
                                         r"'R_3'; line 15\).*labels="):
        load_quiet(path, items=CRIT8, scale=(0, 10))
    with pytest.raises(ValueError, match=r"'Clarity'.*1-10.*'0 - Not at all important'.*lines 12, 14, 16.*scale="):
        load_quiet(qualtrics(tmp_path, name="b.csv"), items=CRIT8, scale=(1, 10))


def test_study_items_in_a_qualtrics_export_are_the_study(tmp_path):
    df0 = sw.simulate.simulate_survey(5, seed=2)
    texts = {c: t for t, c in ITEM_TEXTS.items()}
    ids = ["ResponseId", "Q1", *[f"Q9_{k}" for k in range(1, 6)]]
    rows = [ids, ["Response ID", "Age", *[f"Please rate - {texts[c]}" for c in SURVEY_CRITERIA]],
            [json.dumps({"ImportId": i}) for i in ids]]
    rows += [[f"R{i}", df0["age_group"][i], *df0.loc[i, list(SURVEY_CRITERIA)].tolist()] for i in range(5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load_survey(write_csv(tmp_path / "study.csv", rows))
    assert list(df.columns) == ["respondent_id", "age_group", *SURVEY_CRITERIA]
    np.testing.assert_array_equal(df[list(SURVEY_CRITERIA)], df0[list(SURVEY_CRITERIA)])
    assert df.attrs["layout"] == "study"


# ------------------------------------------------------------------------------------------------ REDCap / generic
def redcap(tmp_path, values=((1, 5, 3), (2, 4, 4), (5, "", 1))):
    rows = [["record_id", "redcap_event_name", "q1", "q6", "concern_level", "cost", "speed", "comfort"]]
    rows += [[i + 1, "baseline", "a", "b", "high", *v] for i, v in enumerate(values)]
    return write_csv(tmp_path / "redcap.csv", rows)


def test_redcap_generic_headers_never_silently_renamed(tmp_path):
    with pytest.warns(DataRecodeWarning, match=r"Renamed 1 column.*'record_id' -> 'respondent_id'") as rec:
        df = load_survey(redcap(tmp_path), items=["cost", "speed", "comfort"], scale=(1, 5))
    assert len(rec) == 1
    assert list(df.columns) == ["respondent_id", "cost", "speed", "comfort", "redcap_event_name", "q1", "q6",
                                "concern_level"]  # q1, q6, "concern" kept: not the study's age/treatment/att_*
    assert df["respondent_id"].tolist() == [1, 2, 3]
    assert pd.isna(df.loc[2, "speed"]) and df["cost"].tolist() == [1, 2, 5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the analyst named it: nothing to report
        df = load_survey(redcap(tmp_path), items=["cost", "speed", "comfort"], respondent="record_id")
    assert df.attrs["scale"] == (1.0, 5.0) and df.attrs["scale_inferred"]


def test_generic_frame_with_the_study_headers_is_left_alone():
    """The probe of the issue: Q1, Q2, Q6 and 'concern' columns became age_group, gender, treatment, att_*."""
    raw = pd.DataFrame({"Q1": ["x", "y"], "Q2": ["u", "v"], "Q6": [1, 2], "Any concerns": ["no", "yes"],
                        "a": [1, 2], "b": [2, 1]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load_survey(raw, items=["a", "b"], scale=(1, 2))
    assert list(df.columns) == ["respondent_id", "a", "b", "Q1", "Q2", "Q6", "Any concerns"]
    assert df.attrs["renamed"] == {}
    with pytest.raises(ValueError, match="not in the study's layout.*items="):
        load_survey(raw)
    study = pd.DataFrame({"Q1": ["18-24"], **{c: [3] for c in SURVEY_CRITERIA}})
    assert "age_group" in load_survey(study, layout="study").columns  # asked for: the study's rules
    assert "Q1" in load_survey(study, layout="generic", items=list(SURVEY_CRITERIA)).columns


def test_ambiguous_renames_are_refused_naming_both_columns(tmp_path):
    raw = pd.DataFrame({"ResponseId": ["a", "b"], "id": [1, 2], "x": [1, 2], "y": [2, 1]})
    with pytest.raises(ValueError, match=r"'ResponseId' and 'id' both look like respondent ids.*respondent="):
        load_survey(raw, items=["x", "y"])
    raw2 = pd.DataFrame({"x": [1, 2], "y": [2, 1], "z": [1, 1]})
    with pytest.raises(ValueError, match=r"columns 'x' and 'z' would both be named 'score'.*rename="):
        load_survey(raw2, items=["x", "y"], rename={"x": "score", "z": "score"})
    assert list(load_survey(raw2, items=["x", "y"], rename={"x": "score"}).columns[:3]) == ["respondent_id", "score",
                                                                                              "y"]
    with pytest.raises(ValueError, match="renamed 'score' by `rename` and 'X' by `items`"):
        load_survey(raw2, items={"x": "X", "y": "y"}, rename={"x": "score"})
    with pytest.raises(ValueError, match=r"column 'x' would be named 'y', but the export already has"):
        load_survey(raw2, items=["y", "z"], rename={"x": "y"})
    with pytest.raises(ValueError, match=r"no column for item 'w'.*Headers: 'x', 'y', 'z'"):
        load_survey(raw2, items=["x", "w"])


# ---------------------------------------------------------------------------------------------- words and scales
def test_likert_words_through_labels_dict_list_and_per_item():
    raw = pd.DataFrame({"id": [1, 2, 3], "a": ["Very", "not at all", " somewhat "], "b": ["Somewhat", None, "Very"]})
    words = ["Not at all", "Somewhat", "Very"]
    df = load_quiet(raw, items=["a", "b"], labels=words)  # in order: 1, 2, 3
    assert df["a"].tolist() == [3, 1, 2] and pd.isna(df.loc[1, "b"]) and df.attrs["scale"] == (1.0, 3.0)
    df = load_quiet(raw, items=["a", "b"], labels=words, scale=(0, 2))  # codes from the scale's low end
    assert df["a"].tolist() == [2, 0, 1]
    df = load_quiet(raw, items=["a", "b"], labels={"a": {"very": 10, "somewhat": 5, "not at all": 0},
                                                   "b": {"very": 1, "somewhat": 0}}, scale=(0, 10))
    assert df["a"].tolist() == [10, 0, 5] and df.loc[2, "b"] == 1
    with pytest.raises(ValueError, match=r"'a'.*Got 'Very'.*labels=\{"):
        load_quiet(raw, items=["a", "b"], scale=(1, 3))
    with pytest.raises(ValueError, match=r"'b'.*Got 'Somewhat'.*add that answer to `labels`"):
        load_quiet(raw, items=["a", "b"], labels={"a": {"very": 3, "somewhat": 2, "not at all": 1}})
    with pytest.raises(TypeError, match="`labels` must map each answer to a number"):
        load_quiet(raw, items=["a"], labels={"Very": "high"})
    dk = raw.assign(a=["Very", "Don't know", "Somewhat"])
    df = load_quiet(dk, items=["a", "b"], labels={**{w: i for i, w in enumerate(words, 1)}, "Don't know": None})
    assert pd.isna(df.loc[1, "a"])  # a code of None: not answered


def test_ordered_categorical_and_na_values():
    cat = pd.Categorical(["low", "high", "mid", None], categories=["low", "mid", "high"], ordered=True)
    raw = pd.DataFrame({"a": cat, "b": pd.Categorical(["mid", "mid", "low", "high"], categories=["low", "mid",
                                                                                                 "high"], ordered=True)})
    df = load_survey(raw, items=["a", "b"])
    assert df["a"].tolist()[:3] == [1, 3, 2] and pd.isna(df.loc[3, "a"]) and df.attrs["scale"] == (1.0, 3.0)
    assert load_survey(raw, items=["a", "b"], scale=(0, 2))["b"].tolist() == [1, 1, 0, 2]
    with pytest.raises(ValueError, match="ordered Categorical of 3 categories.*5 points"):
        load_survey(raw, items=["a", "b"], scale=(1, 5))
    nums = pd.DataFrame({"a": [1, -99, 3], "b": [2, 2, 1]})
    assert pd.isna(load_survey(nums, items=["a", "b"], scale=(1, 3), na_values=[-99]).loc[1, "a"])
    with pytest.raises(ValueError, match=r"'a'.*Got -99.*na_values="):
        load_survey(nums, items=["a", "b"], scale=(1, 3))
    with pytest.raises(ValueError, match="not a whole number|whole numbers"):
        load_survey(pd.DataFrame({"a": [1.5, 2], "b": [1, 2]}), items=["a", "b"])


# ---------------------------------------------------------------------------------------------- reverse coding
def test_reverse_coded_items():
    raw = pd.DataFrame({"a": [1, 5, 2], "b": [5, 1, 4], "c": [3, 3, 1]})
    df = load_survey(raw, items=["a", "b", "c"], scale=(1, 5), reverse=["b"])
    assert df["b"].tolist() == [1, 5, 2] and df["a"].tolist() == [1, 5, 2] and df.attrs["reversed"] == ["b"]
    assert load_survey(raw, items=["a", "b", "c"], scale=(0, 5), reverse=True)["c"].tolist() == [2, 2, 4]
    with pytest.raises(ValueError, match="needs the scale's ends.*scale="):
        load_survey(raw, items=["a", "b", "c"], reverse=["a"])
    with pytest.raises(ValueError, match="`reverse` names 'z'"):
        load_survey(raw, items=["a", "b", "c"], scale=(1, 5), reverse=["z"])


def test_one_is_most_important_is_refused_until_reverse_is_given(tmp_path):
    rows = [["rid", "r_cost", "r_speed"], ["Respondent", "Rank (1 = most important) - Cost",
                                           "Rank (1 = most important) - Speed"],
            ['{"ImportId":"a"}', '{"ImportId":"b"}', '{"ImportId":"c"}'], ["p1", 1, 2], ["p2", 2, 1]]
    path = write_csv(tmp_path / "ranks.csv", rows)
    with pytest.raises(ValueError, match=r"item 'Cost' says .*1 = most important.*reverse=True"):
        load_survey(path, items=["Cost", "Speed"], respondent="rid", scale=(1, 2))
    df = load_quiet(path, items=["Cost", "Speed"], respondent="rid", scale=(1, 2), reverse=True)
    assert df["Cost"].tolist() == [2, 1]  # higher = more important now
    assert load_quiet(path, items=["Cost", "Speed"], respondent="rid", scale=(1, 2), reverse=False)[
        "Cost"].tolist() == [1, 2]
    words = pd.DataFrame({"a": ["Most important", "Least important"], "b": ["Least important", "Most important"]})
    with pytest.raises(ValueError, match="'most important'"):
        load_survey(words, items=["a", "b"], labels=["Most important", "Least important"])


# ------------------------------------------------------------------------------------------------ multi-select
def test_multiselect_with_the_analysts_separator():
    raw = pd.DataFrame({"a": [1, 2, 3], "b": [3, 2, 1], "apps": ["X | Y", None, "Z"], "langs": ["en/fr", "de", ""]})
    df = load_quiet(raw, items=["a", "b"], multiselect={"apps": "|", "langs": "/"})
    assert df["apps"].iloc[0] == "X;Y" and pd.isna(df["apps"].iloc[1]) and df["langs"].tolist()[:2] == ["en;fr",
                                                                                                          "de"]
    assert sw.multiselect_dummies(df, "apps").sum().tolist() == [1, 1, 1]
    bad = raw.assign(apps=["X;1 | Y", None, "Z"])
    with pytest.raises(ValueError, match=r"row with index 0.*'apps'.*'X;1'.*contains ';'"):
        load_quiet(bad, items=["a", "b"], multiselect={"apps": "|"})
    with pytest.raises(ValueError, match="`multiselect` names 'nope'"):
        load_quiet(raw, items=["a", "b"], multiselect=["nope"])


# --------------------------------------------------------------------------------------------------- file errors
def test_file_errors_name_the_file_and_a_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="a directory, not a file"):
        load_survey(tmp_path, items=["a"])
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv is empty"):
        load_survey(tmp_path / "empty.csv", items=["a"])
    write_csv(tmp_path / "dup.csv", [["a", "b", "a"], [1, 2, 3]])
    with pytest.raises(ValueError, match=r"dup.csv, line 1: the header 'a' appears more than once"):
        load_survey(tmp_path / "dup.csv", items=["a", "b"])
    (tmp_path / "latin.csv").write_bytes("a,b\n\xe9,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.csv: not utf-8-sig text.*encoding="):
        load_survey(tmp_path / "latin.csv", items=["b"])
    write_csv(tmp_path / "ids.csv", [["id", "a", "b"], [1, 1, 2], [1, 2, 1], ["", 1, 1]])
    with pytest.raises(ValueError, match=r"ids.csv: `respondent_id` is missing on line 4"):
        load_survey(tmp_path / "ids.csv", items=["a", "b"], respondent="id")
    with pytest.raises(ValueError, match="`layout` must be one of"):
        load_survey(tmp_path / "ids.csv", layout="qualtrics")
    with pytest.raises(TypeError, match="`items` must be a list"):
        load_survey(tmp_path / "ids.csv", items="a")
    with pytest.raises(ValueError, match="layout='study' reads the study's five criteria"):
        load_survey(tmp_path / "ids.csv", items=["a"], layout="study")


def test_study_layout_errors_name_the_file_and_line(tmp_path):
    df = sw.simulate.simulate_survey(8, seed=3)
    df["empathy"] = df["empathy"].astype(object)
    df.loc[5, "empathy"] = "Sometimes"
    df.to_csv(tmp_path / "study.csv", index=False)
    with pytest.raises(ValueError, match=r"study.csv: column 'empathy' must hold ratings 1-5.*'Sometimes'.*line 7"):
        load_survey(tmp_path / "study.csv")
    df.loc[5, "empathy"] = "sometimes important"
    df.to_csv(tmp_path / "study.csv", index=False)
    out = load_survey(tmp_path / "study.csv", labels={"Sometimes important": 3})  # labels extend the Likert words
    assert out.loc[5, "empathy"] == 3 and out.attrs["layout"] == "study"
