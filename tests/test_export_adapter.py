"""Per-respondent adapters on demand (issue 11.4): `run_export_adapter` and `survey-weights export-adapter`."""

from __future__ import annotations

import json

import pytest
import torch
from modpo_helpers import KeywordReward, one_thread, toy_pairs
from peft import PeftModel

from survey_weights.cli import main
from survey_weights.criteria import ALL_CRITERIA
from survey_weights.modpo import MODPOConfig, make_tiny_llama, train_conditioned
from survey_weights.pipeline import parse_weights, run_export_adapter
from survey_weights.profiles import WeightProfile, export_profiles


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 3-step conditioned run over the six criteria (five survey criteria and safety) on the tiny Llama."""
    out = tmp_path_factory.mktemp("cond")
    model, tok = make_tiny_llama()
    cfg = MODPOConfig(max_steps=3, batch_size=4, lr=1e-2, lora_r=2, lora_alpha=4, progress=False)
    with one_thread():
        train_conditioned(toy_pairs(6, criteria=ALL_CRITERIA), criteria=list(ALL_CRITERIA), output_dir=out,
                          model=model, tokenizer=tok, config=cfg,
                          reward_models={c: KeywordReward("crisis" if c == "safety" else "sense")
                                         for c in ALL_CRITERIA})
    return out


def _weights_file(tmp_path):
    w1 = dict(zip(ALL_CRITERIA, (0.3, 0.2, 0.1, 0.1, 0.1, 0.2)))
    w2 = dict(zip(ALL_CRITERIA, (0.1, 0.1, 0.1, 0.1, 0.1, 0.5)))
    path = tmp_path / "weights.json"
    export_profiles([WeightProfile("pooled", w1, n_respondents=333, source="pooled"),
                     WeightProfile("Age 18-24", w2, n_respondents=40, source="subgroup")], path)
    return path


def test_parse_weights_and_its_errors():
    assert parse_weights("empathy=0.2,safety=0.8,") == {"empathy": 0.2, "safety": 0.8}
    for bad, match in [("empathy0.2", "Cannot read"), ("=0.2", "Cannot read"), ("empathy=high", "not a number"),
                       ("safety=0.5,safety=0.5", "twice"), (" , ", "No weights")]:
        with pytest.raises(ValueError, match=match):
            parse_weights(bad)


def test_run_export_adapter_weights_and_profiles(run_dir, tmp_path):
    got = run_export_adapter(run_dir, weights="empathy=0.5,safety=0.5", out=tmp_path / "patient_17")
    assert got == {"patient_17": tmp_path / "patient_17"}
    meta = json.loads((tmp_path / "patient_17" / "profile.json").read_text())
    assert meta["weights"] == {"empathy": 0.5, "safety": 0.5} and meta["training"] == "conditioned"
    pm = PeftModel.from_pretrained(make_tiny_llama()[0], str(tmp_path / "patient_17"))
    assert pm.peft_config["default"].r == 2 * 3  # shared + the two weighted criteria
    paths = run_export_adapter(run_dir, profiles=_weights_file(tmp_path), out=tmp_path / "adapters")
    assert set(paths) == {"pooled", "Age 18-24"} and paths["Age 18-24"] == tmp_path / "adapters" / "age_18-24"
    meta = json.loads((paths["pooled"] / "profile.json").read_text())
    assert meta["provenance"]["n_respondents"] == 333 and meta["provenance"]["source"] == "pooled"
    with one_thread():
        ids = {"input_ids": torch.tensor([[1, 2, 3, 4]])}
        a = PeftModel.from_pretrained(make_tiny_llama()[0], str(paths["pooled"]))(**ids).logits
        b = PeftModel.from_pretrained(make_tiny_llama()[0], str(paths["Age 18-24"]))(**ids).logits
    assert a.shape == b.shape
    with pytest.raises(ValueError, match="exactly one"):
        run_export_adapter(run_dir, out=tmp_path / "x")


def test_cli_export_adapter(run_dir, tmp_path, capsys):
    code = main(["export-adapter", "--run", str(run_dir), "--weights", "empathy=0.2,safety=0.8",
                 "--out", str(tmp_path / "p1"), "--name", "patient 1"])
    assert code == 0 and capsys.readouterr().out.strip() == f"patient 1\t{tmp_path / 'p1'}"
    assert json.loads((tmp_path / "p1" / "profile.json").read_text())["name"] == "patient 1"
    code = main(["export-adapter", "--run", str(run_dir), "--profiles", str(_weights_file(tmp_path)),
                 "--out", str(tmp_path / "all")])
    assert code == 0 and len(capsys.readouterr().out.strip().splitlines()) == 2


@pytest.mark.parametrize("args, message", [
    (["--weights", "empathy=0.5,calm=0.5"], "not trained on"),
    (["--weights", "empathy=1.5,safety=-0.5"], ">= 0"),
    (["--weights", "empathy=0,safety=0"], "no positive weight"),
    (["--weights", "empathy:0.5"], "Cannot read"),
    (["--profiles", "missing.json"], "does not exist"),
])
def test_cli_export_adapter_user_errors_are_one_line_exit_2(run_dir, tmp_path, capsys, args, message):
    code = main(["export-adapter", "--run", str(run_dir), *args, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("survey-weights export-adapter: error:") and message in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "x").exists()


def test_cli_export_adapter_needs_a_run_and_one_source(tmp_path, capsys):
    code = main(["export-adapter", "--run", str(tmp_path), "--weights", "empathy=1", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "No conditioned run" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exc:  # argparse: neither --weights nor --profiles
        main(["export-adapter", "--run", str(tmp_path), "--out", str(tmp_path / "x")])
    assert exc.value.code == 2 and "one of the arguments --weights --profiles is required" in capsys.readouterr().err


def test_cli_export_adapter_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "export-adapter" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["export-adapter", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "examples:" in out and "--weights empathy=0.2,safety=0.8" in out


def test_exports_use_the_runs_calibrated_mixing_unless_asked_for_its_own_mix(run_dir, tmp_path, capsys):
    import shutil

    import numpy as np

    from survey_weights.modpo import ConditionedAdapter, fit_mixing

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    cond = ConditionedAdapter.load(run)
    rng = np.random.default_rng(0)
    s = rng.normal(size=(8, 4, 6))
    x = 0.05 * np.concatenate([rng.normal(size=(8, 4, 1)), s + 0.3 * rng.normal(size=(8, 4, 6))], axis=2)
    fit_mixing(x, s, rng.normal(size=(8, 4)), criteria=cond.criteria, ridge=0.1, run_id=cond.run_id,
               source="toy pool (8 prompts)").save(run / "calibration.json")
    w = "empathy=0.3,active_listening=0.2,safety=0.5"
    run_export_adapter(run, weights=w, out=tmp_path / "cal")
    run_export_adapter(run, weights=w, out=tmp_path / "own", calibrated=False)
    mix = json.loads((tmp_path / "cal" / "profile.json").read_text())["mixing"]
    own = json.loads((tmp_path / "own" / "profile.json").read_text())["mixing"]
    assert mix["calibrated"] and mix["calibration"]["source"] == "toy pool (8 prompts)"
    assert not own["calibrated"] and own["scales"]["shared"] == 1.0 and own["scales"]["safety"] == 0.5
    assert mix["scales"] != own["scales"]
    assert main(["export-adapter", "--run", str(run), "--weights", w, "--out", str(tmp_path / "cli"),
                 "--own-mix"]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "cli" / "profile.json").read_text())["mixing"] == own
