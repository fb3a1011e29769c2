"""The CLI for any survey (issue 15.3/15.4): the analyst's items, scale and respondent column, any --by factors,
--n-classes auto, the constraint objective, sampling weights, and every user mistake as one line + exit 2."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from survey_weights.cli import main


def _generic_survey(tmp_path, n=120, seed=5):
    """8 criteria rated 0-10 by `pid`, blank cells, a site and a weight column: not the study's layout."""
    rng = np.random.default_rng(seed)
    crits = [f"crit_{k}" for k in range(8)]
    base = rng.normal(size=8)
    x = np.clip(np.round(5 + 2 * (base + rng.normal(size=(n, 8)))), 0, 10)
    x[rng.random(x.shape) < 0.05] = np.nan
    df = pd.DataFrame(x, columns=crits)
    df.insert(0, "pid", [f"P{i:03d}" for i in range(n)])
    df["site"] = rng.choice(["north", "south", "east"], n)
    df["wt"] = rng.uniform(0.5, 2.0, n).round(3)
    path = tmp_path / "survey.csv"
    df.to_csv(path, index=False)
    return path, crits


def _run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_profiles_for_an_8_criterion_0_to_10_survey(tmp_path, capsys):
    path, crits = _generic_survey(tmp_path)
    code, out, err = _run(["profiles", "--survey", str(path), "--items", ",".join(crits), "--scale", "0,10",
                           "--respondent", "pid", "--by", "site", "--n-classes", "0", "--no-safety",
                           "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "o" / "weights.json").read_text())
    assert [p["name"] for p in doc["profiles"]][0] == "pooled"
    assert set(doc["profiles"][0]["weights"]) == set(crits)  # no safety added, the analyst's criteria
    assert all(p["group"] is None or set(p["group"]) == {"site"} for p in doc["profiles"])
    assert "P001" not in (tmp_path / "o" / "weights.json").read_text()  # no respondent ids anywhere
    code, _, err = _run(["profiles", "--survey", str(path), "--items", ",".join(crits), "--scale", "0,10",
                         "--respondent", "pid", "--n-classes", "0", "--constraint", "harm_avoidance=share:0.3",
                         "--by", "site", "--out", str(tmp_path / "c"), "--quiet"], capsys)
    assert code == 0, err
    pooled = json.loads((tmp_path / "c" / "weights.json").read_text())["profiles"][0]
    assert pooled["weights"]["harm_avoidance"] == pytest.approx(0.3)


def test_fit_with_sampling_weights_and_robust_ses(tmp_path, capsys):
    path, crits = _generic_survey(tmp_path)
    common = ["fit", "--survey", str(path), "--items", ",".join(crits), "--scale", "0,10", "--respondent", "pid"]
    code, out, err = _run([*common, "--sampling-weights", "wt", "--csv", str(tmp_path / "f.csv")], capsys)
    assert code == 0, err
    assert "robust" in out and "design effect" in out
    code, out, err = _run([*common, "--vcov", "cluster", "--cluster", "site"], capsys)
    assert code == 0, err and "cluster" in out


def test_by_a_respondent_id_column_is_refused(tmp_path, capsys):
    code, out, err = _run(["fit", "--by", "respondent_id", "--csv", str(tmp_path / "f.csv"), "--quiet"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "respondent_id" in err, err
    assert not (tmp_path / "f.csv").exists() and out == ""
    path, crits = _generic_survey(tmp_path)
    df = pd.read_csv(path).assign(email_hash=lambda d: [f"h{i}" for i in range(len(d))])
    df.to_csv(path, index=False)
    code, out, err = _run(["fit", "--survey", str(path), "--items", ",".join(crits), "--scale", "0,10",
                           "--respondent", "pid", "--by", "email_hash", "--quiet"], capsys)
    assert code == 2 and "email_hash" in err and len(err.strip().splitlines()) == 1, err


def test_small_groups_are_withheld_from_fit_by(capsys):
    code, out, err = _run(["fit", "--by", "age_group", "--min-cell-size", "40", "--quiet"], capsys)
    assert code == 0, err
    assert "45-54" not in out and "55+" not in out and "18-24" in out  # 28 and 29 respondents: withheld


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write read-only directories")
def test_read_only_output_directory(tmp_path, capsys):  # pragma: no cover - CI runs as root
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    code, _, err = _run(["profiles", "--out", str(ro / "x"), "--quiet"], capsys)
    assert code == 2 and "writable" in err


def test_output_path_mistakes_are_one_line_and_exit_2_before_work(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args, needle in ((["profiles", "--out", str(afile)], "afile"),
                         (["profiles", "--out", str(afile / "sub")], "afile"),
                         (["fit", "--csv", str(tmp_path)], "is a directory"),
                         (["run", "--profiles-only", "--out", str(afile)], "afile"),
                         (["fit", "--scale", "a,b"], "--scale"),
                         (["profiles", "--n-classes", "many", "--out", str(tmp_path / "o")], "--n-classes"),
                         (["profiles", "--constraint", "safety=max:2", "--out", str(tmp_path / "o")], "--constraint"),
                         (["fit", "--items", "a,b", "--survey", str(afile)], "afile")):
        code, out, err = _run(args, capsys)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and needle in err, (args, err)
        assert "Traceback" not in err and "site-packages" not in err


def test_warnings_are_one_line_without_internal_paths(tmp_path, capsys):
    path, crits = _generic_survey(tmp_path)
    df = pd.read_csv(path)
    df.loc[0, crits[1:]] = np.nan  # one respondent with a single rating: dropped, with a warning
    df.to_csv(path, index=False)
    code, out, err = _run(["fit", "--survey", str(path), "--items", ",".join(crits), "--scale", "0,10",
                           "--respondent", "pid"], capsys)
    assert code == 0
    assert "Dropped 1 respondent" in err and "survey_weights/" not in err
    assert "of 120 rows" in err  # the respondent count is explained
