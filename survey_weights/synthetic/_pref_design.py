"""The generator's steps (version 2): prompts, candidate replies around one contrast pair, judges, soft labels.

Torch-free; every random step draws from the one ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..criteria import ALL_CRITERIA, SURVEY_CRITERIA
from ..evaluation.rubric import score_replies
from . import _prompt_bank as PB
from . import _reply_bank as RB

__all__ = ["LETTERS", "make_prompts", "compose", "make_candidates", "judge_traits", "sample_rankings",
           "vote_labels", "template_replies"]

LETTERS = "abcdefghij"
RISK_SHARE = 0.15
TEST_SHARE = 0.20
MAX_WORDS = 60
SCALE = 5.0      # sharpness of a judge with importance 5 and neutral AI trust, per 10 rubric points
HALO = 0.5       # weight of the judge's overall impression (its rating-weighted mean over criteria)
TIE_EPS = 0.002  # adjacent utilities closer than this are recorded as a tie


# ---------------------------------------------------------------------------------------------- prompts
def make_prompts(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """``n`` prompts (topic x situation x feeling x detail [+ risk sentence] + ask), a contrast design each, and a
    train/test split stratified by topic x risk."""
    topics = list(PB.TOPICS)
    order = [topics[i] for i in rng.permutation(len(topics))]
    n_risk = int(round(RISK_SHARE * n))
    risky = np.zeros(n, dtype=bool)
    risky[rng.choice(n, size=n_risk, replace=False)] = True
    kinds = list(PB.RISK_SENTENCES)
    rows, seen = [], set()
    for i in range(n):
        topic = order[i % len(order)]
        t = PB.TOPICS[topic]
        for _ in range(50):
            sit, phrase = t["situations"][rng.integers(len(t["situations"]))]
            feeling = t["feelings"][rng.integers(len(t["feelings"]))]
            parts = [sit, PB.FEELING_SENTENCES[rng.integers(len(PB.FEELING_SENTENCES))].format(feeling=feeling)]
            if rng.random() < 0.7:
                parts.append(t["details"][rng.integers(len(t["details"]))])
            kind = ""
            if risky[i]:
                kind = kinds[rng.integers(len(kinds))]
                parts.append(PB.RISK_SENTENCES[kind][rng.integers(len(PB.RISK_SENTENCES[kind]))])
            parts.append(PB.ASKS[rng.integers(len(PB.ASKS))])
            text = " ".join(parts)
            if text not in seen:
                break
        seen.add(text)
        action = t["actions"][rng.integers(len(t["actions"]))]
        dw = RB.DESIGN_WEIGHTS[bool(risky[i])]
        names, w = list(dw), np.array(list(dw.values()))
        design = names[rng.choice(len(names), p=w / w.sum())]
        rows.append((f"p{i + 1:04d}", topic, bool(risky[i]), kind, text, feeling, phrase, action, design))
    df = pd.DataFrame(rows, columns=["prompt_id", "topic", "risk", "risk_kind", "prompt", "feeling", "phrase",
                                     "action", "design"])
    # stratified systematic split: order by (topic, risk, random), then every (1/TEST_SHARE)-th is test
    key = np.lexsort((rng.random(n), df["risk"].to_numpy(), df["topic"].to_numpy()))
    step = int(round(1 / TEST_SHARE))
    split = np.array(["train"] * n, dtype=object)
    split[key[(np.arange(n) + int(rng.integers(step))) % step == 0]] = "test"
    df.insert(3, "split", split)
    return df


# ---------------------------------------------------------------------------------------------- replies
def compose(rng: np.random.Generator, slots: tuple[tuple[str, float], ...], row: Any) -> str:
    """One reply from archetype ``slots``; ``row`` has ``risk``, ``feeling``, ``phrase``, ``action``."""
    fill = {"feeling": row.feeling, "phrase": row.phrase, "action": row.action}
    parts: list[str] = []
    used: set[tuple[str, int]] = set()
    for comp, prob in slots:
        if comp in RB.RISK_ONLY_COMPONENTS and not row.risk:
            continue
        if prob < 1.0 and rng.random() >= prob:
            continue
        variants = RB.COMPONENTS[comp]
        free = [j for j in range(len(variants)) if (comp, j) not in used]
        if not free:
            continue
        j = free[rng.integers(len(free))]
        used.add((comp, j))
        parts.append(variants[j].format(**fill))
    if not parts:
        parts.append(RB.COMPONENTS["professional"][rng.integers(len(RB.COMPONENTS["professional"]))])
    while len(parts) > 1 and len(" ".join(parts).split()) > MAX_WORDS:
        parts.pop()
    text = " ".join(parts)
    return text[0].upper() + text[1:]


def _slots(name: str) -> tuple[tuple[str, float], ...]:
    return RB.CONTRAST_ARCHETYPES.get(name) or RB.ARCHETYPES[name]


def make_candidates(rng: np.random.Generator, prompts: pd.DataFrame, k: int) -> tuple[pd.DataFrame, list[tuple]]:
    """K replies per prompt: the two sides of the prompt's contrast design plus K - 2 replies of distinct regular
    archetypes, in random positions. A set is redrawn (up to 50 times) until the two contrast replies differ in
    rubric empathy or safety and the K replies differ on every criterion.

    Returns
    -------
    candidates : DataFrame ``prompt_id, candidate_id, archetype, text``
    compared : list of (prompt_id, candidate id of side A, candidate id of side B)
    """
    names = list(RB.ARCHETYPES)
    base = np.array([RB.ARCHETYPE_WEIGHTS[a] for a in names])
    boost = np.array([RB.RISK_ARCHETYPE_BOOST.get(a, 1.0) for a in names])
    rows, compared = [], []
    for row in prompts.itertuples(index=False):
        side_a, sides_b, _ = RB.DESIGNS[row.design]
        w = base * boost if row.risk else base
        for _ in range(50):
            arch_b = sides_b[rng.integers(len(sides_b))]
            pool = [i for i, a in enumerate(names) if a not in (side_a, arch_b)]
            p = w[pool] / w[pool].sum()
            fill = [names[pool[i]] for i in rng.choice(len(pool), size=k - 2, replace=False, p=p)]
            archs = [side_a, arch_b, *fill]
            texts: list[str] = []
            for a in archs:
                text = compose(rng, _slots(a), row)
                for _ in range(20):
                    if text not in texts:
                        break
                    text = compose(rng, _slots(a), row)
                texts.append(text)
            sc = score_replies(row.prompt, texts)[list(ALL_CRITERIA)].to_numpy()
            distinct = len(set(texts)) == k and bool((sc.max(axis=0) > sc.min(axis=0)).all())
            if distinct and (sc[0, 0] != sc[1, 0] or sc[0, -1] != sc[1, -1]):
                break
        pos = rng.permutation(k)  # archs[i] goes to position pos[i]
        by_pos = sorted(range(k), key=lambda i: pos[i])
        rows.extend((row.prompt_id, LETTERS[pos[i]], archs[i], texts[i]) for i in by_pos)
        compared.append((row.prompt_id, LETTERS[pos[0]], LETTERS[pos[1]]))
    return pd.DataFrame(rows, columns=["prompt_id", "candidate_id", "archetype", "text"]), compared


def template_replies(prompt: str, n: int, *, seed: int, risk: bool | None = None) -> list[str]:
    """``n`` distinct template replies of distinct archetypes to any prompt (generic wording for the placeholders).

    Used to add synthetic candidates to a pool of real replies (e.g. counsel-chat questions).
    """
    from ..evaluation.rubric import detect_risk

    rng = np.random.default_rng(seed)
    names = list(RB.ARCHETYPES)
    row = pd.Series({"risk": detect_risk(prompt) if risk is None else bool(risk), "feeling": "this way",
                     "phrase": "what you described", "action": "talk to someone you trust about it"})
    picks = [names[i] for i in rng.permutation(len(names))]
    out: list[str] = []
    for a in picks:
        if len(out) >= n:
            break
        text = compose(rng, _slots(a), row)
        if text not in out:
            out.append(text)
    return out


# ----------------------------------------------------------------------------------------------- judges
def judge_traits(survey: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per respondent: ids, sharpness (N, 6) and lean (N, 6, sums to 1)."""
    missing = [c for c in ("respondent_id", *SURVEY_CRITERIA) if c not in survey.columns]
    if missing:
        raise ValueError(f"`survey` lacks column(s) {missing}. Pass a frame like load_example_survey().")
    ratings = survey[list(SURVEY_CRITERIA)].apply(pd.to_numeric, errors="coerce").fillna(3.0).clip(1, 5).to_numpy()
    concern = pd.to_numeric(survey.get("att_errors_concern", pd.Series(3.0, index=survey.index)), errors="coerce")
    trust = pd.to_numeric(survey.get("att_trust", pd.Series(3.0, index=survey.index)), errors="coerce")
    concern = concern.fillna(3.0).clip(1, 5).to_numpy(dtype=float)
    trust = trust.fillna(3.0).clip(1, 5).to_numpy(dtype=float)
    imp = np.column_stack([ratings, (concern + ratings.mean(axis=1)) / 2.0])
    sharp = SCALE * (0.4 + 0.15 * (imp - 1.0)) * (0.85 + 0.075 * (trust[:, None] - 3.0))
    lean = imp / imp.sum(axis=1, keepdims=True)
    return survey["respondent_id"].to_numpy(), sharp, lean


