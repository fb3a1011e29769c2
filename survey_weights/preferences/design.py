"""Pairs shared across criteria: one row per comparison, how often two criteria disagree on it, and each pair's
labels on the other criteria as reward margins (MODPO's ``margins="labels"``).

A *comparison* is one (prompt, reply A, reply B) that carries a label for several criteria, as the bundled
synthetic data do (each criterion's file holds the same comparisons, oriented so that ``chosen`` is the reply
that criterion prefers). Comparisons are matched by the field ``comparison_id`` when present, otherwise by the
prompt and the unordered pair of reply texts, so any pair files can be analysed.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from .pairs import LABEL_FIELD, validate_preferences

__all__ = ["shared_comparisons", "conflict_shares", "labels_complete", "pair_label_margins"]


def _key(frame: pd.DataFrame) -> pd.Series:
    if "comparison_id" in frame.columns and frame["comparison_id"].notna().all():
        return frame["comparison_id"].astype(str)
    lo = np.where(frame["chosen"] < frame["rejected"], frame["chosen"], frame["rejected"])
    hi = np.where(frame["chosen"] < frame["rejected"], frame["rejected"], frame["chosen"])
    return pd.Series([f"{p}\x1f{a}\x1f{b}" for p, a, b in zip(frame["prompt"], lo, hi)], index=frame.index)


def shared_comparisons(pairs: pd.DataFrame, *, criteria: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per comparison with, per criterion, the probability that reply A is preferred.

    Parameters
    ----------
    pairs : DataFrame
        Pairs in the JSONL schema (:func:`~survey_weights.preferences.read_preferences`), several criteria.
        ``label`` (P(chosen preferred)) is used where present; a pair without one counts as a hard label 1.
    criteria : sequence of str, optional
        Columns of the result, in this order (default: the criteria in first-seen order).

    Returns
    -------
    DataFrame
        Index ``comparison`` (the ``comparison_id``, or prompt + reply texts); columns ``prompt``, ``reply_a``,
        ``reply_b`` (A is the reply whose text sorts first) and one float column per criterion:
        ``P(A preferred)`` on that criterion, NaN where the comparison has no pair for it.

    Raises
    ------
    ValueError
        A comparison has two pairs for the same criterion.

    Examples
    --------
    >>> df = pd.DataFrame({"prompt": "I feel low.", "chosen": ["Warm.", "Safe."], "rejected": ["Safe.", "Warm."],
    ...                    "criterion": ["empathy", "safety"], "label": [0.8, 0.9]})
    >>> shared_comparisons(df)[["reply_a", "empathy", "safety"]].round(2).to_numpy().tolist()
    [['Safe.', 0.2, 0.9]]
    """
    frame = validate_preferences(pairs)
    key = _key(frame)
    dup = pd.Series(list(zip(key, frame["criterion"]))).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"`pairs` holds two pairs for criterion {frame['criterion'].iloc[i]!r} of comparison "
                         f"{key.iloc[i]!r}. Fix: keep one pair per comparison and criterion.")
    label = (frame[LABEL_FIELD].to_numpy(dtype=float) if LABEL_FIELD in frame.columns
             else np.full(len(frame), np.nan))
    label = np.where(np.isnan(label), 1.0, label)
    a_is_chosen = (frame["chosen"] < frame["rejected"]).to_numpy()
    long = pd.DataFrame({
        "comparison": key.to_numpy(), "criterion": frame["criterion"].to_numpy(),
        "p_a": np.where(a_is_chosen, label, 1.0 - label),
        "prompt": frame["prompt"].to_numpy(),
        "reply_a": np.where(a_is_chosen, frame["chosen"], frame["rejected"]),
        "reply_b": np.where(a_is_chosen, frame["rejected"], frame["chosen"]),
    })
    crits = list(dict.fromkeys(long["criterion"])) if criteria is None else list(criteria)
    wide = long.pivot(index="comparison", columns="criterion", values="p_a")
    wide = wide.reindex(columns=crits)
    first = long.drop_duplicates("comparison").set_index("comparison")[["prompt", "reply_a", "reply_b"]]
    order = pd.unique(long["comparison"])
    out = pd.concat([first, wide], axis=1).loc[order]
    out.columns.name = None
    return out


