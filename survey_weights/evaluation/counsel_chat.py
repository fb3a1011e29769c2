"""Real counselling questions: counsel-chat (licensed therapists' answers to help-seekers' questions, with readers'
upvotes) as a second evaluation pool, and an honest validity check of the rubric against the upvotes.

The data are read at run time from ``../shared/external/counsel_chat/counsel_chat.csv`` beside the repository (or
``$SURVEY_WEIGHTS_EXTERNAL/counsel_chat/counsel_chat.csv``) and are never copied into ``data/``. Source:
nbertagnolli/counsel-chat (MIT licence, copyright 2020 nbertagnolli; Bertagnolli 2020, "Counsel chat:
bootstrapping high-quality therapy data"); columns ``questionID, questionTitle, questionText, topic, answerID,
answerText, upvotes, views, split``. Torch-free.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..criteria import ALL_CRITERIA

__all__ = ["COLUMNS", "counsel_chat_path", "load_counsel_chat", "counsel_chat_candidates", "upvote_agreement"]

#: Columns the loader requires.
COLUMNS: tuple[str, ...] = ("questionID", "questionTitle", "questionText", "topic", "answerID", "answerText",
                            "upvotes", "split")
_REL = Path("counsel_chat") / "counsel_chat.csv"


def counsel_chat_path() -> Path:
    """Where the file is looked for: ``$SURVEY_WEIGHTS_EXTERNAL/counsel_chat/counsel_chat.csv`` when that variable
    is set, else ``<repository>/../shared/external/counsel_chat/counsel_chat.csv``."""
    env = os.environ.get("SURVEY_WEIGHTS_EXTERNAL")
    if env:
        return Path(env) / _REL
    return Path(__file__).resolve().parents[2].parent / "shared" / "external" / _REL


def load_counsel_chat(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Read counsel-chat: one row per therapist's answer.

    Parameters
    ----------
    path : path, optional
        The CSV (default :func:`counsel_chat_path`).

    Returns
    -------
    DataFrame
        :data:`COLUMNS` (+ ``views`` when present); ``question`` = title and text joined (whitespace collapsed),
        ``answerText`` with collapsed whitespace; ``upvotes`` int.

    Raises
    ------
    FileNotFoundError
        The file is absent (the message says where it is looked for and how to point to it).
    ValueError
        Columns are missing.
    """
    p = Path(path) if path is not None else counsel_chat_path()
    if not p.is_file():
        raise FileNotFoundError(
            f"counsel-chat not found at {str(p)!r}. It is read at run time from ../shared/external/counsel_chat/"
            "counsel_chat.csv beside the repository (MIT, nbertagnolli/counsel-chat) and never copied into data/. "
            "Fix: put the file there, set SURVEY_WEIGHTS_EXTERNAL to the folder that holds counsel_chat/, or pass "
            "path=."
        )
    df = pd.read_csv(p)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{str(p)!r} lacks column(s) {missing}; expected {list(COLUMNS)}. Is it counsel_chat.csv?")
    return _clean(df)


def _ws(s: Any) -> str:
    return re.sub(r"\s+", " ", "" if pd.isna(s) else str(s)).strip()


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["questionTitle"] = out["questionTitle"].map(_ws)
    out["questionText"] = out["questionText"].map(_ws)
    out["answerText"] = out["answerText"].map(_ws)
    out["question"] = [f"{t} {q}".strip() if q and q != t else t
                       for t, q in zip(out["questionTitle"], out["questionText"])]
    out["upvotes"] = pd.to_numeric(out["upvotes"], errors="coerce").fillna(0).astype(int)
    out = out[out["answerText"].str.len() > 0]
    return out.reset_index(drop=True)