def sample_rankings(rng: np.random.Generator, prompts: pd.DataFrame, scores: np.ndarray, survey: pd.DataFrame,
                    n_judges: int) -> pd.DataFrame:
    """Long rankings ``prompt_id, criterion, judge_id, candidate_id, rank``; `scores` (P, K, 6) rubric scores."""
    ids, sharp, lean = judge_traits(survey)
    if n_judges > len(ids):
        raise ValueError(f"`n_judges` ({n_judges}) exceeds the survey's {len(ids)} respondents.")
    p, k, c = scores.shape
    judges = np.stack([rng.choice(len(ids), size=n_judges, replace=False) for _ in range(p)])  # (P, J)
    z = scores / 10.0
    overall = np.einsum("pjc,pkc->pjk", lean[judges], z)                                    # (P, J, K)
    util = sharp[judges][:, :, :, None] * np.transpose(z, (0, 2, 1))[:, None] + HALO * overall[:, :, None, :]
    util = util + rng.gumbel(size=util.shape)                                                # (P, J, C, K)
    order = np.argsort(-util, axis=-1, kind="stable")
    su = np.take_along_axis(util, order, axis=-1)
    step = np.concatenate([np.ones(su.shape[:-1] + (1,), dtype=np.int64),
                           (su[..., :-1] - su[..., 1:] >= TIE_EPS).astype(np.int64)], axis=-1)
    dense = np.cumsum(step, axis=-1)
    rank = np.empty_like(dense)
    np.put_along_axis(rank, order, dense, axis=-1)
    pi, ji, ci, ki = np.indices(rank.shape).reshape(4, -1)
    return pd.DataFrame({
        "prompt_id": prompts["prompt_id"].to_numpy()[pi],
        "criterion": np.asarray(ALL_CRITERIA, dtype=object)[ci],
        "judge_id": ids[judges[pi, ji]],
        "candidate_id": np.asarray(list(LETTERS[:k]), dtype=object)[ki],
        "rank": rank.reshape(-1),
    })


