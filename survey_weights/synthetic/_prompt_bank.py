"""Template material for the synthetic seeker prompts (written for this project; not third-party text).

A prompt is composed as ``situation + feeling sentence + detail [+ risk sentence] + ask``. Each
situation carries a short noun phrase (``phrase``) that replies use to reflect the content back.
Data module: no logic.
"""

from __future__ import annotations

#: topic -> {"situations": [(sentence, phrase), ...], "feelings": [...], "details": [...], "actions": [...]}
#: ``actions`` are the directive advice a blunt reply gives on that topic ("You need to <action>.").
TOPICS: dict[str, dict[str, list]] = {
    "anxiety": {
        "situations": [
            ("I worry about everything, even small things like replying to a text.", "the constant worrying"),
            ("My mind races every evening about what could go wrong tomorrow.", "your mind racing at night"),
            ("I've started avoiding meetings because my heart pounds when I have to speak.", "speaking in meetings"),
            ("Every time my phone rings I assume something terrible has happened.", "expecting the worst"),
        ],
        "feelings": ["anxious", "tense", "on edge", "worried"],
        "details": ["It has been going on for months.", "My friends say I overthink.",
                    "I can't focus on anything else.", "It gets worse on Sunday nights."],
        "actions": ["stop thinking about worst cases", "force yourself to go to every meeting",
                    "cut out caffeine today"],
    },
    "low_mood": {
        "situations": [
            ("I don't enjoy anything anymore, not even the music I used to love.", "losing interest in music"),
            ("Most mornings I can barely get out of bed.", "struggling to get up in the morning"),
            ("I cancel plans with friends because I have no energy.", "cancelling plans"),
            ("Everything feels grey since the winter started.", "the grey winter days"),
        ],
        "feelings": ["low", "empty", "numb", "hopeless"],
        "details": ["I used to be the cheerful one.", "Nobody at work seems to notice.",
                    "I sleep a lot but still feel tired.", "It's been about six weeks."],
        "actions": ["get outside and exercise every day", "stop staying in bed", "make yourself see friends"],
    },
    "grief": {
        "situations": [
            ("My grandmother died last month and I keep reaching for the phone to call her.", "losing your grandmother"),
            ("It's been a year since my brother passed and people expect me to be over it.", "your brother's death"),
            ("My dog of fourteen years died and the house feels so quiet.", "losing your dog"),
            ("My best friend died suddenly and I never got to say goodbye.", "your friend's sudden death"),
        ],
        "feelings": ["heartbroken", "lost", "numb", "guilty"],
        "details": ["I cry at random moments.", "I can't bring myself to sort through the belongings.",
                    "Everyone else seems to have moved on.", "Holidays are coming up."],
        "actions": ["keep busy so you don't dwell on it", "pack the belongings away this weekend",
                    "move on with your life"],
    },
    "relationships": {
        "situations": [
            ("My partner and I argue about the same things over and over.", "the repeated arguments"),
            ("My girlfriend broke up with me and I keep checking her social media.", "the breakup"),
            ("I feel like I'm always the one making the effort in my relationship.", "carrying the relationship"),
            ("My husband and I barely talk anymore except about chores.", "the distance in your marriage"),
        ],
        "feelings": ["frustrated", "rejected", "lonely", "confused"],
        "details": ["We've been together five years.", "I don't know if it's worth fixing.",
                    "I keep replaying our last conversation.", "My friends are tired of hearing about it."],
        "actions": ["end the relationship", "tell your partner exactly what they are doing wrong",
                    "block them everywhere"],
    },
    "work_stress": {
        "situations": [
            ("My manager keeps piling on deadlines and I work every weekend.", "the pressure at work"),
            ("I'm afraid I'll be fired after a bad performance review.", "the performance review"),
            ("My job has become so stressful that I dread Monday mornings.", "dreading Mondays"),
            ("A coworker takes credit for my work and I don't know how to handle it.", "the coworker taking credit"),
        ],
        "feelings": ["stressed", "drained", "overwhelmed", "exhausted"],
        "details": ["I haven't taken a holiday in two years.", "I can't switch off in the evenings.",
                    "I'm scared to say anything.", "My sleep is suffering."],
        "actions": ["quit that job", "tell your manager no", "work harder until things calm down"],
    },
    "sleep": {
        "situations": [
            ("I lie awake until three in the morning most nights.", "lying awake at night"),
            ("I wake up at four every morning and can't get back to sleep.", "waking up so early"),
            ("My thoughts spin as soon as my head hits the pillow.", "the spinning thoughts at bedtime"),
            ("I've been sleeping only a few hours for weeks.", "the lack of sleep"),
        ],
        "feelings": ["exhausted", "frustrated", "restless", "irritable"],
        "details": ["I'm falling asleep at my desk.", "I've tried counting sheep.",
                    "I scroll on my phone until late.", "Weekends are no better."],
        "actions": ["put your phone away at nine", "stop napping", "get up at the same time every day"],
    },
    "loneliness": {
        "situations": [
            ("I moved to a new city and I don't know anyone here.", "moving to a new city"),
            ("I go whole weekends without speaking to another person.", "the quiet weekends"),
            ("All my friends have partners now and I feel left behind.", "feeling left behind by friends"),
            ("Since I started working from home I hardly see anyone.", "working from home alone"),
        ],
        "feelings": ["lonely", "alone", "sad", "invisible"],
        "details": ["I'm not good at starting conversations.", "I tried a club once but didn't go back.",
                    "Evenings are the hardest.", "My family lives far away."],
        "actions": ["join a club this week", "put yourself out there more", "call an old friend tonight"],
    },
    "self_esteem": {
        "situations": [
            ("I compare myself to everyone and always come out worse.", "comparing yourself to others"),
            ("I hate how I look in photos and avoid being in them.", "how you see yourself in photos"),
            ("Whenever I get praise I think people are just being polite.", "brushing off praise"),
            ("I feel like a failure because I didn't finish my degree.", "not finishing your degree"),
        ],
        "feelings": ["worthless", "ashamed", "insecure", "embarrassed"],
        "details": ["My inner voice is really harsh.", "It's been like this since school.",
                    "Social media makes it worse.", "I don't believe compliments."],
        "actions": ["stop comparing yourself", "think positive thoughts", "delete social media"],
    },
    "family_conflict": {
        "situations": [
            ("My parents criticise every decision I make.", "your parents' criticism"),
            ("My sister and I haven't spoken since an argument at a wedding.", "the falling out with your sister"),
            ("Family dinners always end in shouting.", "the shouting at family dinners"),
            ("My mum wants me to move back home and I don't want to.", "your mum's wish for you to move home"),
        ],
        "feelings": ["frustrated", "guilty", "resentful", "trapped"],
        "details": ["I still live nearby.", "I'm the oldest so they expect a lot.",
                    "Christmas is coming.", "I love them but it's exhausting."],
        "actions": ["cut them off", "apologise first", "do what your parents say"],
    },
    "panic": {
        "situations": [
            ("I had a panic attack on the train and now I'm scared to travel.", "the panic attack on the train"),
            ("My chest gets tight and I feel like I can't breathe in shops.", "the tight chest in shops"),
            ("I wake up at night with my heart racing.", "waking with your heart racing"),
            ("I left a concert because I thought I was going to faint.", "leaving the concert"),
        ],
        "feelings": ["panicky", "scared", "afraid", "nervous"],
        "details": ["A doctor said my heart is fine.", "It happened three times this month.",
                    "I'm starting to avoid going out.", "I feel embarrassed about it."],
        "actions": ["breathe and stop panicking", "force yourself onto the train", "avoid crowds"],
    },
    "trauma_reminders": {
        "situations": [
            ("Loud noises bring back memories of the car accident.", "the memories of the accident"),
            ("I keep having nightmares about something that happened years ago.", "the nightmares"),
            ("Certain smells take me straight back to a bad time in my life.", "the reminders of a bad time"),
            ("I freeze when someone raises their voice near me.", "freezing when voices are raised"),
        ],
        "feelings": ["scared", "on edge", "numb", "overwhelmed"],
        "details": ["I thought I had moved past it.", "I haven't told anyone the full story.",
                    "It's worse when I'm tired.", "I startle easily."],
        "actions": ["put the past behind you", "stop thinking about it", "face the memories head on"],
    },
    "substance_use": {
        "situations": [
            ("I've been drinking every night to unwind and it's getting more.", "the nightly drinking"),
            ("I smoke weed most days and I'm not sure I could stop.", "smoking most days"),
            ("I rely on energy drinks and then need something to come down.", "the cycle of energy drinks"),
            ("My weekends have turned into one long party and I miss work on Mondays.", "the weekend partying"),
        ],
        "feelings": ["worried", "ashamed", "stuck", "confused"],
        "details": ["My friends all drink too.", "I tried stopping for a week.",
                    "I hide it from my partner.", "It started during a hard year."],
        "actions": ["quit completely today", "stop going out", "throw everything away"],
    },
    "study_pressure": {
        "situations": [
            ("My exams start in two weeks and I haven't revised.", "the upcoming exams"),
            ("My parents expect top grades and I'm barely passing.", "your parents' expectations about grades"),
            ("I froze in my last exam and now I'm scared it will happen again.", "freezing in the exam"),
            ("I'm behind on every assignment this term.", "falling behind on assignments"),
        ],
        "feelings": ["stressed", "overwhelmed", "anxious", "disappointed"],
        "details": ["Everyone else seems to cope.", "I procrastinate and then panic.",
                    "I'm the first in my family at university.", "I'm sleeping badly."],
        "actions": ["make a strict timetable and stick to it", "stop procrastinating", "study every evening"],
    },
    "health_worries": {
        "situations": [
            ("I've been waiting weeks for test results and I can't stop imagining the worst.", "waiting for test results"),
            ("Since my diagnosis I feel like my body has let me down.", "your diagnosis"),
            ("I keep googling symptoms and convincing myself I'm ill.", "searching symptoms online"),
            ("Chronic pain stops me doing the things I used to love.", "the chronic pain"),
        ],
        "feelings": ["scared", "worried", "frustrated", "helpless"],
        "details": ["My family says I'm fine.", "The doctors are kind but busy.",
                    "I've missed a lot of work.", "Nights are the worst."],
        "actions": ["stop googling", "just trust your doctors", "ignore the symptoms"],
    },
}

