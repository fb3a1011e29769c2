"""generate_adapters / generate_replies: every model answers in the same batches (PEFT's mixed-adapter batches),
and the replies equal those of one model at a time."""

from __future__ import annotations

import json

import pytest
import torch
from modpo_helpers import PROMPTS, one_thread

from survey_weights.evaluation.generation import ModelSpec, generate_replies
from survey_weights.modpo import generate, generate_adapters, load_adapters, make_tiny_llama, merge_adapters
from survey_weights.modpo.generate import BASE

N_NEW = 6


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Two LoRA adapters with random (non-zero) B matrices, so each changes the model's replies."""
    from peft import LoraConfig, get_peft_model

    out = tmp_path_factory.mktemp("gen_adapters")
    paths = {}
    for i, name in enumerate(("first", "second")):
        torch.manual_seed(10 + i)
        model, _ = make_tiny_llama()
        cfg = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                         task_type="CAUSAL_LM")
        peft = get_peft_model(model, cfg)
        peft.save_pretrained(out / name)
        paths[name] = out / name
    return paths


def _one_at_a_time(model, tok, paths, prompts, batch_size):
    peft = load_adapters(model, {k: str(v) for k, v in paths.items()})
    try:
        got = {BASE: generate(peft, tok, prompts, disable_adapter=True, max_new_tokens=N_NEW, batch_size=batch_size)}
        for name in paths:
            got[name] = generate(peft, tok, prompts, adapter=name, max_new_tokens=N_NEW, batch_size=batch_size)
        merge_adapters(peft, list(paths), [0.3, 0.7], name="mix")
        got["mix"] = generate(peft, tok, prompts, adapter="mix", max_new_tokens=N_NEW, batch_size=batch_size)
    finally:
        peft.unload()
    return got


@pytest.mark.parametrize("max_rows", [3, 128])
def test_mixed_batches_reply_as_one_adapter_at_a_time(adapters, max_rows):
    prompts = PROMPTS[:7]  # a ragged last batch of 3 prompts
    with one_thread():
        model, tok = make_tiny_llama()
        want = _one_at_a_time(model, tok, adapters, prompts, batch_size=3)
        peft = load_adapters(model, {k: str(v) for k, v in adapters.items()})
        merge_adapters(peft, list(adapters), [0.3, 0.7], name="mix")
        calls = []
        got = generate_adapters(peft, tok, prompts, [BASE, "first", "second", "mix"], max_new_tokens=N_NEW,
                                batch_size=3, max_rows=max_rows, progress=calls.append)
        peft.unload()
    assert got == want
    assert calls == [3, 3, 1]  # prompts done per batch
    # not vacuous: every adapter answers differently from the base on some prompt
    for name in ("first", "second", "mix"):
        assert got[name] != got[BASE], name


def test_generate_replies_caches_each_model_and_keeps_the_base_plain(adapters, tmp_path):
    prompts = PROMPTS[:5]
    specs = [ModelSpec("base", "base"), ModelSpec("first", "modpo", adapter=adapters["first"]),
             ModelSpec("second", "modpo", adapter=adapters["second"]),
             ModelSpec("mix", "merge", merge_of=("first", "second"), merge_weights=(0.3, 0.7))]
    with one_thread():
        model, tok = make_tiny_llama()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        want = _one_at_a_time(model, tok, adapters, prompts, batch_size=2)
        got = generate_replies(specs, prompts, model=model, tokenizer=tok, max_new_tokens=N_NEW, batch_size=2,
                               cache_dir=tmp_path, progress=False)
        assert not hasattr(model, "peft_config")
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        again = generate_replies(specs, prompts, model=model, tokenizer=tok, max_new_tokens=N_NEW, batch_size=2,
                                 cache_dir=tmp_path, progress=False)
    assert got == {"base": want[BASE], "first": want["first"], "second": want["second"], "mix": want["mix"]}
    assert again == got
    docs = [json.loads(f.read_text()) for f in sorted(tmp_path.glob("*.json"))]
    assert sorted(d["model"] for d in docs) == ["base", "first", "mix", "second"]


def test_generate_adapters_rejects_bad_input(adapters):
    model, tok = make_tiny_llama()
    with pytest.raises(TypeError, match="PeftModel"):
        generate_adapters(model, tok, PROMPTS[:2], [BASE])
    peft = load_adapters(model, {"first": str(adapters["first"])})
    try:
        with pytest.raises(ValueError, match=r"Unknown: \['nope'\]"):
            generate_adapters(peft, tok, PROMPTS[:2], ["first", "nope"])
        with pytest.raises(ValueError, match="`max_rows` must be an int >= 1. Got 0"):
            generate_adapters(peft, tok, PROMPTS[:2], ["first"], max_rows=0)
        with pytest.raises(TypeError, match="not one string"):
            generate_adapters(peft, tok, "one prompt", ["first"])
    finally:
        peft.unload()


