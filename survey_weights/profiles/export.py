"""Export weight profiles to schema-versioned JSON / CSV, and read them back exactly.

Profiles carry their own criteria (any item set, in order); the export records them, and :func:`read_profiles`
checks every profile against the criteria its file lists. Exports carry weights, intervals and provenance only:
never respondent-level data or ids (metadata is checked again on export). Profiles from fewer than
``min_cell_size`` respondents are withheld (``SmallGroupWarning``). All writes are atomic
(:mod:`survey_weights._util.io`): a failed export leaves any old file intact.
"""

from __future__ import annotations

import csv
import io
import json
import numbers
import os
import platform
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._util.io import atomic_write_text
from .._version import __version__
from ..criteria import ALL_CRITERIA
from ..exceptions import SmallGroupWarning
from .profile import WeightProfile

__all__ = ["export_profiles", "read_profiles", "SCHEMA_VERSION", "READABLE_VERSIONS", "CSV_COLUMNS"]

#: Version of the export format written by :func:`export_profiles`. Version 2 records each profile's criteria (any
#: item set); version 1 files (the study's six criteria) are still read.
SCHEMA_VERSION: int = 2
#: Versions :func:`read_profiles` reads.
READABLE_VERSIONS: tuple[int, ...] = (1, 2)
#: Columns of the CSV export, one row per profile x criterion. The first seven are the tidy table;
#: the JSON-encoded metadata columns after them make the CSV round trip exact.
CSV_COLUMNS: tuple[str, ...] = (
    "profile", "criterion", "weight", "ci_low", "ci_high", "n_respondents", "source",
    "group", "safety_rule", "model", "data_hash", "schema_version",
)
_FORMATS = ("json", "csv", "both")


def _collect(profiles: Any, min_cell_size: int) -> list[WeightProfile]:
    if isinstance(profiles, WeightProfile):
        items: list[Any] = [profiles]
    elif hasattr(profiles, "profiles") and callable(profiles.profiles):
        items = list(profiles.profiles(min_cell_size=min_cell_size))
    elif isinstance(profiles, Iterable) and not isinstance(profiles, (str, bytes, dict)):
        items = list(profiles)
    else:
        raise TypeError(
            "`profiles` must be a WeightProfile, an iterable of them, or an object with a .profiles() method. "
            f"Got {type(profiles).__name__}."
        )
    bad = [type(p).__name__ for p in items if not isinstance(p, WeightProfile)]
    if bad:
        raise TypeError(f"Every profile must be a WeightProfile. Got {bad[:3]}. Build them with derive_profile().")
    names = [p.name for p in items]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"Profile names must be unique in one export. Duplicated: {dups}. Pass distinct `name=`.")
    for p in items:
        p.check_metadata()  # `group` and friends are mutable dicts: checked again here
    return items


def _criteria(profiles: list[WeightProfile]) -> list[str]:
    """Every criterion of the profiles, in order of first appearance."""
    return list(dict.fromkeys(c for p in profiles for c in p.criteria))


def _json_text(profiles: list[WeightProfile]) -> str:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "criteria": _criteria(profiles),
        "profiles": [p.to_dict() for p in profiles],
        "package_version": __version__,
        "created_with": f"survey_weights {__version__} (Python {platform.python_version()})",
    }
    # json writes floats with repr(), so they read back bit-for-bit; NaN/inf are refused.
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def _meta(obj: Any) -> str:
    return "" if obj is None else json.dumps(obj, sort_keys=True, allow_nan=False)


