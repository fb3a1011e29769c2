"""Tests for survey_weights.synthetic.preferences and the bundled data in data/preferences_synthetic/."""

from __future__ import annotations

import json

import numpy as np
import pytest

from survey_weights.criteria import ALL_CRITERIA
from survey_weights.evaluation.rubric import RUBRIC_VERSION, detect_risk, score_replies
from survey_weights.preferences import read_preferences
from survey_weights.simulate import simulate_survey
from survey_weights.synthetic.preferences import (
    DATA_DIR,
    DEFAULT_SEED,
    GENERATOR_VERSION,
    design_statistics,
    generate_preference_data,
    load_preference_data,
    read_judge_rankings,
    verify_preference_data,
)

SMALL = {"n_prompts": 20, "n_candidates": 4, "n_judges": 6}


@pytest.fixture(scope="module")
def survey():
    return simulate_survey(60, seed=5)


@pytest.fixture(scope="module")
def small(tmp_path_factory, survey):
    out = tmp_path_factory.mktemp("prefs_a")
    return out, generate_preference_data(out, seed=11, survey=survey, **SMALL)


def test_same_seed_gives_byte_identical_files(small, tmp_path, survey):
    out_a, manifest = small
    generate_preference_data(tmp_path, seed=11, survey=survey, **SMALL)
    names = sorted(manifest["files"]) + ["manifest.json"]
    for name in names:
        assert (out_a / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_other_seed_differs(small, tmp_path, survey):
    out_a, _ = small
    generate_preference_data(tmp_path, seed=12, survey=survey, **SMALL)
    assert (out_a / "prompts.jsonl").read_bytes() != (tmp_path / "prompts.jsonl").read_bytes()


def test_small_data_set_structure(small):
    out, manifest = small
    d = load_preference_data(out)
    assert manifest["synthetic"] is True and manifest["rubric_version"] == RUBRIC_VERSION
    assert len(d.prompts) == 20 and d.prompts["prompt_id"].is_unique and d.prompts["prompt"].is_unique
    assert len(d.candidates) == 20 * 4
    assert d.candidates.groupby("prompt_id")["text"].nunique().eq(4).all()
    assert set(d.prompts["split"]) == {"train", "test"}
    # risk flags agree with the rubric's detector
    assert (d.prompts["risk"] == d.prompts["prompt"].map(detect_risk)).all()
    # judge rankings: every judge ranks all candidates on all criteria
    jr = d.judge_rankings
    assert len(jr) == 20 * 6 * 6 * 4
    assert jr.groupby(["prompt_id", "criterion", "judge_id"]).size().eq(4).all()
    assert read_judge_rankings(out / "judge_rankings.csv").equals(jr)
    # pairs: one per prompt x criterion, train in <criterion>.jsonl, test in test/
    train = read_preferences(out, criteria=list(ALL_CRITERIA))
    test_ids = set(d.prompts.loc[d.prompts["split"] == "test", "prompt_id"])
    assert not set(train["prompt_id"]) & test_ids
    assert len(d.pairs) == 20 * 6  # one shared comparison per prompt, labelled on every criterion
    verify_preference_data(out)


def test_pairs_are_shared_across_criteria_with_vote_labels(small):
    out, manifest = small
    d = load_preference_data(out)
    pairs = d.pairs
    # every comparison has one record per criterion, all about the same two replies
    per = pairs.groupby("comparison_id")
    assert per["criterion"].nunique().eq(len(ALL_CRITERIA)).all()
    texts = per.apply(lambda g: frozenset(g["chosen"]) | frozenset(g["rejected"]), include_groups=False)
    assert texts.map(len).eq(2).all()
    assert pairs["pair_id"].is_unique
    # the soft label is recomputed from the judges' rankings: (votes + 1/2) / (judges + 1), votes >= half
    jr = d.judge_rankings.set_index(["prompt_id", "criterion", "judge_id", "candidate_id"])["rank"].unstack()
    for rec in pairs.sample(12, random_state=0).itertuples(index=False):
        g = jr.loc[(rec.prompt_id, rec.criterion)]
        x, y = g[rec.chosen_id].to_numpy(), g[rec.rejected_id].to_numpy()
        votes = np.sum(x < y) + 0.5 * np.sum(x == y)
        assert votes == rec.votes >= len(x) / 2
        assert rec.label == pytest.approx((votes + 0.5) / (len(x) + 1), abs=1e-4)
    assert ((pairs["label"] > 0.5) | (pairs["votes"] == pairs["n_judges"] / 2)).all()
    assert manifest["generator_version"] == GENERATOR_VERSION == "2" and manifest["pairs"] == "shared"


def test_manifest_detects_edits(small, tmp_path):
    out, manifest = small
    for name in list(manifest["files"]) + ["manifest.json"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((out / name).read_bytes())
    with open(tmp_path / "empathy.jsonl", "a", encoding="utf-8") as fh:
        fh.write("\n")
    with pytest.raises(ValueError, match="empathy.jsonl"):
        verify_preference_data(tmp_path)


# ------------------------------------------------------------------------------------- bundled data set
bundled = pytest.mark.skipif(not (DATA_DIR / "manifest.json").is_file(), reason="bundled data not generated")


@pytest.fixture(scope="module")
def data():
    return load_preference_data()


@bundled
def test_bundled_files_match_manifest():
    m = verify_preference_data(DATA_DIR)
    assert m["seed"] == DEFAULT_SEED and m["synthetic"] is True
    assert m["rubric_version"] == RUBRIC_VERSION, "rubric changed: regenerate the bundled data"
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in readme and str(DEFAULT_SEED) in readme


@bundled
def test_bundled_counts(data):
    c = data.manifest["counts"]
    p = data.prompts
    assert len(p) == c["prompts"] >= 250
    assert 0.10 <= p["risk"].mean() <= 0.20
    assert 0.15 <= (p["split"] == "test").mean() <= 0.25
    assert p["topic"].nunique() >= 12
    assert (p["risk"] == p["prompt"].map(detect_risk)).all()
    words = data.candidates["text"].str.split().str.len()
    assert words.max() <= 60
    for crit in ALL_CRITERIA:
        assert c["pairs_train"][crit] == (data.train_pairs(crit)).shape[0] == c["prompts_train"]
        assert c["pairs_test"][crit] == (data.test_pairs(crit)).shape[0] == c["prompts_test"]


@bundled
@pytest.mark.parametrize("crit", ALL_CRITERIA)
def test_bundled_pairs_agree_with_rubric(data, crit):
    pairs = data.pairs[data.pairs["criterion"] == crit]
    assert (pairs["chosen"] != pairs["rejected"]).all()
    sc = score_replies(pairs["prompt"].tolist(), pairs["chosen"].tolist())[crit].to_numpy()
    sr = score_replies(pairs["prompt"].tolist(), pairs["rejected"].tolist())[crit].to_numpy()
    differ = sc != sr  # shared pairs: a criterion may not separate the two replies at all
    share = np.mean(sc[differ] > sr[differ])
    assert share >= 0.90, f"{crit}: chosen beats rejected on the rubric in only {share:.0%} of the separated pairs"
    assert pairs["label"].between(0.5, 1.0).all() and pairs["label"].lt(1.0).all()
    # the judges' labels are soft, and stronger where the rubric separates the replies
    assert pairs.loc[differ, "label"].mean() > pairs.loc[~differ, "label"].mean() if (~differ).any() else True


@bundled
def test_bundled_design_statistics_show_trade_offs():
    """The issue's design targets, recomputed from the files (the datasheet prints the same numbers)."""
    st = design_statistics()
    assert st == load_preference_data().manifest["design"]
    assert st["n_comparisons"] == 300 and st["n_risk"] >= 30
    assert st["gap_correlation_empathy_safety"]["risk"] <= -0.3
    assert st["gap_correlation_empathy_safety"]["all"] < 0
    assert st["zero_safety_margin_share"]["all"] < 0.20
    conflicts = st["conflict_share"]
    assert len(conflicts) == 15 and all(0.0 <= v <= 1.0 for v in conflicts.values())
    assert conflicts["empathy|safety"] >= 0.4 and conflicts["patient_autonomy|safety"] >= 0.3
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    assert f"| correlation of the empathy and safety gaps | {st['gap_correlation_empathy_safety']['risk']:.2f}" \
        in readme


@bundled
def test_bundled_manifest_is_json_with_hashes():
    m = json.loads((DATA_DIR / "manifest.json").read_text(encoding="utf-8"))
    assert all(len(v["sha256"]) == 64 for v in m["files"].values())
    assert {f"{c}.jsonl" for c in ALL_CRITERIA} <= set(m["files"])
