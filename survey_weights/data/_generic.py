"""The generic layout of :func:`~survey_weights.data.survey.load_survey` (private): any survey, described by its
items, scale and respondent column. Headers stay as they are; every automatic rename is reported."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import format_ids
from ..exceptions import DataRecodeWarning
from ._exports import (
    Source,
    as_codes,
    check_ids,
    drop_private,
    label_maps,
    norm,
    rating_column,
    says_low_is_most,
    split_multiselect,
)

_ID_HEADER = re.compile(r"^(response ?id|respondent(_| )?id|respondent|participant(_| )?id|record(_| )?id|id)$")


def scale_pair(scale: Any) -> tuple[float, float]:
    """``scale`` as ``(low, high)`` floats, checked."""
    try:
        lo, hi = (float(s) for s in scale)
        if any(isinstance(s, (bool, np.bool_)) for s in scale):
            raise TypeError
    except (TypeError, ValueError):
        raise TypeError(f"`scale` must be a pair (low, high) such as (1, 5) or (0, 10). Got {scale!r}.") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"`scale` must be finite with low < high, e.g. (0, 10). Got {scale!r}.")
    return lo, hi


def _find(spec: Any, columns: list[Any], questions: Mapping[Any, str], src: Source) -> tuple[Any, bool]:
    """The column of an item: its header exactly (False: not renamed), else its header ignoring case and spacing,
    its Qualtrics question text, or that text after the last " - " (True: renamed to `spec`)."""
    if spec in columns:
        return spec, False
    key = norm(spec)
    for rule in (lambda c: norm(c), lambda c: norm(questions.get(c, "")),
                 lambda c: norm(questions.get(c, "").rsplit(" - ", 1)[-1])):
        hits = [c for c in columns if rule(c) == key]
        if len(hits) > 1:
            raise ValueError(f"{src.name}: item {spec!r} matches columns {hits[0]!r} and {hits[1]!r}. Fix: name the "
                             "item by its column header (e.g. the Qualtrics column id).")
        if hits:
            return hits[0], True
    raise ValueError(f"{src.name}: no column for item {spec!r} (parameter `items`). Headers: "
                     f"{format_ids(columns, limit=12)}. Fix: name each item by its column header (or, in a Qualtrics "
                     "export, its question text), or correct the spelling.")


def _items(items: Any, columns: list[Any], questions: Mapping[Any, str], src: Source) -> list[tuple[Any, Any, bool]]:
    """``(column, name, renamed automatically)`` of each item, in order."""
    if isinstance(items, (str, bytes)) or not isinstance(items, (Sequence, Mapping)):
        raise TypeError(f"`items` must be a list of rating columns (or a dict {{column: name}}). Got {items!r}. "
                        "Fix: e.g. items=['Q5_1', 'Q5_2', 'Q5_3'].")
    pairs = list(items.items()) if isinstance(items, Mapping) else [(it, None) for it in items]
    if not pairs:
        raise ValueError("`items` is empty. Fix: name the rating columns of your survey.")
    out = []
    for spec, name in pairs:
        col, fuzzy = _find(spec, columns, questions, src)
        out.append((col, spec if name is None else name, fuzzy and name is None and spec != col))
    names = [n for _, n, _ in out]
    dup = sorted({str(n) for n in names if names.count(n) > 1})
    if dup or len({c for c, _, _ in out}) < len(out):
        raise ValueError(f"`items` names a column (or item) more than once: {format_ids(dup or [c for c, _, _ in out])}. "
                         "Fix: list each rating column once.")
    return out


def _respondent(respondent: Any, columns: list[Any], src: Source) -> tuple[Any, bool]:
    """The id column and whether it was found automatically (None: ids 1..n)."""
    if respondent is not None:
        if respondent in columns:
            return respondent, False
        raise ValueError(f"{src.name}: no column {respondent!r} (parameter `respondent`). Headers: "
                         f"{format_ids(columns, limit=12)}. Fix: name the column of respondent ids.")
    if "respondent_id" in columns:
        return "respondent_id", False
    hits = [c for c in columns if _ID_HEADER.match(norm(c))]
    if len(hits) > 1:
        raise ValueError(f"{src.name}: columns {hits[0]!r} and {hits[1]!r} both look like respondent ids. Fix: pass "
                         f"respondent={hits[0]!r} (or the right one).")
    return (hits[0], True) if hits else (None, False)


def _check_renames(mapping: dict[Any, Any], columns: list[Any], src: Source) -> None:
    seen: dict[Any, Any] = {}
    for col, target in mapping.items():
        if target in seen:
            raise ValueError(f"{src.name}: columns {seen[target]!r} and {col!r} would both be named {target!r}. "
                             f"Fix: pass rename={{{col!r}: 'another_name'}}, or drop one of them.")
        seen[target] = col
        if target in columns and target not in mapping:
            raise ValueError(f"{src.name}: column {col!r} would be named {target!r}, but the export already has a "
                             f"column {target!r}. Fix: pass rename={{{target!r}: 'another_name'}}.")


def load_generic(raw: pd.DataFrame, src: Source, *, items: Any, free_text: re.Pattern, scale: Any, respondent: Any,
                 rename: Any, labels: Any, reverse: Any, multiselect: Any, sep: str) -> pd.DataFrame:
    """:func:`~survey_weights.data.survey.load_survey` for a survey not in the study's layout."""
    columns = list(raw.columns)
    if items is None:
        raise ValueError(
            f"{src.name} is not in the study's layout (none of its item texts or criteria names among the headers "
            f"{format_ids(columns, limit=8)}). Fix: name the rating items of your survey and their scale, e.g. "
            "load_survey(path, items=['Q5_1', 'Q5_2', 'Q5_3'], scale=(0, 10)), or pass layout='study'.")
    explicit = dict(rename or {})
    unknown = [k for k in explicit if k not in columns]
    if unknown:
        raise ValueError(f"{src.name}: `rename` names {format_ids(unknown)}, which are not headers of the export "
                         f"({format_ids(columns, limit=12)}). Fix: use the export's headers as keys.")
    specs = [(c, explicit.get(c, n) if n == c else n, fz) for c, n, fz in _items(items, columns, src.questions, src)]
    auto: dict[Any, Any] = {}
    for col, name, fuzzy in specs:
        if col in explicit and explicit[col] != name:
            raise ValueError(f"{src.name}: column {col!r} is renamed {explicit[col]!r} by `rename` and {name!r} by "
                             "`items`. Fix: name it in one place.")
        if name != col:
            (auto if fuzzy else explicit)[col] = name
    rid, rid_auto = _respondent(respondent, columns, src)
    if rid is not None and rid != "respondent_id":
        if rid in explicit or rid in {c for c, _, _ in specs}:
            raise ValueError(f"{src.name}: column {rid!r} cannot be both the respondent id and renamed or an item. "
                             "Fix: pass respondent= naming the id column.")
        (auto if rid_auto else explicit)[rid] = "respondent_id"
    mapping = {**explicit, **auto}
    _check_renames(mapping, columns, src)
    item_cols, names = [c for c, _, _ in specs], [n for _, n, _ in specs]
    seps = _multiselect(multiselect, sep, columns, mapping, src)
    df = drop_private(raw, set(mapping) | set(item_cols) | set(seps) | {rid}, free_text, src).rename(columns=mapping)
    if "respondent_id" not in df.columns:
        df.insert(0, "respondent_id", np.arange(1, len(df) + 1, dtype=np.int64))
    ids = df["respondent_id"]
    check_ids(ids, src)
    lo0 = None if scale is None else scale_pair(scale)[0]
    words = label_maps(labels, names, item_cols, lo0)
    bounds = _known_scale(scale, words, df, names, src)
    if reverse is None:
        for col, name in zip(item_cols, names):
            cells = [v for v in pd.unique(raw[col].dropna().astype(str))[:50]]
            said = says_low_is_most([str(col), src.questions.get(col, ""), *cells], words[name])
            if said is not None:
                raise ValueError(
                    f"{src.name}: item {name!r} says {said!r}: there lower numbers mean more important, but the "
                    "package reads higher ratings as more important. Fix: pass reverse=True (or reverse=[...] naming "
                    "the reverse-coded items) to recode them, or reverse=False if higher already means more "
                    "important.")
    what = "whole-number ratings" + ("" if bounds is None else f" {bounds[0]:g}-{bounds[1]:g}") + (
        " (or the answer words of `labels`)" if labels is not None else "")
    word_fix = ("add that answer to `labels` (or na_values=[...] if it means 'not answered')." if labels is not None
                else "map the answer words to numbers with labels={'<answer>': code, ...} (or the words in order, "
                     "lowest first; or an ordered pandas Categorical), or na_values=[...] if it means 'not answered'.")
    coded = {name: rating_column(df[name], name, words=words[name], scale=bounds, src=src, ids=ids, header=col,
                                 what=what, word_fix=word_fix, lo=lo0 if bounds is None else bounds[0])
             for col, name in zip(item_cols, names)}
    inferred = bounds is None
    if inferred:
        allx = np.concatenate(list(coded.values()))
        if np.isnan(allx).all():
            raise ValueError(f"{src.name}: the items {format_ids(names)} hold no answers at all. Fix: check `items`.")
        bounds = (float(np.nanmin(allx)), float(np.nanmax(allx)))
    flipped = _reverse_names(reverse, names, item_cols, src)
    if flipped and inferred:
        raise ValueError("Reverse coding (`reverse`) maps x to low + high - x, so it needs the scale's ends, not the "
                         f"range seen in the data {bounds}. Fix: pass scale=(low, high).")
    for name in names:
        x = bounds[0] + bounds[1] - coded[name] if name in flipped else coded[name]
        df[name] = as_codes(x, df.index)
    for col, s in seps.items():
        name = mapping.get(col, col)
        df[name] = split_multiselect(df[name], s, name, src, df.index)
    out = df[["respondent_id", *names] + [c for c in df.columns if c != "respondent_id" and c not in names]]
    out.attrs.update(layout="generic", source=src.name, export=src.export, items=names, scale=bounds,
                     scale_inferred=inferred, reversed=flipped, renamed={k: v for k, v in mapping.items() if k != v},
                     **({"question_text": {mapping.get(c, c): q for c, q in src.questions.items() if
                                           mapping.get(c, c) in out.columns}} if src.questions else {}))
    if auto:
        warnings.warn(f"Renamed {len(auto)} column(s) of {src.name}: "
                      + ", ".join(f"{k!r} -> {v!r}" for k, v in auto.items())
                      + ". To choose other names, pass rename={...}, respondent= or items={column: name}.",
                      DataRecodeWarning, stacklevel=3)
    return out


