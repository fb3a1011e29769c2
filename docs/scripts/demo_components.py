"""What each criterion's LoRA of the main job's conditioned run does on the pool, against the oracle (issue 10.7).

Trains (or reuses, when ``--out`` holds the same finished run) the main job's default conditioned run on the bundled
synthetic data (12 profiles, 3 latent classes, 32 training pairs per criterion, margins from the pairs' labels),
exports every simplex corner ``e_c`` (the shared LoRA plus criterion c's) beside the pooled and class profiles, and
scores them all on the first ``--pool`` held-out prompts of the bundled candidate pool. Prints

* the corner shifts: expected rubric score of each corner export minus the base, per scored criterion (rows) and
  corner (columns), beside the KL-regularised oracle's at the same distance from the base;
* how well the affine mix explains the profiles (each profile's shift against the corners' shifts times its
  weights: the run is affine in the weights, and at these distances so is its effect on the pool);
* each class's efficiency (its gain over the base as a share of the oracle's at its distance) and each crossover
  side's margin by design (``survey_weights.pipeline._pool.class_separation``).

The numbers in ``docs/design.md`` ("The main job's schedule") come from this script, seed 0, 40 prompts, 2-core
CPU::

    .venv/bin/python docs/scripts/demo_components.py --seed 0 --pool 40 [--centre draws]

Synthetic data throughout: nothing here is the study's.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from survey_weights.evaluation.pool_scoring import evaluate_pool
from survey_weights.modpo.conditioned import ConditionedAdapter
from survey_weights.pipeline import _steps as steps
from survey_weights.pipeline._pool import POOL_NORMALISE, POOL_REWARD_SCALE, bundled_pool, class_separation
from survey_weights.pipeline.main import MainSchedule, build_profiles
from survey_weights.preferences.split import subsample_pairs
from survey_weights.profiles.training_spec import normalize_profiles


def train_run(seed: int, centre: str | None, out_root: str) -> dict:
    """The main job's default conditioned run (12 profiles, 32 pairs per criterion, label margins) under
    ``out_root/seed<seed>[_centred]``, trained or reused: model, tokenizer, run, exports, weights and seconds."""
    steps.set_threads(2)
    profiles = [p for p in build_profiles(steps.load_survey_frame(None, None), n_classes=3, progress=False)
                if p.n_respondents >= 10]
    split = steps.load_preference_split(None, seed=0)
    train = subsample_pairs(split.train, per_criterion=32, seed=seed)
    specs = normalize_profiles(profiles)
    log = steps.Log(True)
    out = Path(out_root) / f"seed{seed}{'_centred' if centre else ''}"
    model, tok = steps.load_model("smollm2-135m-instruct", None, log)
    cfg = replace(MainSchedule().training, seed=seed, progress=False)
    cfg = replace(cfg, max_steps=cfg.max_steps * len(specs))
    t = time.perf_counter()
    adapters = steps.train_conditioned_profiles(specs, train, out=out / "adapters", run_dir=out / "conditioned",
                                                model=model, tok=tok, cfg=cfg, rms={},
                                                base_model="smollm2-135m-instruct", device=None, overwrite=None,
                                                log=log, margin_labels=split.train, centre=centre)
    return {"model": model, "tok": tok, "out": out, "adapters": adapters, "train": train,
            "cond": ConditionedAdapter.load(out / "conditioned", calibration=False),
            "weights": {s.name: s.weight_dict for s in specs}, "seconds": time.perf_counter() - t}


def print_separation(pe, weights: dict) -> None:
    """Each class's gain over the base with its efficiency, and every crossover with its oracle and margins."""
    sep = class_separation(pe, weights, [n for n in weights if n.startswith("class ") and n in pe.names])
    for r in sep["from_base"]:
        g = r["gain"]
        print(f"{r['profile']} vs base: {g['estimate']:+.3f} [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}], KL "
              f"{r['kl_to_base']:.4f}, oracle at its distance {r['oracle_at_distance']['estimate']:.3f}, "
              f"efficiency {r['efficiency']:.0%}")
    for c in sep["between"]:
        p, q = c["profiles"]
        od, m = c["oracle_at_distance"], c["margin_by_design"]
        print(f"{p} vs {q}: {c['gain_p']['estimate']:+.3f} [{c['gain_p']['ci'][0]:+.3f}, {c['gain_p']['ci'][1]:+.3f}]"
              f" / {c['gain_q']['estimate']:+.3f} [{c['gain_q']['ci'][0]:+.3f}, {c['gain_q']['ci'][1]:+.3f}]; oracle "
              f"{od['gain_p']['estimate']:.3f} / {od['gain_q']['estimate']:.3f}; margin by design {m['p']:.0%} / "
              f"{m['q']:.0%}; {'passed' if c['passed'] else 'not passed'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="pair subsample, LoRA init, draws and data order")
    ap.add_argument("--pool", type=int, default=40, help="held-out pool prompts")
    ap.add_argument("--centre", default=None, help="train_conditioned's centre (None or 'draws')")
    ap.add_argument("--out", default="outputs/demo_components")
    a = ap.parse_args()
    r = train_run(a.seed, a.centre, a.out)
    model, tok, cond, out, weights = r["model"], r["tok"], r["cond"], r["out"], r["weights"]
    crits = list(cond.criteria)
    keep = {x.name: x.path for x in r["adapters"] if x.name == "pooled" or x.name.startswith("class ")}
    for c in crits:
        keep[f"corner {c}"] = cond.export({c: 1.0}, out / "corners" / c, name=f"corner {c}")
    pool = bundled_pool(a.pool)
    pe = evaluate_pool(keep, pool, model=model, tokenizer=tok, normalise=POOL_NORMALISE,
                       reward_scale=POOL_REWARD_SCALE, seed=0)
    if list(pool.criteria) != crits:
        raise SystemExit(f"pool criteria {list(pool.criteria)} differ from the run's {crits}")
    np.set_printoptions(precision=3, suppress=True, linewidth=150)
    mean = {n: pe.per_prompt(n).mean().to_numpy() for n in pe.names}
    base = mean[pe.base]
    shift = np.column_stack([mean[f"corner {c}"] - base for c in crits])
    oracle = np.column_stack([pe.oracle({c: 1.0}, kl=pe.kl_to_base(f"corner {c}")).mean(0) - base for c in crits])
    print(f"seed {a.seed}, centre {a.centre}: training {r['seconds']:.0f} s, {pool.n_prompts} pool prompts")
    print("criteria (rows scored, columns corner):", crits)
    print("corner shifts of the run:\n", shift)
    print("oracle at each corner's distance:\n", oracle)
    print("corner KL to base:", [round(pe.kl_to_base(f"corner {c}"), 4) for c in crits])
    for n in keep:
        if n in weights:
            w = np.array([weights[n].get(c, 0.0) for c in crits])
            print(f"{n}: shift {mean[n] - base}, affine prediction {shift @ w}, KL {pe.kl_to_base(n):.4f}")
    print_separation(pe, weights)


if __name__ == "__main__":
    main()
