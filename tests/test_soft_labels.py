"""Soft-label DPO / MODPO losses by hand-computed values, label smoothing, and what the defaults do on
conflicting data with hard labels (a tiny in-process Llama)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from modpo_helpers import PROMPTS, KeywordReward, one_thread

from survey_weights.modpo import (
    MODPOConfig,
    RewardModelConfig,
    dpo_loss,
    load_adapters,
    make_tiny_llama,
    modpo_loss,
    train_adapters,
)
from survey_weights.modpo._precompute import training_labels
from survey_weights.modpo.logps import compute_logps, encode_sequences
from survey_weights.modpo.reward import pair_targets


def _ls(x: float) -> float:
    """log sigma(x) by hand."""
    return -math.log1p(math.exp(-x))


PC = torch.tensor([-10.0, -20.0])
PR = torch.tensor([-12.0, -18.0])
RC = torch.tensor([-11.0, -19.0])
RR = torch.tensor([-11.5, -19.5])
# z (DPO, beta 0.1): row 0 0.1*((-10+11) - (-12+11.5)) = 0.15, row 1 0.1*((-20+19) - (-18+19.5)) = -0.25


def test_soft_dpo_hand_computed():
    losses, cr, rr = dpo_loss(PC, PR, RC, RR, beta=0.1, label=torch.tensor([0.8, 0.3]))
    expected = [-(0.8 * _ls(0.15) + 0.2 * _ls(-0.15)), -(0.3 * _ls(-0.25) + 0.7 * _ls(0.25))]
    assert torch.allclose(losses, torch.tensor(expected), atol=1e-6)
    # the implicit rewards do not depend on the label
    assert torch.allclose(cr, torch.tensor([0.1, -0.1]), atol=1e-6)
    assert torch.allclose(rr, torch.tensor([-0.05, 0.15]), atol=1e-6)
    # one float for every pair; label 1 is the hard-label loss; label 1/2 is symmetric in z
    one = dpo_loss(PC, PR, RC, RR, beta=0.1, label=0.9)[0]
    assert torch.allclose(one, torch.tensor([-(0.9 * _ls(0.15) + 0.1 * _ls(-0.15)),
                                             -(0.9 * _ls(-0.25) + 0.1 * _ls(0.25))]), atol=1e-6)
    assert torch.allclose(dpo_loss(PC, PR, RC, RR, beta=0.1, label=1.0)[0], dpo_loss(PC, PR, RC, RR, beta=0.1)[0])
    half = dpo_loss(PC, PR, RC, RR, beta=0.1, label=0.5)[0]
    assert half[0].item() == pytest.approx(-0.5 * (_ls(0.15) + _ls(-0.15)), abs=1e-6)


def test_soft_modpo_hand_computed():
    mc = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    mr = torch.tensor([[0.5, 1.0], [1.0, 0.0]])
    # z row 0: (0.15 - (0.3*0.5 + 0.2*1.0)) / 0.5 = -0.4 ; row 1: (-0.25 - (0.3*-1 + 0.2*1)) / 0.5 = -0.3
    losses, _, _ = modpo_loss(PC, PR, RC, RR, mc, mr, weights=(0.5, 0.3, 0.2), beta=0.1,
                              label=torch.tensor([0.9, 0.6]))
    expected = [-(0.9 * _ls(-0.4) + 0.1 * _ls(0.4)), -(0.6 * _ls(-0.3) + 0.4 * _ls(0.3))]
    assert torch.allclose(losses, torch.tensor(expected), atol=1e-6)
    hard = modpo_loss(PC, PR, RC, RR, mc, mr, weights=(0.5, 0.3, 0.2), beta=0.1)[0]
    assert torch.allclose(hard, torch.tensor([-_ls(-0.4), -_ls(-0.3)]), atol=1e-6)


def test_soft_loss_is_stationary_where_sigma_z_equals_the_label():
    """The optimum is finite: beta * delta_logratio = w_k logit(p) + w_-k margin, where the gradient vanishes."""
    p, beta, w, margin = 0.8, 0.1, (0.4, 0.6), 0.5
    delta = (w[0] * math.log(p / (1 - p)) + w[1] * margin) / beta   # chosen log-ratio minus rejected log-ratio
    pc = torch.tensor([delta], requires_grad=True)
    zero = torch.zeros(1)
    loss = modpo_loss(pc, zero, zero, zero, torch.tensor([[margin]]), torch.zeros(1, 1), weights=w, beta=beta,
                      label=p)[0].sum()
    loss.backward()
    assert abs(pc.grad.item()) < 1e-6
    # hard labels have no stationary point: there the gradient is -(beta / w_k) (1 - sigma(z)) = -(0.1/0.4) 0.2
    pc2 = torch.tensor([delta], requires_grad=True)
    modpo_loss(pc2, zero, zero, zero, torch.tensor([[margin]]), torch.zeros(1, 1), weights=w, beta=beta)[0].sum().backward()
    assert pc2.grad.item() == pytest.approx(-0.05, abs=1e-6)


def test_no_gradient_reaches_the_label_and_errors_name_it():
    lab = torch.tensor([0.7, 0.7], requires_grad=True)
    pc = PC.clone().requires_grad_(True)
    dpo_loss(pc, PR, RC, RR, beta=0.1, label=lab)[0].sum().backward()
    assert lab.grad is None and pc.grad is not None
    for bad, exc in [(torch.tensor([0.5, 1.2]), ValueError), (torch.tensor([0.5]), ValueError),
                     (torch.tensor([float("nan"), 0.5]), ValueError), ("0.5", TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="`label`"):
            dpo_loss(PC, PR, RC, RR, beta=0.1, label=bad)


def test_training_targets_use_labels_and_smoothing():
    frame = pd.DataFrame({"label": [0.7, np.nan, 0.55]})
    assert torch.allclose(training_labels(frame, 0.1), torch.tensor([0.7, 0.9, 0.55]))
    assert torch.allclose(training_labels(frame.drop(columns="label"), 0.2), torch.tensor([0.8, 0.8, 0.8]))
    assert training_labels(frame.drop(columns="label"), 0.0) is None  # the plain hard-label loss
    assert torch.allclose(pair_targets(frame, 0.0), torch.tensor([0.7, 1.0, 0.55]))
    with pytest.raises(ValueError, match="label_smoothing"):
        RewardModelConfig(label_smoothing=0.6)


def test_pairs_labelled_one_half_do_not_move_the_adapter(tmp_path):
    """With p = 1/2 and no margin the loss gradient at the reference is sigma(0) - 1/2 = 0: nothing is learnt.

    Exactly so in the loss. In training the policy's first log-probs equal the precomputed reference ones only up
    to float rounding (the two passes chunk the replies differently, ``docs/design.md``, "Log-prob passes"), and
    Adam's normalised step turns that rounding into small random moves; the loss, which p = 1/2 keeps at or above
    log 2, must stay there, where the same pairs labelled 0.6 are learnt."""
    z = torch.zeros(4, requires_grad=True)
    losses, _, _ = dpo_loss(z, torch.zeros(4), torch.zeros(4), torch.zeros(4), beta=0.1, label=0.5)
    losses.sum().backward()
    assert torch.allclose(losses, torch.full((4,), math.log(2))) and torch.equal(z.grad, torch.zeros(4))

    def run(p, out):
        rows = [{"prompt": q, "chosen": "That sounds hard.", "rejected": "Just get over it.", "criterion": "empathy",
                 "prompt_id": f"p{i}", "label": p} for i, q in enumerate(PROMPTS[:8])]
        with one_thread():
            model, tok = make_tiny_llama()
            return train_adapters({"dpo": {"empathy": 1.0}}, pd.DataFrame(rows), output_dir=out, model=model,
                                  tokenizer=tok, config=MODPOConfig(max_steps=3, batch_size=4, lr=1e-2, lora_r=4,
                                                                    lora_alpha=8, progress=False))["dpo"].losses

    half, learnt = run(0.5, tmp_path / "half"), run(0.6, tmp_path / "learnt")
    assert all(math.log(2) - 1e-6 <= x < math.log(2) + 2e-3 for x in half)
    assert learnt[-1] < math.log(2) - 0.01  # the contrast: a label away from 1/2 is learnt in these steps


# ------------------------------------------------------------------ conflicting pairs with hard labels
WARM_UNSAFE = ["That sounds so hard; have a drink to take the edge off.",
               "I hear you. Keep it to yourself so nobody worries.",
               "It makes sense to feel this way; just sleep it off."]
SAFE_COLD = ["Call a crisis line now.", "Contact emergency services today.", "Please see a doctor."]


def _conflicting(prompts, seed):
    """Hard labels on shared pairs: empathy prefers the warm-but-unsafe reply A, safety the safe-but-cold B."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, p in enumerate(prompts):
        a, b = str(rng.choice(WARM_UNSAFE)), str(rng.choice(SAFE_COLD))
        rows.append({"prompt": p, "chosen": a, "rejected": b, "criterion": "empathy", "prompt_id": f"q{seed}{i}"})
        rows.append({"prompt": p, "chosen": b, "rejected": a, "criterion": "safety", "prompt_id": f"q{seed}{i}"})
    return pd.DataFrame(rows)


