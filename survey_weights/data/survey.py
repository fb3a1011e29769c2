"""Survey loader for real exports: the study's layout, or any survey (Qualtrics, REDCap, generic CSV) described by
its items and scale (the bundled synthetic survey: :mod:`~survey_weights.synthetic`)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import format_ids
from ..criteria import SURVEY_CRITERIA
from ._exports import (
    FREE_TEXT,
    Source,
    as_codes,
    check_ids,
    drop_private,
    label_maps,
    norm,
    rating_column,
    read_export,
    split_multiselect,
)
from ._generic import load_generic, scale_pair

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


_LIKERT_FIX = ("recode those cells, or map other answer words with labels={'<answer>': code, ...} (na_values=[...] "
               "marks answers that mean 'not answered').")


def _map_headers(columns: list[Any], rename: Mapping[Any, str] | None, questions: Mapping[Any, str]) -> dict[Any, str]:
    """The study's header rules: exact item texts (in the header or, in a Qualtrics export, the question text),
    canonical names, then question numbers and keywords; `rename` first."""
    mapping: dict[Any, str] = {}
    items = {norm(k): v for k, v in ITEM_TEXTS.items()}
    for col in columns:
        if rename and col in rename:
            mapping[col] = rename[col]
            continue
        key, q = norm(col), norm(questions.get(col, ""))
        if key in _CANONICAL:
            mapping[col] = key
            continue
        target = items.get(key) or (items.get(q) if q else None) or next(
            (v for k, v in items.items() if k in key or (q and k in q)), None)
        if target is None and FREE_TEXT.search(key) is None:
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


def _is_study(columns: Sequence[Any], questions: Mapping[Any, str]) -> bool:
    """The study's layout: one of its exact item texts is a header (or question text), or three of its five
    criteria are columns by name (as :func:`~survey_weights.simulate.simulate_survey` writes them)."""
    texts = [norm(c) for c in columns] + [norm(q) for q in questions.values()]
    keys = [norm(k) for k in ITEM_TEXTS]
    return any(k in t for k in keys for t in texts) or len(set(SURVEY_CRITERIA) & {norm(c) for c in columns}) >= 3


def load_survey(
    path_or_frame: str | os.PathLike[str] | pd.DataFrame,
    *,
    items: Sequence[Any] | Mapping[Any, str] | None = None,
    scale: tuple[float, float] | None = None,
    respondent: Any = None,
    rename: Mapping[Any, str] | None = None,
    labels: Any = None,
    reverse: bool | Sequence[Any] | None = None,
    multiselect: Sequence[Any] | Mapping[Any, str] | None = None,
    sep: str = ";",
    layout: str = "auto",
    export: str = "auto",
    na_values: Sequence[Any] | None = None,
    encoding: str = "utf-8-sig",
) -> pd.DataFrame:
    """Read a survey export and return one row per respondent with the rating items coded as numbers.

    Two layouts. **The study's** (recognised by one of its exact item texts, or three of its five criteria as column
    names; or ``layout="study"``): headers are mapped to the canonical names of
    :func:`~survey_weights.simulate.simulate_survey` (the importance items by their exact texts, e.g. "Empathy in
    responses (showing warmth and compassion)" -> ``empathy``; demographics by question number ``Q1``..``Q6`` /
    ``7a``..``7e`` or keywords) and ratings must be 1-5 or Likert words. **Any other survey** (``items=``, or
    ``layout="generic"``) keeps its headers: only the respondent column becomes ``respondent_id`` and the columns
    named in `items` / `rename` take the names given; every automatic rename is reported.

    Parameters
    ----------
    path_or_frame : str, os.PathLike or pandas.DataFrame
        A CSV export: one header row (REDCap, SurveyMonkey, generic) or Qualtrics' three (column ids, question
        texts, ``{"ImportId":"QID1"}``; recognised by the third, see `export`). Or an already loaded frame.
    items : list of str, or dict {column: name}, optional
        The rating items of your survey, in order: each a column header, or in a Qualtrics export its question
        text (or the text after the last " - ", as in a matrix question); a dict also names them. Required for a
        survey not in the study's layout.
    scale : (low, high), optional
        The rating scale, e.g. ``(0, 10)``; cells outside it are refused. Default: the study's (1, 5); otherwise
        the range of the `labels` codes, or of the data (recorded in ``attrs["scale"]``; `reverse` then needs it).
    respondent : str, optional
        The column of respondent ids, renamed ``respondent_id``. Default: a column named ``respondent_id``, or
        the one id-like header (``ResponseId``, ``record_id``, ``participant_id``, ``id``); else 1..n.
    rename : dict, optional
        Explicit ``{export header: name}`` renames (applied before the study's rules). Naming a column here also
        keeps it when it looks like free text.
    labels : dict, list or dict of dicts, optional
        Answer words -> codes: ``{"Not at all important": 0, ..., "Extremely important": 10}`` for every item,
        ``{item: {...}}`` per item, or the words in order, lowest first (codes ``low, low + 1, ...``). A code of
        None means "not answered". Matched ignoring case and spacing. Ordered pandas Categorical columns are
        coded by category position without labels. In the study's layout they extend the built-in Likert words.
    reverse : bool or list, optional
        Reverse-coded items, recoded ``low + high - x`` so that higher always means more important: a list of
        items, True for all, False for none. Left unset, a survey whose question, header, answers or labels say
        "1 = most important" is refused until you say which.
    multiselect : list of str or dict {column: separator}, optional
        Check-all-that-apply columns, split on `sep` (or the separator given) and re-joined with ``;`` (for
        :func:`multiselect_dummies`). Default: the study's six in its layout (when `sep` is not ``;``), else none.
    sep : str, default ";"
        Separator of the multi-select answers in the export.
    layout : {"auto", "study", "generic"}, default "auto"
        ``"auto"``: the study's when recognised and `items` is not given, else generic.
    export : {"auto", "qualtrics", "csv"}, default "auto"
        ``"qualtrics"``: three header rows; ``"csv"``: one; ``"auto"`` tells them apart by the import ids.
    na_values : list, optional
        More answers that mean "not answered" (e.g. ``[-99, "Prefer not to say"]``). Blank cells always do.
    encoding : str, default "utf-8-sig"
        Text encoding of the file (UTF-8 with or without a byte-order mark).

    Returns
    -------
    pandas.DataFrame
        ``respondent_id`` (given or 1..n), the items as whole-number codes (``Int64`` where answers are missing),
        other columns as read. Free-text columns and platform metadata that identify respondents (IP address,
        names, e-mail, location) are dropped. ``attrs`` records ``layout``, ``source``, ``export``, ``items``,
        ``scale``, ``reversed``, ``renamed`` (old -> new) and, for Qualtrics, ``question_text``.

    Raises
    ------
    ValueError
        A rating that cannot be read, lies outside the scale or is not whole (naming the file, its lines, the
        column, the value and the respondent ids), a missing item, missing or duplicated ids, two columns mapped
        to one name, a "1 = most important" scale without `reverse`, or a survey without `items` that is not in
        the study's layout.
    FileNotFoundError
        No file at the path.

    Warns
    -----
    DataRecodeWarning
        Listing the dropped free-text / identifying columns, and (generic layout) the automatic renames.

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

    Any other survey names its items (and scale); its headers stay as they are:

    >>> mine = pd.DataFrame({"id": [1, 2], "Q1": ["18-24", "65+"], "cost": ["Very", "Not at all"],
    ...                      "speed": ["Somewhat", "Very"]})
    >>> out = load_survey(mine, items=["cost", "speed"], respondent="id",
    ...                   labels=["Not at all", "Somewhat", "Very"], scale=(1, 3))
    >>> out.to_dict("list")
    {'respondent_id': [1, 2], 'cost': [3, 1], 'speed': [2, 3], 'Q1': ['18-24', '65+']}
    """
    for name, value, options in (("layout", layout, ("auto", "study", "generic")),
                                 ("export", export, ("auto", "qualtrics", "csv"))):
        if value not in options:
            raise ValueError(f"`{name}` must be one of {options}. Got {value!r}.")
    if rename is not None and not isinstance(rename, Mapping):
        raise TypeError(f"`rename` must be a dict {{export header: name}}. Got {type(rename).__name__}.")
    if not isinstance(sep, str) or not sep:
        raise ValueError(f"`sep` must be a non-empty string such as ',' or ';'. Got {sep!r}.")
    raw, src = read_export(path_or_frame, export=export, na_values=na_values, encoding=encoding)
    study = layout == "study" or (layout == "auto" and items is None and _is_study(list(raw.columns), src.questions))
    opts = {"scale": scale, "respondent": respondent, "rename": rename, "labels": labels, "reverse": reverse,
            "multiselect": multiselect, "sep": sep}
    if not study:
        return load_generic(raw, src, items=items, free_text=FREE_TEXT, **opts)
    if items is not None:
        raise ValueError("`items` describes your own survey, but layout='study' reads the study's five criteria. "
                         "Fix: drop `items=`, or pass layout='generic' (or 'auto').")
    return _load_study(raw, src, **opts)


def _load_study(raw: pd.DataFrame, src: Source, *, scale: Any, respondent: Any, rename: Any, labels: Any,
                reverse: Any, multiselect: Any, sep: str) -> pd.DataFrame:
    if respondent is not None:
        if respondent not in raw.columns:
            raise ValueError(f"{src.name}: no column {respondent!r} (parameter `respondent`). Headers: "
                             f"{format_ids(list(raw.columns), limit=12)}. Fix: name the id column.")
        rename = {**(rename or {}), respondent: "respondent_id"}
    mapping = _map_headers(list(raw.columns), rename, src.questions)
    df = drop_private(raw, set(mapping), FREE_TEXT, src).rename(columns=mapping)
    header = {v: k for k, v in mapping.items()}
    missing = [c for c in SURVEY_CRITERIA if c not in df.columns]
    if missing:
        raise ValueError(
            f"{src.name}: importance rating column(s) not found: {missing}. Headers seen: {list(raw.columns)[:12]}. "
            "Use the item texts of the survey, the names in SURVEY_CRITERIA, or pass `rename=` (or `items=` "
            "for a survey of your own)."
        )
    if "respondent_id" not in df.columns:
        df.insert(0, "respondent_id", np.arange(1, len(df) + 1, dtype=np.int64))
    ids = df["respondent_id"]
    check_ids(ids, src)
    lo, hi = (1.0, 5.0) if scale is None else scale_pair(scale)
    likert = {k: float(v) for k, v in LIKERT_CODES.items()}
    extra = label_maps(labels, list(SURVEY_CRITERIA), [header.get(c, c) for c in SURVEY_CRITERIA], lo)
    for col in _NUMERIC_15:
        if col in df.columns:
            crit = col in SURVEY_CRITERIA
            sc = (lo, hi) if crit else (1.0, 5.0)
            words = {**(likert if sc == (1.0, 5.0) else {}), **(extra[col] if crit else {})}
            x = rating_column(df[col], col, words=words, scale=sc, src=src, ids=ids, header=header.get(col, col),
                              what=f"ratings {sc[0]:g}-{sc[1]:g} (or Likert words such as 'Strongly agree' / "
                                   "'Very high')", word_fix=_LIKERT_FIX, lo=sc[0])
            df[col] = as_codes(x, df.index)
    flipped = _reverse(df, reverse, list(_NUMERIC_15), lo, hi, src)
    if multiselect is None:
        seps = {c: sep for c in MULTISELECT_COLUMNS if c in df.columns and sep != ";"}
    else:
        seps = dict(multiselect) if isinstance(multiselect, Mapping) else {c: sep for c in multiselect}
        absent = [c for c in seps if c not in df.columns]
        if absent:
            raise ValueError(f"{src.name}: `multiselect` names {format_ids(absent)}, not columns after the study's "
                             f"renames ({format_ids(list(df.columns), limit=12)}).")
    for col, s in seps.items():
        df[col] = split_multiselect(df[col], s, col, src, ids.index)
    order = [c for c in _CANONICAL if c in df.columns] + [c for c in df.columns if c not in _CANONICAL]
    out = df[order]
    out.attrs.update(layout="study", source=src.name, export=src.export, items=list(SURVEY_CRITERIA),
                     scale=(lo, hi), reversed=flipped, renamed={k: v for k, v in mapping.items() if k != v},
                     **({"question_text": dict(src.questions)} if src.questions else {}))
    return out


def _reverse(df: pd.DataFrame, reverse: Any, allowed: list[str], lo: float, hi: float, src: Source) -> list[str]:
    """Recode the reverse-coded study items ``lo + hi - x`` (the criteria on `scale`, the attitude items 1-5)."""
    if reverse is None or reverse is False:
        return []
    names = list(SURVEY_CRITERIA) if reverse is True else list(reverse)
    bad = [c for c in names if c not in allowed or c not in df.columns]
    if bad:
        raise ValueError(f"{src.name}: `reverse` names {format_ids(bad)}, which are not rating items here. Items: "
                         f"{format_ids([c for c in allowed if c in df.columns], limit=12)}.")
    for c in names:
        a, b = (lo, hi) if c in SURVEY_CRITERIA else (1.0, 5.0)
        df[c] = as_codes(a + b - df[c].astype(float).to_numpy(), df.index)
    return names


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
