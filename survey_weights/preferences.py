"""Preference pairs for DPO / MODPO: the JSONL format, its validation, and pairs from judge rankings.

Torch-free. The training engine (:mod:`survey_weights.modpo`) reads what this module writes.

JSONL format
------------
One JSON object per line (UTF-8; blank lines are skipped):

============  ========  ==========================================================================
field         type      meaning
============  ========  ==========================================================================
prompt        str       the seeker's message (non-empty)
chosen        str       the preferred reply (non-empty, differs from ``rejected``)
rejected      str       the dispreferred reply (non-empty)
criterion     str       the objective the preference is about, e.g. ``"empathy"``
prompt_id     str/int   optional; groups the pairs of one prompt (train/test splits use it)
pair_id       str/int   optional; unique id of the pair
(other)       any JSON  optional extra fields (scores, candidate ids, ...) are kept as columns
============  ========  ==========================================================================

A directory holds one file per criterion, ``<dir>/<criterion>.jsonl``; each record's ``criterion``
must then equal the file's stem.

Pairs from judge rankings
-------------------------
:func:`pairs_from_judge_rankings` aggregates per prompt x criterion the rankings of K candidate replies
by several judges, either with the study's centred Borda scores (``+10, +5, 0, -5, -10`` for K = 5,
see :func:`borda_weights`) or with a Plackett-Luce fit (aggregated log-worths), and returns the
best-vs-worst pair (as the study) or every informative pair.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import atomic_write_text
from ._validation import check_columns, check_option, check_scalar
from .criteria import ALL_CRITERIA
from .exceptions import ConvergenceWarning

__all__ = [
    "REQUIRED_FIELDS",
    "OPTIONAL_FIELDS",
    "read_preferences",
    "write_preferences",
    "write_preferences_by_criterion",
    "validate_preferences",
    "borda_weights",
    "aggregate_judge_rankings",
    "pairs_from_judge_rankings",
]

#: Fields every record must have (non-empty strings).
REQUIRED_FIELDS: tuple[str, ...] = ("prompt", "chosen", "rejected", "criterion")
#: Optional identifier fields (str or int); always present as columns of a read frame (None when absent).
OPTIONAL_FIELDS: tuple[str, ...] = ("prompt_id", "pair_id")
_COLUMNS = REQUIRED_FIELDS + OPTIONAL_FIELDS

PathLike = str | os.PathLike


# ----------------------------------------------------------------------------------------- validation
def _check_record(rec: Any, where: str, criteria: Sequence[str] | None, expect_criterion: str | None) -> dict:
    """Validate one parsed record; `where` is ``"file 'x.jsonl', line 3"`` or ``"row 3"``."""
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: a record must be a JSON object. Got {type(rec).__name__} instead.")
    for field in REQUIRED_FIELDS:
        if field not in rec or rec[field] is None:
            raise ValueError(
                f"{where}: missing field `{field}`. Every record needs {', '.join(REQUIRED_FIELDS)}."
            )
        value = rec[field]
        if not isinstance(value, str):
            raise ValueError(
                f"{where}: field `{field}` must be a string. Got {type(value).__name__} ({value!r:.40}) instead."
            )
        if not value.strip():
            raise ValueError(f"{where}: field `{field}` is empty. Fix: drop the record or fill in the text.")
    if rec["chosen"].strip() == rec["rejected"].strip():
        raise ValueError(
            f"{where}: fields `chosen` and `rejected` hold the same text, which carries no preference. "
            "Fix: drop the record."
        )
    for field in OPTIONAL_FIELDS:
        value = rec.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, numbers.Integral)):
            raise ValueError(
                f"{where}: field `{field}` must be a string or an integer. Got {type(value).__name__} instead."
            )
    crit = rec["criterion"]
    if criteria is not None and crit not in criteria:
        raise ValueError(
            f"{where}: field `criterion` has unknown value {crit!r}. Allowed: {', '.join(map(repr, criteria))}."
        )
    if expect_criterion is not None and crit != expect_criterion:
        raise ValueError(
            f"{where}: field `criterion` is {crit!r} but this per-criterion file holds {expect_criterion!r}. "
            "Fix: move the record to its criterion's file."
        )
    return rec


def _check_criteria(criteria: Any) -> tuple[str, ...] | None:
    if criteria is None:
        return None
    if isinstance(criteria, str):
        criteria = [criteria]
    out = tuple(criteria)
    if not out or not all(isinstance(c, str) and c for c in out):
        raise TypeError(f"`criteria` must be a non-empty list of criterion names. Got {criteria!r} instead.")
    return out


def _to_frame(records: list[dict]) -> pd.DataFrame:
    extras: list[str] = []
    for rec in records:
        for key in rec:
            if key not in _COLUMNS and key not in extras:
                extras.append(key)
    cols = list(_COLUMNS) + extras
    data = {c: [rec.get(c) for rec in records] for c in cols}
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in data.items()}, columns=cols)
    for c in REQUIRED_FIELDS:
        frame[c] = frame[c].astype(str)
    return frame


def _check_unique_pair_ids(frame: pd.DataFrame, what: str) -> None:
    ids = frame["pair_id"].dropna()
    dup = ids[ids.duplicated()]
    if len(dup):
        raise ValueError(
            f"{what}: `pair_id` must be unique; {dup.iloc[0]!r} occurs more than once. Fix: renumber the pairs."
        )


# --------------------------------------------------------------------------------------------- reading
def _read_file(path: Path, criteria: Sequence[str] | None, expect_criterion: str | None) -> list[dict]:
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"file {str(path)!r}, line {lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno}).") from None
            records.append(_check_record(rec, where, criteria, expect_criterion))
    return records


def _dir_files(directory: Path, criteria: Sequence[str] | None) -> list[tuple[Path, str]]:
    names = criteria if criteria is not None else ALL_CRITERIA
    files = [(directory / f"{c}.jsonl", c) for c in names]
    if criteria is not None:
        missing = [str(p) for p, _ in files if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"No preference file for criterion(s) in `criteria`: {', '.join(missing)}. "
                "A directory must hold one <criterion>.jsonl per requested criterion."
            )
        return files
    files = [(p, c) for p, c in files if p.is_file()]
    if not files:
        raise FileNotFoundError(
            f"Directory {str(directory)!r} holds no <criterion>.jsonl file (looked for "
            f"{', '.join(c + '.jsonl' for c in ALL_CRITERIA)}). Pass the file paths or `criteria=`."
        )
    return files


def read_preferences(source: PathLike | Iterable[PathLike], *, criteria: Sequence[str] | None = None
                     ) -> pd.DataFrame:
    """Read and validate preference pairs from JSONL file(s) or a per-criterion directory.

    Parameters
    ----------
    source : path, list of paths, or directory
        A JSONL file, several files (concatenated in the given order), or a directory holding
        ``<criterion>.jsonl`` files (read in `criteria` order, default :data:`ALL_CRITERIA` order,
        skipping absent files; other files in the directory are ignored).
    criteria : sequence of str, optional
        Allowed criterion names; a record with another name raises. With a directory, only these
        criteria are read and each must have its file.

    Returns
    -------
    DataFrame
        Columns ``prompt, chosen, rejected, criterion`` (str), ``prompt_id, pair_id`` (object; None
        when absent), then any extra fields in first-seen order. Fresh 0..n-1 index.

    Raises
    ------
    ValueError
        Invalid JSON, missing field, non-string or empty text, ``chosen == rejected``, unknown
        criterion, or a duplicated ``pair_id``; the message names the file, line and field.
    FileNotFoundError
        A path or a requested criterion's file does not exist.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "empathy.jsonl"
    >>> _ = p.write_text('{"prompt": "I feel low.", "chosen": "That sounds hard.", '
    ...                  '"rejected": "Cheer up.", "criterion": "empathy"}\\n')
    >>> read_preferences(p)[["chosen", "rejected", "criterion"]]
                  chosen   rejected criterion
    0  That sounds hard.  Cheer up.   empathy
    """
    crit = _check_criteria(criteria)
    if isinstance(source, (str, os.PathLike)):
        paths = [Path(source)]
    elif isinstance(source, Iterable) and not isinstance(source, (bytes, pd.DataFrame)):
        paths = [Path(p) for p in source]
        if not paths:
            raise ValueError("`source` is an empty list. Pass at least one JSONL path.")
    else:
        raise TypeError(f"`source` must be a path, a list of paths or a directory. Got {type(source).__name__}.")
    jobs: list[tuple[Path, str | None]] = []
    for p in paths:
        if p.is_dir():
            jobs.extend(_dir_files(p, crit))
        elif p.is_file():
            jobs.append((p, None))
        else:
            raise FileNotFoundError(f"Preference file {str(p)!r} does not exist.")
    records: list[dict] = []
    for path, expect in jobs:
        records.extend(_read_file(path, crit, expect))
    frame = _to_frame(records)
    _check_unique_pair_ids(frame, f"preference data read from {', '.join(str(p) for p in paths)}")
    return frame


def validate_preferences(df: pd.DataFrame, *, criteria: Sequence[str] | None = None) -> pd.DataFrame:
    """Validate a pairs DataFrame against the JSONL schema; return a normalised copy.

    Parameters
    ----------
    df : DataFrame
        Columns ``prompt, chosen, rejected, criterion``; optional ``prompt_id``, ``pair_id`` and extras.
    criteria : sequence of str, optional
        Allowed criterion names.

    Returns
    -------
    DataFrame
        As :func:`read_preferences` returns: the schema columns first, then the extras.

    Raises
    ------
    TypeError
        `df` is not a DataFrame.
    ValueError
        As :func:`read_preferences`; the message names the row (0-based position) and field.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`df` must be a pandas DataFrame. Got {type(df).__name__} instead.")
    crit = _check_criteria(criteria)
    records = _records(df)
    for i, rec in enumerate(records):
        _check_record(rec, f"row {i}", crit, None)
    frame = _to_frame(records)
    _check_unique_pair_ids(frame, "`df`")
    return frame