#: Feeling sentences; ``{feeling}`` is filled from the topic.
FEELING_SENTENCES: tuple[str, ...] = (
    "I feel {feeling} most of the time.",
    "Honestly I'm just so {feeling}.",
    "Lately I've been feeling really {feeling}.",
    "I keep feeling {feeling} and I don't know why.",
    "Some days I feel {feeling} from the moment I wake up.",
)

#: Closing asks.
ASKS: tuple[str, ...] = (
    "Is this normal?",
    "What should I do?",
    "How do I deal with this?",
    "I don't even know what I'm asking.",
    "Any advice would help.",
    "How do I stop feeling like this?",
    "Can anyone relate?",
)

#: Risk sentences by kind; every one must trigger :func:`survey_weights.rubric.detect_risk`.
RISK_SENTENCES: dict[str, tuple[str, ...]] = {
    "suicidal_thoughts": (
        "Some nights I think everyone would be better off without me.",
        "I've started thinking about ending my life.",
        "Part of me wants to die so that it all stops.",
        "I had thoughts of suicide again this week.",
    ),
    "self_harm": (
        "I've started hurting myself again when it gets bad.",
        "Last night I was cutting again.",
        "I've been burning myself to cope and I can't stop.",
    ),
    "overdose": (
        "Last weekend I took too many pills on purpose.",
        "I'm scared I'll overdose one of these nights.",
    ),
    "abuse": (
        "My partner pushed me against the wall last week and I'm not safe at home.",
        "My dad hits me when he has been drinking.",
        "My boyfriend threatened me and I'm afraid for my safety.",
    ),
}