def _frame(frame: pd.DataFrame | None) -> pd.DataFrame:
    if frame is None:
        return load_counsel_chat()
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`frame` must be a DataFrame like load_counsel_chat() returns. Got {type(frame).__name__}.")
    missing = [c for c in ("questionID", "questionTitle", "questionText", "answerID", "answerText", "upvotes")
               if c not in frame.columns]
    if missing:
        raise ValueError(f"`frame` lacks column(s) {missing}. Fix: pass load_counsel_chat() or a frame with them.")
    return frame if "question" in frame.columns else _clean(frame)


def counsel_chat_candidates(frame: pd.DataFrame | None = None, *, split: str | None = "test",
                            extra_replies: Callable[[str, int], Sequence[str]] | None = None,
                            min_candidates: int = 2) -> pd.DataFrame:
    """Candidate replies per question: the therapists' answers plus optional extra (e.g. template) replies.

    Parameters
    ----------
    frame : DataFrame, optional
        :func:`load_counsel_chat` output (default: read the file).
    split : {"train", "val", "test"} or None, default "test"
        Questions of this split of the source (None: all).
    extra_replies : callable ``(question, question_id) -> list of str``, optional
        Added after the therapists' answers (candidate ids ``x0, x1, ...``).
    min_candidates : int, default 2
        Questions with fewer candidates are left out.

    Returns
    -------
    DataFrame
        ``prompt_id`` (``cc<questionID>``), ``prompt`` (the question), ``candidate_id`` (``t<answerID>`` for a
        therapist's answer, ``x<j>`` for an extra reply), ``text``, ``source`` ("therapist" / "extra"), ``upvotes``
        (NaN for extras), ``topic``; for :meth:`~survey_weights.evaluation.pool.CandidatePool.from_frame`.
    """
    df = _frame(frame)
    if split is not None:
        if "split" not in df.columns:
            raise ValueError("`frame` has no `split` column. Fix: pass split=None.")
        df = df[df["split"] == split]
        if df.empty:
            raise ValueError(f"No counsel-chat answers in split {split!r}. Choose 'train', 'val', 'test' or None.")
    rows = []
    for qid, g in df.groupby("questionID", sort=True):
        q = g["question"].iloc[0]
        topic = g["topic"].iloc[0] if "topic" in g.columns else None
        cand = [(f"cc{qid}", q, f"t{r.answerID}", r.answerText, "therapist", float(r.upvotes), topic)
                for r in g.itertuples(index=False)]
        seen = {c[3] for c in cand}
        for j, t in enumerate(extra_replies(q, int(qid)) if extra_replies is not None else ()):
            if t and t not in seen:
                cand.append((f"cc{qid}", q, f"x{j}", str(t), "extra", np.nan, topic))
                seen.add(t)
        if len(cand) >= min_candidates:
            rows.extend(cand)
    return pd.DataFrame(rows, columns=["prompt_id", "prompt", "candidate_id", "text", "source", "upvotes", "topic"])


