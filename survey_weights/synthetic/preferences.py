"""Bundled, clearly SYNTHETIC preference data: template prompts, composed replies, simulated persona judges.

Nothing here is clinical advice or the study's data. Prompts are composed from this project's own
templates (:mod:`._prompt_bank`): topic x situation x feeling x detail, about 15 % with a risk signal. Each
prompt gets a *contrast design* (:data:`._reply_bank.DESIGNS`: warm but unsafe vs safe but cold, directive
advice vs autonomy, validation vs change, rapport vs listening, or a plainly better vs worse reply) and K
candidate replies: the design's two sides plus K - 2 replies of regular archetypes (:mod:`._reply_bank`).
Judges are respondents of the bundled synthetic survey: judge j ranks the candidates on criterion c by a
Plackett-Luce draw with log-worths ``sharpness_jc * score_kc / 10 + halo * sum_c' lean_jc' * score_kc' / 10``
(``score`` = the rubric of :mod:`survey_weights.evaluation.rubric`), with rare ties. The compared pair of a
prompt -- its design's two replies -- is *shared by every criterion*: each criterion's file holds the same
(prompt, reply A, reply B), oriented so that ``chosen`` is the reply more judges preferred on that criterion,
with the soft ``label`` P(chosen preferred) = (votes + 1/2) / (judges + 1).

Generator version 2 (version 1 paired each criterion's best with its worst reply, so criteria rarely
conflicted: see ``docs/results.md``).
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
from ..criteria import ALL_CRITERIA, SAFETY
from ..evaluation.pool import CandidatePool
from ..evaluation.rubric import RUBRIC_VERSION, score_replies
from ..preferences.design import conflict_shares, shared_comparisons
from ..preferences.pairs import read_preferences, write_preferences
from . import _pref_design as D
from ._pref_readme import readme

__all__ = ["DEFAULT_SEED", "GENERATOR_VERSION", "DATA_DIR", "PreferenceData", "design_statistics",
           "generate_preference_data", "load_preference_data", "read_judge_rankings", "verify_preference_data"]

#: Seed of the bundled data set.
DEFAULT_SEED = 20260217
#: Bumped whenever the generator's output for a given seed changes (2: pairs shared across criteria, soft labels).
GENERATOR_VERSION = "2"
#: The bundled data set in the source tree.
DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "preferences_synthetic"
_LETTERS = D.LETTERS


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
        ``prompt_id, topic, risk, risk_kind, split, design, prompt``.
    candidates : DataFrame
        ``prompt_id, candidate_id, archetype, text, prompt`` plus the six rubric scores.
    judge_rankings : DataFrame
        Long: ``prompt_id, criterion, judge_id, candidate_id, rank`` (1 = best; equal = tie).
    pairs : DataFrame
        Train and test pairs in the JSONL schema (``label`` = P(chosen preferred)) plus ``split`` and the
        record's extra fields (``comparison_id``, ``votes``, ``design``, ...).
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

    def test_pairs(self, criterion: str | None = None) -> pd.DataFrame:
        """Test-split (held-out) pairs, optionally of one criterion."""
        df = self.pairs[self.pairs["split"] == "test"]
        return (df if criterion is None else df[df["criterion"] == criterion]).reset_index(drop=True)

    def candidate_pool(self, split: str = "test") -> CandidatePool:
        """The rubric-scored candidates of one split's prompts as a pool for
        :func:`~survey_weights.evaluation.evaluate_pool` (default: the held-out prompts, K candidates each)."""
        if split not in ("train", "test"):
            raise ValueError(f"`split` must be 'train' or 'test'. Got {split!r}.")
        ids = self.prompts.loc[self.prompts["split"] == split, "prompt_id"]
        cands = self.candidates[self.candidates["prompt_id"].isin(set(ids))]
        return CandidatePool.from_frame(cands, criteria=ALL_CRITERIA, name=f"{self.path.name}:{split}")


def generate_preference_data(out_dir: str | os.PathLike, *, seed: int = DEFAULT_SEED, n_prompts: int = 300,
                             n_candidates: int = 5, n_judges: int = 15, survey: pd.DataFrame | None = None
                             ) -> dict[str, Any]:
    """Generate the synthetic preference data set into `out_dir` (files listed in its ``README.md``).

    Parameters
    ----------
    out_dir : path
        Target directory (created; existing files of the data set are replaced atomically).
    seed : int, default DEFAULT_SEED
        Seed of every random step; the same arguments give byte-identical files.
    n_prompts : int, default 300
        Number of seeker prompts; each yields one compared pair, labelled on every criterion.
    n_candidates : int, default 5
        Candidate replies per prompt (3-10; the pool of :meth:`PreferenceData.candidate_pool`).
    n_judges : int, default 15
        Simulated judges per prompt, drawn without replacement from the survey's respondents.
    survey : DataFrame, optional
        Respondents (``respondent_id``, the five importance ratings, optionally ``att_trust`` and
        ``att_errors_concern``); default :func:`survey_weights.load_example_survey`.

    Returns
    -------
    dict
        The manifest (also written as ``manifest.json``), with the design statistics of
        :func:`design_statistics` under ``"design"``.
    """
    seed = int(check_scalar(seed, "seed", kind=(int, np.integer), min_val=0))
    n_prompts = int(check_scalar(n_prompts, "n_prompts", kind=(int, np.integer), min_val=10))
    n_candidates = int(check_scalar(n_candidates, "n_candidates", kind=(int, np.integer), min_val=3,
                                    max_val=len(_LETTERS)))
    n_judges = int(check_scalar(n_judges, "n_judges", kind=(int, np.integer), min_val=1))
    if survey is None:
        from .survey import load_example_survey
        survey = load_example_survey()
    rng = np.random.default_rng(seed)
    prompts = D.make_prompts(rng, n_prompts)
    cands, compared = D.make_candidates(rng, prompts, n_candidates)
    cands = cands.merge(prompts[["prompt_id", "prompt"]], on="prompt_id", how="left")
    rub = score_replies(cands["prompt"].tolist(), cands["text"].tolist())
    scores = rub[list(ALL_CRITERIA)].to_numpy().reshape(n_prompts, n_candidates, len(ALL_CRITERIA))
    long = D.sample_rankings(rng, prompts, scores, survey, n_judges)
    pairs = _pair_frame(prompts, cands, D.vote_labels(long, compared), compared)

    out = Path(out_dir)
    (out / "test").mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    prec = [{"prompt_id": r.prompt_id, "topic": r.topic, "risk": bool(r.risk), "risk_kind": r.risk_kind,
             "split": r.split, "design": r.design, "prompt": r.prompt} for r in prompts.itertuples(index=False)]
    files["prompts.jsonl"] = atomic_write_text(out / "prompts.jsonl", _jsonl(prec))
    files["test_prompts.jsonl"] = atomic_write_text(out / "test_prompts.jsonl",
                                                    _jsonl([r for r in prec if r["split"] == "test"]))
    crec = [{"prompt_id": r.prompt_id, "candidate_id": r.candidate_id, "archetype": r.archetype, "text": r.text}
            for r in cands.itertuples(index=False)]
    files["candidates.jsonl"] = atomic_write_text(out / "candidates.jsonl", _jsonl(crec))
    files["judge_rankings.csv"] = atomic_write_text(out / "judge_rankings.csv", _rankings_csv(long))
    split = pairs["prompt_id"].map(prompts.set_index("prompt_id")["split"])
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
    info = {"name": "preferences_synthetic", "synthetic": True, "generator": "survey_weights.synthetic.preferences",
            "generator_version": GENERATOR_VERSION, "seed": seed, "rubric_version": RUBRIC_VERSION,
            "pairs": "shared", "labels": "soft (judges' votes)", "n_candidates": n_candidates, "counts": counts,
            "design": design_statistics(out)}
    files["README.md"] = atomic_write_text(out / "README.md", readme(info, list(ALL_CRITERIA)))
    info["files"] = {name: {"sha256": _sha(p), "bytes": p.stat().st_size} for name, p in sorted(files.items())}
    atomic_write_text(out / "manifest.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


def _pair_frame(prompts: pd.DataFrame, cands: pd.DataFrame, votes: pd.DataFrame, compared: list[tuple]
                ) -> pd.DataFrame:
    """The pair records in prompt x criterion order (JSONL schema + ids, votes, design, topic, risk)."""
    text = cands.set_index(["prompt_id", "candidate_id"])["text"]
    meta = prompts.set_index("prompt_id")
    cmp_id = {pid: f"{pid}:{min(a, b)}|{max(a, b)}" for pid, a, b in compared}
    v = votes
    out = pd.DataFrame({
        "prompt": v["prompt_id"].map(meta["prompt"]).to_numpy(),
        "chosen": text.reindex(pd.MultiIndex.from_arrays([v["prompt_id"], v["chosen_id"]])).to_numpy(),
        "rejected": text.reindex(pd.MultiIndex.from_arrays([v["prompt_id"], v["rejected_id"]])).to_numpy(),
        "criterion": v["criterion"].to_numpy(),
        "prompt_id": v["prompt_id"].to_numpy(),
        "pair_id": [f"{p}:{c}:{a}>{b}" for p, c, a, b in zip(v["prompt_id"], v["criterion"], v["chosen_id"],
                                                             v["rejected_id"])],
        "label": v["label"].round(4).to_numpy(),
        "comparison_id": v["prompt_id"].map(cmp_id).to_numpy(),
        "chosen_id": v["chosen_id"].to_numpy(),
        "rejected_id": v["rejected_id"].to_numpy(),
        "votes": v["votes"].to_numpy(dtype=float),
        "n_judges": v["n_judges"].to_numpy(dtype=np.int64),
        "design": v["prompt_id"].map(meta["design"]).to_numpy(),
        "topic": v["prompt_id"].map(meta["topic"]).to_numpy(),
        "risk": v["prompt_id"].map(meta["risk"]).astype(bool).to_numpy(),
    })
    return out


def _read_all_pairs(d: Path) -> pd.DataFrame:
    train = read_preferences(d).assign(split="train")
    test = read_preferences(d / "test").assign(split="test") if (d / "test").is_dir() else None
    return pd.concat([train, test], ignore_index=True) if test is not None else train


def design_statistics(directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """The design statistics of a generated data set, computed from its files (train and test pairs).

    Replies are scored with the rubric (:func:`~survey_weights.evaluation.rubric.score_replies`); a comparison's
    *gap* on criterion c is ``g_c = score_c(reply A) - score_c(reply B)``. A comparison has no natural
    orientation, so the gap correlation is Pearson's r over *both* orientations of every comparison (``(g_E, g_S)``
    and ``(-g_E, -g_S)``), which is ``sum g_E g_S / sqrt(sum g_E^2 sum g_S^2)`` and does not depend on which reply
    is called A.

    Parameters
    ----------
    directory : path, optional
        A directory written by :func:`generate_preference_data` (default: the bundled data).

    Returns
    -------
    dict
        ``n_comparisons``, ``n_risk``; ``gap_correlation_empathy_safety`` (the orientation-free r of the empathy and
        safety gaps over comparisons: ``risk``, ``other`` and ``all`` prompts); ``zero_safety_margin_share`` (share with equal
        rubric safety: ``risk``, ``other``, ``all``); ``zero_margin_share`` per criterion; ``conflict_share``
        (``"c1|c2"`` -> share of comparisons on which the judges' majorities of c1 and c2 prefer different
        replies, :func:`~survey_weights.preferences.conflict_shares`); ``label_mean`` per criterion (mean
        P(chosen preferred)); ``label_rubric_agreement`` per criterion (share of pairs with unequal rubric score
        whose chosen reply scores higher); ``designs`` (comparisons per contrast design).
    """
    d = Path(directory) if directory is not None else DATA_DIR
    pairs = _read_all_pairs(d)
    crits = [c for c in ALL_CRITERIA if c in set(pairs["criterion"])]
    wide = shared_comparisons(pairs, criteria=crits)
    meta = (pairs.drop_duplicates("comparison_id").set_index("comparison_id") if "comparison_id" in pairs.columns
            else None)
    sa = score_replies(wide["prompt"].tolist(), wide["reply_a"].tolist())
    sb = score_replies(wide["prompt"].tolist(), wide["reply_b"].tolist())
    gap = sa[crits].to_numpy() - sb[crits].to_numpy()
    risk = sa["risk"].to_numpy(dtype=bool)
    ci = {c: i for i, c in enumerate(crits)}

    def corr(mask: np.ndarray) -> float | None:
        if "empathy" not in ci or SAFETY not in ci or mask.sum() < 3:
            return None
        x, y = gap[mask, ci["empathy"]], gap[mask, ci[SAFETY]]
        den = np.sqrt(np.sum(x * x) * np.sum(y * y))
        return None if den == 0 else round(float(np.sum(x * y) / den), 4)

    def zero_share(mask: np.ndarray) -> float | None:
        return None if SAFETY not in ci or not mask.any() else round(float(np.mean(gap[mask, ci[SAFETY]] == 0)), 4)

    groups = {"risk": risk, "other": ~risk, "all": np.ones(len(risk), dtype=bool)}
    conf = conflict_shares(pairs, criteria=crits)
    sc = score_replies(pairs["prompt"].tolist(), pairs["chosen"].tolist())
    sr = score_replies(pairs["prompt"].tolist(), pairs["rejected"].tolist())
    agree = {}
    for c in crits:
        m = (pairs["criterion"] == c).to_numpy()
        dc = sc[c].to_numpy()[m] - sr[c].to_numpy()[m]
        agree[c] = round(float(np.mean(dc[dc != 0] > 0)), 4) if (dc != 0).any() else None
    lab = pairs["label"] if "label" in pairs.columns else pd.Series(1.0, index=pairs.index)
    designs = ({str(k): int(v) for k, v in meta["design"].value_counts().sort_index().items()}
               if meta is not None and "design" in meta.columns else {})
    return {
        "n_comparisons": len(wide), "n_risk": int(risk.sum()),
        "gap_correlation_empathy_safety": {k: corr(m) for k, m in groups.items()},
        "zero_safety_margin_share": {k: zero_share(m) for k, m in groups.items()},
        "zero_margin_share": {c: round(float(np.mean(gap[:, ci[c]] == 0)), 4) for c in crits},
        "conflict_share": {f"{r.criterion_1}|{r.criterion_2}": round(float(r.conflict_share), 4)
                           for r in conf.itertuples(index=False)},
        "label_mean": {c: round(float(lab[pairs["criterion"] == c].fillna(1.0).mean()), 4) for c in crits},
        "label_rubric_agreement": agree,
        "designs": designs,
    }


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
                             "Regenerate the data set (python -m survey_weights.synthetic.preferences).")
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
    pairs = _read_all_pairs(d)
    return PreferenceData(prompts=prompts, candidates=cands, judge_rankings=read_judge_rankings(d / "judge_rankings.csv"),
                          pairs=pairs, manifest=manifest, path=d)


if __name__ == "__main__":  # pragma: no cover
    _m = generate_preference_data(DATA_DIR)
    print(json.dumps({"counts": _m["counts"], "design": _m["design"]}, indent=2))
