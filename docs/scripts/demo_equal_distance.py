"""The main job's latent-class adapters scaled to one distance from the base, then the pool's class separation.

A lead for the one comparison that depends on the seed (class 1 vs class 3; README, "The main job's latent
classes"): with seed 1, class 1's adapter moved least and its side came out below 0, as the oracle at those
distances predicts. This script takes a finished ``make demo`` / ``survey-weights run --n-classes 3 --seed S``
output, scales the three class adapters' updates (``modpo.scale_to_comparable_distance``, ratio MAX_RATIO, KL per
token) until their KL from the base agrees on held-out sequences - the candidates of the job's calibration pool
(training split, prompts no training pair comes from; never the evaluation pool) - and prints, as JSON, the
scales, the KL on those sequences and on the pool, each class's gain over the base and every crossover on all 60
pool prompts. The numbers in ``docs/design.md`` ("Calibrated mixing", December 2026) come from::

    .venv/bin/survey-weights run --out outputs --n-classes 3            # seed 0 (make demo)
    .venv/bin/python docs/scripts/demo_equal_distance.py outputs 0 1.05
    .venv/bin/survey-weights run --out outputs_s1 --n-classes 3 --seed 1
    .venv/bin/python docs/scripts/demo_equal_distance.py outputs_s1 1 1.05

Scaled adapters go to ``<out>/scaled_equal_distance``. Run it alone: two torch jobs on 2 cores slow each other
down many times over. Synthetic data throughout: nothing here is the study's.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from survey_weights.evaluation.pool_scoring import evaluate_pool
from survey_weights.modpo import adapter_distances, load_base_model, scale_to_comparable_distance
from survey_weights.pipeline._pool import (
    POOL_NORMALISE,
    POOL_REWARD_SCALE,
    bundled_calibration_pool,
    bundled_pool,
    class_separation,
)
from survey_weights.pipeline._steps import load_preference_split, training_pairs
from survey_weights.pipeline.main import MainSchedule
from survey_weights.profiles.training_spec import profile_dirname

CLASSES = ["class 1", "class 2", "class 3"]


def main(out: Path, seed: int, max_ratio: float) -> dict:
    torch.manual_seed(seed)
    sched = MainSchedule()
    split = load_preference_split(None, seed=seed)
    train, _, _ = training_pairs(split.train, sched.training, seed=seed, per_criterion=sched.pairs_per_criterion,
                                 log=lambda *a: None, reward_models=None)
    # the job's own calibration pool: the same prompts its mixing was calibrated on
    cpool = bundled_calibration_pool(sched.n_calibration_prompts, exclude=set(train["prompt_id"]))
    data = pd.DataFrame([{"prompt": cpool.prompts[i], "response": cpool.texts[i][j]}
                         for i, j in np.argwhere(cpool.mask)])
    model, tok = load_base_model("smollm2-135m-instruct")
    ads = {n: str(out / "adapters" / profile_dirname(n)) for n in CLASSES}
    weights = {n: json.loads((Path(ads[n]) / "profile.json").read_text())["weights"] for n in CLASSES}
    t = time.perf_counter()
    before = adapter_distances(ads, data, model=model, tokenizer=tok)
    dist, _ = scale_to_comparable_distance(ads, data, model=model, tokenizer=tok,
                                           output_dir=out / "scaled_equal_distance", max_ratio=max_ratio,
                                           max_rounds=3, distances=before)
    seconds = time.perf_counter() - t
    pe = evaluate_pool(dict(dist["path"]), bundled_pool(60), model=model, tokenizer=tok, normalise=POOL_NORMALISE,
                       reward_scale=POOL_REWARD_SCALE, seed=seed, progress=False)
    sep = class_separation(pe, weights, CLASSES)

    def gain(g):
        return {"estimate": round(g["estimate"], 4), "ci": [round(x, 4) for x in g["ci"]]}

    return {"seed": seed, "max_ratio": max_ratio, "distance_seconds": round(seconds, 1),
            "kl_before": before["kl"].round(5).to_dict(), "kl_after": dist["kl"].round(5).to_dict(),
            "scale": {k: round(v, 3) for k, v in dist["scale"].items()},
            "pool_kl_after": {n: round(pe.kl_to_base(n), 5) for n in CLASSES},
            "from_base": {r["profile"]: gain(r["gain"]) for r in sep["from_base"]},
            "between": [{"profiles": c["profiles"], "gain_p": gain(c["gain_p"]), "gain_q": gain(c["gain_q"]),
                         "passed": c["passed"]} for c in sep["between"]],
            "separated": sep["separated"]}


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit("usage: demo_equal_distance.py OUT SEED MAX_RATIO")
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])), indent=1))