def upvote_agreement(frame: pd.DataFrame | None = None, *, weights: Mapping[str, float] | None = None,
                     split: str | None = None, scorer: Callable[[list[str], list[str]], pd.DataFrame] | None = None,
                     level: float = 0.95) -> dict[str, Any]:
    """How often the rubric's weighted score prefers the more-upvoted of two therapists' answers to one question.

    Every pair of answers to the same question (questions with >= 2 answers) whose upvotes differ is one
    comparison; ties in upvotes are excluded, and so (from the binomial share) are pairs the weighted score ties.
    An honest validity check: upvotes are a real human signal the rubric was not built on. Pairs of one question
    share an answer and are not independent, so the interval is optimistic; ``per_question`` reports the share with
    one comparison per question (its most- vs least-upvoted answer) as a check.

    Parameters
    ----------
    frame : DataFrame, optional
        :func:`load_counsel_chat` output (default: read the file).
    weights : mapping criterion -> weight, optional
        Default: equal weights on the six criteria.
    split : str or None, default None
        Restrict to one split of the source (None: every question).
    scorer : callable, optional
        ``scorer(prompts, replies) -> DataFrame`` (default: the rubric).
    level : float, default 0.95
        Of the Clopper–Pearson interval (``scipy.stats.binomtest``).

    Returns
    -------
    dict
        ``n_questions``, ``n_pairs`` (upvotes differ), ``agree``, ``disagree``, ``score_ties``, ``share`` =
        agree / (agree + disagree), ``ci`` [lo, hi], ``pvalue`` (two-sided vs 1/2), ``per_criterion`` (criterion
        -> share on that criterion alone), ``per_question`` (``{"n", "share", "ci"}``), ``longer_answer_share``
        (how often the longer answer is the more upvoted: a baseline the rubric, which counts cue phrases, should
        be read against), ``weights``.
    """
    from scipy.stats import binomtest

    if scorer is None:
        from .rubric import score_replies as scorer
    df = _frame(frame)
    if split is not None:
        df = df[df["split"] == split]
    w = {c: 1.0 / len(ALL_CRITERIA) for c in ALL_CRITERIA} if weights is None else dict(weights)
    if not w or any(not np.isfinite(v) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ValueError(f"`weights` must be non-negative, finite and not all 0. Got {w}.")
    multi = df.groupby("questionID")["answerID"].transform("size") >= 2
    df = df[multi].reset_index(drop=True)
    if df.empty:
        raise ValueError("No question has two or more answers. Fix: pass more answers (or split=None).")
    sc = scorer(df["question"].tolist(), df["answerText"].tolist())
    crits = list(w)
    weighted = sc[crits].to_numpy(dtype=float) @ np.array([w[c] for c in crits])
    per_c = {c: sc[c].to_numpy(dtype=float) for c in ALL_CRITERIA if c in sc.columns}
    up = df["upvotes"].to_numpy()
    words = df["answerText"].str.split().str.len().to_numpy()
    agree = disagree = ties = 0
    len_agree = len_n = 0
    c_agree = dict.fromkeys(per_c, 0)
    c_n = dict.fromkeys(per_c, 0)
    q_agree = q_n = 0
    for _, idx in df.groupby("questionID").indices.items():
        for i, j in combinations(idx, 2):
            if up[i] == up[j]:
                continue
            hi, lo = (i, j) if up[i] > up[j] else (j, i)
            d = weighted[hi] - weighted[lo]
            agree, disagree, ties = agree + int(d > 0), disagree + int(d < 0), ties + int(d == 0)
            if words[hi] != words[lo]:
                len_n += 1
                len_agree += int(words[hi] > words[lo])
            for c, v in per_c.items():
                if v[hi] != v[lo]:
                    c_n[c] += 1
                    c_agree[c] += int(v[hi] > v[lo])
        top, bot = idx[np.argmax(up[idx])], idx[np.argmin(up[idx])]
        if up[top] != up[bot] and weighted[top] != weighted[bot]:
            q_n += 1
            q_agree += int(weighted[top] > weighted[bot])
    n = agree + disagree
    if n == 0:
        raise ValueError("No pair of answers differs in both upvotes and weighted score.")
    bt = binomtest(int(agree), int(n), 0.5)
    ci = bt.proportion_ci(confidence_level=level)
    qci = binomtest(q_agree, q_n, 0.5).proportion_ci(confidence_level=level) if q_n else None
    return {
        "n_questions": int(df["questionID"].nunique()), "n_pairs": int(n + ties), "agree": int(agree),
        "disagree": int(disagree), "score_ties": int(ties), "share": float(agree / n),
        "ci": [float(ci.low), float(ci.high)],
        "pvalue": float(bt.pvalue), "level": level,
        "per_criterion": {c: (c_agree[c] / c_n[c] if c_n[c] else None) for c in per_c},
        "per_question": {"n": int(q_n), "share": (q_agree / q_n if q_n else None),
                         "ci": None if qci is None else [float(qci.low), float(qci.high)]},
        "longer_answer_share": float(len_agree / len_n) if len_n else None,
        "weights": w,
    }
