"""Shared pipeline steps without a model: the retry rule of train_profiles (stubbed training call)."""

from __future__ import annotations

import pytest

import survey_weights.modpo as modpo
from survey_weights.exceptions import SettingsChangedError
from survey_weights.pipeline import train_profiles


def _stub_training(monkeypatch, errors):
    """Replace train_adapters by a stub that raises ``errors`` in turn, then returns the overwrite flags seen."""
    calls = []

    def fake(profiles, data, **kw):
        calls.append(kw["overwrite"])
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return calls

    monkeypatch.setattr(modpo, "train_adapters", fake)
    monkeypatch.setattr(modpo, "make_accelerator", lambda device=None: None)
    return calls


KW = dict(out=None, model=None, tok=None, cfg=None, rms={}, base_model="b", device=None)


def test_changed_settings_retrain_when_overwrite_is_none(monkeypatch):
    calls = _stub_training(monkeypatch, [SettingsChangedError("x holds an adapter trained with other settings")])
    lines = []
    assert train_profiles({}, None, overwrite=None, log=lines.append, **KW) == [False, True]
    assert calls == [False, True] and "retraining" in lines[0]


def test_changed_settings_with_overwrite_false_raise_the_dedicated_type(monkeypatch):
    _stub_training(monkeypatch, [SettingsChangedError("other settings")])
    with pytest.raises(SettingsChangedError, match="--overwrite"):
        train_profiles({}, None, overwrite=False, **KW)


def test_other_value_errors_are_never_retried_whatever_their_text(monkeypatch):
    calls = _stub_training(monkeypatch, [ValueError("rows trained with other settings are missing")])
    with pytest.raises(ValueError, match="rows trained"):
        train_profiles({}, None, overwrite=None, **KW)
    assert calls == [False]  # no second call: the retry keys on the exception type, not on its message


def test_schedules_hold_one_modpo_config_and_no_copies_of_its_fields():
    from dataclasses import fields

    from survey_weights.pipeline import FULL, QUICK, ExperimentSchedule, MainSchedule

    training_fields = {f.name for f in fields(modpo.MODPOConfig)}
    for cls in (MainSchedule, ExperimentSchedule):
        assert not {f.name for f in fields(cls)} & training_fields, cls
    assert isinstance(MainSchedule().training, modpo.MODPOConfig)
    assert QUICK.training.max_steps < FULL.training.max_steps
    d = MainSchedule().to_dict()
    assert d["training"]["batch_size"] == 8 and d["reward_pairs_per_criterion"] == 48


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda S, E: S(training={"max_steps": 3}), TypeError, "`training` must be a MODPOConfig"),
        (lambda S, E: S(pairs_per_criterion=0), ValueError, "`pairs_per_criterion` must be an int >= 1"),
        (lambda S, E: S(n_eval_prompts=None), ValueError, "`n_eval_prompts`"),
        (lambda S, E: E(safety_weights=(0.5, 1.5)), ValueError, "`safety_weights` must be safety weights in"),
        (lambda S, E: S(training=modpo.MODPOConfig(max_length=64, max_prompt_length=96)), ValueError,
         "max_prompt_length"),
    ],
)
def test_schedules_are_validated_with_fix_it_messages(make, exc, match):
    from survey_weights.pipeline import ExperimentSchedule, MainSchedule

    with pytest.raises(exc, match=match):
        make(MainSchedule, ExperimentSchedule)


def test_training_config_sets_the_jobs_seed_progress_and_steps():
    from survey_weights.pipeline import MainSchedule, training_config

    cfg = training_config(MainSchedule().training, seed=7, progress=False, max_steps=5)
    assert (cfg.seed, cfg.progress, cfg.max_steps, cfg.batch_size) == (7, False, 5, 8)
    with pytest.raises(ValueError, match="max_steps"):
        training_config(MainSchedule().training, seed=0, progress=False, max_steps=0)


def test_run_main_rejects_bad_max_steps_before_any_work(tmp_path):
    from survey_weights.pipeline import run_main

    with pytest.raises(ValueError, match="`max_steps` must be an int > 0"):
        run_main(out=tmp_path / "o", max_steps=0, progress=False)
    assert not (tmp_path / "o").exists()


def test_pipeline_and_its_schedules_import_without_torch():
    import subprocess
    import sys

    code = ("import sys; import survey_weights.pipeline as p; p.MainSchedule(); p.QUICK.training.to_dict(); "
            "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; print(bad); "
            "sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
