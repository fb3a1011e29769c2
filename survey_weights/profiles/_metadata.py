"""Metadata of a weight profile (``group``, ``safety_rule``, ``model``): JSON-native values, never respondent data.

:func:`jsonable` normalises a metadata dict to JSON-native types; :func:`check_not_respondent_level` refuses metadata
that carries respondent-level values, by key (a name that looks like a respondent identifier: ``ResponseId``,
``respondent_id``, ``participant``, ``email``, ``IPAddress``, ...) or by value (a list, array or mapping nested in
the metadata with at least as many entries as the profile has respondents: one value per respondent). Both run when a
:class:`~survey_weights.profiles.WeightProfile` is built and again in every export.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["check_not_respondent_level", "is_identifier_name", "jsonable"]

_ID_PATTERNS = (
    re.compile(r"^(respondent|participant|recipient|interviewee)s?(id|ids|number|no|uuid|guid|key)?$"),
    re.compile(r"^(subject|patient|person|user|response|record|case|member|student|employee|customer|client)s?"
               r"(id|ids|uuid|guid|key)$"),
    re.compile(r"^(id|ids|uuid|guid)$"),
    re.compile(r"^recipient"),
    re.compile(r"(email|ipaddress|latitude|longitude|phone|externalreference|externaldatareference)"),
)


def is_identifier_name(name: Any) -> bool:
    """True when `name` looks like a respondent identifier (``ResponseId``, ``respondent_id``, ``id``, ``email``...).

    Case, underscores, spaces and dashes are ignored. A covariate named like ``site_id`` (a clinic, not a person) is
    not an identifier name.

    Examples
    --------
    >>> [is_identifier_name(k) for k in ("ResponseId", "respondent_id", "ID", "RecipientEmail", "site_id", "age")]
    [True, True, True, True, False, False]
    """
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return any(p.search(key) for p in _ID_PATTERNS)


def jsonable(obj: Any, where: str) -> Any:
    """Normalise to JSON-native types (tuples -> lists, numpy scalars -> Python); reject others.

    Raises
    ------
    TypeError
        A key that is not a str, or a value that is not JSON-compatible.
    ValueError
        A non-finite number, or a key that looks like a respondent identifier.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        val = float(obj)
        if not math.isfinite(val):
            raise ValueError(f"`{where}` must hold finite numbers only. Got {val!r}.")
        return val
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"`{where}` keys must be str. Got {k!r} of type {type(k).__name__}.")
            _check_key(k, where)
            out[k] = jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, where) for v in obj]
    raise TypeError(
        f"`{where}` must hold JSON-compatible values (str, number, bool, None, list, dict). "
        f"Got {_short(obj)} of type {type(obj).__name__}. Fix: store a summary (a number or a short list) instead."
    )


def _check_key(key: str, where: str) -> None:
    if is_identifier_name(key):
        raise ValueError(
            f"`{where}` must not carry respondent-level data: key {key!r} looks like a respondent identifier. "
            "Fix: remove it (profiles and exports hold group-level weights only)."
        )


def _length(obj: Any) -> int | None:
    if isinstance(obj, (str, bytes)):
        return None
    if isinstance(obj, (list, tuple, Mapping, np.ndarray)) or (hasattr(obj, "__len__") and hasattr(obj, "dtype")):
        try:
            return len(obj)
        except TypeError:  # a 0-d array
            return None
    return None


def check_not_respondent_level(meta: Any, n_respondents: int, where: str) -> None:
    """Refuse metadata that carries one value per respondent (by key name, or by the length of a nested value).

    Parameters
    ----------
    meta : dict or None
        ``group``, ``safety_rule`` or ``model`` of a profile.
    n_respondents : int
        Respondents behind the profile. With at least 2, a list, array, Series or mapping nested anywhere in `meta`
        with ``n_respondents`` or more entries counts as respondent-level.
    where : str
        Name of the metadata, for the message.

    Raises
    ------
    ValueError
        Naming the key and the fix.
    """
    if not isinstance(meta, Mapping):
        return

    def walk(obj: Any, path: str, nested: bool) -> None:
        n = _length(obj)
        if nested and n is not None and n_respondents >= 2 and n >= n_respondents:
            raise ValueError(
                f"`{path}` holds {n} values for a profile of {n_respondents} respondents: that is respondent-level "
                "data, which profiles and exports never carry. Fix: store a group-level summary (a count, a mean, a "
                "range) instead, or leave it out."
            )
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                _check_key(str(k), path)
                walk(v, f"{path}[{k!r}]", True)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v, path, True)

    walk(meta, where, False)


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."
