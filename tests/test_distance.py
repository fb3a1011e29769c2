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
