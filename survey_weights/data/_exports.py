"""Reading survey exports (private helpers of :func:`~survey_weights.data.survey.load_survey`).

A CSV with one header row (REDCap, SurveyMonkey, generic) or a Qualtrics CSV export (three header rows: column ids,
question texts, ``{"ImportId":"QID1"}``), its file line of every data row (for error messages), and the coding of
rating cells: numbers, "7 - Very important" prefixed codes, answer words through the analyst's labels, ordered
categoricals, the scale check and reverse coding.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import format_ids
from ..exceptions import DataRecodeWarning

#: Cells read as "not answered" in a file (blank cells included); "None" stays an answer option.
NA_STRINGS = ("", "NA", "N/A", "NaN", "nan")
_IMPORT_ID = re.compile(r'^\s*\{\s*"ImportId"\s*:', re.I)
_PREFIXED = re.compile(r"^(-?\d+(?:\.\d+)?)\s*(?:-|\u2013|=|:|\)|\.)\s*[^\d\s.]")
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
#: Metadata columns of survey platforms that identify respondents (Qualtrics' names, normalised).
IDENTIFYING = re.compile(r"^(ip ?address|recipient ?(last|first) ?name|recipient ?email|e-?mail( address)?|"
                         r"location ?(latitude|longitude)|external ?(data ?)?reference|phone( number)?)$")
#: Headers of free-text answers (dropped: not used by the analysis, and they may identify respondents).
FREE_TEXT = re.compile(r"(_text$|please specify|comment|explain|describe|free ?text|open[- ]ended|other \(.*\))",
                       re.I)
#: "1 = most important": lower numbers mean more important (the package reads higher as more important).
LOW_IS_MOST = re.compile(r"(^|[^\w.])1\s*(=|-|\u2013|:|\(|is|means)\s*(the\s+)?(most|highest|top)\b", re.I)


def norm(s: Any) -> str:
    """Header / answer text compared case- and whitespace-insensitively (curly apostrophes as straight ones)."""
    return re.sub(r"\s+", " ", str(s).replace("\u2019", "'")).strip().lower()


@dataclass
class Source:
    """Where the rows came from, to say so in messages: a file (with the line of each data row) or a frame."""

    name: str
    lines: list[int] | None = None
    questions: dict[Any, str] = field(default_factory=dict)
    export: str = "frame"

    def where(self, positions: Any, index: pd.Index | None = None) -> str:
        """``"line 7"``, ``"lines 7, 9 and 2 more"`` (files) or ``"row(s) with index 3, 5"`` (frames)."""
        pos = [int(p) for p in np.atleast_1d(positions)]
        if self.lines is not None and all(p < len(self.lines) for p in pos):
            return ("line " if len(pos) == 1 else "lines ") + format_ids([self.lines[p] for p in pos])
        labels = [index[p] for p in pos] if index is not None else pos
        return ("row with index " if len(pos) == 1 else "rows with index ") + format_ids(labels)


def _record_lines(path: Path, encoding: str) -> list[int]:
    """The file line on which each CSV record starts (blank lines skipped, as pandas does)."""
    starts: list[int] = []
    with open(path, newline="", encoding=encoding) as fh:
        reader = csv.reader(fh)
        end = 0
        for rec in reader:
            if rec:
                starts.append(end + 1)
            end = reader.line_num
    return starts


def _infer(s: pd.Series) -> pd.Series:
    """Numbers for a text column whose non-missing cells all parse as numbers (as read_csv would infer)."""
    if s.dtype != object:
        return s
    vals = s.dropna()
    if vals.empty or not all(isinstance(v, str) and _NUMBER.match(v.strip()) for v in vals):
        return s
    return pd.to_numeric(s)


def _is_qualtrics(second: Sequence[Any]) -> bool:
    cells = [str(v) for v in second if isinstance(v, str) and v.strip()]
    return bool(cells) and sum(bool(_IMPORT_ID.match(c)) for c in cells) >= 0.5 * len(cells)


def read_export(
    path_or_frame: Any, *, export: str, na_values: Sequence[Any] | None, encoding: str
) -> tuple[pd.DataFrame, Source]:
    """The export as a frame (data rows only) and its :class:`Source`.

    Parameters
    ----------
    path_or_frame : path or DataFrame
    export : {"auto", "qualtrics", "csv"}
        ``"auto"`` recognises a Qualtrics export by its third header row (import ids).
    na_values : sequence, optional
        More cell values that mean "not answered" (e.g. ``["-99", "Prefer not to say"]``).
    encoding : str
    """
    extra_na = [str(v) for v in (na_values or ())]
    if isinstance(path_or_frame, pd.DataFrame):
        raw = path_or_frame.copy()
        src = Source("the data frame")
        if export != "csv" and len(raw) >= 2 and (export == "qualtrics" or _is_qualtrics(raw.iloc[1].tolist())):
            src.questions = {c: str(v) for c, v in raw.iloc[0].items() if isinstance(v, str)}
            raw = raw.iloc[2:].apply(_infer)
            src.export = "qualtrics"
        if extra_na:
            nums = [float(v) for v in extra_na if _NUMBER.match(v.strip())]
            raw = raw.mask(raw.isin([*extra_na, *nums]))
        return raw, src
    if not isinstance(path_or_frame, (str, os.PathLike)):
        raise TypeError(f"`path_or_frame` must be a CSV path or a pandas DataFrame. Got {type(path_or_frame).__name__}.")
    p = Path(path_or_frame)
    if not p.is_file():
        what = "a directory, not a file" if p.is_dir() else "not found"
        raise FileNotFoundError(f"No survey file at {str(p)!r} ({what}). Fix: pass the path of the CSV export.")
    na = [*NA_STRINGS, *extra_na]
    # "None" is an answer option here (treatment, AI use), not a missing value
    opts: dict[str, Any] = {"keep_default_na": False, "na_values": na, "encoding": encoding}
    try:
        head = pd.read_csv(p, header=None, nrows=3, dtype=str, keep_default_na=False, encoding=encoding)
        qualtrics = export == "qualtrics" or (export == "auto" and len(head) >= 3 and _is_qualtrics(head.iloc[2]))
        raw = pd.read_csv(p, skiprows=[1, 2] if qualtrics else None, **opts)
        lines = _record_lines(p, encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p.name}: not {encoding} text ({exc.reason} at byte {exc.start}). Fix: save the export "
                         "as UTF-8 CSV, or pass encoding= (e.g. encoding='cp1252' for an Excel CSV).") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{p.name} is empty. Fix: export the survey responses as CSV.") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{p.name}: not a well-formed CSV ({str(exc).strip()}). Fix: re-export the CSV, or check "
                         "that line for an unquoted comma or a missing closing quote.") from None
    header = [str(h) for h in head.iloc[0]] if len(head) else []
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ValueError(f"{p.name}, line 1: the header {format_ids(dup)} appears more than once, so its columns "
                         "cannot be told apart. Fix: give each column its own name in the export.")
    src = Source(p.name, lines=lines[3:] if qualtrics else lines[1:], export="qualtrics" if qualtrics else "csv")
    if qualtrics:
        src.questions = {c: str(v) for c, v in zip(raw.columns, head.iloc[1]) if str(v).strip()}
    if len(src.lines or ()) != len(raw):
        src.lines = None  # (should not happen) fall back to row numbers
    return raw, src


# ---------------------------------------------------------------------------------------------------------------------
# rating cells
# ---------------------------------------------------------------------------------------------------------------------
def label_maps(labels: Any, items: Sequence[str], columns: Sequence[Any], lo: float | None) -> dict[str, dict]:
    """``labels`` as one ``{normalised word: code}`` map per item (``{}`` where none applies).

    Accepts ``{word: code}`` (every item), ``{item or column: {word: code}}``, or the words in order, lowest
    first (codes ``lo, lo + 1, ...``; ``lo`` = the scale's low end, default 1). A code of None means "not answered".
    """
    if labels is None:
        return {it: {} for it in items}
    if isinstance(labels, Mapping) and labels and all(isinstance(v, Mapping) for v in labels.values()):
        known = set(items) | set(columns)
        unknown = [k for k in labels if k not in known]
        if unknown:
            raise ValueError(f"`labels` has maps for {format_ids(unknown)}, which are not items. Items: "
                             f"{format_ids(list(items), limit=12)}. Fix: key the maps by item (or column) name.")
        per = {it: _one_map(labels.get(it, labels.get(col, {})), lo) for it, col in zip(items, columns)}
        return per
    one = _one_map(labels, lo)
    return {it: one for it in items}


def _one_map(labels: Any, lo: float | None) -> dict[str, float | None]:
    if isinstance(labels, Mapping):
        out: dict[str, float | None] = {}
        for k, v in labels.items():
            if v is not None and (isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number))
                                  or not np.isfinite(v)):
                raise TypeError(f"`labels` must map each answer to a number (or None for 'not answered'). "
                                f"Got {k!r}: {v!r}. Fix: e.g. labels={{'Not at all important': 0, ...}}.")
            out[norm(k)] = None if v is None else float(v)
        return out
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError("`labels` must be a dict {answer: code}, a dict of such dicts by item, or the answers in "
                        f"order (lowest first). Got {type(labels).__name__}.")
    start = 1.0 if lo is None else float(lo)
    return {norm(k): start + i for i, k in enumerate(labels)}


def decode(v: Any, words: Mapping[str, float | None]) -> float | None:
    """A rating cell as a number; NaN for "not answered"; None when it cannot be read."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return np.nan
    if isinstance(v, (bool, np.bool_)):
        return None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    t = norm(v)
    if t == "":
        return np.nan
    if t in words:
        code = words[t]
        return np.nan if code is None else code
    if _NUMBER.match(t):
        return float(t)
    m = _PREFIXED.match(t)
    return float(m.group(1)) if m else None


def code_column(s: pd.Series, words: Mapping[str, float | None], lo: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Codes of a rating column (NaN = not answered) and the mask of unreadable cells. An ordered categorical
    without `words` is coded by category position (``lo``, ``lo + 1``, ...; ``lo`` default 1)."""
    if isinstance(s.dtype, pd.CategoricalDtype) and s.cat.ordered and not words:
        codes = s.cat.codes.to_numpy()
        return np.where(codes < 0, np.nan, codes + (1.0 if lo is None else float(lo))), np.zeros(len(s), bool)
    cells = s.to_numpy(dtype=object)
    uniq: dict[Any, Any] = {}
    vals = np.full(len(cells), np.nan)
    bad = np.zeros(len(cells), dtype=bool)
    for i, v in enumerate(cells):
        key = (type(v), v) if isinstance(v, str) or not pd.isna(v) else "na"
        if key not in uniq:
            uniq[key] = decode(v, words)
        code = uniq[key]
        if code is None:
            bad[i] = True
        else:
            vals[i] = code
    return vals, bad


def says_low_is_most(texts: Sequence[Any], words: Mapping[str, float | None]) -> str | None:
    """The text that says lower numbers mean more important ("1 = most important"), if any."""
    for t in texts:
        if isinstance(t, str) and LOW_IS_MOST.search(t):
            return t
    coded = {k: v for k, v in words.items() if v is not None}
    if len(coded) >= 2:
        low, high = min(coded, key=coded.get), max(coded, key=coded.get)  # type: ignore[arg-type]
        if re.search(r"\b(most|highest|top)\b", low) or re.search(r"\b(least|lowest|bottom)\b", high):
            return low if re.search(r"\b(most|highest|top)\b", low) else high
    return None


def split_multiselect(s: pd.Series, sep: str, col: Any, src: Source, index: pd.Index) -> pd.Series:
    """A check-all-that-apply column with the export's separator, re-joined with ``;`` (missing stays missing)."""
    out = []
    for pos, v in enumerate(s.to_numpy(dtype=object)):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            out.append(np.nan)
            continue
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)
        parts = [x.strip() for x in str(v).split(sep) if x.strip()]
        if sep != ";" and any(";" in x for x in parts):
            raise ValueError(f"{src.name}, {src.where(pos, index)}: the multi-select column {col!r} holds the "
                             f"option {next(x for x in parts if ';' in x)!r}, which contains ';', the separator the "
                             "package joins options with. Fix: remove the ';' from that option in the export.")
        out.append(";".join(parts) if parts else np.nan)
    return pd.Series(out, index=s.index, name=s.name)


def looks_free_text(s: pd.Series) -> bool:
    """Long answers, or short ones unique to almost every respondent (free text that may identify them)."""
    vals = s.dropna().astype(str)
    if vals.empty or pd.api.types.is_numeric_dtype(s):
        return False
    return bool(vals.str.len().median() > 40 or (len(vals) >= 20 and vals.nunique() > 0.9 * len(vals)))


def drop_private(raw: pd.DataFrame, keep: set, free_text: re.Pattern, src: Source) -> pd.DataFrame:
    """Drop free-text columns and platform metadata that identify respondents (one warning for each kind),
    except the columns in `keep` (named by the analyst or mapped to the layout)."""
    ident = [c for c in raw.columns if c not in keep and IDENTIFYING.search(norm(c))]
    text = [c for c in raw.columns if c not in keep and c not in ident
            and (free_text.search(norm(c)) is not None or looks_free_text(raw[c]))]
    if text:
        warnings.warn(
            f"Dropped {len(text)} free-text column(s) of {src.name}: {format_ids(map(str, text))}. "
            "Free text is not used by the analysis (and may identify respondents). To keep one, name it in "
            "`rename=`.", DataRecodeWarning, stacklevel=4)
    if ident:
        warnings.warn(
            f"Dropped {len(ident)} column(s) of {src.name} that identify respondents: {format_ids(map(str, ident))} "
            "(IP addresses, names, e-mails, locations). They are never needed for the analysis.",
            DataRecodeWarning, stacklevel=4)
    return raw.drop(columns=text + ident)


def check_ids(ids: pd.Series, src: Source) -> None:
    """Respondent ids must be present and unique (the message names the lines or rows)."""
    miss = np.flatnonzero(ids.isna().to_numpy())
    if len(miss):
        raise ValueError(f"{src.name}: `respondent_id` is missing on {src.where(miss, ids.index)}. Fix: fill in the "
                         "ids or drop those rows.")
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        raise ValueError(f"{src.name}: `respondent_id` must be unique. Duplicated: {format_ids(ids[dup].unique())} "
                         f"({src.where(np.flatnonzero(dup), ids.index)}). Fix: remove duplicate rows, or name "
                         "another column with `respondent=`.")


def rating_column(
    s: pd.Series, name: str, *, words: Mapping[str, float | None], scale: tuple[float, float] | None,
    src: Source, ids: pd.Series, header: Any, what: str, word_fix: str, lo: float | None = None,
) -> np.ndarray:
    """Codes of one rating column; a ``ValueError`` names the file, lines, column, value, respondents and a fix
    for the first kind of bad cell (unreadable, outside `scale`, not a whole number)."""
    x, unreadable = code_column(s, words, lo)
    with np.errstate(invalid="ignore"):
        outside = ~np.isnan(x) & ((x < scale[0]) | (x > scale[1])) if scale is not None else np.zeros(len(x), bool)
        frac = ~np.isnan(x) & (x != np.round(x))
    for bad, fix in (
        (unreadable, word_fix),
        (outside, "recode those cells, pass the export's scale=(low, high), or na_values=[...] for codes such as "
                  "-99 that mean 'not answered'."),
        (frac, "ratings are whole numbers; round or recode those cells."),
    ):
        if bad.any():
            pos = np.flatnonzero(bad)
            value = s.iloc[pos[0]]
            value = value.item() if isinstance(value, np.generic) else value
            orig = f" (header {header!r})" if header != name else ""
            raise ValueError(
                f"{src.name}: column {name!r}{orig} must hold {what}. Got {value!r} for {len(pos)} respondent(s) "
                f"(respondent_id {format_ids(ids.iloc[pos].tolist())}; {src.where(pos, s.index)}). Fix: {fix}")
    return x


def as_codes(x: np.ndarray, index: pd.Index) -> pd.Series:
    """Whole-number codes as int64 (Int64 where some are missing)."""
    s = pd.Series(x, index=index)
    return s.astype("Int64") if s.isna().any() else s.astype(np.int64)
