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
}

#: Reply archetypes: ordered slots ``(component, probability of inclusion)``. A slot whose component is
#: ``"safety"`` or ``"safety_question"`` is used only on risk prompts unless its probability is 1.
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
