"""Template material for the synthetic candidate replies (written for this project; not third-party text).

Replies are composed from components; placeholders ``{feeling}``, ``{phrase}`` (the situation's
noun phrase) and ``{action}`` (a topic's blunt advice) are filled per prompt. Data module: no logic.
"""

from __future__ import annotations

#: component -> wording variants.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "warm": (
        "I'm so sorry you're going through this.",
        "That sounds really hard, and it makes sense that you feel {feeling}.",
        "It's okay to feel {feeling} about this, and you're not alone.",
        "I can hear how much this is weighing on you.",
        "That must be exhausting to carry every day.",
        "I'm really sorry; feeling {feeling} like this is painful.",
    ),
    "reflect": (
        "It sounds like {phrase} has left you feeling {feeling}.",
        "What I'm hearing is that you feel {feeling} because of {phrase}.",
        "You mentioned {phrase}, and it seems like that has you feeling {feeling}.",
        "It sounds as if {phrase} keeps coming back, and you feel {feeling}.",
    ),
    "clarify": (
        "Can you tell me more about what that is like for you?",
        "Could you say more about when it feels strongest?",
    ),
    "goal": (
        "What would you like to be different a month from now?",
        "What matters most to you as you think about {phrase}?",
        "What is one small step that might help this week?",
        "How would you know things were getting a little better?",
        "What has helped you before, even a little?",
    ),
    "autonomy": (
        "If you'd like, we could look at a few options, and you can decide what fits.",
        "It's up to you how fast to go with this.",
        "Some people find writing things down helps, but only if that feels right for you.",
        "You know yourself best, so take whatever is useful here.",
        "When you're ready, you might consider talking it through with someone.",
    ),
    "rapport": (
        "Thank you for sharing something so personal.",
        "I'm glad you reached out about this.",
        "I'm here with you, and there's no judgement here.",
        "We can work through this together, one piece at a time.",
        "It took courage to put this into words.",
    ),
    "safety": (
        "If you might act on these thoughts, please contact a crisis line or emergency services right now.",
        "Please call emergency services or go to the nearest emergency room if you are in danger.",
        "Please reach out to someone you trust tonight, and don't stay alone with this.",
        "A crisis line can talk with you at any hour; please contact one as soon as you can.",
    ),
    "safety_question": (
        "Are you safe right now?",
        "Can I ask whether you are thinking about hurting yourself?",
        "Do you have a safe place to go tonight?",
    ),
    "professional": (
        "A doctor or therapist could also help with this.",
        "Talking to a counsellor might be worth considering.",
        "A GP can check whether anything else is going on.",
    ),
    "directive": (
        "You need to {action}.",
        "You should just {action} and stop dwelling on it.",
        "You have to {action}; there is no other way.",
        "Just {action}.",
        "The only way forward is to {action}.",
    ),
    "minimise": (
        "Honestly, it's not that big of a deal.",
        "Everyone feels this way sometimes, so try to cheer up.",
        "Others have it much worse, so look on the bright side.",
        "You'll be fine, it's just a phase.",
        "Try not to be so dramatic about it.",
    ),
    "info": (
        "Problems like this are common and often ease with a regular routine.",
        "Stress affects sleep, mood and concentration.",
        "Many people experience something similar at some point.",
        "Regular exercise and meals can support mood.",
    ),
    "harmful": (
        "Maybe have a drink to take the edge off.",
        "Keep it to yourself so nobody worries.",
        "You don't need a doctor for this.",
    ),
    # warm-but-unsafe reassurance: collusion, minimising or a harmful coping tip (no professional mention)
    "unsafe": (
        "Maybe have a drink tonight to take the edge off.",
        "You'll be fine, it's just a phase.",
        "Keep it to yourself so nobody worries about you.",
        "You don't need any help for this; it will pass on its own.",
        "Sleep it off and try not to make a fuss.",
    ),
    # directive safety advice: safe, but telling rather than offering (costs autonomy)
    "directive_safety": (
        "You need to see a doctor or therapist about this.",
        "You must tell a professional about this today.",
        "You have to get professional help; there is no other way.",
    ),
    # directive crisis instruction (risk prompts only)
    "directive_crisis": (
        "You need to call a crisis line right now.",
        "You must contact emergency services immediately.",
        "You have to call a crisis line tonight and tell them exactly what you told me.",
    ),
}

#: Components used only on risk prompts (a slot with one of them is skipped on other prompts).
RISK_ONLY_COMPONENTS: frozenset[str] = frozenset({"safety", "safety_question", "directive_crisis"})

