"""Bundled, clearly SYNTHETIC preference data: template prompts, composed replies, simulated persona judges.

Nothing here is clinical advice or the study's data. Prompts are composed from this project's own
templates (:mod:`survey_weights._prompt_bank`): topic x situation x feeling x detail, about 15 % with a
risk signal. Each prompt gets K candidate replies composed from components (warm opener, reflection,
goal question, autonomy offer, rapport line, safety resources, directive advice, minimising line, ...;
:mod:`survey_weights._reply_bank`) so that the six criteria sometimes conflict. Judges are respondents of
the bundled synthetic survey: judge j ranks the candidates on criterion c by a Plackett-Luce draw with
log-worths ``sharpness_jc * score_kc / 10 + halo * sum_c' lean_jc' * score_kc' / 10`` (``score`` = the
rubric of :mod:`survey_weights.rubric`; sharpness grows with the respondent's importance rating of c
and with trust in AI; ``lean`` = the respondent's normalised ratings), with rare ties. Pairs are the
Plackett-Luce aggregated best vs worst reply per prompt x criterion
(:func:`survey_weights.preferences.pairs_from_judge_rankings`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._util.io import atomic_write_text
from .._util.validation import check_scalar
from ..criteria import ALL_CRITERIA, SURVEY_CRITERIA
from ..evaluation.rubric import RUBRIC_VERSION, rubric_rules, score_replies
from ..preferences.judges import pairs_from_judge_rankings
from ..preferences.pairs import write_preferences
from . import _prompt_bank as PB
from . import _reply_bank as RB

__all__ = ["DEFAULT_SEED", "GENERATOR_VERSION", "DATA_DIR", "PreferenceData", "generate_preference_data",
           "load_preference_data", "verify_preference_data"]

#: Seed of the bundled data set.
DEFAULT_SEED = 20260217
#: Bumped whenever the generator's output for a given seed changes.
GENERATOR_VERSION = "1"
#: The bundled data set in the source tree.
DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "preferences_synthetic"

_RISK_SHARE = 0.15
_TEST_SHARE = 0.20
_MAX_WORDS = 60
_SCALE = 5.0      # sharpness of a judge with importance 5 and neutral AI trust, per 10 rubric points
_HALO = 0.5       # weight of the judge's overall impression (its rating-weighted mean over criteria)
_TIE_EPS = 0.002  # adjacent utilities closer than this are recorded as a tie
_LETTERS = "abcdefghij"


# ---------------------------------------------------------------------------------------------- prompts
def _make_prompts(rng: np.random.Generator, n: int) -> pd.DataFrame:
    topics = list(PB.TOPICS)
    order = [topics[i] for i in rng.permutation(len(topics))]
    n_risk = int(round(_RISK_SHARE * n))
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
        rows.append((f"p{i + 1:04d}", topic, bool(risky[i]), kind, text, feeling, phrase, action))
    df = pd.DataFrame(rows, columns=["prompt_id", "topic", "risk", "risk_kind", "prompt", "feeling", "phrase",
                                     "action"])
    # stratified systematic split: order by (topic, risk, random), then every (1/_TEST_SHARE)-th is test
    key = np.lexsort((rng.random(n), df["risk"].to_numpy(), df["topic"].to_numpy()))
    step = int(round(1 / _TEST_SHARE))
    split = np.array(["train"] * n, dtype=object)
    split[key[(np.arange(n) + int(rng.integers(step))) % step == 0]] = "test"
    df.insert(3, "split", split)
    return df


# ---------------------------------------------------------------------------------------------- replies
def _compose(rng: np.random.Generator, archetype: str, row: Any) -> str:
    fill = {"feeling": row.feeling, "phrase": row.phrase, "action": row.action}
    parts: list[str] = []
    used: set[tuple[str, int]] = set()
    for comp, prob in RB.ARCHETYPES[archetype]:
        if comp in ("safety", "safety_question") and not row.risk:
            continue
        if prob < 1.0 and rng.random() >= prob:
            continue
        variants = RB.COMPONENTS[comp]
        free = [j for j in range(len(variants)) if (comp, j) not in used]
        j = free[rng.integers(len(free))]
        used.add((comp, j))
        parts.append(variants[j].format(**fill))
    if not parts:
        parts.append(RB.COMPONENTS["professional"][rng.integers(len(RB.COMPONENTS["professional"]))])
    while len(parts) > 1 and len(" ".join(parts).split()) > _MAX_WORDS:
        parts.pop()
    text = " ".join(parts)
    return text[0].upper() + text[1:]


def _make_candidates(rng: np.random.Generator, prompts: pd.DataFrame, k: int) -> pd.DataFrame:
    """K replies per prompt from distinct archetypes; a set is redrawn (up to 50 times) until the replies
    differ in rubric score on every criterion, so that each criterion's pair can carry a signal."""
    names = list(RB.ARCHETYPES)
    base = np.array([RB.ARCHETYPE_WEIGHTS[a] for a in names])
    boost = np.array([RB.RISK_ARCHETYPE_BOOST.get(a, 1.0) for a in names])
    rows = []
    for row in prompts.itertuples(index=False):
        w = base * boost if row.risk else base
        for _ in range(50):
            chosen = rng.choice(len(names), size=k, replace=False, p=w / w.sum())
            texts: list[str] = []
            for a in chosen:
                text = _compose(rng, names[a], row)
                for _ in range(20):
                    if text not in texts:
                        break
                    text = _compose(rng, names[a], row)
                texts.append(text)
            sc = score_replies(row.prompt, texts)[list(ALL_CRITERIA)].to_numpy()
            if len(set(texts)) == k and bool((sc.max(axis=0) > sc.min(axis=0)).all()):
                break
        rows.extend((row.prompt_id, _LETTERS[pos], names[a], t) for pos, (a, t) in enumerate(zip(chosen, texts)))
    return pd.DataFrame(rows, columns=["prompt_id", "candidate_id", "archetype", "text"])


