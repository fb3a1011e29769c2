"""Calibrated mixing of the main job's conditioned run against the run's own mix, on the pool (issue 10.7).

Trains (or reuses, from ``docs/scripts/demo_components.py``'s ``--out``) the main job's default conditioned run on
the bundled synthetic data, calibrates its mixing on ``--calibration`` training-split prompts that no training pair
comes from (``ConditionedAdapter.calibrate``; ``MainSchedule.n_calibration_prompts``), exports the pooled and
latent-class profiles both ways and scores them on the first ``--pool`` held-out pool prompts, printing each
class's gain over the base (with its distance and efficiency) and every crossover (with the oracle at the adapters'
distances and the margins by design), on all ``--pool`` prompts and on the first ``--subset`` (the demo's 20).
The numbers in ``docs/design.md`` ("Calibrated mixing") come from::

    .venv/bin/python docs/scripts/demo_calibration.py --seed 0
    .venv/bin/python docs/scripts/demo_calibration.py --seed 1

Synthetic data throughout: nothing here is the study's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_components import print_separation, train_run  # noqa: E402

from survey_weights.evaluation import PoolEvaluation  # noqa: E402
from survey_weights.evaluation.pool_scoring import evaluate_pool  # noqa: E402
from survey_weights.pipeline._pool import (  # noqa: E402
    POOL_NORMALISE,
    POOL_REWARD_SCALE,
    bundled_calibration_pool,
    bundled_pool,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="pair subsample, LoRA init, draws and data order")
    ap.add_argument("--calibration", type=int, default=20, help="calibration prompts (training split, no pair)")
    ap.add_argument("--pool", type=int, default=40, help="held-out pool prompts scored")
    ap.add_argument("--subset", type=int, default=20, help="also report the first this many (0: no)")
    ap.add_argument("--out", default="outputs/demo_components")
    a = ap.parse_args()
    r = train_run(a.seed, None, a.out)
    model, tok, cond, out, weights = r["model"], r["tok"], r["cond"], r["out"], r["weights"]
    cpool = bundled_calibration_pool(a.calibration, exclude=set(r["train"]["prompt_id"]))
    t = time.perf_counter()
    cal = cond.calibrate(cpool, model=model, tokenizer=tok, normalise=POOL_NORMALISE, save=False)
    print(f"seed {a.seed}: run trained or reused in {r['seconds']:.0f} s; calibrated on {cal.source} in "
          f"{time.perf_counter() - t:.0f} s, ridge {cal.ridge:g}, R2 "
          + ", ".join(f"{c} {v:.2f}" for c, v in cal.r2.items()))
    names = ["pooled", "class 1", "class 2", "class 3"]
    plain = {x.name: x.path for x in r["adapters"] if x.name in names}
    models = dict(plain)
    np.set_printoptions(precision=3, suppress=True, linewidth=150)
    for n in names:
        models[f"{n} (calibrated)"] = cond.export(weights[n], out / "calibrated" / n.replace(" ", "_"), name=n)
        print(f"{n}: scales (shared, criteria) {cond.scales(weights[n])}")
    pe = evaluate_pool(models, bundled_pool(a.pool), model=model, tokenizer=tok, normalise=POOL_NORMALISE,
                       reward_scale=POOL_REWARD_SCALE, seed=0)
    for n_prompts in [a.pool] + ([a.subset] if 0 < a.subset < a.pool else []):
        sub = pe if n_prompts == a.pool else PoolEvaluation.from_logps(
            bundled_pool(n_prompts), {k: v[:n_prompts] for k, v in pe.logps.items()}, base=pe.base,
            lengths=pe.lengths[:n_prompts], normalise=pe.normalise, beta=pe.beta, reward_scale=pe.reward_scale,
            seed=0)
        for tag, key in (("the run's own mix", lambda n: n), ("calibrated", lambda n: f"{n} (calibrated)")):
            print(f"--- {tag}, {n_prompts} pool prompts")
            keep = {key(n): weights[n] for n in names}
            renamed = {key(n): (f"class {n[-1]}" if n.startswith("class ") else n) for n in names}
            lp = {sub.base: sub.logps[sub.base], **{renamed[k]: sub.logps[k] for k in keep}}
            view = PoolEvaluation.from_logps(sub.pool, lp, base=sub.base, lengths=sub.lengths,
                                             normalise=sub.normalise, beta=sub.beta,
                                             reward_scale=sub.reward_scale, seed=0)
            print_separation(view, {renamed[k]: w for k, w in keep.items()})


if __name__ == "__main__":
    main()
