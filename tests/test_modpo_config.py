"""MODPOConfig validation, profile normalisation and input errors of train_adapters (no training)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pandas as pd
import pytest
from modpo_helpers import KeywordReward, toy_pairs

from survey_weights.modpo import (
    MODPOConfig,
    RewardModelConfig,
    as_pairs_frame,
    normalize_profiles,
    profile_dirname,
    train_adapters,
)
from survey_weights.profiles.training_spec import main_objective_of


def test_config_defaults_and_frozen():
    cfg = MODPOConfig()
    assert cfg.beta == 0.1 and cfg.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.beta = 0.2  # type: ignore[misc]
    assert MODPOConfig(target_modules=["q_proj"]).target_modules == ("q_proj",)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"beta": -1.0}, ValueError, "beta"),
        ({"beta": "0.1"}, TypeError, "beta"),
        ({"lora_r": 0}, ValueError, "lora_r"),
        ({"lora_dropout": 1.0}, ValueError, "lora_dropout"),
        ({"target_modules": "q_proj"}, TypeError, "target_modules"),
        ({"max_steps": 0}, ValueError, "max_steps"),
        ({"lr_scheduler": "step"}, ValueError, "lr_scheduler"),
        ({"max_prompt_length": 600}, ValueError, "max_prompt_length"),
    ],
)
def test_config_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MODPOConfig(**kwargs)


def test_training_key_leaves_out_display_and_speed_fields_and_precision_is_gone():
    key = MODPOConfig().training_key()
    assert "progress" not in key and "precompute_batch_size" not in key
    assert MODPOConfig(progress=False, precompute_batch_size=2).training_key() == key
    assert MODPOConfig(lr=1e-3).training_key() != key
    assert RewardModelConfig(progress=True).training_key() == RewardModelConfig().training_key()
    with pytest.raises(TypeError, match="precision"):  # dead field removed (nothing read it)
        MODPOConfig(precision="auto")


def test_profiles_accept_mapping_objects_and_dicts():
    obj = SimpleNamespace(name="Group A", weights=pd.Series({"empathy": 0.6, "safety": 0.4}))
    assert normalize_profiles(obj)[0].weight_dict == {"empathy": 0.6, "safety": 0.4}
    profs = normalize_profiles([obj, {"name": "b", "weights": {"empathy": 1.0}}])
    assert [p.name for p in profs] == ["Group A", "b"]
    assert normalize_profiles({"x": {"safety": 1.0}})[0].name == "x"


def test_profile_name_collisions():
    with pytest.raises(ValueError, match="directory"):
        normalize_profiles({"Group A": {"empathy": 1.0}, "group_a": {"empathy": 1.0}})
    with pytest.raises(ValueError, match="duplicate"):
        normalize_profiles(
            [{"name": "a", "weights": {"empathy": 1}}, {"name": "a", "weights": {"safety": 1}}]
        )
    with pytest.raises(ValueError, match="empty directory"):
        normalize_profiles({"???": {"empathy": 1.0}})
    assert profile_dirname("Women 55+ / rural") == "women_55_rural"


def test_profile_weight_errors():
    with pytest.raises(ValueError, match="empathy"):
        normalize_profiles({"a": {"empathy": -0.1, "safety": 1.1}})
    with pytest.raises(ValueError, match="no positive weight"):
        normalize_profiles({"a": {"empathy": 0.0}})
    with pytest.raises(ValueError, match="empty"):
        normalize_profiles({})


def test_main_objective_default_and_override():
    p = normalize_profiles({"a": {"empathy": 0.2, "active_listening": 0.3, "safety": 0.5}})[0]
    assert main_objective_of(p) == "active_listening"  # largest *survey* criterion, safety excluded
    assert main_objective_of(p, "safety") == "safety"
    with pytest.raises(ValueError, match="weight > 0"):
        main_objective_of(p, "patient_autonomy")
    q = normalize_profiles({"q": {"brevity": 0.3, "clarity": 0.7}})[0]
    assert main_objective_of(q) == "clarity"


def test_pairs_frame_validation():
    with pytest.raises(ValueError, match="criterion"):
        as_pairs_frame(pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"]}))
    with pytest.raises(ValueError, match="chosen"):
        as_pairs_frame(
            pd.DataFrame({"prompt": ["p"], "chosen": [""], "rejected": ["b"], "criterion": ["c"]})
        )
    df = as_pairs_frame(
        {"empathy": pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"]})}
    )
    assert list(df["criterion"]) == ["empathy"]
    with pytest.raises(TypeError, match="data"):
        as_pairs_frame([1, 2])


def test_train_adapters_input_errors(tmp_path):
    df = toy_pairs(4)
    kw = dict(
        output_dir=tmp_path, model=object(), tokenizer=object(), config=MODPOConfig(max_steps=1)
    )
    with pytest.raises(ValueError, match="active_listening"):
        train_adapters({"a": {"active_listening": 0.7, "empathy": 0.3}}, df, **kw)
    with pytest.raises(ValueError, match=r"\['trust_rapport'\]"):
        train_adapters({"a": {"empathy": 0.7, "trust_rapport": 0.3}}, df, **kw)
    with pytest.raises(ValueError, match="weight > 0"):
        train_adapters({"a": {"empathy": 1.0}}, df, main_objective="safety", **kw)
    with pytest.raises(ValueError, match="directory"):
        train_adapters({"A b": {"empathy": 1.0}, "a_b": {"empathy": 1.0}}, df, **kw)
    with pytest.raises(ValueError, match="objective"):
        train_adapters({"a": {"empathy": 1.0}}, df, objective="ppo", **kw)
    # a reward model covers a criterion that has no pairs: that is allowed (checked up to model loading)
    with pytest.raises(TypeError, match="PeftModel|model"):
        train_adapters(
            {"a": {"empathy": 0.5, "brevity": 0.5}},
            df,
            reward_models={"brevity": KeywordReward("x")},
            **kw,
        )
