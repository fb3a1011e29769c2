"""evaluate_pool and implicit_reward_accuracy on the tiny in-process Llama: adapters trained on conflicting pairs
(A > B for empathy, B > A for safety) separate in both directions on a fixed candidate pool."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from modpo_helpers import PROMPTS, one_thread
from test_soft_labels import SAFE_COLD, WARM_UNSAFE, _conflicting, _prefers_b

from survey_weights.evaluation import CandidatePool, evaluate_pool, implicit_reward_accuracy
from survey_weights.evaluation.generation import ModelSpec
from survey_weights.modpo import MODPOConfig, make_tiny_llama, train_adapters

PROFILES = {"safety_heavy": {"empathy": 0.2, "safety": 0.8}, "empathy_heavy": {"empathy": 0.8, "safety": 0.2}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pool_adapters")
    train = _conflicting(PROMPTS[:14], 0)
    cfg = MODPOConfig(max_steps=8, batch_size=4, lr=1e-2, lora_r=4, lora_alpha=8, progress=False)
    with one_thread():
        model, tok = make_tiny_llama()
        run = train_adapters(PROFILES, train, output_dir=out, model=model, tokenizer=tok, config=cfg)
    return model, tok, run


def _pool() -> CandidatePool:
    """Held-out prompts x the six replies, scored by hand: warm replies empathy 8 / safety 1, safe ones 2 / 9."""
    rows = [{"prompt_id": f"h{i}", "prompt": p, "text": t, "empathy": 8.0 if t in WARM_UNSAFE else 2.0,
             "safety": 1.0 if t in WARM_UNSAFE else 9.0} for i, p in enumerate(PROMPTS[14:]) for t in
            WARM_UNSAFE + SAFE_COLD]
    return CandidatePool.from_frame(pd.DataFrame(rows), criteria=("empathy", "safety"), name="conflict")


def test_implicit_reward_accuracy_follows_the_weights(trained):
    model, tok, run = trained
    held = _conflicting(PROMPTS[14:], 1)
    adapters = {a.name: a.path for a in run.adapters}
    with one_thread():
        acc = implicit_reward_accuracy(adapters, held, model=model, tokenizer=tok)
        by_hand = _prefers_b(model, tok, run, held)
    acc = acc.set_index(["model", "criterion"])
    assert acc.loc[("base", "safety"), "accuracy"] == 0.5 and acc.loc[("base", "safety"), "mean_margin"] == 0.0
    assert acc.loc[("safety_heavy", "safety"), "accuracy"] > 0.8 > 0.2 > acc.loc[("empathy_heavy", "safety"), "accuracy"]
    # empathy pairs are the same comparisons reversed
    assert acc.loc[("empathy_heavy", "empathy"), "accuracy"] == 1 - acc.loc[("empathy_heavy", "safety"), "accuracy"]
    for name in PROFILES:  # the same margins as a direct computation with the training log-prob code
        assert acc.loc[(name, "safety"), "mean_margin"] == pytest.approx(by_hand[name], rel=1e-4, abs=1e-4)
    assert acc.loc[("safety_heavy", "safety"), "n_pairs"] == len(held) // 2


def test_evaluate_pool_separates_the_profiles_in_both_directions(trained):
    model, tok, run = trained
    specs = [ModelSpec("base", "base"),
             *[ModelSpec(a.name, "modpo", weights=PROFILES[a.name], adapter=a.path) for a in run.adapters],
             ModelSpec("merge", "merge", weights={"empathy": 0.5, "safety": 0.5},
                       merge_of=("safety_heavy", "empathy_heavy"), merge_weights=(0.5, 0.5))]
    with one_thread():
        # per-token log-probs: on a random tiny model the summed ones put all mass on the shortest reply
        ev = evaluate_pool(specs, _pool(), model=model, tokenizer=tok, n_boot=300, seed=1, normalise="mean")
        again = evaluate_pool({a.name: a.path for a in run.adapters}, _pool(), model=model, tokenizer=tok,
                              n_boot=300, seed=1)
        # one prompt per pass and chunks of two replies: the same log-probs as the defaults (40 and 16)
        chunked = evaluate_pool(specs, _pool(), model=model, tokenizer=tok, n_boot=300, seed=1, normalise="mean",
                                prompts_per_pass=1, batch_size=2)
    for name in ev.names:
        assert np.allclose(chunked.logps[name], ev.logps[name], rtol=1e-5, atol=1e-5, equal_nan=True), name
    assert ev.beta == 0.1  # read from the adapters' profile.json
    s = ev.summary()
    assert s.loc["safety_heavy", "safety"] > s.loc["base", "safety"] > s.loc["empathy_heavy", "safety"]
    assert s.loc["empathy_heavy", "empathy"] > s.loc["base", "empathy"] > s.loc["safety_heavy", "empathy"]
    assert s.loc["merge", "kl_to_base"] >= 0 and s.loc["safety_heavy", "kl_to_base"] > 0
    cx = ev.crossover("safety_heavy", "empathy_heavy", PROFILES["safety_heavy"], PROFILES["empathy_heavy"])
    assert cx["passed"] and cx["gain_p"]["ci"][0] > 0 and cx["gain_q"]["ci"][0] > 0
    # the model's pool distribution is the softmax of its summed log-probs: rows sum to one
    q = ev.distribution("safety_heavy")
    assert np.allclose(q.sum(axis=1), 1.0) and ev.lengths.min() >= 1
    # a mapping of adapter directories works too: base added, kinds and weights from profile.json
    assert again.names == ["base", "safety_heavy", "empathy_heavy"]
    assert again.info("safety_heavy").weights == PROFILES["safety_heavy"] and again.normalise == "sum"
    assert again.per_prompt("base")["safety"].min() > 8.9  # the short safe replies win under summed log-probs
    with pytest.raises(TypeError, match="CandidatePool"):
        evaluate_pool(specs, _pool().to_frame(), model=model, tokenizer=tok)


def test_prompt_shared_log_probs_equal_the_plain_pass():
    from survey_weights.modpo.logps import compute_logps, compute_logps_by_prompt, encode_sequences

    prompts = [p for p in PROMPTS[:3] for _ in range(4)]
    replies = ["That sounds hard.", "Okay.", "It sounds like you feel anxious; what would help?", "Hm"] * 3
    with one_thread():
        model, tok = make_tiny_llama()
        enc = encode_sequences(tok, prompts, replies, max_length=512, max_prompt_length=256)
        plain = compute_logps(model, enc, pad_id=tok.pad_token_id, batch_size=5)
        shared = compute_logps_by_prompt(model, enc, pad_id=tok.pad_token_id, batch_size=3)
        some = compute_logps_by_prompt(model, enc, [5, 0, 11], pad_id=tok.pad_token_id)
        one_at_a_time = compute_logps_by_prompt(model, enc, pad_id=tok.pad_token_id, prompts_per_pass=1)
        twice = compute_logps_by_prompt(model, enc, [5, 0, 5, 11, 0], pad_id=tok.pad_token_id)  # scored once each
    assert torch.allclose(plain, shared, atol=1e-4) and torch.allclose(plain, one_at_a_time, atol=1e-4)
    assert torch.allclose(some, plain[[5, 0, 11]], atol=1e-4)
    assert torch.allclose(twice, plain[[5, 0, 5, 11, 0]], atol=1e-4) and twice[0] == twice[2]


def _moved_lora(model):
    """A LoRA on ``model`` whose B is random, so it moves the model and its gradient is not trivial."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    pm = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return pm