def conflict_shares(pairs: pd.DataFrame, *, criteria: Sequence[str] | None = None) -> pd.DataFrame:
    """For every pair of criteria: the share of their common comparisons on which they prefer different replies.

    Two criteria *conflict* on a comparison when one prefers reply A (``P(A) > 1/2``) and the other reply B
    (``P(A) < 1/2``); a label of exactly 1/2 is neither conflict nor agreement.

    Parameters
    ----------
    pairs : DataFrame
        As :func:`shared_comparisons`.
    criteria : sequence of str, optional
        Default: every criterion in `pairs`.

    Returns
    -------
    DataFrame
        One row per criterion pair: ``criterion_1``, ``criterion_2``, ``n`` (comparisons labelled on both),
        ``conflict_share`` (float in [0, 1]; NaN when ``n == 0``) and ``agree_share``.

    Examples
    --------
    >>> df = pd.DataFrame({"prompt": ["x", "x", "y", "y"], "chosen": ["W", "S", "W", "W"],
    ...                    "rejected": ["S", "W", "S", "S"], "criterion": ["empathy", "safety"] * 2})
    >>> conflict_shares(df)[["criterion_1", "criterion_2", "n", "conflict_share"]].to_numpy().tolist()
    [['empathy', 'safety', 2, 0.5]]
    """
    wide = shared_comparisons(pairs, criteria=criteria)
    crits = [c for c in wide.columns if c not in ("prompt", "reply_a", "reply_b")]
    rows = []
    for c1, c2 in combinations(crits, 2):
        a, b = wide[c1].to_numpy(dtype=float) - 0.5, wide[c2].to_numpy(dtype=float) - 0.5
        ok = ~(np.isnan(a) | np.isnan(b))
        n = int(ok.sum())
        conflict = float(np.mean(a[ok] * b[ok] < 0)) if n else float("nan")
        agree = float(np.mean(a[ok] * b[ok] > 0)) if n else float("nan")
        rows.append((c1, c2, n, conflict, agree))
    return pd.DataFrame(rows, columns=["criterion_1", "criterion_2", "n", "conflict_share", "agree_share"])


