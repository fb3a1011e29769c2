"""How far adapters moved from the base: per-token |log-ratio| and KL by hand, and step budgets that keep the
most- and least-moved adapter of a comparison within a factor 2."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from modpo_helpers import PROMPTS, one_thread
from test_soft_labels import _conflicting

from survey_weights.modpo import (
    MODPOConfig,
    adapter_distances,
    balanced_step_budgets,
    distance_ratio,
    load_adapters,
    make_tiny_llama,
    rebalance,
    train_adapters,
    train_at_comparable_distance,
)
from survey_weights.modpo.logps import collate, encode_sequences

CFG = MODPOConfig(max_steps=4, batch_size=4, lr=1e-2, lora_r=4, lora_alpha=8, progress=False)
PROFILES = {"dpo_empathy": {"empathy": 1.0}, "balanced": {"empathy": 0.5, "safety": 0.5},
            "safety_heavy": {"empathy": 0.2, "safety": 0.8}}


def test_untrained_adapter_has_distance_zero_and_a_trained_one_matches_a_direct_computation(tmp_path):
    from peft import LoraConfig, get_peft_model

    seq = pd.DataFrame({"prompt": ["I feel low."], "response": ["That sounds hard."]})
    with one_thread():
        model, tok = make_tiny_llama()
        fresh = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
        fresh.save_pretrained(tmp_path / "fresh")  # lora_B = 0: the base model exactly
        model = fresh.unload()
        run = train_adapters({"dpo": {"empathy": 1.0}}, _conflicting(PROMPTS[:8], 0), output_dir=tmp_path / "run",
                             model=model, tokenizer=tok, config=CFG)
        d = adapter_distances({"fresh": tmp_path / "fresh", "dpo": run["dpo"].path}, seq, model=model, tokenizer=tok)
        # direct: teacher-forced token log-probs and full-vocabulary KL at the response positions
        enc = encode_sequences(tok, ["I feel low."], ["That sounds hard."], max_length=512, max_prompt_length=256)
        ids, mask, labels = collate(enc, [0], pad_id=tok.pad_token_id)
        peft = load_adapters(model, {"dpo": run["dpo"].path})
        with torch.no_grad():
            lp = peft(input_ids=ids, attention_mask=mask).logits[0, :-1].log_softmax(-1)
            with peft.disable_adapter():
                ref = peft(input_ids=ids, attention_mask=mask).logits[0, :-1].log_softmax(-1)
        peft.unload()
    pos = [t for t in range(ids.shape[1] - 1) if labels[0, t + 1] != -100]
    tok_ids = [int(ids[0, t + 1]) for t in pos]
    abs_lr = sum(abs(float(lp[t, v] - ref[t, v])) for t, v in zip(pos, tok_ids)) / len(pos)
    kl = sum(float((lp[t].exp() * (lp[t] - ref[t])).sum()) for t in pos) / len(pos)
    seq_lr = abs(sum(float(lp[t, v] - ref[t, v]) for t, v in zip(pos, tok_ids)))
    assert d.loc["fresh", "mean_abs_logratio"] == 0.0 and d.loc["fresh", "kl"] == 0.0
    assert d.loc["dpo", "n_tokens"] == len(pos) and d.loc["dpo", "n_sequences"] == 1
    assert d.loc["dpo", "mean_abs_logratio"] == pytest.approx(abs_lr, rel=1e-4) and abs_lr > 0
    assert d.loc["dpo", "kl"] == pytest.approx(kl, rel=1e-3) and kl > 0
    assert d.loc["dpo", "seq_abs_logratio"] == pytest.approx(seq_lr, rel=1e-4)
    assert distance_ratio(d) == math.inf


def test_balanced_step_budgets_by_hand():
    # geometric mean of (0.1, 0.2, 0.8) = 0.2519842; band [0.178, 0.356] for ratio 2: b keeps its budget
    out = balanced_step_budgets({"a": 0.1, "b": 0.2, "c": 0.8}, {"a": 10, "b": 10, "c": 12}, max_ratio=2.0)
    assert out == {"a": round(10 * 0.2519842 / 0.1), "b": 10, "c": round(12 * 0.2519842 / 0.8)} == {"a": 25, "b": 10,
                                                                                                     "c": 4}
    assert balanced_step_budgets({"a": 0.1, "b": 0.8}, 10, max_steps=20, min_steps=3) == {"a": 20, "b": 4}
    frame = pd.DataFrame({"kl": [0.01, 0.015]}, index=["a", "b"])
    assert balanced_step_budgets(frame, 7, column="kl") == {"a": 7, "b": 7}
    with pytest.raises(ValueError, match="max_ratio"):
        balanced_step_budgets({"a": 0.1}, 5, max_ratio=1.0)
    with pytest.raises(ValueError, match="did not move"):
        balanced_step_budgets({"a": 0.0, "b": 0.5}, 5)
    with pytest.raises(ValueError, match="steps"):
        balanced_step_budgets({"a": 0.1, "b": 0.5}, {"a": 5})


def test_balanced_step_budgets_growth_follows_the_distance():
    # KL ~ steps**2: geometric mean of (0.01, 0.09) = 0.03, so a needs sqrt(3) x the steps and b 1/sqrt(3) x
    kl = {"a": 0.01, "b": 0.09}
    assert balanced_step_budgets(kl, 30, column="kl") == {"a": round(30 * 3 ** 0.5), "b": round(30 / 3 ** 0.5)} \
        == {"a": 52, "b": 17}
    assert balanced_step_budgets(kl, 30, column="kl", growth=1) == {"a": 90, "b": 10}  # the log-ratio rule
    assert balanced_step_budgets(kl, 30, growth=2) == balanced_step_budgets(kl, 30, column="kl")
    # Recovery of a known truth: distances that really grow like steps**2 land inside the band in one round.
    true = {"a": 1e-5, "b": 4e-5, "c": 2.5e-4}  # per step squared
    steps = {n: 10 for n in true}
    new = balanced_step_budgets({n: c * 100 for n, c in true.items()}, steps, column="kl")
    after = {n: true[n] * new[n] ** 2 for n in true}
    assert max(after.values()) / min(after.values()) <= 2.0 < max(true.values()) / min(true.values())
    for bad in (0, -1.0, float("nan"), True, "2"):
        with pytest.raises(ValueError, match="growth"):
            balanced_step_budgets(kl, 30, growth=bad)


def test_rebalance_loop_by_hand():
    # Fake adapters whose KL is c * steps**2: one round brings them into the band; the loop then stops.
    c = {"a": 1e-5, "b": 4e-5, "c": 2.5e-4}
    budget = {n: 10 for n in c}
    trained = dict(budget)
    calls = []

    def measure():
        return pd.DataFrame({"kl": [c[n] * trained[n] ** 2 for n in c]}, index=list(c))

    def retrain(changed, before):
        calls.append((dict(changed), before["kl"].to_dict()))
        trained.update(changed)

    dist, rounds = rebalance(measure, retrain, budget, column="kl", max_rounds=3)
    expected = balanced_step_budgets({n: c[n] * 100 for n in c}, 10, column="kl")
    changed = {n: k for n, k in expected.items() if k != 10}
    assert [r["round"] for r in rounds] == [1] and rounds[0]["max_steps"] == changed and calls[0][0] == changed
    assert calls[0][1] == pytest.approx({n: c[n] * 100 for n in c})
    assert budget == trained == expected and distance_ratio(dist, "kl") <= 2.0
    # Already within the band: measured once, nothing retrained.
    dist2, rounds2 = rebalance(measure, retrain, budget, column="kl")
    assert rounds2 == [] and len(calls) == 1 and dist2.equals(dist)


def test_train_at_comparable_distance_narrows_the_ratio(tmp_path):
    train, held = _conflicting(PROMPTS[:14], 0), _conflicting(PROMPTS[14:], 1)
    with one_thread():
        model, tok = make_tiny_llama()
        run0 = train_adapters(PROFILES, train, output_dir=tmp_path / "plain", model=model, tokenizer=tok, config=CFG)
        before = adapter_distances({a.name: a.path for a in run0.adapters}, held, model=model, tokenizer=tok)
        run, dist = train_at_comparable_distance(PROFILES, train, held_out=held, output_dir=tmp_path / "fair",
                                                 model=model, tokenizer=tok, config=CFG, max_ratio=1.3)
    assert distance_ratio(before) > 1.3  # the same step budget moved the profiles different distances
    assert dist.attrs["ratio"] == pytest.approx(distance_ratio(dist))
    assert dist.attrs["ratio"] < distance_ratio(before)
    most, least = before["mean_abs_logratio"].idxmax(), before["mean_abs_logratio"].idxmin()
    assert dist.loc[most, "max_steps"] < CFG.max_steps < dist.loc[least, "max_steps"]
    assert [a.name for a in run.adapters] == list(PROFILES)
    assert run[least].losses and len(run[least].losses) == dist.loc[least, "max_steps"]


def test_train_at_comparable_distance_by_scaling(tmp_path):
    """method="scale": one training, the outliers' updates scaled into output_dir/scaled, the trained adapters kept;
    a re-run finds the trained adapters and scales them the same way."""
    train, held = _conflicting(PROMPTS[:14], 0), _conflicting(PROMPTS[14:], 1)
    with one_thread():
        model, tok = make_tiny_llama()
        run, dist = train_at_comparable_distance(PROFILES, train, held_out=held, output_dir=tmp_path / "fair",
                                                 model=model, tokenizer=tok, config=CFG, max_ratio=1.3,
                                                 method="scale")
        plain = adapter_distances({n: tmp_path / "fair" / n for n in PROFILES}, held, model=model, tokenizer=tok)
        again, dist2 = train_at_comparable_distance(PROFILES, train, held_out=held, output_dir=tmp_path / "fair",
                                                    model=model, tokenizer=tok, config=CFG, max_ratio=1.3,
                                                    method="scale")
    assert distance_ratio(plain) > 1.3 and dist.attrs["ratio"] <= 1.3  # scaled into the band
    assert dist.attrs["ratio"] == pytest.approx(distance_ratio(dist))
    assert set(dist["max_steps"]) == {CFG.max_steps}  # nobody retrained
    scaled = [n for n in PROFILES if dist.loc[n, "scale"] != 1.0]
    assert scaled and all(dist.loc[n, "round"] >= 1 for n in scaled)
    for a in run.adapters:
        expected = tmp_path / "fair" / ("scaled" if a.name in scaled else "") / a.name
        assert a.path == expected and (a.path / "adapter_config.json").is_file()
    assert all(a.skipped for a in again.adapters)  # the trained adapters were found, not retrained
    pd.testing.assert_frame_equal(dist2, dist)
    with pytest.raises(ValueError, match="method"):
        train_at_comparable_distance(PROFILES, train, held_out=held, output_dir=tmp_path / "x", model=model,
                                     tokenizer=tok, config=CFG, method="beta")


def _random_adapters(tmp_path, model, sizes):
    """Saved LoRAs on the tiny model with lora_B of Frobenius size `sizes[name]` times a fixed random draw."""
    from peft import LoraConfig, get_peft_model

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)  # lora_A's initialisation
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    draws = {n: torch.randn(p.shape, generator=gen) for n, p in peft.named_parameters() if "lora_B" in n}
    paths = {}
    for name, size in sizes.items():
        with torch.no_grad():
            for n, p in peft.named_parameters():
                if "lora_B" in n:
                    p.copy_(size * draws[n])
        peft.save_pretrained(tmp_path / name)
        paths[name] = tmp_path / name
    return peft.unload(), paths


def test_scale_adapter_scales_every_layer_update(tmp_path):
    import json

    from survey_weights.modpo import lora_deltas, scale_adapter

    with one_thread():
        model, tok = make_tiny_llama()
        model, paths = _random_adapters(tmp_path, model, {"a": 0.05})
        (paths["a"] / "profile.json").write_text(json.dumps({"name": "a", "weights": {"empathy": 1.0}}))
        out = scale_adapter(paths["a"], tmp_path / "scaled" / "a", 2.5)
        again = scale_adapter(out, tmp_path / "scaled" / "a2", 0.5)
        peft = load_adapters(model, {"a": paths["a"], "s": out, "s2": again})
        d = {n: lora_deltas(peft, n) for n in ("a", "s", "s2")}
        peft.unload()
    assert set(d["a"]) == set(d["s"]) and len(d["a"]) == 4  # q and v of both layers
    for k, delta in d["a"].items():
        assert float(delta.abs().max()) > 0
        torch.testing.assert_close(d["s"][k], 2.5 * delta, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(d["s2"][k], 1.25 * delta, rtol=1e-5, atol=1e-7)
    from peft import LoraConfig

    from survey_weights.modpo import merge_adapters

    src_cfg, new_cfg = LoraConfig.from_pretrained(str(paths["a"])), LoraConfig.from_pretrained(str(out))
    assert (new_cfg.r, new_cfg.lora_alpha) == (src_cfg.r, src_cfg.lora_alpha) == (4, 8)
    # still A/B-averages with its source (identical rank, alpha and targets): the B average is (1 + 2.5) / 2 B
    with one_thread():
        peft = load_adapters(model, {"a": paths["a"], "s": out})
        peft = merge_adapters(peft, ["a", "s"], [0.5, 0.5], name="avg", method="ab_average")
        avg = lora_deltas(peft, "avg")
        peft.unload()
    for k, delta in d["a"].items():
        torch.testing.assert_close(avg[k], 1.75 * delta, rtol=1e-5, atol=1e-7)
    rec = json.loads((out / "profile.json").read_text())
    assert rec["name"] == "a" and rec["distance_scale"] == 2.5 and rec["scaled_from"] == str(paths["a"])
    assert json.loads((again / "profile.json").read_text())["distance_scale"] == 1.25
    assert not list((tmp_path / "scaled").glob(".partial-*"))
    for bad in (0, -1.0, float("nan"), True, "2"):
        with pytest.raises(ValueError, match="scale"):
            scale_adapter(paths["a"], tmp_path / "bad", bad)
    with pytest.raises(ValueError, match="dest"):
        scale_adapter(paths["a"], paths["a"], 2.0)
    with pytest.raises(ValueError, match="adapter_config"):
        scale_adapter(tmp_path / "scaled", tmp_path / "bad", 2.0)


def test_scale_to_comparable_distance_reaches_the_band(tmp_path):
    """Two small updates 6 x apart (KL about 36 x apart): one round of the s = sqrt(gm / KL) rule brings both into
    the band; the KL grows like s**2 for small updates (checked against a direct re-measurement)."""
    from survey_weights.modpo import scale_to_comparable_distance

    seq = pd.DataFrame({"prompt": PROMPTS[:6], "response": ["That sounds hard to carry."] * 6})
    with one_thread():
        model, tok = make_tiny_llama()
        model, paths = _random_adapters(tmp_path, model, {"small": 0.005, "mid": 0.0125, "large": 0.03})
        first = adapter_distances(paths, seq, model=model, tokenizer=tok)
        assert distance_ratio(first, "kl") > 20
        dist, rounds = scale_to_comparable_distance(paths, seq, model=model, tokenizer=tok,
                                                    output_dir=tmp_path / "scaled", max_ratio=2.0)
        again = adapter_distances({n: dist.at[n, "path"] for n in dist.index}, seq, model=model, tokenizer=tok)
    kl0 = first["kl"].to_dict()
    gm = math.exp(sum(math.log(v) for v in kl0.values()) / 3)
    assert rounds[0]["distances"] == pytest.approx(kl0)
    # small and large are outside [gm / sqrt 2, gm * sqrt 2]; mid is inside and keeps its update
    assert set(rounds[0]["scale"]) == {"small", "large"} and dist.at["mid", "scale"] == 1.0
    assert dist.at["mid", "path"] == str(paths["mid"])
    for n in ("small", "large"):
        assert rounds[0]["scale"][n] == pytest.approx(math.sqrt(gm / kl0[n]))
        assert dist.at[n, "kl"] == pytest.approx(gm, rel=0.05)  # KL ~ s**2 near the base
        assert dist.at[n, "path"] == str(tmp_path / "scaled" / n)
    assert dist.attrs["ratio"] <= 2.0 and dist.attrs["ratio_first"] == pytest.approx(distance_ratio(first, "kl"))
    assert dist.attrs["ratio"] == pytest.approx(distance_ratio(dist, "kl"))
    pd.testing.assert_frame_equal(again, dist[list(again.columns)], check_exact=False, rtol=1e-6)
    assert (paths["small"] / "adapter_model.safetensors").is_file()  # the originals are kept
    with pytest.raises(ValueError, match="max_ratio"):
        scale_to_comparable_distance(paths, seq, model=model, tokenizer=tok, output_dir=tmp_path, max_ratio=1)
    with pytest.raises(ValueError, match="exactly the adapters"):
        scale_to_comparable_distance(paths, seq, model=model, tokenizer=tok, output_dir=tmp_path,
                                     distances=first.iloc[:2])
