"""One conditioned run for every weight vector (issue 11): exact export to plain PEFT LoRAs, resume, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from modpo_helpers import KeywordReward, one_thread, toy_pairs
from peft import PeftModel
from safetensors.torch import load_file

import survey_weights.modpo._conditioned_loop as loop_mod
from survey_weights.exceptions import SettingsChangedError
from survey_weights.modpo import (
    ConditionedAdapter,
    MODPOConfig,
    ProfileSampler,
    lora_deltas,
    make_tiny_llama,
    train_conditioned,
)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


CFG = MODPOConfig(max_steps=8, batch_size=4, lr=1e-2, lora_r=4, lora_alpha=8, progress=False)
RMS = {"safety": KeywordReward("crisis"), "empathy": KeywordReward("sense")}
PROFILES = {"Mostly empathy": {"empathy": 0.7, "safety": 0.3}, "balanced": {"empathy": 0.5, "safety": 0.5}}
UNSEEN = {"empathy": 0.15, "safety": 0.85}
TEXT = "I feel anxious before exams.\nThat sounds hard, and you can call a crisis line."


def _train(model, tok, out, *, config=CFG, **kw):
    kw.setdefault("profiles", PROFILES)
    return train_conditioned(toy_pairs(8), criteria=["empathy", "safety"], output_dir=out, model=model,
                             tokenizer=tok, config=config, reward_models=RMS, **kw)


def _logits(model, tok, text=TEXT):
    with torch.no_grad():
        return model(**tok(text, return_tensors="pt")).logits


def _components(run):
    return {n: load_file(d / "adapter_model.safetensors") for n, d in run.components.items()}


def test_export_equals_the_conditioned_model_for_trained_and_unseen_profiles(tmp_path):
    model, tok = make_tiny_llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = _train(model, tok, tmp_path / "run")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the base is restored
    assert set(model.state_dict()) == set(before)
    assert not run.skipped and len(run.losses) == CFG.max_steps and run.draws.shape == (CFG.max_steps, 1, 2)
    assert run.losses[0] == pytest.approx(0.6931, abs=1e-3)  # policy == reference at step 0
    assert np.allclose(run.draws.sum(-1), 1) and run.criteria == ("empathy", "safety")
    b = [v for st in _components(run).values() for k, v in st.items() if "lora_B" in k]
    assert b and all(v.abs().sum() > 0 for v in b)  # every component was trained (B starts at 0)

    paths = run.export_all(PROFILES, tmp_path / "exports")
    paths["unseen"] = run.export(UNSEEN, tmp_path / "exports" / "unseen")
    base = _logits(make_tiny_llama()[0], tok)
    seen = {}
    for name, w in [*PROFILES.items(), ("unseen", UNSEEN)]:
        d = paths[name]
        assert {"adapter_config.json", "adapter_model.safetensors", "profile.json"} <= {p.name for p in d.iterdir()}
        exported = PeftModel.from_pretrained(make_tiny_llama()[0], str(d))
        assert exported.peft_config["default"].r == CFG.lora_r * 3  # shared + 2 criteria, stacked
        mixed = run.attach(make_tiny_llama()[0], w)
        le, lm = _logits(exported, tok), _logits(mixed, tok)
        seen[name] = float((le - lm).abs().max())
        assert seen[name] <= 1e-5, (name, seen[name])
        assert float((le - base).abs().max()) > 1e-3  # and it is not the base
        meta = json.loads((d / "profile.json").read_text())
        assert meta["training"] == "conditioned" and meta["conditioned_run"]["id"] == run.run_id
        assert meta["weights"] == w and meta["main_objective"] == max(w, key=w.get)
        assert meta["provenance"]["source"] is None and meta["steps"] == CFG.max_steps
        assert meta["margin_criteria"] == [c for c in meta["criteria_order"][1:]]
    assert float((_logits(PeftModel.from_pretrained(make_tiny_llama()[0], str(paths["balanced"])), tok)
                  - _logits(PeftModel.from_pretrained(make_tiny_llama()[0], str(paths["unseen"])), tok)).abs().max()
                 ) > 1e-4  # different weights, different adapters
    # a corner drops the zero-weight criterion's factors: rank r * 2
    corner = run.export({"safety": 1.0}, tmp_path / "corner")
    assert PeftModel.from_pretrained(make_tiny_llama()[0], str(corner)).peft_config["default"].r == CFG.lora_r * 2
    assert not list((tmp_path / "exports").glob(".partial-*"))


def test_the_update_is_affine_in_the_weights(tmp_path):
    model, tok = make_tiny_llama()
    run = _train(model, tok, tmp_path / "run", config=MODPOConfig(**{**CFG.to_dict(), "max_steps": 3}))
    pm = PeftModel.from_pretrained(make_tiny_llama()[0], str(run.export({"empathy": 1.0}, tmp_path / "e")),
                                   adapter_name="e")
    pm.load_adapter(str(run.export({"safety": 1.0}, tmp_path / "s")), adapter_name="s")
    pm.load_adapter(str(run.export({"empathy": 0.3, "safety": 0.7}, tmp_path / "m")), adapter_name="m")
    de, ds, dm = (lora_deltas(pm, n) for n in ("e", "s", "m"))
    err = max(float((dm[k] - (0.3 * de[k] + 0.7 * ds[k])).abs().max() / de[k].abs().max()) for k in dm)
    assert err < 1e-5


def test_resume_finished_run_and_crash_mid_run(tmp_path, monkeypatch):
    model, tok = make_tiny_llama()
    ref = _train(model, tok, tmp_path / "ref")
    ref_w = _components(ref)
    stamp = (ref.run_dir / "conditioned.json").stat().st_mtime_ns
    again = _train(model, tok, tmp_path / "ref")  # finished: reused, not retrained
    assert again.skipped and again.run_id == ref.run_id
    assert (ref.run_dir / "conditioned.json").stat().st_mtime_ns == stamp
    with pytest.raises(SettingsChangedError, match="overwrite"):
        _train(model, tok, tmp_path / "ref", config=MODPOConfig(**{**CFG.to_dict(), "lr": 2e-2}))

    calls = {"n": 0}
    real = loop_mod._batch_loss

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # step 6; checkpoints after steps 2 and 4
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_mod, "_batch_loss", crashing)
    out = tmp_path / "crash"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(model, tok, out, checkpoint_every=2)
    assert not (out / "conditioned.json").exists() and (out / ".checkpoint" / "state.json").exists()
    assert not any("lora" in k for k in model.state_dict())  # the crash left the base model clean
    with pytest.raises(FileNotFoundError, match="No conditioned run"):
        ConditionedAdapter.load(out)
    calls["n"] = -100  # no more crashes; count the steps the resumed run computes
    resumed = _train(model, tok, out, checkpoint_every=2)
    assert calls["n"] == -100 + CFG.max_steps - 4  # steps 1-4 came from the checkpoint
    assert resumed.losses == ref.losses and np.array_equal(resumed.draws, ref.draws)
    got = _components(resumed)
    assert all(torch.equal(got[n][k], ref_w[n][k]) for n in ref_w for k in ref_w[n])  # as if never interrupted
    assert resumed.run_id == ref.run_id
    assert not (out / ".checkpoint").exists() and not list(out.glob(".partial-*"))
    monkeypatch.setattr(loop_mod, "_batch_loss", real)
    retrained = _train(model, tok, tmp_path / "ref", overwrite=True)
    assert not retrained.skipped and retrained.run_id == ref.run_id  # deterministic
    assert ConditionedAdapter.load(tmp_path / "ref").losses == ref.losses


def test_bf16_base_model(tmp_path):
    """The bf16 path (a bf16 base, as load_base_model gives on a GPU): LoRAs train in float32 and export exactly."""
    model, tok = make_tiny_llama()
    model = model.to(torch.bfloat16)
    run = _train(model, tok, tmp_path / "run", config=MODPOConfig(**{**CFG.to_dict(), "max_steps": 2}))
    assert all(np.isfinite(run.losses)) and next(iter(model.parameters())).dtype == torch.bfloat16
    assert {v.dtype for v in _components(run)["shared"].values()} == {torch.float32}
    d = run.export(UNSEEN, tmp_path / "u")
    le = _logits(PeftModel.from_pretrained(make_tiny_llama()[0].to(torch.bfloat16), str(d)), tok).float()
    lm = _logits(run.attach(make_tiny_llama()[0].to(torch.bfloat16), UNSEEN), tok).float()
    assert float((le - lm).abs().max()) <= 1e-2


def test_custom_sampler_with_several_rows_per_step_and_only_the_planned_pairs_precomputed(tmp_path, monkeypatch):
    import survey_weights.modpo.conditioned as cond_mod

    seen = {}
    real = cond_mod.precompute

    def spy(*args, **kwargs):
        seen["shared"] = shared = real(*args, **kwargs)
        seen["plan"] = kwargs["only_rows"]
        return shared

    monkeypatch.setattr(cond_mod, "precompute", spy)
    model, tok = make_tiny_llama()

    def two_rows(rng, criteria):
        return rng.dirichlet(np.ones(len(criteria)), size=2)

    run = _train(model, tok, tmp_path, weight_sampler=two_rows, config=MODPOConfig(**{**CFG.to_dict(),
                                                                                   "max_steps": 3}))
    assert run.draws.shape == (3, 2, 2) and "two_rows" in run.manifest["sampler"]
    assert all(np.isfinite(run.losses))  # every pair trained on had its reference log-probs and margins
    n_pairs, plan = len(seen["shared"].frame), seen["plan"]
    assert 0 < len(plan) <= 3 * CFG.batch_size < n_pairs  # 3 steps of 4 pairs out of 16: only those computed
    assert int(torch.isfinite(seen["shared"].ref).sum()) == 2 * len(plan)
    again = ProfileSampler(PROFILES, per_step=2)(np.random.default_rng(0), ("empathy", "safety"))
    assert again.shape == (2, 2) and np.allclose(again.sum(1), 1)


def test_bad_inputs_are_clear_errors(tmp_path):
    model, tok = make_tiny_llama()
    small = MODPOConfig(**{**CFG.to_dict(), "max_steps": 1})
    run = _train(model, tok, tmp_path / "run", config=small)
    with pytest.raises(ValueError, match=r"criteria \['calm'\].*not trained on"):
        run.export({"empathy": 0.5, "calm": 0.5}, tmp_path / "x")
    with pytest.raises(ValueError, match=">= 0"):
        run.export({"empathy": 1.2, "safety": -0.2}, tmp_path / "x")
    with pytest.raises(ValueError, match="no positive weight"):
        run.export({"empathy": 0.0, "safety": 0.0}, tmp_path / "x")
    with pytest.raises(ValueError, match="needs 2 numbers"):
        run.export([0.2, 0.3, 0.5], tmp_path / "x")
    with pytest.raises(ValueError, match="not trained on"):  # checked before anything is written
        run.export_all({"ok": {"empathy": 1.0}, "bad": {"calm": 1.0}}, tmp_path / "all")
    assert not (tmp_path / "x").exists() and not (tmp_path / "all").exists()

    def wrong_shape(rng, criteria):
        return np.ones((1, len(criteria) + 1)) / (len(criteria) + 1)

    def off_simplex(rng, criteria):
        return np.array([[0.7, 0.7]])

    def negative(rng, criteria):
        return np.array([[1.5, -0.5]])

    def three_rows(rng, criteria):
        return np.full((3, 2), 0.5)

    for sampler, match in [(wrong_shape, r"shape \(m, C=2\).*\(1, 3\)"), (off_simplex, "simplex"),
                           (negative, "simplex"), (three_rows, "must divide"),
                           (lambda rng, c: np.array([0.5, 0.5]), "shape")]:
        with pytest.raises(ValueError, match=match):
            _train(model, tok, tmp_path / "s", weight_sampler=sampler, config=small)
    with pytest.raises(TypeError, match="callable"):
        _train(model, tok, tmp_path / "s", weight_sampler=[[0.5, 0.5]], config=small)
    with pytest.raises(ValueError, match="outside `criteria`"):
        _train(model, tok, tmp_path / "s", profiles={"p": {"empathy": 0.5, "calm": 0.5}}, config=small)
    with pytest.raises(ValueError, match=r"\['calm'\].*no preference pairs"):
        train_conditioned(toy_pairs(8), criteria=["empathy", "calm"], output_dir=tmp_path / "s", model=model,
                          tokenizer=tok, config=small)
    with pytest.raises(TypeError, match="criteria"):
        train_conditioned(toy_pairs(8), criteria="empathy", output_dir=tmp_path / "s", model=model, tokenizer=tok)
    with pytest.raises(ValueError, match="corner_prob"):
        ProfileSampler(PROFILES, corner_prob=1.5)
    assert not (tmp_path / "s" / "conditioned.json").exists()


def test_centred_run_mixes_around_the_mean_draw_in_training_and_in_every_export(tmp_path):
    model, tok = make_tiny_llama()
    run = _train(model, tok, tmp_path / "run", centre="draws")
    assert np.allclose(run.centre, run.draws.reshape(-1, 2).mean(0))  # the exact mean of the planned draws
    assert json.loads((run.run_dir / "conditioned.json").read_text())["centre"] == pytest.approx(list(run.centre))
    for name, w in [*PROFILES.items(), ("unseen", UNSEEN)]:  # export == the mix the run trained (w - centre)
        d = run.export(w, tmp_path / "exports" / name)
        le = _logits(PeftModel.from_pretrained(make_tiny_llama()[0], str(d)), tok)
        lm = _logits(run.attach(make_tiny_llama()[0], w), tok)
        assert float((le - lm).abs().max()) <= 1e-5, name
    at_centre = run.export(dict(zip(run.criteria, run.centre)), tmp_path / "c")  # every criterion's scale is 0
    assert PeftModel.from_pretrained(make_tiny_llama()[0], str(at_centre)).peft_config["default"].r == CFG.lora_r
    # still affine in w: the 0.3/0.7 mix is 0.3 x the empathy corner + 0.7 x the safety corner
    pm = PeftModel.from_pretrained(make_tiny_llama()[0], str(run.export({"empathy": 1.0}, tmp_path / "e")),
                                   adapter_name="e")
    pm.load_adapter(str(run.export({"safety": 1.0}, tmp_path / "s")), adapter_name="s")
    pm.load_adapter(str(run.export({"empathy": 0.3, "safety": 0.7}, tmp_path / "m")), adapter_name="m")
    de, ds, dm = (lora_deltas(pm, n) for n in ("e", "s", "m"))
    assert max(float((dm[k] - (0.3 * de[k] + 0.7 * ds[k])).abs().max() / de[k].abs().max()) for k in dm) < 1e-5
    plain = _train(make_tiny_llama()[0], tok, tmp_path / "plain")
    assert plain.manifest.get("centre") is None and np.all(plain.centre == 0)
    assert float((_logits(PeftModel.from_pretrained(make_tiny_llama()[0], str(d)), tok) - _logits(
        PeftModel.from_pretrained(make_tiny_llama()[0], str(plain.export(UNSEEN, tmp_path / "pu"))), tok)).abs().max()
                 ) > 1e-4  # centring changes what is learnt
    with pytest.raises(SettingsChangedError):  # the centre is a setting of the run (resume key)
        _train(make_tiny_llama()[0], tok, tmp_path / "plain", centre="draws")


def test_centre_at_a_constant_draw_trains_the_shared_lora_alone(tmp_path):
    """A sampler that always draws w, centred on its draws: every criterion's scale is w - w = 0 in training, so
    their LoRAs get no gradient (B stays exactly 0) and only the shared one learns."""
    model, tok = make_tiny_llama()

    def constant(rng, criteria):
        return np.array([[0.6, 0.4]])

    run = _train(model, tok, tmp_path / "run", weight_sampler=constant, centre="draws")
    assert np.allclose(run.centre, [0.6, 0.4])
    comps = _components(run)
    for name, st in comps.items():
        b = [v for k, v in st.items() if "lora_B" in k]
        top = max(float(v.abs().max()) for v in b)
        assert top < 1e-9 if name != "shared" else top > 1e-4, (name, top)  # (w - mean w is 0 up to rounding)
    small = MODPOConfig(**{**CFG.to_dict(), "max_steps": 1})
    for bad, err, match in [("mean", ValueError, "'draws'"), ({"calm": 0.5}, ValueError, "outside"),
                            ([0.5], ValueError, "2 finite numbers"), ([0.5, float("nan")], ValueError, "finite"),
                            (object(), TypeError, "centre")]:
        with pytest.raises(err, match=match):
            _train(model, tok, tmp_path / "bad", config=small, centre=bad)
    assert not (tmp_path / "bad" / "conditioned.json").exists()



def test_stacked_training_structure_is_the_separate_component_adapters(tmp_path):
    """Training stacks the 1 + C LoRAs into one and scales each component's rows by a hook; the same log-probs and
    the same gradient per component as the components loaded as separate PEFT adapters at those scales."""
    from peft.tuners.lora import LoraLayer

    from survey_weights.modpo.logps import collate, encode_sequences, sequence_logps

    cfg = MODPOConfig(lora_r=4, lora_alpha=8, progress=False)
    model, tok = make_tiny_llama()
    peft_model, names, mix = loop_mod.build_structure(model, cfg, 2)
    assert names == ["shared", "crit0", "crit1"] and mix.vector.shape == (12,)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    loop_mod.set_mix(mix, [0.7, 0.3], centre=[0.5, 0.5])  # scales 1, 0.2, -0.2
    enc = encode_sequences(tok, ["I feel anxious.", "I cannot sleep."], [TEXT, "Call a crisis line."],
                           max_length=256, max_prompt_length=64)
    batch = collate(enc, [0, 1], pad_id=tok.pad_token_id)
    peft_model.train()
    lp = sequence_logps(peft_model, *batch)
    lp.sum().backward()
    r = cfg.lora_r
    stacked = [(m.lora_A["stacked"].weight.grad.clone(), m.lora_B["stacked"].weight.grad.clone())
               for m in peft_model.modules() if isinstance(m, LoraLayer)]
    mix.remove()
    loop_mod.save_components(peft_model, names, cfg, tmp_path)
    assert list(peft_model.peft_config) == ["stacked"]  # the components were only added for the write
    base = peft_model.unload()
    sep = PeftModel.from_pretrained(base, str(tmp_path / "shared"), adapter_name="shared", is_trainable=True)
    for n in names[1:]:
        sep.load_adapter(str(tmp_path / n), adapter_name=n, is_trainable=True)
    sep.base_model.set_adapter(names)
    layers = [m for m in sep.modules() if isinstance(m, LoraLayer)]
    loop_mod.set_scales(layers, names, [1.0, 0.2, -0.2])
    sep.train()
    lp_sep = sequence_logps(sep, *batch)
    lp_sep.sum().backward()
    assert torch.allclose(lp.detach(), lp_sep.detach(), atol=1e-4)
    assert len(layers) == len(stacked)
    for m, (ga, gb) in zip(layers, stacked):
        for j, n in enumerate(names):
            assert torch.allclose(m.lora_A[n].weight.grad, ga[j * r:(j + 1) * r], atol=1e-5, rtol=1e-4)
            assert torch.allclose(m.lora_B[n].weight.grad, gb[:, j * r:(j + 1) * r], atol=1e-5, rtol=1e-4)
    assert any(float(ga.abs().max()) > 0 for ga, _ in stacked)
    with pytest.raises(ValueError, match="3 entries"):
        mix.set_scales([1.0, 0.5])