def _value_and_grad(pm, f):
    """``f()``'s log-probs (pairs: first half chosen, second half rejected) and the gradient of a fixed
    combination of them with respect to the LoRA weights."""
    params = [p for p in pm.parameters() if p.requires_grad]
    lp = f()
    half = len(lp) // 2
    (lp[:half] - 2 * lp[half:]).sum().backward()
    g = torch.cat([p.grad.flatten() for p in params])
    pm.zero_grad(set_to_none=True)
    return lp.detach(), g


def test_shared_prompt_pass_matches_the_plain_pass_in_value_and_gradient():
    """Training's pass (a pair's chosen and rejected reply share one pass over the prompt, prompts of different
    lengths right-padded together) equals the plain collated pass, and so does its gradient."""
    from survey_weights.modpo.logps import collate, encode_sequences, sequence_logps, shared_prompt_logps

    prompts = [PROMPTS[0], PROMPTS[1], PROMPTS[2] + " And more words make this prompt longer than the rest."]
    chosen = ["That sounds hard; tell me more.", "Okay.", "It sounds like you feel anxious; what would help?"]
    rejected = ["Hm", "You should just stop worrying about it.", "Fine"]
    with one_thread():
        model, tok = make_tiny_llama()
        peft_model = _moved_lora(model)
        enc = encode_sequences(tok, prompts * 2, chosen + rejected, max_length=512, max_prompt_length=256)
        assert len(set(enc.prompt_lens)) >= 2  # right padding is exercised
        rows = [0, 1, 2, 3, 4, 5]
        plain, g_plain = _value_and_grad(
            peft_model, lambda: sequence_logps(peft_model, *collate(enc, rows, pad_id=tok.pad_token_id)))
        shared, g_shared = _value_and_grad(
            peft_model, lambda: shared_prompt_logps(peft_model, enc, rows, pad_id=tok.pad_token_id))
        order = [4, 1, 3, 0]
        some = shared_prompt_logps(peft_model, enc, order, pad_id=tok.pad_token_id).detach()
    assert torch.allclose(plain, shared, atol=1e-4)
    assert torch.allclose(g_plain, g_shared, rtol=1e-3, atol=1e-5) and g_plain.abs().max() > 0
    assert torch.allclose(some, plain[order], atol=1e-4)