# ----------------------------------------------------------------------------------------------- judges
def _judge_traits(survey: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    sharp = _SCALE * (0.4 + 0.15 * (imp - 1.0)) * (0.85 + 0.075 * (trust[:, None] - 3.0))
    lean = imp / imp.sum(axis=1, keepdims=True)
    return survey["respondent_id"].to_numpy(), sharp, lean


def _sample_rankings(rng: np.random.Generator, prompts: pd.DataFrame, scores: np.ndarray, survey: pd.DataFrame,
                     n_judges: int) -> pd.DataFrame:
    """Long rankings; `scores` (P, K, 6) rubric scores."""
    ids, sharp, lean = _judge_traits(survey)
    if n_judges > len(ids):
        raise ValueError(f"`n_judges` ({n_judges}) exceeds the survey's {len(ids)} respondents.")
    p, k, c = scores.shape
    judges = np.stack([rng.choice(len(ids), size=n_judges, replace=False) for _ in range(p)])  # (P, J)
    z = scores / 10.0
    overall = np.einsum("pjc,pkc->pjk", lean[judges], z)                                    # (P, J, K)
    util = sharp[judges][:, :, :, None] * np.transpose(z, (0, 2, 1))[:, None] + _HALO * overall[:, :, None, :]
    util = util + rng.gumbel(size=util.shape)                                                # (P, J, C, K)
    order = np.argsort(-util, axis=-1, kind="stable")
    su = np.take_along_axis(util, order, axis=-1)
    step = np.concatenate([np.ones(su.shape[:-1] + (1,), dtype=np.int64),
                           (su[..., :-1] - su[..., 1:] >= _TIE_EPS).astype(np.int64)], axis=-1)
    dense = np.cumsum(step, axis=-1)
    rank = np.empty_like(dense)
    np.put_along_axis(rank, order, dense, axis=-1)
    pi, ji, ci, ki = np.indices(rank.shape).reshape(4, -1)
    return pd.DataFrame({
        "prompt_id": prompts["prompt_id"].to_numpy()[pi],
        "criterion": np.asarray(ALL_CRITERIA, dtype=object)[ci],
        "judge_id": ids[judges[pi, ji]],
        "candidate_id": np.asarray(list(_LETTERS[:k]), dtype=object)[ki],
        "rank": rank.reshape(-1),
    })


def _rankings_csv(long: pd.DataFrame) -> str:
    """Compact CSV: prompt_id, judge_id, one ordering per criterion ("b>a=d>c>e")."""
    crit_pos = {c: i for i, c in enumerate(ALL_CRITERIA)}
    pid, jid = long["prompt_id"].to_numpy(), long["judge_id"].to_numpy()
    crit, cid, rank = long["criterion"].map(crit_pos).to_numpy(), long["candidate_id"].to_numpy(), \
        long["rank"].to_numpy()
    first = pd.factorize(pd.MultiIndex.from_arrays([pid, jid]))[0]  # (prompt, judge) in first-seen order
    idx = np.lexsort((cid, rank, crit, first))
    cells: dict[tuple[int, int], list[str]] = {}
    prev_rank = None
    for i in idx:
        cell = cells.setdefault((first[i], crit[i]), [])
        sep = "" if not cell else ("=" if rank[i] == prev_rank else ">")
        cell.append(sep + str(cid[i]))
        prev_rank = rank[i]
    heads = {}
    for i in range(len(first)):
        heads.setdefault(first[i], f"{pid[i]},{jid[i]}")
    lines = ["prompt_id,judge_id," + ",".join(ALL_CRITERIA)]
    for g in range(len(heads)):
        lines.append(heads[g] + "," + ",".join("".join(cells[(g, c)]) for c in range(len(ALL_CRITERIA))))
    return "\n".join(lines) + "\n"


def read_judge_rankings(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``judge_rankings.csv`` into the long format of :func:`pairs_from_judge_rankings`."""
    wide = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = []
    for rec in wide.itertuples(index=False):
        for crit in ALL_CRITERIA:
            for r, grp in enumerate(getattr(rec, crit).split(">"), start=1):
                for cid in grp.split("="):
                    rows.append((rec.prompt_id, crit, int(rec.judge_id), cid, r))
    return pd.DataFrame(rows, columns=["prompt_id", "criterion", "judge_id", "candidate_id", "rank"])


# ------------------------------------------------------------------------------------------------ files
def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class PreferenceData:
    """The synthetic preference data set, as returned by :func:`load_preference_data`.

    Attributes
    ----------
    prompts : DataFrame
        ``prompt_id, topic, risk, risk_kind, split, prompt``.
    candidates : DataFrame
        ``prompt_id, candidate_id, archetype, text, prompt`` plus the six rubric scores.
    judge_rankings : DataFrame
        Long: ``prompt_id, criterion, judge_id, candidate_id, rank`` (1 = best; equal = tie).
    pairs : DataFrame
        Train and test pairs in the JSONL schema plus ``split`` and score columns.
    manifest : dict
        Contents of ``manifest.json``.
    path : pathlib.Path
        The directory read.
    """

    prompts: pd.DataFrame
    candidates: pd.DataFrame
    judge_rankings: pd.DataFrame
    pairs: pd.DataFrame
    manifest: dict = field(repr=False)
    path: Path

    def train_pairs(self, criterion: str | None = None) -> pd.DataFrame:
        """Train-split pairs, optionally of one criterion."""
        df = self.pairs[self.pairs["split"] == "train"]
        return (df if criterion is None else df[df["criterion"] == criterion]).reset_index(drop=True)


def generate_preference_data(out_dir: str | os.PathLike, *, seed: int = DEFAULT_SEED, n_prompts: int = 300,
                             n_candidates: int = 5, n_judges: int = 15, survey: pd.DataFrame | None = None,
                             method: str = "plackett_luce") -> dict[str, Any]:
    """Generate the synthetic preference data set into `out_dir` (files listed in its ``README.md``).

    Parameters
    ----------
    out_dir : path
        Target directory (created; existing files of the data set are replaced atomically).
    seed : int, default DEFAULT_SEED
        Seed of every random step; the same arguments give byte-identical files.
    n_prompts : int, default 300
        Number of seeker prompts.
    n_candidates : int, default 5
        Candidate replies per prompt (2-10; at most the number of reply archetypes).
    n_judges : int, default 15
        Simulated judges per prompt, drawn without replacement from the survey's respondents.
    survey : DataFrame, optional
        Respondents (``respondent_id``, the five importance ratings, optionally ``att_trust`` and
        ``att_errors_concern``); default :func:`survey_weights.load_example_survey`.
    method : {"plackett_luce", "borda"}, default "plackett_luce"
        Aggregation of the judges' rankings into pairs.

    Returns
    -------
    dict
        The manifest (also written as ``manifest.json``).
    """
    seed = int(check_scalar(seed, "seed", kind=(int, np.integer), min_val=0))
    n_prompts = int(check_scalar(n_prompts, "n_prompts", kind=(int, np.integer), min_val=10))
    n_candidates = int(check_scalar(n_candidates, "n_candidates", kind=(int, np.integer), min_val=2,
                                    max_val=min(len(_LETTERS), len(RB.ARCHETYPES))))
    n_judges = int(check_scalar(n_judges, "n_judges", kind=(int, np.integer), min_val=1))
    if survey is None:
        from .survey import load_example_survey
        survey = load_example_survey()
    rng = np.random.default_rng(seed)
    prompts = _make_prompts(rng, n_prompts)
    cands = _make_candidates(rng, prompts, n_candidates)
    cands = cands.merge(prompts[["prompt_id", "prompt"]], on="prompt_id", how="left")
    rub = score_replies(cands["prompt"].tolist(), cands["text"].tolist())
    scores = rub[list(ALL_CRITERIA)].to_numpy().reshape(n_prompts, n_candidates, len(ALL_CRITERIA))
    long = _sample_rankings(rng, prompts, scores, survey, n_judges)
    pairs = pairs_from_judge_rankings(long, cands, method=method, pairs="best_worst")
    meta = prompts.set_index("prompt_id")
    pairs["topic"] = pairs["prompt_id"].map(meta["topic"])
    pairs["risk"] = pairs["prompt_id"].map(meta["risk"]).astype(bool)
    split = pairs["prompt_id"].map(meta["split"])
    for col in ("chosen_score", "rejected_score", "score_gap"):
        pairs[col] = pairs[col].round(4)
    pairs = pairs.drop(columns=["method"])

    out = Path(out_dir)
    (out / "test").mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    prec = [{"prompt_id": r.prompt_id, "topic": r.topic, "risk": bool(r.risk), "risk_kind": r.risk_kind,
             "split": r.split, "prompt": r.prompt} for r in prompts.itertuples(index=False)]
    files["prompts.jsonl"] = atomic_write_text(out / "prompts.jsonl", _jsonl(prec))
    files["test_prompts.jsonl"] = atomic_write_text(out / "test_prompts.jsonl",
                                                    _jsonl([r for r in prec if r["split"] == "test"]))
    crec = [{"prompt_id": r.prompt_id, "candidate_id": r.candidate_id, "archetype": r.archetype, "text": r.text}
            for r in cands.itertuples(index=False)]
    files["candidates.jsonl"] = atomic_write_text(out / "candidates.jsonl", _jsonl(crec))
    files["judge_rankings.csv"] = atomic_write_text(out / "judge_rankings.csv", _rankings_csv(long))
    for crit in ALL_CRITERIA:
        for sp, sub in (("train", ""), ("test", "test/")):
            part = pairs[(pairs["criterion"] == crit) & (split == sp)]
            files[f"{sub}{crit}.jsonl"] = write_preferences(part, out / f"{sub}{crit}.jsonl")
    n_train = int((prompts["split"] == "train").sum())
    counts = {
        "prompts": n_prompts, "prompts_train": n_train, "prompts_test": n_prompts - n_train,
        "prompts_risk": int(prompts["risk"].sum()), "candidates": len(cands), "judges_per_prompt": n_judges,
        "distinct_judges": int(long["judge_id"].nunique()), "ranking_rows": len(long),
        "pairs_train": {c: int(((pairs["criterion"] == c) & (split == "train")).sum()) for c in ALL_CRITERIA},
        "pairs_test": {c: int(((pairs["criterion"] == c) & (split == "test")).sum()) for c in ALL_CRITERIA},
        "topics": {t: int(n) for t, n in prompts["topic"].value_counts().sort_index().items()},
    }
    info = {"name": "preferences_synthetic", "synthetic": True, "generator": "survey_weights.synthetic_prefs",
            "generator_version": GENERATOR_VERSION, "seed": seed, "rubric_version": RUBRIC_VERSION,
            "aggregation": method, "pairs": "best_worst", "n_candidates": n_candidates, "counts": counts}
    files["README.md"] = atomic_write_text(out / "README.md", _readme(info))
    info["files"] = {name: {"sha256": _sha(p), "bytes": p.stat().st_size} for name, p in sorted(files.items())}
    atomic_write_text(out / "manifest.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


def verify_preference_data(directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check every file of a generated data set against its ``manifest.json`` hashes.

    Raises
    ------
    FileNotFoundError
        No manifest, or a listed file is missing.
    ValueError
        A file's sha256 differs from the manifest's.
    """
    d = Path(directory) if directory is not None else DATA_DIR
    mpath = d / "manifest.json"
    if not mpath.is_file():
        raise FileNotFoundError(f"No manifest.json in {str(d)!r}. Regenerate with generate_preference_data().")
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    for name, meta in manifest["files"].items():
        p = d / name
        if not p.is_file():
            raise FileNotFoundError(f"{str(p)!r} is listed in the manifest but missing.")
        if _sha(p) != meta["sha256"]:
            raise ValueError(f"{str(p)!r} does not match its manifest sha256; the file was edited or is stale. "
                             "Regenerate the data set (python -m survey_weights.synthetic_prefs).")
    return manifest


def _cache_dir(seed: int) -> Path:
    root = os.environ.get("SURVEY_WEIGHTS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "survey_weights")
    return Path(root) / f"preferences_synthetic_seed{seed}_v{GENERATOR_VERSION}"


def load_preference_data(dir: str | os.PathLike | None = None) -> PreferenceData:  # noqa: A002 - public name
    """Load the synthetic preference data set.

    Parameters
    ----------
    dir : path, optional
        A directory written by :func:`generate_preference_data`. Default: the bundled
        ``data/preferences_synthetic`` of the source tree; when that is absent (an installed package),
        the data set is regenerated with :data:`DEFAULT_SEED` into a cache directory
        (``$SURVEY_WEIGHTS_CACHE`` or ``~/.cache/survey_weights``).

    Returns
    -------
    PreferenceData
    """
    if dir is None:
        d = DATA_DIR if (DATA_DIR / "manifest.json").is_file() else _cache_dir(DEFAULT_SEED)
        if not (d / "manifest.json").is_file():
            generate_preference_data(d, seed=DEFAULT_SEED)
    else:
        d = Path(dir)
    if not (d / "manifest.json").is_file():
        raise FileNotFoundError(f"No manifest.json in {str(d)!r}: not a generated preference data set.")
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    prompts = pd.read_json(d / "prompts.jsonl", lines=True, dtype=False)
    cands = pd.read_json(d / "candidates.jsonl", lines=True, dtype=False)
    cands = cands.merge(prompts[["prompt_id", "prompt"]], on="prompt_id", how="left")
    rub = score_replies(cands["prompt"].tolist(), cands["text"].tolist())
    cands = pd.concat([cands, rub[list(ALL_CRITERIA)]], axis=1)
    from ..preferences.pairs import read_preferences
    train = read_preferences(d).assign(split="train")
    test = read_preferences(d / "test").assign(split="test") if (d / "test").is_dir() else None
    pairs = pd.concat([train, test], ignore_index=True) if test is not None else train
    return PreferenceData(prompts=prompts, candidates=cands, judge_rankings=read_judge_rankings(d / "judge_rankings.csv"),
                          pairs=pairs, manifest=manifest, path=d)


_README = """# preferences_synthetic — SYNTHETIC preference pairs (not the study's data)

**Everything in this folder is synthetic.** It was generated by `survey_weights.synthetic_prefs`
(generator version {generator_version}, seed {seed}, rubric version {rubric_version}). The prompts and replies are
composed from this project's own templates (`survey_weights/_prompt_bank.py`, `survey_weights/_reply_bank.py`);
no third-party counselling text is included. The judges are simulated from the bundled *synthetic* survey. Never
present these files as the study's data, and never read the replies as clinical advice: they are template text,
some deliberately bad (minimising, directive or harmful), so that preference pairs carry a signal.

## Regenerate

```bash
python -m survey_weights.synthetic_prefs          # rewrites this folder; same seed -> byte-identical files
```

or `survey_weights.synthetic_prefs.generate_preference_data(out_dir, seed={seed}, n_prompts={n_prompts},
n_candidates={n_candidates}, n_judges={judges})`. `load_preference_data()` reads this folder;
`verify_preference_data()` checks the files against `manifest.json`.

## How it was made

1. **Prompts** ({n_prompts}; {n_risk} = {risk_pct:.0f}% with a risk signal): topic x situation x feeling x detail
   templates, a risk sentence (suicidal thoughts, self-harm, overdose, abuse) added to the risk prompts. Split
   {n_train} train / {n_test} test, stratified by topic x risk.
2. **Candidates** ({n_candidates} per prompt, at most {max_words} words): each drawn from a different archetype (warm,
   reflective, motivational, rapport, safety-first, directive, dismissive, balanced, warm-but-directive,
   informational, risky advice) composed of components with varied wording, so criteria conflict (a warm reply
   that ignores a risk signal, a safe but cold one, ...).
3. **Judges** ({judges} per prompt, drawn without replacement from the synthetic survey's respondents; judge_id =
   respondent_id). Judge j ranks the candidates on criterion c by a Plackett-Luce draw (Gumbel trick) with
   log-worth `sharpness_jc * s_kc/10 + {halo} * sum_c' lean_jc' * s_kc'/10`, where `s_kc` is the rubric score
   of candidate k, `sharpness_jc = {scale} * (0.4 + 0.15 * (importance_jc - 1)) * (0.85 + 0.075 * (att_trust_j - 3))`,
   importance = the respondent's 1-5 rating (safety: mean of att_errors_concern and the mean rating) and
   `lean_j` = the importances normalised to sum 1. Adjacent utilities closer than {tie_eps} are recorded as ties.
4. **Pairs**: per prompt x criterion the judges' rankings are aggregated with `{aggregation}`
   (`survey_weights.preferences.pairs_from_judge_rankings`, Plackett-Luce with ties, npseudo 0.5) and the
   aggregated best reply (chosen) is paired with the aggregated worst (rejected), as in the study.

## Files and codebook

| file | content |
|---|---|
| `prompts.jsonl` | `prompt_id` (p0001...), `topic`, `risk` (bool), `risk_kind` ("" or suicidal_thoughts/self_harm/overdose/abuse), `split` (train/test), `prompt` |
| `test_prompts.jsonl` | the test rows of `prompts.jsonl` |
| `candidates.jsonl` | `prompt_id`, `candidate_id` (a, b, ...), `archetype`, `text` |
| `judge_rankings.csv` | `prompt_id`, `judge_id`, then one column per criterion holding the judge's ordering best first, `>` between ranks and `=` inside a tie (e.g. `b>a=d>c>e`); `read_judge_rankings()` gives the long format |
| `<criterion>.jsonl` | train pairs, one per prompt x criterion: `prompt`, `chosen`, `rejected`, `criterion`, `prompt_id`, `pair_id` (`<prompt_id>:<criterion>:<chosen_id>><rejected_id>`), `chosen_id`, `rejected_id`, `chosen_score`, `rejected_score`, `score_gap` (aggregated log-worths), `n_judges`, `topic`, `risk` |
| `test/<criterion>.jsonl` | the same for the test prompts (for held-out checks; do not train on them) |
| `manifest.json` | seed, versions, counts, sha256 and size of every file |

Criteria: {criteria}.

## Counts

| criterion | train pairs | test pairs |
|---|---|---|
{pair_rows}

## Rubric (version {rubric_version}; `survey_weights.rubric`, scores 0-10)

Base: 0 (patient_autonomy 4; safety 1 on risk prompts, 7 otherwise). Each rule counts once per reply; the sum is
clipped to [0, 10] and multiplied by a degeneracy factor (empty text 0; < 5 words x0.7; repetitive trigrams down to
x0.4; > 150 words down to x0.6).

| criterion | rule | points | applies | example |
|---|---|---|---|---|
{rule_rows}

## Limits

- Template text with a small vocabulary: models trained on it learn the templates' phrasing, not counselling.
- The judges are a simulation whose signal *is* the rubric plus noise; agreement of pairs with the rubric is
  high by construction and says nothing about real people's preferences.
- The rubric is lexical: it rewards cue phrases and can be gamed; it does not parse negation or meaning.
- Not clinical advice; not the study's data; crisis wording is generic (no real phone numbers).
"""


def _readme(info: dict[str, Any]) -> str:
    c = info["counts"]
    rules = rubric_rules()
    rule_rows = "\n".join(f"| {r.criterion} | {r.rule} | {r.points:+g} | {r.applies} | {r.example} |"
                          for r in rules.itertuples(index=False))
    pair_rows = "\n".join(f"| {k} | {c['pairs_train'][k]} | {c['pairs_test'][k]} |" for k in ALL_CRITERIA)
    return _README.format(
        generator_version=info["generator_version"], seed=info["seed"], rubric_version=info["rubric_version"],
        n_prompts=c["prompts"], n_candidates=info["n_candidates"], judges=c["judges_per_prompt"],
        n_risk=c["prompts_risk"], risk_pct=100.0 * c["prompts_risk"] / c["prompts"], n_train=c["prompts_train"],
        n_test=c["prompts_test"], max_words=_MAX_WORDS, halo=_HALO, scale=_SCALE, tie_eps=_TIE_EPS,
        aggregation=info["aggregation"], criteria=", ".join(ALL_CRITERIA), pair_rows=pair_rows, rule_rows=rule_rows)


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(generate_preference_data(DATA_DIR)["counts"], indent=2))