def pair_label_margins(pairs: pd.DataFrame, criteria: Sequence[str], *, label_smoothing: float = 0.0,
                       labels_from: pd.DataFrame | None = None) -> pd.DataFrame:
    r"""Every pair's own label on each criterion, as a Bradley–Terry reward margin ``logit P(chosen ≻ rejected)``.

    A pair of criterion ``k`` and the pair of criterion ``c`` on the same comparison (same prompt and the same two
    replies, in either order: :func:`shared_comparisons`) tell how criterion ``c`` judges the ``k`` pair's chosen
    reply against its rejected one. With Bradley–Terry labels ``p_c = σ(r_c(chosen) - r_c(rejected))``, so
    ``logit p_c`` is exactly the margin ``Δr_c`` a reward model for ``c`` is trained to predict: MODPO with these
    margins reaches the optimum ``β Δlogratio = Σ_c w_c Δr_c`` of the pairs' own labels, without a reward model's
    error (:class:`~survey_weights.modpo.MODPOConfig` ``margins="labels"``).

    Parameters
    ----------
    pairs : DataFrame
        Pairs in the JSONL schema, several criteria on shared comparisons. ``label`` is used where present; a
        pair without one counts as ``1 - label_smoothing``.
    criteria : sequence of str
        The columns of the result.
    label_smoothing : float in [0, 0.5), default 0
        ε for hard labels; with ε = 0 a hard label's margin is infinite.
    labels_from : DataFrame, optional
        More labelled pairs in the same schema (e.g. the full data a training subsample was drawn from): their
        labels count too. A pair present in both is read once; two different labels for one comparison and
        criterion are an error.

    Returns
    -------
    DataFrame, shape (len(pairs), len(criteria))
        Row ``i`` (the index of ``pairs``), column ``c``: ``logit P(chosen_i ≻ rejected_i)`` on ``c`` (positive:
        ``c`` agrees with the pair's own criterion), NaN where the comparison carries no pair of ``c``.

    Examples
    --------
    >>> df = pd.DataFrame({"prompt": "I feel low.", "chosen": ["Warm.", "Safe."], "rejected": ["Safe.", "Warm."],
    ...                    "criterion": ["empathy", "safety"], "label": [0.8, 0.9]})
    >>> pair_label_margins(df, ["empathy", "safety"]).round(3).to_numpy().tolist()
    [[1.386, -2.197], [-1.386, 2.197]]
    """
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
            or not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"`label_smoothing` must be a float in [0, 0.5). Got {label_smoothing!r}. Fix: e.g. 0.1.")
    frame = validate_preferences(pairs)
    cols = ["prompt", "chosen", "rejected", "criterion", LABEL_FIELD]

    def filled(f: pd.DataFrame) -> pd.DataFrame:
        lab = f[LABEL_FIELD].to_numpy(dtype=float) if LABEL_FIELD in f.columns else np.full(len(f), np.nan)
        return f.assign(**{LABEL_FIELD: np.where(np.isnan(lab), 1.0 - float(label_smoothing), lab)})[cols]

    union = filled(frame)
    if labels_from is not None:
        union = pd.concat([union, filled(validate_preferences(labels_from))], ignore_index=True).drop_duplicates()
    wide = shared_comparisons(union, criteria=list(criteria))
    key = _key(frame[["prompt", "chosen", "rejected"]]).to_numpy()  # text keys, as `union` has
    p_a = wide.loc[key, list(criteria)].to_numpy(dtype=float)  # (n, C): P(reply A preferred)
    a_is_chosen = (frame["chosen"] < frame["rejected"]).to_numpy()[:, None]
    p = np.where(a_is_chosen, p_a, 1.0 - p_a)
    with np.errstate(divide="ignore"):
        z = np.log(p) - np.log1p(-p)
    return pd.DataFrame(z, index=pairs.index, columns=list(criteria))


def labels_complete(pairs: pd.DataFrame, *, criteria: Sequence[str] | None = None, label_smoothing: float = 0.0,
                    labels_from: pd.DataFrame | None = None) -> bool:
    """Whether every pair's comparison carries a finite label of every criterion in ``criteria`` (default: those of
    ``pairs``), found in ``pairs`` or ``labels_from``: the condition for MODPO's ``margins="labels"`` (``"auto"``
    chooses labels when it holds). False with fewer than two criteria, or when a comparison holds two pairs of one
    criterion.

    Examples
    --------
    >>> df = pd.DataFrame({"prompt": "I feel low.", "chosen": ["Warm.", "Safe."], "rejected": ["Safe.", "Warm."],
    ...                    "criterion": ["empathy", "safety"], "label": [0.8, 0.9]})
    >>> labels_complete(df), labels_complete(df.iloc[:1], criteria=["empathy", "safety"])
    (True, False)
    >>> labels_complete(df.iloc[:1], criteria=["empathy", "safety"], labels_from=df)
    True
    """
    frame = validate_preferences(pairs)
    crits = list(dict.fromkeys(frame["criterion"])) if criteria is None else list(criteria)
    if len(crits) < 2:
        return False
    try:
        z = pair_label_margins(frame, crits, label_smoothing=label_smoothing, labels_from=labels_from)
    except ValueError:
        return False
    return bool(np.isfinite(z.to_numpy()).all())
