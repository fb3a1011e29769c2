"""Benchmark: every model answering in the same batches (PEFT's mixed-adapter batches, ``generate_adapters``)
against one model at a time (``generate``), in the same run.

The evaluation's generation step answers the same held-out prompts with the base model and each adapter. One ratio
(ours / baseline, lower is better): SmolLM2-135M, the base plus ``--adapters`` LoRA adapters (rank 8 on the four
attention projections, random non-zero B, so each changes the replies), ``--prompts`` bundled held-out prompts,
greedy, ``--new-tokens`` new tokens, 8 prompts a batch. Target <= 0.7. Also whether the replies are identical.
Prints, never asserts; timings are medians of ``--repeats`` runs after one warm-up.

A second ratio, the decoding loop's batching: every batch's shared prompt prefix (the chat template's first 24
tokens) run once per adapter and the prompts batched by token length, against plain left padding in the prompts'
order (``_generate_batches(share_prefix=False, sort_by_length=False)``), both in mixed batches, on
``--batching-prompts`` prompts (sorting needs more than one batch). Target <= 0.85.

A third ratio: each row's LoRA update as two batched matrix products per layer (``generate_adapters``' default for
plain LoRA) against PEFT's mixed-adapter batches (``_generate_batches(stack_lora=False)``), both 32 prompts a batch
and 4 adapters a call, on ``--batching-prompts`` prompts. Target <= 0.9. (Since December 2026 the first two ratios'
"ours" use the stacked updates too.) On the demo's 13 models, 60 prompts, AMD EPYC 2 cores (scratch timing, 4 December
2026): 238 s in PEFT's mixed batches of 8 prompts x 13 models, about 191 s with 32 prompts x 4 models (14.7 s a
model, measured on 5 of them), 167 s stacked; all 780 replies identical.

Usage: ``python benchmarks/bench_generation.py [--model tiny|smollm2] [--adapters 12] [--prompts 8]``. ``--quick``
(``benchmarks/run_all.py --quick``) uses the tiny Llama and 3 adapters: it checks that the script runs.

Measured (3 December 2026, Intel Xeon, 2 cores): this script, ``--repeats 1``: 45.7 s one model at a time, 22.9 s in
mixed batches, ratio 0.50, replies identical for all 13 models. With the demo's own 12 trained adapters instead
(scratch timing): 46.3 s and 25.5 s, the 104 replies identical; 60 prompts took 176 s in mixed batches (linear in the
prompts: the batches are compute-bound, ``max_rows`` 256 instead of 128 changed nothing, 174 s).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import format_table, time_call  # noqa: E402

TARGET = 0.7
TARGET_BATCHING = 0.85
TARGET_STACKED = 0.9


def main(argv: list[str] | None = None) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from survey_weights.modpo import generate, generate_adapters, load_adapters, load_base_model, make_tiny_llama
    from survey_weights.modpo.generate import BASE, _generate_batches
    from survey_weights.synthetic.preferences import load_preference_data

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    ap.add_argument("--adapters", type=int, default=12)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=40)
    ap.add_argument("--batching-prompts", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="the tiny model, 3 adapters, 8 new tokens")
    args = ap.parse_args(argv)
    if args.quick:
        args.model, args.adapters, args.new_tokens = "tiny", 3, 8

    def load():
        if args.model == "tiny":
            return make_tiny_llama(hidden_size=128, num_layers=4)
        return load_base_model("smollm2-135m-instruct", device="cpu")

    prompts = list(load_preference_data().candidate_pool("test").prompts[: args.prompts])
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for i in range(args.adapters):
            torch.manual_seed(i)
            model, tok = load()
            cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                             init_lora_weights=False, task_type="CAUSAL_LM")
            get_peft_model(model, cfg).save_pretrained(Path(tmp) / f"a{i}")
            paths[f"a{i}"] = str(Path(tmp) / f"a{i}")
        model, tok = load()
        peft = load_adapters(model, paths)
        kw = dict(max_new_tokens=args.new_tokens, batch_size=8)

        def one_at_a_time():
            out = {BASE: generate(peft, tok, prompts, disable_adapter=True, **kw)}
            for name in paths:
                out[name] = generate(peft, tok, prompts, adapter=name, **kw)
            return out

        tb, vb = time_call(one_at_a_time, repeat=args.repeats)
        to, vo = time_call(lambda: generate_adapters(peft, tok, prompts, [BASE, *paths], **kw), repeat=args.repeats)
        more = list(load_preference_data().candidate_pool("test").prompts[: args.batching_prompts])
        names = [BASE, *paths]
        plain = dict(seed=0, do_sample=False, temperature=0.7, top_p=0.95, use_chat_template=True,
                     max_prompt_length=256, per_call=16, share_prefix=False, sort_by_length=False)
        tp, vp = time_call(lambda: _generate_batches(peft, tok, more, names, **kw, **plain), repeat=args.repeats)
        ts, vs = time_call(lambda: generate_adapters(peft, tok, more, names, **kw), repeat=args.repeats)
        # Each row's LoRA update as two batched products per layer, against PEFT's mixed batches (same layout:
        # the defaults' 32 prompts a batch, 4 adapters a call).
        layout = dict(kw, batch_size=32)
        peft_mixed = dict(plain, per_call=4, share_prefix=True, sort_by_length=True, stack_lora=False)
        tm, vm = time_call(lambda: _generate_batches(peft, tok, more, names, **layout, **peft_mixed),
                           repeat=args.repeats)
        tk, vk = time_call(lambda: generate_adapters(peft, tok, more, names, **layout), repeat=args.repeats)
        peft.unload()
    same = sum(vb[k] == vo[k] for k in vb)
    same_b = sum(vp[k] == vs[k] for k in names)
    same_k = sum(vm[k] == vk[k] for k in names)
    rows = [{"generation": f"base + {args.adapters} adapters, {len(prompts)} prompts x {args.new_tokens} tokens",
             "baseline s": tb, "ours s": to, "ratio": to / tb, "target": f"<= {TARGET:.2f}",
             "met": "yes" if to / tb <= TARGET else "no", "identical replies": f"{same} of {len(vb)} models"},
            {"generation": f"batching (prefix once, by length), {len(more)} prompts", "baseline s": tp, "ours s": ts,
             "ratio": ts / tp, "target": f"<= {TARGET_BATCHING:.2f}", "met": "yes" if ts / tp <= TARGET_BATCHING
             else "no", "identical replies": f"{same_b} of {len(names)} models"},
            {"generation": f"stacked LoRA vs PEFT's mixed batches, {len(more)} prompts", "baseline s": tm,
             "ours s": tk, "ratio": tk / tm, "target": f"<= {TARGET_STACKED:.2f}",
             "met": "yes" if tk / tm <= TARGET_STACKED else "no",
             "identical replies": f"{same_k} of {len(names)} models"}]
    print(f"model {args.model}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(format_table(rows, ["generation", "baseline s", "ours s", "ratio", "target", "met", "identical replies"]))


if __name__ == "__main__":
    main()
