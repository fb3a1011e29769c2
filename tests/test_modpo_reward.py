"""Reward models: Bradley–Terry head on the offline MiniLM encoder, a local seq-classification backbone,
save/load, and MODPO with reward models trained from the data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from modpo_helpers import feature_pairs, one_thread, toy_pairs

from survey_weights.modpo import (
    MODPOConfig,
    RewardModel,
    RewardModelConfig,
    make_tiny_llama,
    train_adapters,
    train_reward_model,
    train_reward_models,
)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def test_minilm_reward_model_learns_feature_and_roundtrips(tmp_path):
    data = feature_pairs(60)
    rm = train_reward_model(data, "calm", config=RewardModelConfig(val_fraction=0.25))
    assert rm.n_val == 15 and rm.n_train == 45
    assert rm.val_accuracy is not None and rm.val_accuracy >= 0.9  # chance is 0.5
    # one tokenisation path: scoring uses the same (prompt, response) text pair as training
    s = rm.score(["I feel tense."] * 2, ["Try to breathe slowly.", "What happened next?"])
    assert s[0] > s[1]
    rm.save(tmp_path / "rm")
    back = RewardModel.load(tmp_path / "rm")
    assert np.allclose(
        back.score(["x"], ["Try to breathe."]), rm.score(["x"], ["Try to breathe."]), atol=1e-6
    )
    assert back.fingerprint() == rm.fingerprint()
    meta = json.loads((tmp_path / "rm" / "reward_config.json").read_text())
    assert meta["criterion"] == "calm" and meta["val_accuracy"] == rm.val_accuracy


def test_reward_models_missing_criterion():
    with pytest.raises(ValueError, match="trust_rapport"):
        train_reward_models(toy_pairs(4), criteria=["empathy", "trust_rapport"])


def test_seqcls_backbone(tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from survey_weights.modpo.reward import minilm_path

    tok = AutoTokenizer.from_pretrained(minilm_path())
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(cfg).save_pretrained(tmp_path / "bert")
    tok.save_pretrained(tmp_path / "bert")
    rm = train_reward_model(
        feature_pairs(20),
        "calm",
        config=RewardModelConfig(backbone=str(tmp_path / "bert"), epochs=1, max_length=64),
    )
    assert rm.val_accuracy is not None
    rm.save(tmp_path / "rm")
    back = RewardModel.load(tmp_path / "rm")
    assert np.allclose(
        back.score(["p"], ["Try to breathe."]), rm.score(["p"], ["Try to breathe."]), atol=1e-5
    )


def test_train_adapters_trains_margin_reward_models(tmp_path):
    model, tok = make_tiny_llama()
    run = train_adapters(
        {"g": {"empathy": 0.5, "safety": 0.5}},
        toy_pairs(10),
        output_dir=tmp_path,
        model=model,
        tokenizer=tok,
        config=MODPOConfig(max_steps=3, batch_size=4, progress=False),
    )
    assert set(run.reward_accuracy) == {"safety"}
    assert (tmp_path / "reward_models" / "safety" / "reward_config.json").exists()
    meta = json.loads((run["g"].path / "profile.json").read_text())
    assert (
        meta["margin_criteria"] == ["safety"]
        and len(meta["reward_models"]["safety"]["fingerprint"]) == 16
    )
