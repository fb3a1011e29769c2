"""Survey loader for real exports in the study's layout (the bundled synthetic survey: :mod:`~survey_weights.synthetic`)."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import format_ids
from ..criteria import SURVEY_CRITERIA
from ..exceptions import DataRecodeWarning

__all__ = [
    "load_survey", "multiselect_dummies", "ITEM_TEXTS", "MULTISELECT_COLUMNS", "LIKERT_CODES", "ATTITUDE_ITEMS",
]

#: The study's five attitude items (Q7a-e), in its layout.
ATTITUDE_ITEMS = ("att_accessible", "att_empathetic", "att_errors_concern", "att_complement", "att_trust")

#: The study's exact importance item texts (paper notes §1.2) -> criterion names.
ITEM_TEXTS: dict[str, str] = {
    "Empathy in responses (showing warmth and compassion)": "empathy",
    "Active listening (understanding and reflecting the patient's feelings)": "active_listening",
    "Encouraging self-motivated change (helping patients articulate goals for change)": "self_motivated_change",
    "Building trust and rapport (creating a supportive connection)": "trust_rapport",
    "Respecting patient autonomy (allowing patients to lead their own change journey)": "patient_autonomy",
}
#: Multi-select (check-all-that-apply) columns, stored ``;``-joined.
MULTISELECT_COLUMNS: tuple[str, ...] = (
    "ethnicity", "diagnoses", "treatment", "ai_use", "ai_help_areas", "ai_appropriate_uses",
)
#: Likert words -> codes (agreement items and the trust item).
LIKERT_CODES: dict[str, int] = {
    "strongly disagree": 1, "disagree": 2, "somewhat disagree": 2, "neutral": 3,
    "neither agree nor disagree": 3, "agree": 4, "somewhat agree": 4, "strongly agree": 5,
    "very low": 1, "low": 2, "moderate": 3, "medium": 3, "high": 4, "very high": 5,
    "not at all important": 1, "slightly important": 2, "moderately important": 3,
    "very important": 4, "extremely important": 5,
}
_CANONICAL = (
    "respondent_id", "population", "age_group", "gender", "ethnicity", "diagnoses", "severity",
    "treatment", "ai_use", *ATTITUDE_ITEMS, *SURVEY_CRITERIA, "ai_help_areas", "ai_appropriate_uses",
)
_NUMERIC_15 = (*ATTITUDE_ITEMS, *SURVEY_CRITERIA)
# (pattern on the normalised header, canonical name); first match wins. Question numbers as in §1.2.
_HEADER_RULES: tuple[tuple[str, str], ...] = (
    (r"^(response ?id|respondent(_| )?id|respondent|participant(_| )?id|id)$", "respondent_id"),
    (r"^(population|source|sample|panel)$", "population"),
    (r"^q1$|\bage\b", "age_group"),
    (r"^q2$|\bgender\b", "gender"),
    (r"^q3$|ethnic|\brace\b", "ethnicity"),
    (r"^q4$|diagnos", "diagnoses"),
    (r"^q5$|severity", "severity"),
    (r"^q6(\.1|_2| \(2\))$|(llm|\bai\b).*(used|purpose)|(used|purpose).*(llm|\bai\b)", "ai_use"),
    (r"^q6$|treatment", "treatment"),
    (r"^q?7a$|accessible support", "att_accessible"),
    (r"^q?7b$|empathetic responses", "att_empathetic"),
    (r"^q?7c$|factual errors|concern", "att_errors_concern"),
    (r"^q?7d$|complement", "att_complement"),
    (r"^q?7e$|trust in (llm|ai)|trust.*safe", "att_trust"),
    (r"^q12$|areas of mental health", "ai_help_areas"),
    (r"^q13$|aspects of psychotherapy", "ai_appropriate_uses"),
)
_FREE_TEXT = re.compile(r"(_text$|please specify|comment|explain|describe|free ?text|open[- ]ended|other \(.*\))",
                        re.I)


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", str(s).replace("\u2019", "'")).strip().lower()


def _map_headers(columns: list[Any], rename: Mapping[str, str] | None) -> dict[Any, str]:
    mapping: dict[Any, str] = {}
    items = {_norm(k): v for k, v in ITEM_TEXTS.items()}
    for col in columns:
        if rename and col in rename:
            mapping[col] = rename[col]
            continue
        key = _norm(col)
        if key in _CANONICAL:
            mapping[col] = key
            continue
        target = items.get(key) or next((v for k, v in items.items() if k in key), None)
        if target is None and _FREE_TEXT.search(key) is None:
            target = next((name for pat, name in _HEADER_RULES if re.search(pat, key)), None)
        if target is not None:
            mapping[col] = target
    seen: dict[str, Any] = {}
    for col, target in mapping.items():
        if target in seen:
            raise ValueError(
                f"Columns {seen[target]!r} and {col!r} both map to {target!r}. "
                f"Pass `rename={{{col!r}: 'new_name'}}` (or drop one) to disambiguate."
            )
        seen[target] = col
    return mapping


def _looks_free_text(s: pd.Series) -> bool:
    vals = s.dropna().astype(str)
    if vals.empty or pd.api.types.is_numeric_dtype(s):
        return False
    return bool(vals.str.len().median() > 40 or (len(vals) >= 20 and vals.nunique() > 0.9 * len(vals)))


def _to_code(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return np.nan
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    t = _norm(v)
    if t in LIKERT_CODES:
        return float(LIKERT_CODES[t])
    m = re.match(r"^([1-5])(\s*(-|=|:|\.|\)).*)?$", t)
    if m:
        return float(m.group(1))
    try:
        return float(t)
    except ValueError:
        return v


def _check_scale(df: pd.DataFrame, col: str, ids: pd.Series) -> pd.Series:
    coded = df[col].map(_to_code)
    num = pd.to_numeric(coded, errors="coerce")
    bad = coded.notna() & ~(num.isin([1.0, 2.0, 3.0, 4.0, 5.0]))
    if bad.any():
        first = coded[bad].iloc[0]
        raise ValueError(
            f"Column {col!r} must hold ratings 1-5 (or Likert words such as 'Strongly agree' / 'Very high'). "
            f"Got {first!r} for {int(bad.sum())} respondent(s) (respondent_id {format_ids(ids[bad])}). "
            "Fix those cells or recode them, e.g. df[col].replace({...})."
        )
    return num.astype("Int64") if num.isna().any() else num.astype(np.int64)


def load_survey(
    path: str | os.PathLike[str] | pd.DataFrame,
    *,
    rename: Mapping[str, str] | None = None,
    sep: str = ";",
) -> pd.DataFrame:
    """Read a survey export in the study's layout and return it with canonical column names.

    Parameters
    ----------
    path : str, os.PathLike or pandas.DataFrame
        A CSV file (or an already loaded frame).
    rename : dict, optional
        Explicit ``{export header: canonical name}`` overrides, applied before the automatic rules.
    sep : str, default ";"
        Separator of the multi-select answers in the export; re-joined with ``;``.

    Returns
    -------
    pandas.DataFrame
        Recognised columns renamed to the canonical names of
        :func:`~survey_weights.simulate.simulate_survey` (the importance items by their exact texts,
        e.g. "Empathy in responses (showing warmth and compassion)" -> ``empathy``; demographics by
        question number ``Q1``..``Q6``/``7a``..``7e`` or keywords). Likert words are coded 1-5
        (1 = Strongly disagree / Very low ... 5 = Strongly agree / Very high). Other numeric or
        categorical columns are kept as they are; free-text columns are dropped. If no
        ``respondent_id`` column exists, ids 1..n are assigned.

    Raises
    ------
    ValueError
        A rating column is missing or holds values outside 1-5 (the message names the column,
        the bad value and the first offending respondent ids), ids are duplicated, or two headers
        map to the same name.

    Warns
    -----
    DataRecodeWarning
        Once, listing the free-text columns that were dropped.

    Examples
    --------
    >>> raw = pd.DataFrame({"ResponseId": ["R1", "R2"], "Q1": ["18-24", "25-34"],
    ...     "Empathy in responses (showing warmth and compassion)": [5, 4],
    ...     "Active listening (understanding and reflecting the patient's feelings)": [4, 4],
    ...     "Encouraging self-motivated change (helping patients articulate goals for change)": [3, 5],
    ...     "Building trust and rapport (creating a supportive connection)": [5, 2],
    ...     "Respecting patient autonomy (allowing patients to lead their own change journey)": [4, 3]})
    >>> list(load_survey(raw).columns)
    ['respondent_id', 'age_group', 'empathy', 'active_listening', 'self_motivated_change', 'trust_rapport', 'patient_autonomy']
    """
    if isinstance(path, pd.DataFrame):
        raw = path.copy()
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"No survey file at {str(p)!r}.")
        # "None" is an answer option here (treatment, AI use), not a missing value
        raw = pd.read_csv(p, keep_default_na=False, na_values=["", "NA", "N/A", "NaN", "nan"])
    mapping = _map_headers(list(raw.columns), rename)
    dropped = [c for c in raw.columns if c not in mapping and
               (_FREE_TEXT.search(_norm(c)) is not None or _looks_free_text(raw[c]))]
    df = raw.drop(columns=dropped).rename(columns=mapping)
    if dropped:
        warnings.warn(
            f"Dropped {len(dropped)} free-text column(s): {format_ids(map(str, dropped))}. "
            "Free text is not used by the analysis (and may identify respondents).",
            DataRecodeWarning, stacklevel=2,
        )
    missing = [c for c in SURVEY_CRITERIA if c not in df.columns]
    if missing:
        raise ValueError(
            f"Importance rating column(s) not found: {missing}. Headers seen: {list(raw.columns)[:12]}. "
            "Use the item texts of the survey, the names in SURVEY_CRITERIA, or pass `rename=`."
        )
    if "respondent_id" not in df.columns:
        df.insert(0, "respondent_id", np.arange(1, len(df) + 1, dtype=np.int64))
    ids = df["respondent_id"]
    if ids.isna().any():
        raise ValueError(f"`respondent_id` is missing in rows {format_ids(np.flatnonzero(ids.isna()))}. Fill or drop them.")
    dup = ids[ids.duplicated(keep=False)]
    if not dup.empty:
        raise ValueError(f"`respondent_id` must be unique. Duplicated: {format_ids(dup.unique())}. Remove duplicate rows.")
    for col in _NUMERIC_15:
        if col in df.columns:
            df[col] = _check_scale(df, col, ids)
    for col in MULTISELECT_COLUMNS:
        if col in df.columns and sep != ";":
            df[col] = df[col].map(
                lambda v: ";".join(x.strip() for x in v.split(sep) if x.strip()) if isinstance(v, str) else v)
    order = [c for c in _CANONICAL if c in df.columns] + [c for c in df.columns if c not in _CANONICAL]
    return df[order]


def _slug(s: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", s.lower()).strip("_")


def multiselect_dummies(df: pd.DataFrame, column: str, *, sep: str = ";", prefix: str | None = None) -> pd.DataFrame:
    """Indicator columns for a multi-select (``;``-joined) column.

    Parameters
    ----------
    df : pandas.DataFrame
        Survey frame.
    column : str
        E.g. ``"diagnoses"``.
    sep : str, default ";"
        Separator of the selected options.
    prefix : str, optional
        Column-name prefix; default `column`.

    Returns
    -------
    pandas.DataFrame
        Same index as `df`; one bool column ``<prefix>_<option slug>`` per option seen (in order
        of first appearance), True where selected. Missing answers give all False.

    Examples
    --------
    >>> d = pd.DataFrame({"diagnoses": ["Depression;PTSD", "Anxiety", None]})
    >>> multiselect_dummies(d, "diagnoses").columns.tolist()
    ['diagnoses_depression', 'diagnoses_ptsd', 'diagnoses_anxiety']
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`df` must be a pandas DataFrame. Got {type(df).__name__}.")
    if column not in df.columns:
        raise ValueError(f"Column {column!r} not found. Available: {list(df.columns)}.")
    sets = df[column].map(lambda v: [x.strip() for x in v.split(sep) if x.strip()] if isinstance(v, str) else [])
    options: list[str] = []
    for s in sets:
        options += [o for o in s if o not in options]
    pre = prefix if prefix is not None else column
    return pd.DataFrame({f"{pre}_{_slug(o)}": sets.map(lambda s, o=o: o in s).astype(bool) for o in options},
                        index=df.index)