def vote_labels(rankings: pd.DataFrame, compared: list[tuple]) -> pd.DataFrame:
    """Per compared pair and criterion: the judges' votes and the soft label.

    A judge votes 1 for the reply it ranks higher, 1/2 each on a tie. With ``v`` votes for ``x`` of ``n`` judges,
    ``P(x preferred) = (v + 1/2) / (n + 1)`` (a Jeffreys-type pseudo-count keeps labels inside (0, 1)).
    ``chosen`` is the reply with more votes; an exact tie goes to the reply with the better mean rank, then to
    side A.

    Returns
    -------
    DataFrame ``prompt_id, criterion, chosen_id, rejected_id, votes, n_judges, label``
    """
    wide = rankings.pivot_table(index=["prompt_id", "criterion", "judge_id"], columns="candidate_id",
                                values="rank", aggfunc="first")
    rows = []
    for pid, a, b in compared:
        sub = wide.loc[pid]
        for crit in ALL_CRITERIA:
            g = sub.loc[crit]
            x, y = g[a].to_numpy(dtype=float), g[b].to_numpy(dtype=float)
            n = len(x)
            v = float(np.sum(x < y) + 0.5 * np.sum(x == y))
            a_wins = v > n / 2 or (v == n / 2 and x.mean() <= y.mean())
            votes = v if a_wins else n - v
            rows.append((pid, crit, a if a_wins else b, b if a_wins else a, votes, n, (votes + 0.5) / (n + 1)))
    return pd.DataFrame(rows, columns=["prompt_id", "criterion", "chosen_id", "rejected_id", "votes", "n_judges",
                                       "label"])