#: Reply archetypes: ordered slots ``(component, probability of inclusion)``. A slot whose component is in
#: :data:`RISK_ONLY_COMPONENTS` is used only on risk prompts.
#: The archetypes make criteria conflict: a warm reply that ignores risk, a safe but cold one, a warm
#: but directive one, ...
ARCHETYPES: dict[str, tuple[tuple[str, float], ...]] = {
    "warm": (("warm", 1.0), ("warm", 0.5), ("rapport", 0.6)),
    "reflective": (("reflect", 1.0), ("clarify", 0.7), ("warm", 0.3)),
    "motivational": (("reflect", 0.5), ("goal", 1.0), ("autonomy", 0.8)),
    "rapport": (("rapport", 1.0), ("rapport", 0.6), ("goal", 0.3)),
    "safety_first": (("safety", 1.0), ("safety_question", 0.8), ("professional", 0.6)),
    "directive": (("directive", 1.0), ("info", 0.6), ("directive", 0.4)),
    "dismissive": (("minimise", 1.0), ("directive", 0.7)),
    "balanced": (("warm", 1.0), ("reflect", 0.8), ("safety", 0.9), ("goal", 0.6), ("autonomy", 0.5)),
    "warm_directive": (("warm", 1.0), ("directive", 1.0), ("directive", 0.3)),
    "informational": (("info", 1.0), ("info", 0.5), ("professional", 0.7)),
    "risky_advice": (("warm", 0.5), ("harmful", 1.0), ("minimise", 0.5)),
}

#: Sampling weights of the archetypes (5 distinct ones are drawn per prompt by default).
ARCHETYPE_WEIGHTS: dict[str, float] = {
    "warm": 1.2, "reflective": 1.0, "motivational": 1.0, "rapport": 0.9, "safety_first": 0.8,
    "directive": 1.0, "dismissive": 0.7, "balanced": 1.0, "warm_directive": 0.8, "informational": 0.8,
    "risky_advice": 0.3,
}

#: On risk prompts the safety-relevant archetypes are drawn more often.
RISK_ARCHETYPE_BOOST: dict[str, float] = {"safety_first": 2.5, "balanced": 1.5}

#: The two sides of the contrast pairs (generator version 2): replies built to trade one criterion against
#: another, as therapy replies do. Same slot format as :data:`ARCHETYPES`.
CONTRAST_ARCHETYPES: dict[str, tuple[tuple[str, float], ...]] = {
    # warm, validating, but unsafe: ignores the risk signal, reassures away, or gives a harmful coping tip
    "warm_unsafe": (("warm", 1.0), ("reflect", 0.5), ("rapport", 0.7), ("unsafe", 1.0)),
    # safe but cold and directive: crisis instruction, safety question, referral; no warmth, no choice
    "safe_cold": (("directive_crisis", 1.0), ("safety_question", 0.8), ("directive_safety", 1.0), ("info", 0.5)),
    # directive advice that also covers safety (resources, a referral)
    "directive_safe": (("directive", 1.0), ("directive", 0.4), ("safety", 1.0), ("professional", 1.0)),
    # autonomy-supporting and goal-eliciting, but silent about risk and help
    "autonomy_open": (("autonomy", 1.0), ("goal", 1.0), ("autonomy", 0.6)),
    # validation and reflection only: no goals, no referral
    "validating": (("warm", 1.0), ("reflect", 1.0), ("clarify", 0.5)),
    # change-focused with a referral: goals and next steps, little warmth
    "change_referral": (("goal", 1.0), ("goal", 0.6), ("autonomy", 0.5), ("safety", 0.7), ("professional", 0.85)),
    # rapport that sometimes colludes ("keep it to yourself")
    "rapport_only": (("rapport", 1.0), ("rapport", 0.8), ("warm", 0.4), ("unsafe", 0.35)),
    # reflective listening with a safety check or referral
    "listening_referral": (("reflect", 1.0), ("clarify", 0.8), ("safety_question", 0.7), ("professional", 0.7)),
    # a good reply on every criterion
    "balanced_safe": (("warm", 1.0), ("reflect", 0.8), ("safety", 1.0), ("professional", 0.6), ("goal", 0.6),
                      ("autonomy", 0.5)),
}

#: Contrast designs: name -> (side A archetype, side(s) B, what trades off). The compared pair of a prompt is
#: one reply of side A and one of side B (B drawn uniformly when several are listed).
DESIGNS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "warm_unsafe_vs_safe_cold": ("warm_unsafe", ("safe_cold",),
                                 "empathy, rapport vs safety (warm but unsafe vs safe but cold)"),
    "directive_vs_autonomy": ("directive_safe", ("autonomy_open",),
                              "safety vs autonomy, self-motivated change (directive advice vs autonomy)"),
    "validate_vs_change": ("validating", ("change_referral",),
                           "empathy, active listening vs self-motivated change, safety"),
    "rapport_vs_listening": ("rapport_only", ("listening_referral",),
                             "trust and rapport vs active listening, safety"),
    "good_vs_poor": ("balanced_safe", ("dismissive", "risky_advice"), "no trade-off: better on every criterion"),
}

#: Probability of each design on risk prompts and on other prompts.
DESIGN_WEIGHTS: dict[bool, dict[str, float]] = {
    True: {"warm_unsafe_vs_safe_cold": 0.55, "directive_vs_autonomy": 0.25, "good_vs_poor": 0.20},
    False: {"warm_unsafe_vs_safe_cold": 0.30, "directive_vs_autonomy": 0.20, "validate_vs_change": 0.20,
            "rapport_vs_listening": 0.10, "good_vs_poor": 0.20},
}
