"""Training loop on a tiny random Llama: LoRA-only updates, save/load, determinism, resume, baselines."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from modpo_helpers import KeywordReward, one_thread, toy_pairs
from safetensors.torch import load_file

import survey_weights.modpo._loop as loop_mod
from survey_weights.exceptions import SettingsChangedError
from survey_weights.modpo import (
    MODPOConfig,
    generate,
    load_adapters,
    lora_deltas,
    make_tiny_llama,
    merge_adapters,
    train_adapters,
    train_dpo_adapters,
)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


CFG = MODPOConfig(max_steps=6, batch_size=4, lr=1e-2, lora_r=4, lora_alpha=8, progress=False)
RM = {"safety": KeywordReward("crisis")}
PROFILES = {
    "Mostly empathy": {"empathy": 0.7, "safety": 0.3},
    "balanced": {"empathy": 0.5, "safety": 0.5},
}


def _train(model, tok, output_dir, profiles=PROFILES, *, config=CFG):
    """MODPO on 8 toy pairs with the keyword safety reward: the run most tests here share."""
    return train_adapters(
        profiles,
        toy_pairs(8),
        output_dir=output_dir,
        model=model,
        tokenizer=tok,
        config=config,
        reward_models=RM,
    )


def _logits(model, tok, text="I feel anxious before exams.\nThat sounds hard."):
    ids = tok(text, return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits


def test_lora_changes_base_does_not_and_profile_json(tmp_path):
    model, tok = make_tiny_llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = _train(model, tok, tmp_path)
    after = model.state_dict()
    assert set(after) == set(before)  # LoRA unloaded, plain base restored
    assert all(torch.equal(before[k], after[k]) for k in before)
    a = run["Mostly empathy"]
    assert a.path == tmp_path / "mostly_empathy" and not a.skipped
    assert a.criteria == ("empathy", "safety") and a.weight_vector == (0.7, 0.3)
    assert a.losses[0] == pytest.approx(
        0.6931, abs=1e-3
    )  # policy == reference and zero margins at step 0
    assert a.losses[-1] < a.losses[0]
    files = {p.name for p in a.path.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "profile.json"} <= files
    state = load_file(a.path / "adapter_model.safetensors")
    b_weights = [v for k, v in state.items() if "lora_B" in k]
    assert b_weights and all(
        v.abs().sum() > 0 for v in b_weights
    )  # B starts at zero: it was trained
    meta = json.loads((a.path / "profile.json").read_text())
    for key in (
        "weights",
        "criteria_order",
        "main_objective",
        "beta",
        "seed",
        "data_hash",
        "base_model",
        "versions",
        "reward_models",
    ):
        assert key in meta
    assert meta["criteria_order"] == ["empathy", "safety"] and meta["weights"]["safety"] == 0.3
    assert meta["reward_models"]["safety"]["fingerprint"] == "keyword:crisis"
    assert not list(tmp_path.glob(".partial-*"))


def test_save_load_roundtrip_and_determinism(tmp_path):
    model, tok = make_tiny_llama()
    prof = {"p": {"empathy": 0.6, "safety": 0.4}}
    r1 = _train(model, tok, tmp_path / "r1", prof)
    r2 = _train(model, tok, tmp_path / "r2", prof)
    s1 = load_file(r1["p"].path / "adapter_model.safetensors")
    s2 = load_file(r2["p"].path / "adapter_model.safetensors")
    assert all(torch.equal(s1[k], s2[k]) for k in s1)  # same seed, same adapter
    assert r1["p"].losses == r2["p"].losses
    base_logits = _logits(model, tok)
    m1 = load_adapters(make_tiny_llama()[0], [r1["p"].path])
    l1 = _logits(m1, tok)
    m2 = load_adapters(make_tiny_llama()[0], {"again": r2["p"].path})
    assert torch.allclose(l1, _logits(m2, tok), atol=1e-6)
    assert (l1 - base_logits).abs().max() > 1e-4
    with m1.disable_adapter():
        assert torch.allclose(_logits(m1, tok), base_logits, atol=1e-6)


def test_resume_after_crash(tmp_path, monkeypatch):
    model, tok = make_tiny_llama()
    calls = {"n": 0}
    real = loop_mod.modpo_loss

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > CFG.max_steps + 2:  # crash inside the second profile
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_mod, "modpo_loss", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(model, tok, tmp_path)
    monkeypatch.setattr(loop_mod, "modpo_loss", real)
    first = tmp_path / "mostly_empathy"
    assert (first / "profile.json").exists() and not (tmp_path / "balanced").exists()
    # leftovers of a crash during saving, and a final dir without profile.json: neither counts as finished
    (tmp_path / ".partial-balanced-xyz").mkdir()
    (tmp_path / ".partial-balanced-xyz" / "adapter_model.safetensors").write_bytes(b"junk")
    (tmp_path / "balanced").mkdir()
    (tmp_path / "balanced" / "adapter_model.safetensors").write_bytes(b"junk")
    mtime = (first / "adapter_model.safetensors").stat().st_mtime_ns
    assert not any("lora" in k for k in model.state_dict())  # the crash left the base model clean
    run = _train(model, tok, tmp_path)
    assert run["Mostly empathy"].skipped and not run["balanced"].skipped
    assert (first / "adapter_model.safetensors").stat().st_mtime_ns == mtime
    assert (tmp_path / "balanced" / "profile.json").exists()
    assert not list(tmp_path.glob(".partial-*"))
    # other settings into the same directory: refuse instead of silently mixing, with a dedicated type
    with pytest.raises(SettingsChangedError, match="overwrite"):
        _train(model, tok, tmp_path, config=MODPOConfig(max_steps=2, batch_size=4, beta=0.5, progress=False))


def test_display_and_speed_settings_do_not_retrain(tmp_path):
    """`--quiet` (progress=False) or another precompute batch size reuses every finished adapter."""
    model, tok = make_tiny_llama()
    prof = {"p": {"empathy": 0.6, "safety": 0.4}}
    first = _train(model, tok, tmp_path, prof)
    stamp = (first["p"].path / "adapter_model.safetensors").stat().st_mtime_ns
    shown = dataclasses.replace(CFG, progress=True, precompute_batch_size=3)
    again = _train(model, tok, tmp_path, prof, config=shown)
    assert again["p"].skipped and again["p"].losses == ()
    assert (first["p"].path / "adapter_model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="overwrite"):  # a setting that changes the weights still counts
        _train(model, tok, tmp_path, prof, config=dataclasses.replace(CFG, lr=2e-2))


def test_dpo_baselines_and_merging(tmp_path):
    model, tok = make_tiny_llama()
    cfg = MODPOConfig(max_steps=8, batch_size=4, lr=2e-2, lora_r=4, lora_alpha=8, progress=False)
    run = train_dpo_adapters(
        toy_pairs(8), output_dir=tmp_path, model=model, tokenizer=tok, config=cfg
    )
    assert [a.name for a in run.adapters] == ["dpo_empathy", "dpo_safety"]
    assert run["dpo_safety"].weight_vector == (1.0,) and run["dpo_safety"].criteria == ("safety",)
    peft_model = load_adapters(
        model, {"emp": run["dpo_empathy"].path, "saf": run["dpo_safety"].path}
    )
    w = (0.7, 0.3)
    d_emp, d_saf = lora_deltas(peft_model, "emp"), lora_deltas(peft_model, "saf")
    merge_adapters(peft_model, ["emp", "saf"], w, name="exact")
    merge_adapters(peft_model, ["emp", "saf"], w, name="soup", method="ab_average")
    exact, soup = lora_deltas(peft_model, "exact"), lora_deltas(peft_model, "soup")
    err_exact = max(
        ((exact[k] - (w[0] * d_emp[k] + w[1] * d_saf[k])).norm() / d_emp[k].norm()).item()
        for k in exact
    )
    err_soup = max(
        ((soup[k] - (w[0] * d_emp[k] + w[1] * d_saf[k])).norm() / d_emp[k].norm()).item()
        for k in soup
    )
    assert err_exact < 1e-5
    assert err_soup > 1e-3
    with pytest.raises(ValueError, match="already exists"):
        merge_adapters(peft_model, ["emp", "saf"], w, name="exact")
    with pytest.raises(ValueError, match="weights"):
        merge_adapters(peft_model, ["emp", "saf"], (0.5,), name="bad")
    outs = generate(
        peft_model, tok, ["I feel sad.", "I cannot sleep."], adapter="exact", max_new_tokens=4
    )
    assert len(outs) == 2 and all(isinstance(o, str) for o in outs)
    s1 = generate(
        peft_model, tok, ["I feel sad."], adapter="soup", max_new_tokens=6, do_sample=True, seed=3
    )
    s2 = generate(
        peft_model, tok, ["I feel sad."], adapter="soup", max_new_tokens=6, do_sample=True, seed=3
    )
    assert s1 == s2


def test_joint_loss_dpo_runs(tmp_path):
    model, tok = make_tiny_llama()
    run = train_adapters(
        {"joint": {"empathy": 0.5, "safety": 0.5}},
        toy_pairs(8),
        output_dir=tmp_path,
        model=model,
        tokenizer=tok,
        config=CFG,
        objective="joint_dpo",
    )
    a = run["joint"]
    assert a.losses[0] == pytest.approx(0.6931, abs=1e-3) and a.losses[-1] < a.losses[0]
    assert json.loads((a.path / "profile.json").read_text())["objective"] == "joint_dpo"


def test_profile_json_records_the_weight_profiles_provenance(tmp_path):
    from survey_weights.profiles import WeightProfile

    w = {"empathy": 0.5, "active_listening": 0.0, "self_motivated_change": 0.0, "trust_rapport": 0.0,
         "patient_autonomy": 0.0, "safety": 0.5}
    wp = WeightProfile("pooled", w, ci_low={c: max(0.0, v - 0.1) for c, v in w.items()},
                       ci_high={c: min(1.0, v + 0.1) for c, v in w.items()}, n_respondents=333, source="pooled",
                       safety_rule={"rule": "fixed", "share": 0.5}, data_hash="survey-hash")
    model, tok = make_tiny_llama()
    cfg = MODPOConfig(max_steps=1, batch_size=4, lora_r=4, lora_alpha=8, progress=False)
    run = _train(model, tok, tmp_path, [wp], config=cfg)
    meta = json.loads((run["pooled"].path / "profile.json").read_text())
    prov = meta["provenance"]
    assert prov["survey_data_hash"] == "survey-hash" and prov["n_respondents"] == 333 and prov["source"] == "pooled"
    assert prov["safety_rule"] == {"rule": "fixed", "share": 0.5} and prov["ci_high"]["empathy"] == 0.6
    assert meta["weight_vector"] == [0.5, 0.5] and meta["criteria_order"] == ["empathy", "safety"]
    # the same weights given as a plain mapping resume the adapter and keep the recorded provenance
    again = _train(model, tok, tmp_path, {"pooled": w}, config=cfg)
    assert again["pooled"].skipped
    assert json.loads((run["pooled"].path / "profile.json").read_text())["provenance"] == prov