def _json_value(v: Any) -> Any:
    """Plain-JSON version of a cell (numpy scalars -> Python, NaN/NA -> None)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    return v


def _records(df: pd.DataFrame) -> list[dict]:
    cols = [str(c) for c in df.columns]
    out = []
    for row in df.itertuples(index=False, name=None):
        rec = {}
        for c, v in zip(cols, row):
            v = _json_value(v)
            if v is None and c not in REQUIRED_FIELDS:
                continue
            rec[c] = v
        out.append(rec)
    return out


def _jsonl_text(frame: pd.DataFrame) -> str:
    lines = []
    for rec in _records(frame):
        lines.append(json.dumps(rec, ensure_ascii=False, allow_nan=False))
    return "".join(line + "\n" for line in lines)


def write_preferences(df: pd.DataFrame, path: PathLike, *, criteria: Sequence[str] | None = None) -> Path:
    """Validate `df` and write it as JSONL, atomically (temporary file + ``os.replace``).

    Parameters
    ----------
    df : DataFrame
        Pairs in the schema of :func:`read_preferences`; extra columns are written as extra fields,
        missing values (None/NaN) are omitted from their record.
    path : path
        Destination file; its directory must exist.
    criteria : sequence of str, optional
        Allowed criterion names.

    Returns
    -------
    pathlib.Path
        `path`.

    Raises
    ------
    ValueError
        The frame violates the schema (see :func:`validate_preferences`).
    """
    frame = validate_preferences(df, criteria=criteria)
    return atomic_write_text(path, _jsonl_text(frame))


def write_preferences_by_criterion(df: pd.DataFrame, directory: PathLike, *,
                                   criteria: Sequence[str] | None = None) -> dict[str, Path]:
    """Write one ``<directory>/<criterion>.jsonl`` per criterion present in `df` (atomic writes).

    Returns
    -------
    dict
        criterion -> written path, in first-seen order.
    """
    frame = validate_preferences(df, criteria=criteria)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for crit in pd.unique(frame["criterion"]):
        part = frame[frame["criterion"] == crit]
        out[crit] = atomic_write_text(directory / f"{crit}.jsonl", _jsonl_text(part))
    return out


# ------------------------------------------------------------------------------ aggregation of rankings
def borda_weights(k: int) -> np.ndarray:
    """Centred, symmetric Borda weights for ranks 1..k (best first), step 5.

    ``w_r = 5 * ((k + 1) / 2 - r)``: ``(+10, +5, 0, -5, -10)`` for k = 5 as in the study. (The study's
    code also lists a non-linear variant for 10 responses; this linear rule is used for every k.)

    Examples
    --------
    >>> borda_weights(5).tolist()
    [10.0, 5.0, 0.0, -5.0, -10.0]
    """
    k = int(check_scalar(k, "k", kind=numbers.Integral, min_val=2))
    return 5.0 * ((k + 1) / 2.0 - np.arange(1, k + 1, dtype=float))


_RANK_COLS = ("prompt_id", "criterion", "judge_id", "candidate_id", "rank")
_CAND_COLS = ("prompt_id", "candidate_id", "prompt", "text")


def _prepare(rankings: pd.DataFrame, candidates: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    for name, df, cols in (("rankings", rankings, _RANK_COLS), ("candidates", candidates, _CAND_COLS)):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"`{name}` must be a pandas DataFrame. Got {type(df).__name__} instead.")
        check_columns(df, cols, name)
        if len(df) == 0:
            raise ValueError(f"`{name}` is empty. Pass at least one row.")
    cand = candidates.loc[:, list(_CAND_COLS)].copy()
    dup = cand.duplicated(["prompt_id", "candidate_id"])
    if dup.any():
        r = cand[dup].iloc[0]
        raise ValueError(f"`candidates` lists (prompt_id, candidate_id) = ({r.prompt_id!r}, {r.candidate_id!r}) twice.")
    rk = rankings.loc[:, list(_RANK_COLS)].copy()
    rank = pd.to_numeric(rk["rank"], errors="coerce")
    if rank.isna().any() or (rank < 1).any() or (rank != np.floor(rank)).any():
        bad = rk.loc[rank.isna() | (rank < 1) | (rank != np.floor(rank)), "rank"].iloc[0]
        raise ValueError(f"`rankings['rank']` must hold integers >= 1 (1 = best). Got {bad!r}.")
    rk["rank"] = rank.astype(np.int64)
    key = ["prompt_id", "criterion", "judge_id", "candidate_id"]
    if rk.duplicated(key).any():
        r = rk[rk.duplicated(key)].iloc[0]
        raise ValueError(
            f"`rankings` ranks candidate {r.candidate_id!r} twice for prompt {r.prompt_id!r}, criterion "
            f"{r.criterion!r}, judge {r.judge_id!r}. Give one row per judge and candidate."
        )
    known = pd.MultiIndex.from_frame(cand[["prompt_id", "candidate_id"]])
    seen = pd.MultiIndex.from_frame(rk[["prompt_id", "candidate_id"]])
    unknown = ~seen.isin(known)
    if unknown.any():
        r = rk[unknown].iloc[0]
        raise ValueError(
            f"`rankings` refers to candidate {r.candidate_id!r} of prompt {r.prompt_id!r}, which is not in "
            "`candidates`. Fix: add it to `candidates` or drop those rows."
        )
    return rk, cand


def _borda_scores(rk: pd.DataFrame, cand: pd.DataFrame) -> pd.DataFrame:
    """Per prompt x criterion x candidate: summed centred Borda score over judges (vectorised)."""
    k_of = cand.groupby("prompt_id", sort=False).size().rename("k")
    g = ["prompt_id", "criterion", "judge_id"]
    lo = rk.groupby(g, sort=False)["rank"].rank(method="min").to_numpy()
    hi = rk.groupby(g, sort=False)["rank"].rank(method="max").to_numpy()
    k = rk["prompt_id"].map(k_of).to_numpy(dtype=float)
    mid = (lo + hi) / 2.0  # 1-based mean position of the tie group; weights are linear in position
    rk = rk.assign(score=5.0 * ((k + 1) / 2.0 - mid))
    # candidates a judge left unranked share the remaining (bottom) positions
    judges = rk[g].drop_duplicates()
    full = judges.merge(cand[["prompt_id", "candidate_id"]], on="prompt_id", how="left")
    full = full.merge(rk[g + ["candidate_id", "score"]], on=g + ["candidate_id"], how="left")
    if full["score"].isna().any():
        nr = full.groupby(g, sort=False)["score"].transform("count").to_numpy(dtype=float)
        kk = full["prompt_id"].map(k_of).to_numpy(dtype=float)
        fill = 5.0 * ((kk + 1) / 2.0 - (nr + 1 + kk) / 2.0)
        full["score"] = full["score"].fillna(pd.Series(fill, index=full.index))
    out = full.groupby(["prompt_id", "criterion", "candidate_id"], sort=False).agg(
        score=("score", "sum"), n_judges=("judge_id", "nunique")).reset_index()
    return out


def _pl_scores(rk: pd.DataFrame, cand: pd.DataFrame, npseudo: float | None) -> pd.DataFrame:
    """Per prompt x criterion: zero-sum Plackett-Luce log-worths of the candidates."""
    try:
        from .models import fit_plackett_luce
    except ImportError as exc:  # pragma: no cover - depends on the models package being present
        raise ImportError(
            "method='plackett_luce' needs survey_weights.models.fit_plackett_luce, which is not importable "
            f"({exc}). Use method='borda'."
        ) from exc
    from .data import Rankings

    kw = {} if npseudo is None else {"npseudo": npseudo}
    items_of = cand.groupby("prompt_id", sort=False)["candidate_id"].agg(list).to_dict()
    rows: list[tuple[Any, Any, Any, float, int]] = []
    # one pass in numpy: sort by (prompt, criterion, judge, rank, candidate), then split into groups
    gkey = pd.factorize(pd.MultiIndex.from_frame(rk[["prompt_id", "criterion"]]))[0]
    jkey = pd.factorize(rk["judge_id"])[0]
    rank = rk["rank"].to_numpy()
    cid = rk["candidate_id"].to_numpy(dtype=object)
    pid, crit, jid = rk["prompt_id"].to_numpy(dtype=object), rk["criterion"].to_numpy(dtype=object), \
        rk["judge_id"].to_numpy(dtype=object)
    idx = np.lexsort((rank, jkey, gkey))
    bounds = np.flatnonzero(np.diff(gkey[idx])) + 1
    for block in np.split(idx, bounds):
        p0, c0 = pid[block[0]], crit[block[0]]
        items = items_of[p0]
        orderings: list[list[Any]] = []
        ids: list[Any] = []
        n_ranked: list[int] = []
        last_j = None
        for i in block:
            if jkey[i] != last_j:
                orderings.append([])
                ids.append(jid[i])
                n_ranked.append(0)
                last_j, last_r = jkey[i], None
            od = orderings[-1]
            if rank[i] == last_r:
                od[-1] = (od[-1] + (cid[i],)) if isinstance(od[-1], tuple) else (od[-1], cid[i])
            else:
                od.append(cid[i])
            last_r = rank[i]
            n_ranked[-1] += 1
        partial = min(n_ranked) < len(items)
        r = Rankings.from_orderings(orderings, items=items, respondent_ids=ids, top_k=partial)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            fit = fit_plackett_luce(r, **kw)
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            fit = fit_plackett_luce(r, method="lbfgs", **kw)  # Newton stalled: the quasi-Newton fit as fallback
        lw = pd.Series(fit.log_worth).reindex(items)
        for c, v in lw.items():
            rows.append((p0, c0, c, float(v), len(ids)))
    return pd.DataFrame(rows, columns=["prompt_id", "criterion", "candidate_id", "score", "n_judges"])


def aggregate_judge_rankings(rankings: pd.DataFrame, candidates: pd.DataFrame, *,
                             method: str = "plackett_luce", npseudo: float | None = None) -> pd.DataFrame:
    """Aggregate judges' rankings into one score per prompt x criterion x candidate.

    Parameters
    ----------
    rankings : DataFrame
        Long format: ``prompt_id, criterion, judge_id, candidate_id, rank`` (1 = best; equal ranks are
        ties; a judge may leave candidates unranked: they count as tied below the ranked ones).
    candidates : DataFrame
        ``prompt_id, candidate_id, prompt, text``: every candidate reply of every prompt.
    method : {"plackett_luce", "borda"}, default "plackett_luce"
        ``"borda"``: the study's centred Borda score summed over judges (:func:`borda_weights`; a tie group
        gets the mean weight of the positions it spans). ``"plackett_luce"``: zero-sum log-worths of a
        Plackett-Luce fit with ties (:func:`survey_weights.models.fit_plackett_luce`) per prompt x criterion,
        judges as respondents; when the default Newton fit warns that it did not converge, the group is
        refitted with ``method="lbfgs"`` (a warning then means neither converged).
    npseudo : float, optional
        Passed to the Plackett-Luce fit (default: the fit's default, 0.5).

    Returns
    -------
    DataFrame
        ``prompt_id, criterion, candidate_id, score`` (float; higher = better), ``n_judges`` (int).
    """
    check_option(method, "method", ("plackett_luce", "borda"))
    rk, cand = _prepare(rankings, candidates)
    if method == "borda":
        return _borda_scores(rk, cand)
    return _pl_scores(rk, cand, npseudo)


def pairs_from_judge_rankings(rankings: pd.DataFrame, candidates: pd.DataFrame, *,
                              method: str = "plackett_luce", pairs: str = "best_worst",
                              min_gap: float = 0.0, npseudo: float | None = None) -> pd.DataFrame:
    """Turn judges' rankings of candidate replies into preference pairs (JSONL schema + scores).

    Parameters
    ----------
    rankings, candidates : DataFrame
        See :func:`aggregate_judge_rankings`.
    method : {"plackett_luce", "borda"}, default "plackett_luce"
        How the judges' rankings are aggregated per prompt x criterion.
    pairs : {"best_worst", "all"}, default "best_worst"
        ``"best_worst"``: one pair per prompt x criterion, the aggregated best reply (chosen) vs the
        aggregated worst (rejected), as in the study; ties in the aggregated score go to the candidate
        listed first in `candidates`. ``"all"``: every pair of candidates whose aggregated scores
        differ by more than `min_gap`, the higher-scored one chosen.
    min_gap : float, default 0.0
        A pair is kept only when ``chosen_score - rejected_score > min_gap`` (for ``"best_worst"`` too:
        a prompt x criterion whose best and worst are closer yields no pair). On the scale of `method`:
        summed Borda points or log-worths.
    npseudo : float, optional
        Passed to the Plackett-Luce fit.

    Returns
    -------
    DataFrame
        ``prompt, chosen, rejected, criterion, prompt_id, pair_id`` (``"<prompt_id>:<criterion>:<chosen_id>>
        <rejected_id>"``), then ``chosen_id, rejected_id, chosen_score, rejected_score, score_gap`` (float),
        ``n_judges`` (int) and ``method``. Rows follow the prompts' order in `candidates`, then the criteria's
        first-seen order in `rankings`.

    Examples
    --------
    >>> cands = pd.DataFrame({"prompt_id": "p1", "candidate_id": ["a", "b", "c"], "prompt": "I feel low.",
    ...                       "text": ["That sounds hard.", "Okay.", "Cheer up."]})
    >>> ranks = pd.DataFrame({"prompt_id": "p1", "criterion": "empathy", "judge_id": [1, 1, 1, 2, 2, 2],
    ...                       "candidate_id": ["a", "b", "c"] * 2, "rank": [1, 2, 3, 1, 2, 3]})
    >>> pairs_from_judge_rankings(ranks, cands, method="borda")[["chosen", "rejected", "score_gap"]]
                  chosen   rejected  score_gap
    0  That sounds hard.  Cheer up.       20.0
    """
    check_option(pairs, "pairs", ("best_worst", "all"))
    min_gap = float(check_scalar(min_gap, "min_gap", min_val=0.0))
    scores = aggregate_judge_rankings(rankings, candidates, method=method, npseudo=npseudo)
    cand = candidates.loc[:, list(_CAND_COLS)].copy()
    cand["_order"] = np.arange(len(cand))
    prompt_order = {p: i for i, p in enumerate(pd.unique(cand["prompt_id"]))}
    crit_order = {c: i for i, c in enumerate(pd.unique(rankings["criterion"]))}
    s = scores.merge(cand, on=["prompt_id", "candidate_id"], how="left")
    s["_p"] = s["prompt_id"].map(prompt_order)
    s["_c"] = s["criterion"].map(crit_order)
    if pairs == "best_worst":
        s = s.sort_values(["_p", "_c", "_order"], kind="stable")
        g = s.groupby(["_p", "_c"], sort=True)
        best = s.loc[g["score"].idxmax()].reset_index(drop=True)
        worst = s.loc[g["score"].idxmin()].reset_index(drop=True)
        left, right = best, worst
    else:
        a = s[["_p", "_c", "_order", "prompt_id", "criterion", "candidate_id", "prompt", "text", "score",
               "n_judges"]]
        m = a.merge(a[["_p", "_c", "_order", "candidate_id", "text", "score"]], on=["_p", "_c"], suffixes=("", "_r"))
        m = m[m["score"] > m["score_r"]].sort_values(["_p", "_c", "_order", "_order_r"], kind="stable")
        left = m[["_p", "_c", "prompt_id", "criterion", "candidate_id", "prompt", "text", "score", "n_judges"]]
        left = left.reset_index(drop=True)
        right = m[["candidate_id_r", "text_r", "score_r"]].reset_index(drop=True)
        right.columns = ["candidate_id", "text", "score"]
    out = pd.DataFrame({
        "prompt": left["prompt"].to_numpy(),
        "chosen": left["text"].to_numpy(),
        "rejected": right["text"].to_numpy(),
        "criterion": left["criterion"].to_numpy(),
        "prompt_id": left["prompt_id"].to_numpy(),
        "chosen_id": left["candidate_id"].to_numpy(),
        "rejected_id": right["candidate_id"].to_numpy(),
        "chosen_score": left["score"].to_numpy(dtype=float),
        "rejected_score": right["score"].to_numpy(dtype=float),
        "n_judges": left["n_judges"].to_numpy(dtype=np.int64),
    })
    out["score_gap"] = out["chosen_score"] - out["rejected_score"]
    out = out[(out["score_gap"] > min_gap) & (out["chosen"].str.strip() != out["rejected"].str.strip())]
    out = out.reset_index(drop=True)
    out.insert(5, "pair_id", [f"{p}:{c}:{a}>{b}" for p, c, a, b in
                              zip(out["prompt_id"], out["criterion"], out["chosen_id"], out["rejected_id"])])
    out["method"] = method
    cols = ["prompt", "chosen", "rejected", "criterion", "prompt_id", "pair_id", "chosen_id", "rejected_id",
            "chosen_score", "rejected_score", "score_gap", "n_judges", "method"]
    return out[cols]
