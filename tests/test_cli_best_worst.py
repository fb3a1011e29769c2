"""`survey-weights fit --format best-worst` (issue 13): best-worst tasks from a CSV, simulated by the package's
simulator; every user mistake is one stderr line and exit code 2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights.cli import main
from survey_weights.synthetic import simulate_best_worst, simulate_survey


@pytest.fixture(scope="module")
def tasks():
    df = simulate_best_worst(simulate_survey(120, seed=1, return_truth=True), n_tasks=6, seed=2)
    return df[["respondent_id", "task", "shown", "best", "worst", "age_group"]]


def _csv(tmp_path, df, *, wide=False):
    df = df.copy()
    if wide:
        df[[f"item{j}" for j in range(1, 5)]] = pd.DataFrame(df.pop("shown").tolist(), index=df.index)
    else:
        df["shown"] = df["shown"].str.join(";")
    path = tmp_path / "bw.csv"
    df.to_csv(path, index=False)
    return str(path)


def _direct(df, model="maxdiff"):
    r = sw.Rankings.from_best_worst(df, respondent="respondent_id", task="task", shown="shown", best="best",
                                    worst="worst")
    return sw.fit_best_worst(r, model=model)


@pytest.mark.parametrize("model", ["maxdiff", "sequential"])
def test_fit_best_worst_matches_the_api(tmp_path, tasks, model, capsys):
    out = tmp_path / "fit.csv"
    assert main(["fit", "--format", "best-worst", "--survey", _csv(tmp_path, tasks), "--model", model,
                 "--csv", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert f"Best-worst ({model}) fit" in text and "respondent_id" not in text
    table = pd.read_csv(out).set_index("item")
    assert {"weight", "ci_low", "ci_high"} <= set(table.columns) and "respondent_id" not in table.columns
    ref = _direct(tasks, model)
    np.testing.assert_allclose(table["weight"], ref.weights.reindex(table.index), atol=1e-12)
    assert (table["ci_low"] < table["weight"]).all() and (table["weight"] < table["ci_high"]).all()


def test_item_columns_and_by_group_with_min_cell_size(tmp_path, tasks, capsys):
    out = tmp_path / "g.csv"
    path = _csv(tmp_path, tasks, wide=True)
    assert main(["fit", "--format", "best-worst", "--survey", path, "--shown", "item1,item2,item3,item4",
                 "--by", "age_group", "--min-cell-size", "20", "--csv", str(out)]) == 0
    table = pd.read_csv(out)
    n = tasks.groupby("age_group")["respondent_id"].nunique()
    assert set(table["age_group"]) == set(n.index[n >= 20]) and (n < 20).any()
    assert "withheld" in capsys.readouterr().err
    g = table[table["age_group"] == "18-24"].set_index("item")["weight"]
    ref = _direct(tasks[tasks["age_group"] == "18-24"])
    np.testing.assert_allclose(g, ref.weights.reindex(g.index), atol=1e-10)


@pytest.mark.parametrize(("argv", "needle"), [
    (["--best", "nope"], "nope"),
    (["--shown", "a,b"], "not in"),
    (["--by", "zzz"], "zzz"),
    (["--scale", "1,5"], "--scale"),
    (["--items", "empathy"], "not in `items`"),
])
def test_user_mistakes_are_one_line_exit_2(tmp_path, tasks, argv, needle, capsys):
    assert main(["fit", "--format", "best-worst", "--survey", _csv(tmp_path, tasks), "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("survey-weights fit: error:") and needle in err[0]


def test_bad_model_is_usage_error(tmp_path, tasks, capsys):
    with pytest.raises(SystemExit) as e:
        main(["fit", "--format", "best-worst", "--survey", _csv(tmp_path, tasks), "--model", "logit"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "invalid choice" in err[0]


def test_bad_tasks_and_wrong_format(tmp_path, tasks, capsys):
    bad = tasks.copy()
    bad.loc[0, "worst"] = bad.loc[0, "best"]
    assert main(["fit", "--format", "best-worst", "--survey", _csv(tmp_path, bad), "--quiet"]) == 2
    assert "both best" in capsys.readouterr().err
    assert main(["fit", "--format", "best-worst"]) == 2
    assert "--survey" in capsys.readouterr().err
    assert main(["fit", "--format", "best-worst", "--survey", str(tmp_path / "none.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["fit", "--task", "t", "--quiet"]) == 2  # best-worst options without --format best-worst
    assert "--format best-worst" in capsys.readouterr().err