def test_shared_prefix_and_length_sorting_reply_as_plain_left_padding(adapters):
    """The decoding loop runs the tokens every prompt of a batch begins with once per adapter and batches prompts
    of similar length; greedy replies equal plain left padding in the prompts' own order, base and adapters."""
    from survey_weights.modpo.generate import _generate_batches
    from survey_weights.modpo.logps import MIN_SHARED_PREFIX, _common_prefix

    # A common lead, as a chat template gives, and prompts of different lengths out of length order.
    prompts = ["Please answer as a kind counsellor would. " + p for p in PROMPTS[:7]]
    with one_thread():
        model, tok = make_tiny_llama()
        rows = tok(prompts, add_special_tokens=False)["input_ids"]
        assert _common_prefix(rows) >= MIN_SHARED_PREFIX  # the shared path is taken
        assert sorted(map(len, rows)) != list(map(len, rows))  # sorting reorders the batches
        peft = load_adapters(model, {k: str(v) for k, v in adapters.items()})
        seen = []
        plain_generate = peft.generate

        def spy(*args, **kwargs):
            seen.append(any(k in kwargs for k in ("cache", "past_key_values")))
            return plain_generate(*args, **kwargs)

        peft.generate = spy
        names = [BASE, "first", "second"]
        kw = dict(max_new_tokens=N_NEW, seed=0, do_sample=False, temperature=0.7, top_p=0.95, batch_size=3,
                  use_chat_template=True, max_prompt_length=256, per_call=2)
        got = {(share, srt): _generate_batches(peft, tok, prompts, names, share_prefix=share, sort_by_length=srt,
                                               **kw)
               for share in (False, True) for srt in (False, True)}
        peft.unload()
    assert seen.count(True) == 2 * 3 * 2 and seen.count(False) == 2 * 3 * 2  # 3 batches x 2 calls, per setting
    want = got[(False, False)]
    for key, out in got.items():
        assert out == want, key
    assert want["first"] != want[BASE] and all(len(v) == len(prompts) for v in want.values())


def test_stacked_lora_replies_as_peft_mixed_batches_and_skips_them(adapters, monkeypatch):
    """Plain LoRA adapters (ranks 4, 4 and the rank-8 exact merge) get their rows' updates from two batched matrix
    products per layer: PEFT's mixed-batch forward is never called, and the replies equal both PEFT's mixed
    batches and one adapter at a time."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    from survey_weights.modpo.generate import _generate_batches, _vanilla_lora_layers

    prompts = PROMPTS[:7]
    names = [BASE, "first", "second", "mix"]
    kw = dict(max_new_tokens=N_NEW, seed=0, do_sample=False, temperature=0.7, top_p=0.95, batch_size=3,
              use_chat_template=True, max_prompt_length=256, per_call=3)
    with one_thread():
        model, tok = make_tiny_llama()
        want = _one_at_a_time(model, tok, adapters, prompts, batch_size=3)
        peft = load_adapters(model, {k: str(v) for k, v in adapters.items()})
        merge_adapters(peft, list(adapters), [0.3, 0.7], name="mix")
        try:
            ranks = {m.lora_A["mix"].weight.shape[0] for m in _vanilla_lora_layers(peft, names[1:])}
            assert ranks == {8}  # the padded rank differs from the others' 4
            mixed = _generate_batches(peft, tok, prompts, names, stack_lora=False, **kw)
            calls = []
            real = LoraLinear._mixed_batch_forward
            monkeypatch.setattr(LoraLinear, "_mixed_batch_forward",
                                lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
            stacked = _generate_batches(peft, tok, prompts, names, **kw)
            assert not calls
            for name in names:  # every adapter's own block of rows, including the last call's smaller groups
                assert stacked[name] == mixed[name] == want[name], name
            # PEFT's path is still taken when asked
            _generate_batches(peft, tok, prompts[:2], names, stack_lora=False, **kw)
            assert calls
        finally:
            peft.unload()


def test_lora_variants_answer_one_adapter_at_a_time(tmp_path):
    """A DoRA adapter is not plain LoRA, and PEFT's mixed batches refuse it: generate_adapters answers one adapter
    at a time then, with the same replies as generate()."""
    from peft import LoraConfig, get_peft_model

    from survey_weights.modpo.generate import _vanilla_lora_layers

    torch.manual_seed(3)
    model, _ = make_tiny_llama()
    cfg = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                     use_dora=True, task_type="CAUSAL_LM")
    get_peft_model(model, cfg).save_pretrained(tmp_path / "dora")
    prompts = PROMPTS[:4]
    with one_thread():
        model, tok = make_tiny_llama()
        peft = load_adapters(model, {"dora": str(tmp_path / "dora")})
        try:
            assert _vanilla_lora_layers(peft, ["dora"]) is None
            one = generate(peft, tok, prompts, adapter="dora", max_new_tokens=N_NEW, batch_size=2)
            base = generate(peft, tok, prompts, disable_adapter=True, max_new_tokens=N_NEW, batch_size=2)
            got = generate_adapters(peft, tok, prompts, [BASE, "dora"], max_new_tokens=N_NEW, batch_size=2)
        finally:
            peft.unload()
    assert got == {BASE: base, "dora": one}
    assert one != base


def test_adapters_split_into_calls_of_equal_size():
    from survey_weights.modpo.generate import _equal_groups

    names = [f"m{i}" for i in range(13)]
    assert [len(g) for g in _equal_groups(names, 4)] == [3, 3, 3, 4]
    assert [len(g) for g in _equal_groups(names, 16)] == [13]
    assert [len(g) for g in _equal_groups(names, 1)] == [1] * 13
    assert sum(_equal_groups(names, 5), []) == names
