"""Inputs to MODPO training (issue 15): weight scale, identical and truncated pairs, data in any form."""

from __future__ import annotations

import pytest
from modpo_helpers import KeywordReward, one_thread, toy_pairs

from survey_weights.exceptions import DataRecodeWarning
from survey_weights.modpo import MODPOConfig, make_tiny_llama, normalize_profiles, train_adapters

CFG = MODPOConfig(max_steps=2, batch_size=4, lr=1e-2, lora_r=4, lora_alpha=8, progress=False, max_length=64,
                  max_prompt_length=32)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def test_weights_that_do_not_sum_to_one_are_normalised_with_a_warning():
    """The MODPO loss divides by w_k: x10 / x1 / x0.1 of one profile must be one and the same training target."""
    base = normalize_profiles({"p": {"empathy": 0.7, "safety": 0.3}})[0]
    for scale in (10.0, 0.1):
        with pytest.warns(DataRecodeWarning, match="normalised"):
            spec = normalize_profiles({"p": {"empathy": 0.7 * scale, "safety": 0.3 * scale}})[0]
        assert spec.weight_vector == pytest.approx(base.weight_vector, abs=1e-15)
        assert spec.main_objective == base.main_objective


def test_scaled_profiles_train_the_same_adapter(tmp_path):
    model, tok = make_tiny_llama(seed=0)
    losses = []
    for i, scale in enumerate((10.0, 1.0, 0.1)):
        with pytest.warns(DataRecodeWarning) if scale != 1.0 else _nothing():
            run = train_adapters({"p": {"empathy": 0.7 * scale, "safety": 0.3 * scale}}, toy_pairs(8),
                                 output_dir=tmp_path / str(i), model=model, tokenizer=tok, config=CFG,
                                 reward_models={"safety": KeywordReward("crisis")})
        losses.append(run["p"].losses)
    assert losses[0] == pytest.approx(losses[1], rel=1e-6) and losses[2] == pytest.approx(losses[1], rel=1e-6)


def test_identical_pairs_are_refused_in_any_form(tmp_path):
    model, tok = make_tiny_llama(seed=0)
    df = toy_pairs(8)
    df.loc[3, "rejected"] = df.loc[3, "chosen"]
    with pytest.raises(ValueError, match="chosen"):
        train_adapters({"p": {"empathy": 1.0}}, df, output_dir=tmp_path / "a", model=model, tokenizer=tok,
                       config=CFG)
    path = tmp_path / "pairs.jsonl"
    df.to_json(path, orient="records", lines=True)
    with pytest.raises(ValueError, match=r"pairs\.jsonl.*line 4|line 4.*pairs\.jsonl"):
        train_adapters({"p": {"empathy": 1.0}}, path, output_dir=tmp_path / "b", model=model, tokenizer=tok,
                       config=CFG)
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())


def test_truncation_that_removes_the_difference_warns(tmp_path):
    model, tok = make_tiny_llama(seed=0)
    df = toy_pairs(8)
    df = df[df["criterion"] == "empathy"].reset_index(drop=True)
    shared = "I hear how hard this is and I am here with you. " * 4
    df.loc[0, "chosen"], df.loc[0, "rejected"] = shared + "Take care.", shared + "Whatever."
    with pytest.warns(DataRecodeWarning, match="Truncation"):
        train_adapters({"p": {"empathy": 1.0}}, df, output_dir=tmp_path / "c", model=model, tokenizer=tok,
                       config=CFG)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_bad_base_model_fails_before_any_reward_model_is_trained(tmp_path, monkeypatch):
    from modpo_helpers import stub_reward_training

    from survey_weights.modpo import check_base_model
    from survey_weights.pipeline import run_adapters, run_main

    trained = stub_reward_training(monkeypatch)
    run_main(out=tmp_path, profiles_only=True, n_classes=0, factors=("severity",), progress=False)
    for call in (lambda: run_adapters(tmp_path / "weights.json", out=tmp_path / "a", base_model="no/such/model",
                                      progress=False),
                 lambda: run_main(out=tmp_path / "m", base_model="no/such/model", n_classes=0, progress=False)):
        with pytest.raises(ValueError, match="no/such/model"):
            call()
    assert trained == []  # nothing was trained before the check
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            check_base_model("tiny-test", device="cuda:0")
    check_base_model("tiny-test")  # fine: returns None