def _csv_text(profiles: list[WeightProfile]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in profiles:
        for c in p.criteria:
            writer.writerow([
                p.name, c, repr(float(p.weights[c])),
                "" if p.ci_low is None else repr(float(p.ci_low[c])),
                "" if p.ci_high is None else repr(float(p.ci_high[c])),
                p.n_respondents, p.source, _meta(p.group), _meta(p.safety_rule), _meta(p.model),
                "" if p.data_hash is None else p.data_hash, SCHEMA_VERSION,
            ])
    return buf.getvalue()


def _targets(path: Path, fmt: str | None) -> list[tuple[str, Path]]:
    suffix = path.suffix.lower()
    if fmt is None:
        if suffix == "":
            fmt = "both"
        elif suffix in (".json", ".csv"):
            fmt = suffix[1:]
        else:
            raise ValueError(
                f"Cannot infer the export format from suffix {path.suffix!r}. Use a .json or .csv path, "
                "no suffix (writes both), or pass format='json' / 'csv' / 'both'."
            )
    if fmt not in _FORMATS:
        raise ValueError(f"Unknown `format` {fmt!r}. Choose one of {{'json', 'csv', 'both'}}.")
    if fmt == "both":
        base = path.with_suffix("") if suffix in (".json", ".csv") else path
        return [("json", base.with_name(base.name + ".json")), ("csv", base.with_name(base.name + ".csv"))]
    return [(fmt, path)]


def export_profiles(
    profiles: Any,
    path: str | os.PathLike[str],
    *,
    min_cell_size: int = 10,
    format: str | None = None,
) -> list[Path]:
    """Write weight profiles to JSON and/or CSV, withholding small groups.

    Parameters
    ----------
    profiles : WeightProfile, iterable of WeightProfile, or a result with ``.profiles()``
        What to export. Names must be unique. A result (fit, groups, tree, classes, regression, bootstrap) is
        asked for ``result.profiles(min_cell_size=min_cell_size)`` with its default safety rule and level.
    path : str or os.PathLike
        Destination. ``.json`` or ``.csv`` picks the format; a path without suffix writes both
        ``<path>.json`` and ``<path>.csv``.
    min_cell_size : int, default 10
        Profiles with ``n_respondents < min_cell_size`` are never exported (disclosure control);
        each is skipped with a :class:`~survey_weights.exceptions.SmallGroupWarning`.
    format : {"json", "csv", "both"}, optional
        Overrides the suffix rule (with "both", a ``.json``/``.csv`` suffix is replaced).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    ValueError
        Unknown format, duplicate names, metadata with respondent-level data, or no profile left after withholding
        small groups.

    Warns
    -----
    SmallGroupWarning
        For every withheld profile.

    Notes
    -----
    JSON layout (``schema_version`` 2)::

        {"schema_version": 2, "criteria": [every criterion of the profiles, in order of first appearance],
         "profiles": [{"name", "criteria": [this profile's criteria, in order], "weights": {criterion: share},
                       "ci_low", "ci_high", "n_respondents", "source", "group", "safety_rule", "model",
                       "data_hash"}, ...],
         "package_version": "...", "created_with": "..."}

    Profiles may have different criteria (e.g. one without a constraint objective). CSV: one row per profile x
    criterion, in the profile's order, with columns :data:`CSV_COLUMNS` (``group``, ``safety_rule`` and ``model``
    hold JSON). Floats are written with ``repr`` precision, so :func:`read_profiles` returns profiles equal to the
    originals. Both files are serialised fully in memory and then written atomically. Every profile's metadata is
    checked again for respondent-level data (:meth:`WeightProfile.check_metadata`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> w = {"empathy": .3, "active_listening": .2, "self_motivated_change": .1,
    ...      "trust_rapport": .1, "patient_autonomy": .1, "safety": .2}
    >>> p = WeightProfile("pooled", w, n_respondents=335)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "weights.json"
    >>> [f.name for f in export_profiles([p], out)]
    ['weights.json']
    >>> read_profiles(out) == [p]
    True
    """
    if isinstance(min_cell_size, bool) or not isinstance(min_cell_size, numbers.Integral) or min_cell_size < 0:
        raise ValueError(f"`min_cell_size` must be an int >= 0. Got {min_cell_size!r}.")
    items = _collect(profiles, int(min_cell_size))
    kept = []
    for p in items:
        if p.n_respondents < min_cell_size:
            warnings.warn(
                f"Profile {p.name!r} has {p.n_respondents} respondents (< min_cell_size={min_cell_size}); "
                "it is not exported.",
                SmallGroupWarning, stacklevel=2,
            )
        else:
            kept.append(p)
    if not kept:
        raise ValueError(
            f"No profile left to export: all {len(items)} have fewer than min_cell_size={min_cell_size} "
            "respondents. Merge small groups or lower `min_cell_size` deliberately."
        )
    targets = _targets(Path(path), format)
    texts = [(dest, _json_text(kept) if fmt == "json" else _csv_text(kept)) for fmt, dest in targets]
    return [atomic_write_text(dest, text) for dest, text in texts]


def _check_version(v: Any, path: Path) -> int:
    if isinstance(v, bool) or v not in READABLE_VERSIONS:
        raise ValueError(
            f"{str(path)!r} has schema_version {v!r}; this survey_weights ({__version__}) reads schema_version "
            f"{' or '.join(map(str, READABLE_VERSIONS))}. Re-export the profiles with this version, or install the "
            "matching survey_weights."
        )
    return int(v)


def _read_json(path: Path) -> list[WeightProfile]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not valid JSON ({exc}). Was it written by export_profiles()?") from None
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise ValueError(f"{str(path)!r} lacks `schema_version`; it was not written by export_profiles().")
    version = _check_version(doc["schema_version"], path)
    if not isinstance(doc.get("profiles"), list):
        raise ValueError(f"{str(path)!r}: `profiles` must be a list.")
    crit = doc.get("criteria", list(ALL_CRITERIA) if version == 1 else None)
    if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
        raise ValueError(f"{str(path)!r}: `criteria` must be a non-empty list of criterion names. Got {crit!r}. "
                         "Was the file edited by hand? Re-export it with export_profiles().")
    out = []
    for d in doc["profiles"]:
        p = WeightProfile.from_dict(d)
        listed = set(p.criteria) if version > 1 else set(crit)
        extra = [c for c in p.criteria if c not in crit]
        if extra or set(p.criteria) != listed:
            raise ValueError(
                f"{str(path)!r}: profile {p.name!r} has criteria {list(p.criteria)}, which do not match the file's "
                f"criteria {crit}" + (f" (not listed: {extra})" if extra else "") + ". Was the file edited by hand? "
                "Re-export it with export_profiles()."
            )
        out.append(p)
    return out


def _read_csv(path: Path) -> list[WeightProfile]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{str(path)!r} lacks column(s) {missing}; it was not written by export_profiles().")
        rows = list(reader)
    grouped: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        try:
            version = int(r["schema_version"])
        except ValueError:
            version = r["schema_version"]
        _check_version(version, path)
        grouped.setdefault(r["profile"], []).append(r)
    out = []
    for name, rs in grouped.items():
        first = rs[0]
        crit = [r["criterion"] for r in rs]
        dups = sorted({c for c in crit if crit.count(c) > 1})
        if dups or not all(crit):
            raise ValueError(f"{str(path)!r}: profile {name!r} has " + (f"criteria {dups} on more than one row"
                             if dups else "a row without a criterion") + ". Was the file edited by hand? "
                             "Re-export it with export_profiles().")

        def col(key: str, rs: list = rs) -> dict[str, float] | None:
            vals = {r["criterion"]: r[key] for r in rs}
            return None if all(v == "" for v in vals.values()) else {c: float(v) for c, v in vals.items()}
        out.append(WeightProfile(
            name=name, weights=col("weight"), ci_low=col("ci_low"), ci_high=col("ci_high"),
            n_respondents=int(first["n_respondents"]), source=first["source"],
            group=json.loads(first["group"]) if first["group"] else None,
            safety_rule=json.loads(first["safety_rule"]) if first["safety_rule"] else {},
            model=json.loads(first["model"]) if first["model"] else {},
            data_hash=first["data_hash"] or None,
        ))
    return out


def read_profiles(path: str | os.PathLike[str]) -> list[WeightProfile]:
    """Read profiles written by :func:`export_profiles` (``.json`` or ``.csv``).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.json`` or ``.csv`` export.

    Returns
    -------
    list of WeightProfile
        Equal (floats bit-for-bit) to the exported ones, in export order, each with its own criteria.

    Raises
    ------
    ValueError
        Unknown suffix, unsupported ``schema_version``, a profile whose criteria are not those its file lists, or a
        malformed file.

    Notes
    -----
    Reads ``schema_version`` 2 and the older 1 (whose profiles all have the file's ``criteria``, the study's six).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> w = {"empathy": .3, "active_listening": .2, "self_motivated_change": .1,
    ...      "trust_rapport": .1, "patient_autonomy": .1, "safety": .2}
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "w.csv"
    >>> _ = export_profiles(WeightProfile("pooled", w, n_respondents=50), out)
    >>> read_profiles(out)[0].name
    'pooled'
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such export: {str(path)!r}.")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_json(path)
    if suffix == ".csv":
        return _read_csv(path)
    raise ValueError(f"Cannot read {str(path)!r}: expected a .json or .csv file written by export_profiles().")

