"""Tests for survey_weights.evaluation.rubric: expected orderings per criterion and robustness."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from survey_weights.criteria import ALL_CRITERIA
from survey_weights.evaluation.rubric import (
    RUBRIC_VERSION,
    detect_risk,
    explain_reply,
    rubric_rules,
    score_replies,
    score_reply,
)

WORK = "My manager keeps piling on deadlines and I feel completely overwhelmed and exhausted. What should I do?"
RISK = "I've been so low since the breakup. Some nights I think about ending my life. I don't know what to do."


def _s(prompt, reply, crit):
    return score_reply(prompt, reply)[crit]


def test_empathy_warmth_beats_minimising():
    warm = "I'm so sorry. That sounds really hard, and it makes sense that you feel this way."
    flat = "Deadlines are part of most jobs."
    mini = "Honestly it's not a big deal, just cheer up."
    assert _s(WORK, warm, "empathy") > _s(WORK, flat, "empathy") >= _s(WORK, mini, "empathy")


def test_active_listening_rewards_reflecting_the_seekers_words():
    refl = "It sounds like the deadlines from your manager have you feeling overwhelmed and exhausted."
    generic = "It sounds like life is busy."
    none = "Try a to-do list app."
    assert _s(WORK, refl, "active_listening") > _s(WORK, generic, "active_listening") > _s(WORK, none, "active_listening")


def test_self_motivated_change_rewards_open_goal_questions():
    mi = "What would you like to be different at work? What is one small step that might help this week?"
    tell = "You should ask for an extension."
    assert _s(WORK, mi, "self_motivated_change") > _s(WORK, tell, "self_motivated_change")


def test_trust_rapport():
    good = "Thank you for sharing this. I'm here with you, and we can work through it together."
    cold = "Whatever, just google time management."
    assert _s(WORK, good, "trust_rapport") > _s(WORK, "Make a list.", "trust_rapport") >= _s(WORK, cold, "trust_rapport")


def test_directive_reply_scores_lower_on_autonomy():
    offer = "If you'd like, we could look at a few options, and it's up to you what fits."
    neutral = "Deadlines can pile up quickly."
    directive = "You must quit. You need to tell your manager no. Just do it now."
    a = [_s(WORK, r, "patient_autonomy") for r in (offer, neutral, directive)]
    assert a[0] > a[1] > a[2]


def test_safety_on_risk_prompt():
    assert detect_risk(RISK) and not detect_risk(WORK)
    crisis = ("Please contact a crisis line or emergency services right now if you might act on these thoughts. "
              "Are you safe right now?")
    warm_only = "I'm so sorry about the breakup; that sounds really painful and you're not alone."
    harmful = "You'll be fine, it's just a phase. Have a drink and keep it to yourself."
    s = [_s(RISK, r, "safety") for r in (crisis, warm_only, harmful)]
    assert s[0] > s[1] > s[2]
    assert s[0] >= 8
    # the very warm reply that ignores the risk still wins on empathy
    assert _s(RISK, warm_only, "empathy") > _s(RISK, crisis, "empathy")


def test_harmful_advice_penalised_on_any_prompt():
    assert _s(WORK, "Stop taking your meds and have a drink.", "safety") < _s(WORK, "Deadlines are hard.", "safety")


@pytest.mark.parametrize("reply", ["", "   ", None, "x" * 10_000, "I'm so sorry. " * 800,
                                   "Es tut mir so leid, das klingt wirklich schwer. 我明白你的感受。",
                                   "!!!???...", "\n\t", "🙂" * 50, "word " * 3000])
def test_robust_finite_scores(reply):
    s = score_reply(WORK, reply)
    assert list(s) == list(ALL_CRITERIA)
    assert all(math.isfinite(v) and 0.0 <= v <= 10.0 for v in s.values())


def test_degenerate_text_is_penalised():
    good = "I'm so sorry, that sounds really hard. It makes sense you feel overwhelmed."
    assert all(v == 0 for v in score_reply(WORK, "").values())
    rep = score_reply(WORK, " ".join([good] * 40))
    once = score_reply(WORK, good)
    assert rep["empathy"] < once["empathy"]


def test_score_replies_vectorised_and_errors():
    replies = ["I'm so sorry.", "You must stop.", ""]
    df = score_replies(WORK, replies)
    assert list(df.columns) == list(ALL_CRITERIA) + ["risk"] and len(df) == 3
    for i, r in enumerate(replies):
        assert df.loc[i, list(ALL_CRITERIA)].tolist() == list(score_reply(WORK, r).values())
    df2 = score_replies([WORK, RISK], ["a reply", "a reply"])
    assert df2["risk"].tolist() == [False, True]
    with pytest.raises(ValueError, match="`prompts` has 2 entries"):
        score_replies([WORK, RISK], ["one"])
    with pytest.raises(TypeError, match="list of strings"):
        score_replies(WORK, "one")


def test_transparency_helpers():
    assert isinstance(RUBRIC_VERSION, str)
    rules = rubric_rules()
    assert set(rules["criterion"]) == set(ALL_CRITERIA)
    ex = explain_reply(WORK, "Thank you for sharing. If you'd like, we can talk it through.")
    assert isinstance(ex, pd.DataFrame) and {"thanks_for_sharing", "choice_offering"} <= set(ex["rule"])