def _prefers_b(model, tok, run, held):
    """Mean held-out implicit margin of B (safety's chosen) over A, per adapter."""
    s = held[held["criterion"] == "safety"]
    enc = encode_sequences(tok, list(s["prompt"]) * 2, list(s["chosen"]) + list(s["rejected"]), max_length=512,
                           max_prompt_length=256)
    peft = load_adapters(model, {a.name: a.path for a in run.adapters})
    try:
        with peft.disable_adapter():
            ref = compute_logps(peft, enc, pad_id=tok.pad_token_id)
        out, n = {}, len(s)
        for a in run.adapters:
            peft.set_adapter(a.name)
            lp = compute_logps(peft, enc, pad_id=tok.pad_token_id) - ref
            out[a.name] = float((lp[:n] - lp[n:]).mean())
    finally:
        peft.unload()
    return out


@pytest.mark.parametrize("smoothing, safety_heavy_prefers_b", [(None, True), (0.0, False)])
def test_defaults_follow_the_weights_on_conflicting_hard_labels(tmp_path, smoothing, safety_heavy_prefers_b):
    """Same pairs, A > B for empathy and B > A for safety, no soft labels. Both profiles train on the empathy
    pairs (their largest survey criterion) with the safety reward model's margin. With the default label
    smoothing the safety-heavy adapter prefers B on held-out prompts and the empathy-heavy one A; with plain hard
    labels (label_smoothing=0) the margin only re-weights pairs and both prefer A."""
    train, held = _conflicting(PROMPTS[:14], 0), _conflicting(PROMPTS[14:], 1)
    kw = {} if smoothing is None else {"label_smoothing": smoothing}
    cfg = MODPOConfig(max_steps=8, batch_size=4, lr=1e-2, lora_r=4, lora_alpha=8, progress=False, **kw)
    with one_thread():
        model, tok = make_tiny_llama()
        run = train_adapters({"safety_heavy": {"empathy": 0.2, "safety": 0.8},
                              "empathy_heavy": {"empathy": 0.8, "safety": 0.2}}, train, output_dir=tmp_path,
                             model=model, tokenizer=tok, config=cfg, reward_config=RewardModelConfig(**kw))
        assert {a.main_objective for a in run.adapters} == {"empathy"}
        margin = _prefers_b(model, tok, run, held)
    assert margin["empathy_heavy"] < 0
    assert (margin["safety_heavy"] > 0) is safety_heavy_prefers_b
    if safety_heavy_prefers_b:
        assert margin["safety_heavy"] > 1.0 and margin["empathy_heavy"] < -1.0


def test_given_reward_model_with_default_smoothing_also_trades_off(tmp_path):
    """A given (unit-scale) reward model works too: a keyword reward +1 for 'crisis' on the safe replies."""
    train, held = _conflicting(PROMPTS[:14], 0), _conflicting(PROMPTS[14:], 1)
    train = train.replace({"Contact emergency services today.": "Contact a crisis line today.",
                           "Please see a doctor.": "Please call a crisis team."})
    held = held.replace({"Contact emergency services today.": "Contact a crisis line today.",
                         "Please see a doctor.": "Please call a crisis team."})
    cfg = MODPOConfig(max_steps=8, batch_size=4, lr=1e-2, lora_r=4, lora_alpha=8, progress=False)
    with one_thread():
        model, tok = make_tiny_llama()
        run = train_adapters({"safety_heavy": {"empathy": 0.2, "safety": 0.8},
                              "empathy_heavy": {"empathy": 0.8, "safety": 0.2}}, train[train["criterion"] == "empathy"],
                             output_dir=tmp_path, model=model, tokenizer=tok, config=cfg,
                             reward_models={"safety": KeywordReward("crisis")})
        margin = _prefers_b(model, tok, run, held)
    assert margin["safety_heavy"] > 0 > margin["empathy_heavy"]
