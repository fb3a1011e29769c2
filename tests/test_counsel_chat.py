"""counsel-chat: the loader, the second evaluation pool and the rubric-vs-upvotes check, on a frame built here and
on the real file (skipped when ../shared/external/counsel_chat/ is absent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey_weights.evaluation.counsel_chat import (
    counsel_chat_candidates,
    counsel_chat_path,
    load_counsel_chat,
    upvote_agreement,
)
from survey_weights.synthetic.counsel_pool import counsel_chat_pool, template_replies

WARM = "I'm so sorry you're going through this. It makes sense that you feel low, and you're not alone."
COLD = "Okay."
MID = "It sounds like work has been hard. What would you like to change?"


def _frame() -> pd.DataFrame:
    """Question 1: 3 answers (upvotes 3, 1, 1); question 2: 2 answers (0, 2); question 3: 1 answer (val split)."""
    rows = [(1, "Always tired", "I feel low every day.", "depression", 10, WARM, 3, "test"),
            (1, "Always tired", "I feel low every day.", "depression", 11, COLD, 1, "test"),
            (1, "Always tired", "I feel low every day.", "depression", 12, MID, 1, "test"),
            (2, "Work", "My job is too much.", "work", 20, COLD, 0, "test"),
            (2, "Work", "My job is too much.", "work", 21, MID, 2, "test"),
            (3, "Alone", "I have no friends.", "loneliness", 30, WARM, 5, "val")]
    return pd.DataFrame(rows, columns=["questionID", "questionTitle", "questionText", "topic", "answerID",
                                       "answerText", "upvotes", "split"])


def test_upvote_agreement_by_hand():
    def scorer(prompts, replies):  # a fixed score per text: WARM 9, MID 5, COLD 1 on every criterion
        v = {WARM: 9.0, MID: 5.0, COLD: 1.0}
        return pd.DataFrame({c: [v[r] for r in replies] for c in ("empathy", "safety")})

    r = upvote_agreement(_frame(), weights={"empathy": 0.5, "safety": 0.5}, scorer=scorer)
    # q1 pairs with unequal upvotes: (WARM 3 vs COLD 1) agree, (WARM 3 vs MID 1) agree; COLD-MID tie in upvotes.
    # q2: (MID 2 vs COLD 0) agree. q3 has one answer.
    assert (r["n_questions"], r["n_pairs"], r["agree"], r["disagree"], r["score_ties"]) == (2, 3, 3, 0, 0)
    assert r["share"] == 1.0 and r["pvalue"] == pytest.approx(0.25)
    assert r["ci"][0] == pytest.approx(0.025 ** (1 / 3), abs=1e-6) and r["ci"][1] == 1.0  # Clopper-Pearson, 3/3
    assert r["per_criterion"]["empathy"] == 1.0 and r["per_question"]["n"] == 2
    assert r["longer_answer_share"] == 1.0  # the more upvoted answer is also the longer one here
    # reversing the scorer reverses the verdict
    rev = upvote_agreement(_frame(), weights={"empathy": 1.0}, scorer=lambda p, t: -scorer(p, t))
    assert rev["share"] == 0.0
    with pytest.raises(ValueError, match="weights"):
        upvote_agreement(_frame(), weights={"empathy": -1.0}, scorer=scorer)


def test_candidates_and_pool_from_a_small_frame():
    c = counsel_chat_candidates(_frame(), extra_replies=lambda q, qid: [f"Template {qid}.", WARM])
    # test split only; WARM is already a therapist answer to question 1, so it is not added twice there
    assert sorted(c["prompt_id"].unique()) == ["cc1", "cc2"]
    q1 = c[c["prompt_id"] == "cc1"]
    assert q1["candidate_id"].tolist() == ["t10", "t11", "t12", "x0"]
    assert q1["prompt"].iloc[0] == "Always tired I feel low every day."
    assert c.loc[c["source"] == "extra", "upvotes"].isna().all()
    pool = counsel_chat_pool(_frame(), n_templates=2, seed=0)
    assert pool.name == "counsel_chat:test" and pool.n_prompts == 2
    assert pool.mask.sum(axis=1).tolist() == [5, 4]  # 3 + 2 templates, 2 + 2 templates
    assert np.isfinite(pool.scores[pool.mask]).all()
    assert counsel_chat_pool(_frame(), n_templates=2, seed=0).texts == pool.texts  # seeded
    t = template_replies("I keep thinking about ending my life.", 4, seed=3)
    assert len(set(t)) == 4
    with pytest.raises(ValueError, match="split"):
        counsel_chat_candidates(_frame(), split="dev")


def test_missing_file_message(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_WEIGHTS_EXTERNAL", str(tmp_path))
    assert counsel_chat_path() == tmp_path / "counsel_chat" / "counsel_chat.csv"
    with pytest.raises(FileNotFoundError, match="never copied into data/"):
        load_counsel_chat()
    with pytest.raises(FileNotFoundError, match="SURVEY_WEIGHTS_EXTERNAL"):
        counsel_chat_pool()


real = pytest.mark.skipif(not counsel_chat_path().is_file(),
                          reason=f"counsel-chat not found at {counsel_chat_path()} (../shared/external/counsel_chat/)")


@real
def test_real_file_pool_and_upvote_check():
    df = load_counsel_chat()
    assert len(df) == 2129 and df["questionID"].nunique() == 815
    pool = counsel_chat_pool(df)
    assert pool.n_prompts == df.loc[df["split"] == "test", "questionID"].nunique() == 39
    therapists = sum(sum(c.startswith("t") for c in ids) for ids in pool.candidate_ids)
    assert therapists == int((df["split"] == "test").sum()) == 117
    r = upvote_agreement(df)
    assert r["n_questions"] == 372 and r["n_pairs"] == r["agree"] + r["disagree"] + r["score_ties"]
    assert 0.0 <= r["ci"][0] <= r["share"] <= r["ci"][1] <= 1.0
    assert r["per_question"]["n"] <= r["n_questions"]
