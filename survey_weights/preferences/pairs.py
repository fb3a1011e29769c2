"""Preference pairs for DPO / MODPO: the JSONL format and its validation.

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
label         float     optional; the probability in [0, 1] that ``chosen`` is preferred to ``rejected``
                        (a *soft* label, e.g. the share of judges who preferred it). Absent or null:
                        a hard label (``chosen`` is preferred), as in files written before the field
                        existed, which read unchanged.
(other)       any JSON  optional extra fields (scores, candidate ids, ...) are kept as columns
============  ========  ==========================================================================

A directory holds one file per criterion, ``<dir>/<criterion>.jsonl``; each record's ``criterion``
must then equal the file's stem.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._util.io import atomic_write_text
from ..criteria import ALL_CRITERIA

__all__ = [
    "REQUIRED_FIELDS",
    "OPTIONAL_FIELDS",
    "LABEL_FIELD",
    "read_preferences",
    "write_preferences",
    "write_preferences_by_criterion",
    "validate_preferences",
    "as_pairs_frame",
    "data_hash",
]

#: Fields every record must have (non-empty strings).
REQUIRED_FIELDS: tuple[str, ...] = ("prompt", "chosen", "rejected", "criterion")
#: Optional identifier fields (str or int); always present as columns of a read frame (None when absent).
OPTIONAL_FIELDS: tuple[str, ...] = ("prompt_id", "pair_id")
#: Optional soft label: P(chosen preferred) in [0, 1]; a float column (NaN = hard label) when any record has it.
LABEL_FIELD: str = "label"
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
    _check_label(rec.get(LABEL_FIELD), where)
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


def _check_label(value: Any, where: str) -> None:
    """A soft label is absent (None / NaN: hard label) or a real number in [0, 1]."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{where}: field `{LABEL_FIELD}` must be a number in [0, 1] (the probability that `chosen` is "
            f"preferred). Got {type(value).__name__} ({value!r:.40}) instead. Fix: store a float or drop the field."
        )
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(
            f"{where}: field `{LABEL_FIELD}` must lie in [0, 1] (the probability that `chosen` is preferred). "
            f"Got {value!r}. Fix: store P(chosen preferred), or swap chosen and rejected and use 1 - label."
        )


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
    if LABEL_FIELD in frame.columns:
        frame[LABEL_FIELD] = pd.to_numeric(frame[LABEL_FIELD], errors="coerce").astype(float)
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
        when absent), then any extra fields in first-seen order; ``label`` (when any record has it) is
        float with NaN for the records without one (hard labels). Fresh 0..n-1 index.

    Raises
    ------
    ValueError
        Invalid JSON, missing field, non-string or empty text, ``chosen == rejected``, unknown
        criterion, a ``label`` outside [0, 1], or a duplicated ``pair_id``; the message names the file,
        line and field.
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

    The one validator of the pair format: :func:`read_preferences` applies the same record checks line by
    line (messages name file and line), :func:`as_pairs_frame` and the writers call this function.

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
        A required column is missing, or as :func:`read_preferences`; the message names the row (0-based
        position) and field.
    """
    return _validate_frame(df, criteria, "`df`")


def _validate_frame(df: Any, criteria: Sequence[str] | None, what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame. Got {type(df).__name__} instead.")
    crit = _check_criteria(criteria)
    missing = [c for c in REQUIRED_FIELDS if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what} lacks column(s) {missing}. Required: {list(REQUIRED_FIELDS)}. Fix: rename or add the columns."
        )
    if LABEL_FIELD in df.columns:
        lab = df[LABEL_FIELD]
        num = pd.to_numeric(lab, errors="coerce")
        bad = np.flatnonzero(np.isinf(num.to_numpy(dtype=float)) | (num.isna() & lab.notna()).to_numpy())
        if len(bad):  # NaN means "hard label" and is dropped on writing; infinities and text are errors
            _check_label(lab.iloc[bad[0]] if not np.isinf(num.iloc[bad[0]]) else float("inf"), f"row {bad[0]}")
            raise ValueError(f"row {bad[0]}: field `{LABEL_FIELD}` must be finite. Got {lab.iloc[bad[0]]!r}.")
    records = _records(df)
    for i, rec in enumerate(records):
        _check_record(rec, f"row {i}", crit, None)
    frame = _to_frame(records)
    _check_unique_pair_ids(frame, what)
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


# ----------------------------------------------------------------------------------------- frames for training
def as_pairs_frame(data: Any) -> pd.DataFrame:
    """Return preference pairs as one DataFrame, validated by the format's one validator.

    Parameters
    ----------
    data : DataFrame, mapping of criterion -> DataFrame, or path
        Columns ``prompt``, ``chosen``, ``rejected``, ``criterion`` (the latter optional in the mapping form),
        optionally ``prompt_id`` and ``pair_id``. A path (JSONL file, several files, or a directory of
        ``<criterion>.jsonl``) is read with :func:`read_preferences`, so errors name the file and line; frames
        go through :func:`validate_preferences`, so errors name the row.

    Returns
    -------
    DataFrame
        Columns ``prompt, chosen, rejected, criterion`` (str) plus ``prompt_id`` / ``pair_id`` when any pair
        has one and ``label`` (float, NaN = hard label) when any pair has a soft label; other extra columns
        are dropped; a fresh 0..n-1 index.

    Raises
    ------
    TypeError
        Unsupported container.
    ValueError
        Missing columns, empty or non-string texts, ``chosen == rejected``, duplicated ``pair_id``, no rows.
    FileNotFoundError
        A path does not exist.
    """
    if isinstance(data, (str, os.PathLike)):
        frame = read_preferences(data)
    else:
        frame = _validate_frame(_combine(data), None, "Preference data")
    if len(frame) == 0:
        raise ValueError("Preference data has no rows. Fix: pass at least one pair.")
    keep = list(REQUIRED_FIELDS) + [c for c in OPTIONAL_FIELDS if frame[c].notna().any()]
    if LABEL_FIELD in frame.columns and frame[LABEL_FIELD].notna().any():
        keep.append(LABEL_FIELD)
    return frame[keep]


def _combine(data: Any) -> pd.DataFrame:
    """One frame from a DataFrame or a mapping criterion -> DataFrame (the mapping's key sets `criterion`)."""
    if isinstance(data, pd.DataFrame):
        return data
    if not isinstance(data, Mapping):
        raise TypeError(
            "`data` must be a DataFrame with columns prompt, chosen, rejected, criterion, a mapping "
            f"criterion -> DataFrame, or a JSONL path. Got {type(data).__name__} instead."
        )
    parts = []
    for crit, df in data.items():
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"`data[{crit!r}]` must be a pandas DataFrame. Got {type(df).__name__} instead.")
        if "criterion" in df.columns and not (df["criterion"] == crit).all():
            raise ValueError(f"`data[{crit!r}]` has a `criterion` column with other values than {crit!r}.")
        parts.append(df.assign(criterion=crit))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(REQUIRED_FIELDS))


def data_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the pairs' texts, criteria and prompt ids, in row order (order fixes the data stream), and
    of their soft labels when any pair has one (so hard-label data hash as before the field existed)."""
    h = hashlib.sha256()
    cols = [c for c in (*REQUIRED_FIELDS, "prompt_id") if c in frame.columns]
    labels = None
    if LABEL_FIELD in frame.columns:
        lab = pd.to_numeric(frame[LABEL_FIELD], errors="coerce")
        labels = lab.to_numpy(dtype=float) if lab.notna().any() else None
    for i, row in enumerate(frame[cols].itertuples(index=False, name=None)):
        vals = [str(v) for v in row]
        if labels is not None:
            vals.append("hard" if np.isnan(labels[i]) else repr(round(float(labels[i]), 12)))
        h.update(json.dumps(vals, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()
