"""The counsel-chat evaluation pool: real help-seekers' questions (test split), each with its therapists' answers
plus template replies from this package's reply bank, rubric-scored. The real data are read at run time
(:func:`survey_weights.evaluation.counsel_chat.load_counsel_chat`); only the template replies are synthetic."""

from __future__ import annotations

import os

import pandas as pd

from ..criteria import ALL_CRITERIA
from ..evaluation.counsel_chat import counsel_chat_candidates, load_counsel_chat
from ..evaluation.pool import CandidatePool
from ._pref_design import template_replies as _templates

__all__ = ["counsel_chat_pool", "template_replies"]


def template_replies(prompt: str, n: int, *, seed: int) -> list[str]:
    """``n`` distinct template replies of distinct archetypes (warm, reflective, directive, dismissive, ...) to any
    prompt, composed from the reply bank with generic wording; seeded. Clearly synthetic text.

    Examples
    --------
    >>> len(template_replies("I can't sleep and I feel low.", 3, seed=0))
    3
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"`n` must be an int >= 0. Got {n!r}.")
    return _templates(prompt, n, seed=seed)


def counsel_chat_pool(frame: pd.DataFrame | None = None, *, path: str | os.PathLike[str] | None = None,
                      split: str = "test", n_templates: int = 3, seed: int = 0) -> CandidatePool:
    """A :class:`~survey_weights.evaluation.pool.CandidatePool` of counsel-chat questions for
    :func:`~survey_weights.evaluation.evaluate_pool`.

    Parameters
    ----------
    frame : DataFrame, optional
        :func:`~survey_weights.evaluation.counsel_chat.load_counsel_chat` output; default: read `path`.
    path : path, optional
        The CSV (default: ``../shared/external/counsel_chat/counsel_chat.csv`` beside the repository).
    split : str, default "test"
        The source's split whose questions form the pool (39 questions, 117 answers in the test split).
    n_templates : int, default 3
        Template replies added per question (seed ``seed + questionID``); candidate ids ``x0, x1, ...``, the
        therapists' answers ``t<answerID>``.
    seed : int, default 0

    Returns
    -------
    CandidatePool
        Named ``counsel_chat:<split>``; every question has >= 2 candidates.

    Raises
    ------
    FileNotFoundError
        The file is absent (the message says where it is looked for).
    """
    if isinstance(n_templates, bool) or not isinstance(n_templates, int) or n_templates < 0:
        raise ValueError(f"`n_templates` must be an int >= 0. Got {n_templates!r}. Fix: e.g. n_templates=3.")
    df = frame if frame is not None else load_counsel_chat(path)
    cands = counsel_chat_candidates(df, split=split, extra_replies=(
        (lambda q, qid: template_replies(q, n_templates, seed=seed + qid)) if n_templates else None))
    return CandidatePool.from_frame(cands, criteria=ALL_CRITERIA, name=f"counsel_chat:{split}")
