"""Would bfloat16 make the main job's pool evaluation faster without changing what it finds?

Scores the base model and three exported adapters of a finished main job (``--run``, default ``outputs``: run
``make demo`` first) on all 60 held-out pool prompts, in float32 and under ``torch.autocast("cpu", bfloat16)``,
and prints each pass's time, the per-sequence log-probability error of bfloat16, how far the adapters' own
log-probabilities are from the base's (the signal), and the paired comparisons of the main job in both precisions.

Run: ``.venv/bin/python docs/scripts/pool_bf16_check.py [--run outputs]`` (about 5 minutes on 2 CPU cores;
numbers in ``docs/design.md``, "Log-prob passes").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from survey_weights.evaluation.pool_scoring import evaluate_pool
from survey_weights.modpo import load_base_model, set_torch_threads
from survey_weights.pipeline._pool import POOL_NORMALISE, POOL_REWARD_SCALE, bundled_pool
from survey_weights.pipeline._steps import DEFAULT_BASE_MODEL

NAMES = ("pooled", "class 1", "class 3")
PAIRS = (("class 1", "base"), ("class 3", "base"), ("class 1", "class 3"), ("class 3", "class 1"),
         ("class 1", "pooled"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="outputs", help="a finished main job's output directory")
    args = ap.parse_args()
    set_torch_threads(2)
    model, tok = load_base_model(DEFAULT_BASE_MODEL)
    pool = bundled_pool(60)
    dirs = {n: Path(args.run) / "adapters" / n.replace(" ", "_") for n in NAMES}
    weights = {n: json.loads((d / "profile.json").read_text())["weights"] for n, d in dirs.items()}
    res = {}
    for mode in ("float32", "bfloat16"):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bfloat16"):
            res[mode] = evaluate_pool({n: str(d) for n, d in dirs.items()}, pool, model=model, tokenizer=tok,
                                      normalise=POOL_NORMALISE, reward_scale=POOL_REWARD_SCALE, seed=0)
        print(f"{mode}: {time.perf_counter() - t:.1f} s for {len(NAMES) + 1} models", flush=True)
    f32, b16 = res["float32"], res["bfloat16"]
    err = np.concatenate([np.abs(b16.logps[n] - f32.logps[n])[pool.mask] for n in f32.names])
    sig = np.concatenate([np.abs(f32.logps[n] - f32.logps["base"])[pool.mask] for n in NAMES])
    print(f"bfloat16 error per sequence: mean {err.mean():.3f}, max {err.max():.3f} nats")
    print(f"adapter minus base per sequence (float32): mean {sig.mean():.3f}, median {np.median(sig):.3f} nats")
    for p, q in PAIRS:
        a, b = f32.difference(p, q, weights[p]), b16.difference(p, q, weights[p])
        print(f"{p} - {q} on {p}'s objective: float32 {a['estimate']:+.4f} [{a['ci'][0]:+.4f}, {a['ci'][1]:+.4f}]"
              f"  bfloat16 {b['estimate']:+.4f} [{b['ci'][0]:+.4f}, {b['ci'][1]:+.4f}]")


if __name__ == "__main__":
    main()
