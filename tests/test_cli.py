"""The `survey-weights` command line: help texts, version, exit codes and error messages."""

from __future__ import annotations

import json

import pytest

from survey_weights import __version__
from survey_weights.cli import build_parser, main

COMMANDS = ["fit", "profiles", "train-rewards", "adapters", "evaluate", "run", "experiment"]


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    for cmd in COMMANDS:
        assert cmd in out


@pytest.mark.parametrize("cmd", COMMANDS)
def test_subcommand_help_has_examples(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"survey-weights {cmd}" in out
    assert "--seed" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["run", "--mode", "joint"], ["fit", "--vcov", "sandwich"], ["run", "--bogus"], [],
                                  ["run", "--calibration-prompts", "-1"], ["run", "--pool-prompts", "0"]])
def test_usage_errors_are_one_line_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "--help" in err and "usage:" not in err


def test_missing_survey_file_exit_2_with_message(tmp_path, capsys):
    missing = tmp_path / "nope.csv"
    code = main(["run", "--profiles-only", "--survey", str(missing), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "survey-weights run: error:" in err and "nope.csv" in err and "does not exist" in err
    assert "Traceback" not in err


def test_missing_weights_file_exit_2(tmp_path, capsys):
    code = main(["adapters", "--weights", str(tmp_path / "w.json"), "--quiet"])
    assert code == 2 and "Weights file" in capsys.readouterr().err


def test_missing_adapters_dir_exit_2(tmp_path, capsys):
    code = main(["evaluate", "--adapters", str(tmp_path / "none"), "--quiet"])
    assert code == 2 and "No adapters" in capsys.readouterr().err


def test_evaluate_pool_mistakes_exit_2_in_one_line(tmp_path, capsys):
    adapter = tmp_path / "adapters" / "pooled"
    adapter.mkdir(parents=True)
    (adapter / "profile.json").write_text(json.dumps({"name": "pooled", "weights": {"empathy": 1.0}}))
    code = main(["evaluate", "--adapters", str(tmp_path / "adapters"), "--pool", "bundled", "--only", "nope",
                 "--out", str(tmp_path / "ev"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "`only` names ['nope']" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--adapters", str(tmp_path / "adapters"), "--pool", "real"])
    assert exc.value.code == 2


def test_bad_survey_layout_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("respondent_id,foo\n1,2\n2,3\n")
    code = main(["fit", "--survey", str(bad), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and "Traceback" not in err


def test_bad_option_value_is_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--max-steps", "0"])
    assert exc.value.code == 2
    assert "--max-steps" in capsys.readouterr().err


def test_unknown_command_is_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_parser_defaults():
    args = build_parser().parse_args(["run"])
    assert args.out == "outputs" and args.base_model == "smollm2-135m-instruct" and args.seed == 0
    assert not args.profiles_only


def test_fit_writes_tidy_csv(tmp_path, capsys):
    out = tmp_path / "fit.csv"
    assert main(["fit", "--csv", str(out), "--quiet"]) == 0
    text = out.read_text()
    assert "empathy" in text and "weight" in text.splitlines()[0]


def test_profiles_command_writes_weights(tmp_path, capsys):
    assert main(["profiles", "--out", str(tmp_path), "--n-classes", "0", "--quiet"]) == 0
    doc = json.loads((tmp_path / "weights.json").read_text())
    assert doc["profiles"][0]["name"] == "pooled"


def test_run_profiles_only_on_users_survey_csv(tmp_path, capsys):
    from survey_weights.simulate import simulate_survey

    csv = tmp_path / "my_survey.csv"
    simulate_survey(120, seed=3).to_csv(csv, index=False)
    out = tmp_path / "out"
    assert main(["run", "--profiles-only", "--n-classes", "0", "--survey", str(csv), "--out", str(out),
                 "--quiet"]) == 0
    doc = json.loads((out / "weights.json").read_text())
    assert doc["profiles"][0]["name"] == "pooled" and doc["profiles"][0]["n_respondents"] <= 120
    assert (out / "weights.csv").is_file() and (out / "weights.png").is_file()
    assert "respondent_id" not in (out / "weights.csv").read_text()


def test_run_schedule_flags_reach_the_main_schedule():
    from survey_weights.cli import _schedule, build_parser

    assert _schedule(build_parser().parse_args(["run"])).n_calibration_prompts == 20
    assert _schedule(build_parser().parse_args(["run"])).n_pool_prompts == 60  # every held-out prompt
    sched = _schedule(build_parser().parse_args(["run", "--calibration-prompts", "0", "--pool-prompts", "40"]))
    assert sched.n_calibration_prompts is None and sched.n_pool_prompts == 40
    assert _schedule(build_parser().parse_args(["run", "--calibration-prompts", "40"])).n_calibration_prompts == 40
