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
        ({"label_smoothing": 0.5}, ValueError, "label_smoothing"),
        ({"label_smoothing": -0.1}, ValueError, "label_smoothing"),
        ({"label_smoothing": "0.1"}, TypeError, "label_smoothing"),
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


def _weight_profile():
    from survey_weights.profiles import WeightProfile

    w = {"empathy": 0.3, "active_listening": 0.2, "self_motivated_change": 0.1, "trust_rapport": 0.1,
         "patient_autonomy": 0.1, "safety": 0.2}
    lo = {c: v - 0.05 for c, v in w.items()}
    hi = {c: v + 0.05 for c, v in w.items()}
    return WeightProfile("age_group=18-24", w, ci_low=lo, ci_high=hi, n_respondents=41, source="group",
                         group={"age_group": "18-24"}, safety_rule={"rule": "floor", "floor": 0.2, "share": 0.2},
                         model={"name": "plackett_luce"}, data_hash="abc123")


def test_training_spec_carries_weights_main_objective_and_provenance():
    wp = _weight_profile()
    (spec,) = normalize_profiles([wp])
    assert spec.name == wp.name and spec.weight_dict == {c: float(v) for c, v in wp.weights.items()}
    assert spec.main_objective == "empathy" and spec.criteria[0] == "empathy" and len(spec.criteria) == 6
    assert spec.weight_vector == tuple(float(wp.weights[c]) for c in spec.criteria)
    prov = spec.provenance
    assert prov["survey_data_hash"] == "abc123" and prov["n_respondents"] == 41
    assert prov["source"] == "group" and prov["group"] == {"age_group": "18-24"}
    assert prov["ci_low"]["empathy"] == pytest.approx(0.25) and prov["ci_high"]["safety"] == pytest.approx(0.25)
    assert prov["safety_rule"]["rule"] == "floor"
    rec = spec.to_record()
    assert rec["provenance"] == prov and rec["criteria_order"] == list(spec.criteria)
    assert rec["margin_criteria"] == list(spec.criteria[1:]) and spec.to_record("joint_dpo")["margin_criteria"] == []
    # the export form (WeightProfile.to_dict()) keeps the same provenance; a plain mapping has none
    assert normalize_profiles([wp.to_dict()])[0].provenance == prov
    assert set(normalize_profiles({"x": {"empathy": 1.0}})[0].provenance.values()) == {None}
    # a spec passes through unchanged, or with an overridden main objective
    assert normalize_profiles([spec]) == [spec]
    assert normalize_profiles(spec, main_objective="safety")[0].criteria[0] == "safety"


def test_training_spec_rejects_provenance_that_is_not_json():
    bad = SimpleNamespace(name="a", weights={"empathy": 1.0}, group={"when": object()})
    with pytest.raises(TypeError, match="provenance of profile 'a'"):
        normalize_profiles([bad])
