"""Time one pool-scoring pass (``compute_logps_by_prompt``) of the base model over the main job's pool: the first 40
held-out prompts of the bundled synthetic data, five candidates each (200 sequences), 8 prompts per pass, replies in
chunks of 8. Prints the best of two runs and saves the log-probs to ``--save`` (``.npy``) so two commits' values can
be compared.

Run: ``.venv/bin/python docs/scripts/time_pool_pass.py [--save FILE] [--batch-size N] [--profile]`` (about a minute
on 2 CPU cores; numbers in ``docs/design.md``, "Log-prob passes"). ``--batch-size``: replies per chunk (default 8);
``--profile``: also print the operators that took the time (``torch.profiler``, one pass).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from survey_weights.modpo import load_base_model, set_torch_threads
from survey_weights.modpo.logps import compute_logps_by_prompt, encode_sequences
from survey_weights.pipeline._pool import bundled_pool
from survey_weights.pipeline._steps import DEFAULT_BASE_MODEL


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save", default=None, help="write the 200 log-probs here (.npy)")
    ap.add_argument("--batch-size", type=int, default=8, help="replies per chunk")
    ap.add_argument("--profile", action="store_true", help="print the operators that took the time")
    args = ap.parse_args()
    set_torch_threads(2)
    model, tok = load_base_model(DEFAULT_BASE_MODEL)
    pool = bundled_pool(40)
    idx = np.argwhere(pool.mask)
    enc = encode_sequences(tok, [pool.prompts[i] for i, _ in idx], [pool.texts[i][j] for i, j in idx],
                           max_length=256, max_prompt_length=256)
    pad = tok.pad_token_id
    compute_logps_by_prompt(model, enc, list(range(10)), pad_id=pad)  # warm-up
    times = []
    for _ in range(2):
        t = time.perf_counter()
        values = compute_logps_by_prompt(model, enc, pad_id=pad, batch_size=args.batch_size)
        times.append(time.perf_counter() - t)
    print(f"{len(enc)} sequences, {args.batch_size} replies per chunk: best of 2 runs {min(times):.1f} s")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            compute_logps_by_prompt(model, enc, pad_id=pad, batch_size=args.batch_size)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
    if args.save:
        np.save(args.save, values.numpy())


if __name__ == "__main__":
    main()
