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
