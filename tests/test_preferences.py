"""Tests for survey_weights.preferences: the JSONL format and pairs from judge rankings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from survey_weights.preferences import (
    aggregate_judge_rankings,
    borda_weights,
    pairs_from_judge_rankings,
    read_preferences,
    validate_preferences,
    write_preferences,
    write_preferences_by_criterion,
)
from survey_weights.preferences.pairs import as_pairs_frame

GOOD = {"prompt": "I feel low.", "chosen": "That sounds hard.", "rejected": "Cheer up.", "criterion": "empathy"}


def _write(path, lines):
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({k: v for k, v in GOOD.items() if k != "rejected"}, r"line 2: missing field `rejected`"),
        ({**GOOD, "chosen": "   "}, r"line 2: field `chosen` is empty"),
        ({**GOOD, "rejected": GOOD["chosen"]}, r"line 2: fields `chosen` and `rejected` hold the same text"),
        ({**GOOD, "prompt": 3}, r"line 2: field `prompt` must be a string"),
        ('{"prompt": "x", ', r"line 2: invalid JSON"),
        ([1, 2], r"line 2: a record must be a JSON object"),
        ({**GOOD, "pair_id": 1.5}, r"line 2: field `pair_id` must be a string or an integer"),
    ],
)
def test_validation_errors_name_file_line_and_field(tmp_path, bad, match):
    p = _write(tmp_path / "x.jsonl", [GOOD, bad])
    with pytest.raises(ValueError, match=match) as exc:
        read_preferences(p)
    assert "x.jsonl" in str(exc.value)


def test_unknown_criterion_only_when_criteria_given(tmp_path):
    p = _write(tmp_path / "x.jsonl", [GOOD, {**GOOD, "criterion": "humour"}])
    assert len(read_preferences(p)) == 2
    with pytest.raises(ValueError, match=r"line 2: field `criterion` has unknown value 'humour'"):
        read_preferences(p, criteria=["empathy", "safety"])


def test_duplicate_pair_id_and_blank_lines(tmp_path):
    p = _write(tmp_path / "x.jsonl", [{**GOOD, "pair_id": "a"}, "", {**GOOD, "pair_id": "a"}])
    with pytest.raises(ValueError, match="pair_id"):
        read_preferences(p)


def test_round_trip_keeps_extras_and_ids(tmp_path):
    df = pd.DataFrame([
        {**GOOD, "prompt_id": "p1", "pair_id": "p1:e", "score": 1.25, "tags": ["a", "b"]},
        {**GOOD, "criterion": "safety", "chosen": "Are you safe right now? ünïcode", "prompt_id": 7},
    ])
    path = write_preferences(df, tmp_path / "pairs.jsonl")
    back = read_preferences(path)
    assert list(back.columns[:6]) == ["prompt", "chosen", "rejected", "criterion", "prompt_id", "pair_id"]
    assert back.loc[0, "score"] == 1.25 and back.loc[0, "tags"] == ["a", "b"]
    assert back.loc[1, "prompt_id"] == 7 and back.loc[1, "pair_id"] is None
    assert back.loc[1, "chosen"].endswith("ünïcode")
    pd.testing.assert_frame_equal(validate_preferences(back), back)
    # writing again gives identical bytes
    assert write_preferences(back, tmp_path / "again.jsonl").read_bytes() == path.read_bytes()


def test_write_is_validated_and_atomic(tmp_path):
    target = tmp_path / "pairs.jsonl"
    target.write_text("old\n")
    with pytest.raises(ValueError, match="row 0: fields `chosen` and `rejected`"):
        write_preferences(pd.DataFrame([{**GOOD, "rejected": GOOD["chosen"]}]), target)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"]


def test_directory_reader_per_criterion(tmp_path):
    df = pd.DataFrame([GOOD, {**GOOD, "criterion": "safety"}, {**GOOD, "criterion": "safety", "chosen": "Hm."}])
    write_preferences_by_criterion(df, tmp_path)
    (tmp_path / "prompts.jsonl").write_text("not pairs\n")  # other files are ignored
    back = read_preferences(tmp_path)
    assert back["criterion"].tolist() == ["empathy", "safety", "safety"]
    assert len(read_preferences(tmp_path, criteria=["safety"])) == 2
    with pytest.raises(FileNotFoundError, match="patient_autonomy"):
        read_preferences(tmp_path, criteria=["patient_autonomy"])
    _write(tmp_path / "empathy.jsonl", [{**GOOD, "criterion": "safety"}])
    with pytest.raises(ValueError, match="per-criterion file holds 'empathy'"):
        read_preferences(tmp_path)


def test_as_pairs_frame_uses_the_one_validator_files_name_file_and_line(tmp_path):
    p = _write(tmp_path / "x.jsonl", [GOOD, {**GOOD, "chosen": "  "}])
    with pytest.raises(ValueError, match=r"x\.jsonl', line 2: field `chosen` is empty"):
        as_pairs_frame(p)
    write_preferences_by_criterion(pd.DataFrame([GOOD, {**GOOD, "criterion": "safety"}]), tmp_path / "d")
    assert as_pairs_frame(tmp_path / "d")["criterion"].tolist() == ["empathy", "safety"]  # a directory too


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame([{**GOOD, "rejected": GOOD["chosen"]}]), r"row 0: fields `chosen` and `rejected`"),
        (pd.DataFrame([{**GOOD, "pair_id": "a"}, {**GOOD, "pair_id": "a"}]), "pair_id"),
        (pd.DataFrame([GOOD, {**GOOD, "prompt": 3}]), r"row 1: field `prompt` must be a string"),
        (pd.DataFrame([{k: v for k, v in GOOD.items() if k != "criterion"}]), r"lacks column\(s\) \['criterion'\]"),
    ],
)
def test_as_pairs_frame_rejects_what_validate_preferences_rejects(frame, match):
    with pytest.raises(ValueError, match=match):
        validate_preferences(frame)
    with pytest.raises(ValueError, match=match):
        as_pairs_frame(frame)


def test_as_pairs_frame_keeps_schema_columns_and_given_ids():
    df = pd.DataFrame([{**GOOD, "score": 1.0}, {**GOOD, "chosen": "I hear you."}])
    out = as_pairs_frame(df)
    assert list(out.columns) == ["prompt", "chosen", "rejected", "criterion"] and list(out.index) == [0, 1]
    assert list(as_pairs_frame(df.assign(prompt_id=["a", "b"])).columns)[-1] == "prompt_id"


def test_borda_weights():
    assert borda_weights(5).tolist() == [10.0, 5.0, 0.0, -5.0, -10.0]
    for k in range(2, 11):
        w = borda_weights(k)
        assert np.allclose(w, -w[::-1]) and np.all(np.diff(w) < 0)
    with pytest.raises(ValueError, match="`k`"):
        borda_weights(1)


def _toy(orderings, criterion="empathy", prompt_id="p1"):
    """Long rankings from orderings like 'abcde' or 'a(bc)de' (parentheses: tie)."""
    rows = []
    for j, od in enumerate(orderings):
        r, i = 0, 0
        while i < len(od):
            r += 1
            if od[i] == "(":
                end = od.index(")", i)
                rows += [(prompt_id, criterion, j, c, r) for c in od[i + 1:end]]
                i = end + 1
            else:
                rows.append((prompt_id, criterion, j, od[i], r))
                i += 1
    return pd.DataFrame(rows, columns=["prompt_id", "criterion", "judge_id", "candidate_id", "rank"])


def _cands(items="abcde", prompt_id="p1"):
    return pd.DataFrame({"prompt_id": prompt_id, "candidate_id": list(items), "prompt": "I feel low.",
                         "text": [f"reply {c}" for c in items]})


def test_borda_scores_ties_and_best_worst():
    rk = _toy(["abcde", "abcde", "a(bc)ed"])
    s = aggregate_judge_rankings(rk, _cands(), method="borda").set_index("candidate_id")["score"]
    # a: 10+10+10; b: 5+5+2.5; c: 0+0+2.5; d: -5-5-10; e: -10-10-5
    assert s.to_dict() == {"a": 30.0, "b": 12.5, "c": 2.5, "d": -20.0, "e": -25.0}
    p = pairs_from_judge_rankings(rk, _cands(), method="borda")
    assert len(p) == 1
    assert (p.loc[0, "chosen"], p.loc[0, "rejected"], p.loc[0, "score_gap"]) == ("reply a", "reply e", 55.0)
    assert p.loc[0, "pair_id"] == "p1:empathy:a>e"


def test_partial_rankings_fill_bottom_positions():
    rk = _toy(["ab"])  # c, d, e unranked -> share positions 3-5
    s = aggregate_judge_rankings(rk, _cands(), method="borda").set_index("candidate_id")["score"]
    assert s.to_dict() == {"a": 10.0, "b": 5.0, "c": -5.0, "d": -5.0, "e": -5.0}


def test_plackett_luce_and_borda_agree_on_clear_case():
    pytest.importorskip("survey_weights.models")
    rng = np.random.default_rng(3)
    ords = ["abcde"] * 8 + ["".join(rng.permutation(list("abcde"))) for _ in range(3)] + ["ab(cd)e"]
    rk = pd.concat([_toy(ords, "empathy"), _toy([o[::-1] for o in ords if "(" not in o], "safety")])
    pl = pairs_from_judge_rankings(rk, _cands(), method="plackett_luce")
    bo = pairs_from_judge_rankings(rk, _cands(), method="borda")
    assert pl[["criterion", "chosen_id", "rejected_id"]].values.tolist() == \
        bo[["criterion", "chosen_id", "rejected_id"]].values.tolist() == [["empathy", "a", "e"], ["safety", "e", "a"]]
    s_pl = aggregate_judge_rankings(rk, _cands(), method="plackett_luce")
    s_bo = aggregate_judge_rankings(rk, _cands(), method="borda")
    m = s_pl.merge(s_bo, on=["prompt_id", "criterion", "candidate_id"])
    for _, g in m.groupby("criterion"):
        assert g["score_x"].rank().tolist() == g["score_y"].rank().tolist()
        assert abs(g["score_x"].sum()) < 1e-8  # zero-sum log-worths


def test_all_pairs_respects_min_gap():
    rk = _toy(["abcde", "abced", "bacde"])
    s = aggregate_judge_rankings(rk, _cands(), method="borda").set_index("candidate_id")["score"]
    allp = pairs_from_judge_rankings(rk, _cands(), method="borda", pairs="all")
    assert len(allp) == 10  # all 5 scores distinct
    for gap in (0.0, 5.0, 12.5, 100.0):
        p = pairs_from_judge_rankings(rk, _cands(), method="borda", pairs="all", min_gap=gap)
        expect = sum(1 for a in s.index for b in s.index if s[a] - s[b] > gap)
        assert len(p) == expect
        assert (p["score_gap"] > gap).all()
        assert (p["chosen_score"].to_numpy() > p["rejected_score"].to_numpy()).all()
        assert p["pair_id"].is_unique
    assert pairs_from_judge_rankings(rk, _cands(), method="borda", min_gap=100.0).empty


def test_no_pair_when_all_tied_and_input_errors():
    rk = _toy(["(abcde)"])
    assert pairs_from_judge_rankings(rk, _cands(), method="borda").empty
    with pytest.raises(ValueError, match="not in `candidates`"):
        pairs_from_judge_rankings(_toy(["abcdf"]), _cands(), method="borda")
    with pytest.raises(ValueError, match="Unknown `method`"):
        pairs_from_judge_rankings(_toy(["abcde"]), _cands(), method="elo")
    with pytest.raises(ValueError, match="rank"):
        pairs_from_judge_rankings(_toy(["abcde"]).assign(rank=0), _cands(), method="borda")


def test_borda_vectorised_speed():
    import time

    rng = np.random.default_rng(0)
    p, j, k = 300, 15, 5
    perm = np.argsort(rng.random((p, 6, j, k)), axis=-1)
    rank = np.argsort(perm, axis=-1) + 1
    pi, ci, ji, ki = np.indices(rank.shape).reshape(4, -1)
    crits = np.array(["empathy", "active_listening", "self_motivated_change", "trust_rapport", "patient_autonomy",
                      "safety"])
    rk = pd.DataFrame({"prompt_id": pi, "criterion": crits[ci], "judge_id": ji, "candidate_id": ki,
                       "rank": rank.reshape(-1)})
    cands = pd.DataFrame({"prompt_id": np.repeat(np.arange(p), k), "candidate_id": np.tile(np.arange(k), p),
                          "prompt": "x", "text": [f"r{i}" for i in range(p * k)]})
    t = time.perf_counter()
    out = pairs_from_judge_rankings(rk, cands, method="borda")
    assert time.perf_counter() - t < 10
    assert len(out) <= p * 6
