"""Benchmark: the shared-prompt log-prob passes against the plain collated pass they replaced, in the same run.

Three ratios (ours / baseline, lower is better), each on the bundled synthetic preference data and SmolLM2-135M
(the main job's model; ``--model tiny`` for the in-process tiny Llama):

* **training step (pass)** - forward + backward of 8 pairs through the conditioned run's structure (shared + 6
  criterion LoRAs), :func:`~survey_weights.modpo.logps.shared_prompt_logps` (a pair's chosen and rejected reply share
  one pass over their prompt) against ``sequence_logps`` on the collated batch. Target <= 0.8.
* **training step (structure)** - the same step with the shared pass, the 7 LoRAs stacked into one
  (``StackedMix``, the training structure) against 7 separate PEFT adapters mixed by ``set_scale``. Target <= 0.75.
* **reference pass** - the one-off reference log-probs of 64 pairs (no gradient), ``compute_logps_by_prompt``
  against ``compute_logps``. Target <= 0.75.
* **pool scoring** - 20 held-out prompts x 5 candidates, 8 prompts per prompt pass against one. Target <= 0.95.

Also the largest difference between the two ways (float rounding only). Prints, never asserts; timings are medians
of ``--repeats`` runs after one warm-up.

Usage: ``python benchmarks/bench_logps.py [--model tiny|smollm2] [--repeats 3]``. ``--quick`` (``benchmarks/run_all.py
--quick``) uses the tiny Llama: it checks that the script runs, and its ratios are not what the targets are for
(per-call overheads dominate such a small model, so the shared pass saves little there).

Measured (SmolLM2, 2 CPU cores, December 2026): reference pass 0.67, pool scoring 0.88, training step (pass) 0.74,
training step (structure) 0.72 - a training step 4.4 s against 8.5 s with both changes undone. Again on 3 December
2026 (AMD EPYC), after each pass began computing the prefix every prompt shares only once and training's replies
were split into two length-sorted passes: 0.60, 0.58, 0.48, 0.60 (the ours side of each ratio has both; the
baselines keep their plain passes, except that the pool's one-prompt-per-pass baseline also runs the shared prefix
as a call of its own).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import format_table, time_call  # noqa: E402

TARGETS = {"training step (pass)": 0.8, "training step (structure)": 0.75, "reference pass": 0.75,
           "pool scoring": 0.95}


def _load(name: str):
    from survey_weights.modpo import load_base_model, make_tiny_llama

    if name == "tiny":
        return make_tiny_llama(hidden_size=128, num_layers=4)
    return load_base_model("smollm2-135m-instruct", device="cpu")


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    import torch
    from peft import get_peft_model

    from survey_weights.modpo import MODPOConfig
    from survey_weights.modpo._conditioned_loop import (
        _lora_config,
        adapter_names,
        build_structure,
        lora_layers,
        set_mix,
        set_scales,
    )
    from survey_weights.modpo.logps import (
        collate,
        compute_logps,
        compute_logps_by_prompt,
        encode_sequences,
        sequence_logps,
        shared_prompt_logps,
    )
    from survey_weights.synthetic.preferences import load_preference_data

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="the tiny model")
    args = ap.parse_args(argv)
    model, tok = _load("tiny" if args.quick else args.model)
    pad = tok.pad_token_id
    data = load_preference_data()
    pairs = data.train_pairs().sample(64, random_state=0)
    enc = encode_sequences(tok, list(pairs["prompt"]) * 2, list(pairs["chosen"]) + list(pairs["rejected"]),
                           max_length=160, max_prompt_length=96)
    pool = data.candidate_pool("test")
    at = np.argwhere(pool.mask)[:100]
    penc = encode_sequences(tok, [pool.prompts[i] for i, _ in at], [pool.texts[i][j] for i, j in at],
                            max_length=1024, max_prompt_length=256)
    rows = []

    def add(what, base_fn, ours_fn):
        tb, vb = time_call(base_fn, repeat=args.repeats)
        to, vo = time_call(ours_fn, repeat=args.repeats)
        rows.append({"pass": what, "baseline s": tb, "ours s": to, "ratio": to / tb,
                     "target": f"<= {TARGETS[what]:.2f}", "met": "yes" if to / tb <= TARGETS[what] else "no",
                     "max |diff|": f"{float((vb - vo).abs().max()):.1e}"})

    add("reference pass", lambda: compute_logps(model, enc, pad_id=pad, batch_size=16),
        lambda: compute_logps_by_prompt(model, enc, pad_id=pad, batch_size=16))
    add("pool scoring", lambda: compute_logps_by_prompt(model, penc, pad_id=pad, batch_size=8, prompts_per_pass=1),
        lambda: compute_logps_by_prompt(model, penc, pad_id=pad, batch_size=8, prompts_per_pass=8))
    cfg = MODPOConfig(max_steps=1, batch_size=8, max_length=160, max_prompt_length=96, progress=False)
    batch = list(range(8)) + list(range(64, 72))
    w = [0.3, 0.2, 0.1, 0.2, 0.1, 0.1]

    def step(peft_model, fn):
        def run():
            lp = fn(peft_model)
            (lp[:8] - lp[8:]).sum().backward()
            peft_model.zero_grad(set_to_none=True)
            return lp.detach()
        return run

    def plain(m):
        return sequence_logps(m, *collate(enc, batch, pad_id=pad))

    def shared(m):
        return shared_prompt_logps(m, enc, batch, pad_id=pad)

    # the structure as separate PEFT adapters (the baseline of the stacked structure)
    names = adapter_names(6)
    sep = get_peft_model(model, _lora_config(cfg), adapter_name=names[0])
    for n in names[1:]:
        sep.add_adapter(n, _lora_config(cfg))
    sep.base_model.set_adapter(names)
    set_scales(lora_layers(sep), names, [1.0, *w])
    sep.train()
    t_sep, v_sep = time_call(step(sep, shared), repeat=args.repeats)
    model = sep.unload()
    peft_model, _, mix = build_structure(model, cfg, 6)
    set_mix(mix, w)
    peft_model.train()
    add("training step (pass)", step(peft_model, plain), step(peft_model, shared))
    t_st, v_st = time_call(step(peft_model, shared), repeat=args.repeats)
    rows.append({"pass": "training step (structure)", "baseline s": t_sep, "ours s": t_st, "ratio": t_st / t_sep,
                 "target": f"<= {TARGETS['training step (structure)']:.2f}",
                 "met": "yes" if t_st / t_sep <= TARGETS["training step (structure)"] else "no",
                 "max |diff|": "n/a (other initial A)"})
    mix.remove()
    peft_model.unload()
    print(f"model {'tiny' if args.quick else args.model}, {torch.get_num_threads()} threads, median of "
          f"{args.repeats}")
    print(format_table(rows, ["pass", "baseline s", "ours s", "ratio", "target", "met", "max |diff|"]))


if __name__ == "__main__":
    main()