def _known_scale(scale: Any, words: Mapping[str, Mapping], df: pd.DataFrame, names: list[Any],
                 src: Source) -> tuple[float, float] | None:
    """The scale given, else the range of the labels' codes, else the ordered categoricals' (None: from the data)."""
    cats = {n: len(df[n].cat.categories) for n in names
            if isinstance(df[n].dtype, pd.CategoricalDtype) and df[n].cat.ordered and not words[n]}
    if scale is not None:
        lo, hi = scale_pair(scale)
        for n, k in cats.items():
            if k != hi - lo + 1:
                raise ValueError(f"{src.name}: item {n!r} is an ordered Categorical of {k} categories, but scale="
                                 f"{scale!r} has {hi - lo + 1:g} points. Fix: pass the scale that matches the "
                                 "categories, or labels= mapping each category to its code.")
        return lo, hi
    codes = [v for n in names for v in words[n].values() if v is not None]
    if codes:
        return float(min(codes)), float(max(codes))
    if cats and len(cats) == len(names):
        return 1.0, float(max(cats.values()))
    return None


def _reverse_names(reverse: Any, names: list[Any], cols: list[Any], src: Source) -> list[Any]:
    if reverse is None or reverse is False:
        return []
    if reverse is True:
        return list(names)
    if isinstance(reverse, (str, bytes)) or not isinstance(reverse, Sequence):
        raise TypeError(f"`reverse` must be a list of items, True (all) or False (none). Got {reverse!r}.")
    by_col = dict(zip(cols, names))
    bad = [r for r in reverse if r not in names and r not in by_col]
    if bad:
        raise ValueError(f"{src.name}: `reverse` names {format_ids(bad)}, which are not items. Items: "
                         f"{format_ids(names, limit=12)}. Fix: list reverse-coded items by name.")
    return [r if r in names else by_col[r] for r in reverse]


def _multiselect(multiselect: Any, sep: str, columns: list[Any], mapping: Mapping[Any, Any],
                 src: Source) -> dict[Any, str]:
    """``{export column: separator}`` of the multi-select columns (named by header or by their new name)."""
    if multiselect is None:
        return {}
    if isinstance(multiselect, (str, bytes)) or not isinstance(multiselect, (Sequence, Mapping)):
        raise TypeError(f"`multiselect` must be a list of columns or a dict {{column: separator}}. Got "
                        f"{multiselect!r}.")
    given = dict(multiselect) if isinstance(multiselect, Mapping) else {c: sep for c in multiselect}
    back = {v: k for k, v in mapping.items()}
    out = {}
    for c, s in given.items():
        col = c if c in columns else back.get(c)
        if col is None:
            raise ValueError(f"{src.name}: `multiselect` names {c!r}, which is not a column. Headers: "
                             f"{format_ids(columns, limit=12)}.")
        if not isinstance(s, str) or not s:
            raise ValueError(f"The separator of multi-select column {c!r} must be a non-empty string. Got {s!r}.")
        out[col] = s
    return out
