"""Tests for survey_weights.profiles.export and survey_weights._util.io."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from survey_weights._util.io import atomic_write, atomic_write_text
from survey_weights.criteria import ALL_CRITERIA
from survey_weights.exceptions import SmallGroupWarning
from survey_weights.profiles import WeightProfile
from survey_weights.profiles import export as export_mod
from survey_weights.profiles.export import SCHEMA_VERSION, export_profiles, read_profiles


def make_profile(name="pooled", n=335, seed=0, ci=True, **kw):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(len(ALL_CRITERIA)))  # awkward floats on purpose
    w = pd.Series(w, index=ALL_CRITERIA)
    lo = hi = None
    if ci:
        lo = (w - rng.uniform(0, 0.05, len(w))).clip(lower=0)
        hi = (w + rng.uniform(0, 0.05, len(w))).clip(upper=1)
    kw.setdefault("model", {"name": "plackett_luce", "npseudo": 0.5, "loglik": -1234.56789012345, "converged": True})
    kw.setdefault("safety_rule", {"rule": "floor", "floor": 0.2, "share": float(w["safety"])})
    return WeightProfile(name=name, weights=w, ci_low=lo, ci_high=hi, n_respondents=n, **kw)


@pytest.fixture
def profiles():
    return [
        make_profile("pooled", 335, 0, data_hash="d41d8cd9"),
        make_profile("age_group=18-24", 61, 1, source="group", group={"age_group": "18-24"}),
        make_profile("manual", 20, 2, ci=False, source="manual"),
    ]


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_exact_round_trip(tmp_path, profiles, suffix):
    path = tmp_path / f"weights{suffix}"
    written = export_profiles(profiles, path)
    assert written == [path]
    back = read_profiles(path)
    assert back == profiles
    for a, b in zip(back, profiles):  # bit-for-bit floats
        assert a.weights.to_numpy().tobytes() == b.weights.to_numpy().tobytes()


def test_no_suffix_writes_both(tmp_path, profiles):
    written = export_profiles(profiles, tmp_path / "weights")
    assert sorted(p.name for p in written) == ["weights.csv", "weights.json"]
    assert read_profiles(tmp_path / "weights.json") == read_profiles(tmp_path / "weights.csv") == profiles


def test_json_schema(tmp_path, profiles):
    path = tmp_path / "w.json"
    export_profiles(profiles, path)
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == SCHEMA_VERSION == 2
    assert doc["criteria"] == list(ALL_CRITERIA)
    assert {"package_version", "created_with"} <= set(doc)
    entry = doc["profiles"][0]
    assert set(entry) == {"name", "criteria", "weights", "ci_low", "ci_high", "n_respondents", "source", "group",
                          "safety_rule", "model", "data_hash"}
    assert list(entry["weights"]) == entry["criteria"] == list(ALL_CRITERIA)


def test_csv_layout(tmp_path, profiles):
    path = tmp_path / "w.csv"
    export_profiles(profiles, path)
    df = pd.read_csv(path)
    assert list(df.columns[:7]) == ["profile", "criterion", "weight", "ci_low", "ci_high", "n_respondents", "source"]
    assert len(df) == len(profiles) * len(ALL_CRITERIA)


def test_accepts_single_and_profiles_method(tmp_path, profiles):
    export_profiles(profiles[0], tmp_path / "one.json")
    assert read_profiles(tmp_path / "one.json") == [profiles[0]]

    asked = []

    class Grouped:  # the results' one signature: profiles(*, safety, min_cell_size, level)
        def profiles(self, *, safety=None, min_cell_size=None, level=0.95):
            asked.append(min_cell_size)
            return iter(profiles)

    export_profiles(Grouped(), tmp_path / "g.json", min_cell_size=12)
    assert read_profiles(tmp_path / "g.json") == profiles
    assert asked == [12]
    export_profiles((p for p in profiles), tmp_path / "gen.json")
    assert len(read_profiles(tmp_path / "gen.json")) == 3


def test_small_cells_never_exported(tmp_path, profiles):
    small = make_profile("age_group=55+", 7, 3, source="group", group={"age_group": "55+"})
    path = tmp_path / "w"
    with pytest.warns(SmallGroupWarning, match="age_group=55\\+"):
        export_profiles([*profiles, small], path)
    for f in ("w.json", "w.csv"):
        text = (tmp_path / f).read_text()
        assert "55+" not in text
    assert [p.name for p in read_profiles(tmp_path / "w.json")] == [p.name for p in profiles]
    with pytest.warns(SmallGroupWarning), pytest.raises(ValueError, match="No profile left"):
        export_profiles([small], tmp_path / "x.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export_profiles([small], tmp_path / "y.json", min_cell_size=5)


def test_no_respondent_ids_in_exports(tmp_path, profiles):
    export_profiles(profiles, tmp_path / "w")
    for f in ("w.json", "w.csv"):
        assert "respondent_id" not in (tmp_path / f).read_text()
    with pytest.raises(ValueError, match="respondent-level"):
        make_profile("bad", 50, model={"name": "pl", "respondent_id": [1, 2, 3]})


def test_atomic_write_keeps_old_file_on_failure(tmp_path, profiles, monkeypatch):
    path = tmp_path / "w.json"
    export_profiles(profiles, path)
    before = path.read_bytes()

    def boom(_profiles):
        raise RuntimeError("serialisation failed")

    monkeypatch.setattr(export_mod, "_json_text", boom)
    with pytest.raises(RuntimeError, match="serialisation failed"):
        export_profiles(profiles[:1], path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.json"]  # no temp file left behind


def test_atomic_write_failure_inside_block(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    with pytest.raises(ValueError, match="halfway"):
        with atomic_write(path) as fh:
            fh.write("new, partial")
            raise ValueError("halfway")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "f.txt", "x")


def test_schema_version_checked(tmp_path, profiles):
    path = tmp_path / "w.json"
    export_profiles(profiles, path)
    doc = json.loads(path.read_text())
    doc["schema_version"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="schema_version 99"):
        read_profiles(path)
    path.write_text(json.dumps({"profiles": []}))
    with pytest.raises(ValueError, match="schema_version"):
        read_profiles(path)
    csv_path = tmp_path / "w.csv"
    export_profiles(profiles, csv_path)
    csv_path.write_text(csv_path.read_text().replace(",2\n", ",7\n"))
    with pytest.raises(ValueError, match="schema_version 7"):
        read_profiles(csv_path)


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        (("w.txt",), {}, ValueError, "suffix"),
        (("w.json",), {"format": "xml"}, ValueError, "format"),
        (("w.json",), {"min_cell_size": -1}, ValueError, "min_cell_size"),
    ],
)
def test_bad_arguments(tmp_path, profiles, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        export_profiles(profiles, tmp_path / args[0], **kwargs)


def test_bad_profiles(tmp_path, profiles):
    with pytest.raises(TypeError, match="WeightProfile"):
        export_profiles([{"name": "x"}], tmp_path / "w.json")
    with pytest.raises(TypeError, match="profiles"):
        export_profiles(42, tmp_path / "w.json")
    with pytest.raises(ValueError, match="unique"):
        export_profiles([profiles[0], profiles[0]], tmp_path / "w.json")
    with pytest.raises(ValueError, match="json or .csv"):
        (tmp_path / "w.txt").write_text("x")
        read_profiles(tmp_path / "w.txt")