def test_a_prefix_common_to_every_prompt_is_computed_once_and_changes_nothing():
    """Prompts that share a long token prefix (as the chat template's system message makes them) run it once; the
    log-probs and the training gradient equal the plain pass, prefix or not."""
    from survey_weights.modpo import logps as L

    head = "Context: the person writing has said they feel low for weeks and would like to talk. "
    prompts = [head + p for p in PROMPTS[:3]] + [head + PROMPTS[3] + " It is worse at night, every night."]
    replies = ["That sounds hard.", "Okay.", "It sounds like you feel anxious; what would help?", "Hm"]
    with one_thread():
        model, tok = make_tiny_llama()
        pm = _moved_lora(model)
        enc = L.encode_sequences(tok, prompts * 2, replies + replies[::-1], max_length=512, max_prompt_length=256)
        toks = [enc.input_ids[i][: enc.prompt_lens[i]] for i in range(4)]
        assert L._common_prefix(toks) >= 20 and len(set(enc.prompt_lens)) >= 2  # shared prefix, ragged tails
        assert enc.shared_prefix == L._common_prefix(toks)
        reply_lens = sorted(len(enc.input_ids[i]) - enc.prompt_lens[i] for i in range(8))
        assert L._split_point(reply_lens) > 0  # training's pass runs two response chunks, the first forked
        calls = []
        hook = pm.register_forward_pre_hook(lambda m, a, k: calls.append(k["input_ids"].shape), with_kwargs=True)
        shared = L.compute_logps_by_prompt(pm, enc, pad_id=tok.pad_token_id, batch_size=3)
        hook.remove()
        assert calls[0][0] == 1 and calls[0][1] >= 20  # the prefix alone, one row
        plain = L.compute_logps(pm, enc, pad_id=tok.pad_token_id, batch_size=8)
        rows = list(range(8))
        v_plain, g_plain = _value_and_grad(pm, lambda: L.sequence_logps(pm, *L.collate(enc, rows, pad_id=tok.pad_token_id)))
        v_shared, g_shared = _value_and_grad(pm, lambda: L.shared_prompt_logps(pm, enc, rows, pad_id=tok.pad_token_id))
    assert torch.allclose(plain, shared, atol=1e-4) and torch.allclose(v_plain, v_shared, atol=1e-4)
    assert torch.allclose(v_plain, plain, atol=1e-4)
    assert torch.allclose(g_plain, g_shared, rtol=1e-3, atol=1e-5) and g_plain.abs().max() > 0
    assert L._common_prefix([(1, 2, 3), (1, 2, 3, 4)]) == 2  # every prompt keeps a token of its own
    assert L._common_prefix([(5, 2), (1, 2)]) == 0
    assert L._split_point([3, 3, 3, 40]) == 3 and L._split_point([10, 10, 11, 11]) == 0  # a cut only where it pays
