"""Measure how far the main job's schedule separates the latent-class adapters on the pool (issue 10.7).

Trains the main job's conditioned run on the bundled synthetic survey and preference data (12 profiles, 3 latent
classes as ``make demo`` asks for) with the schedule given on the command line, exports every profile, and scores
the pooled and class adapters on the first ``--pool`` held-out prompts of the bundled candidate pool: each class
against the base on its own objective, the crossover test of each pair of classes, and the oracle-predicted gains.
The numbers in ``docs/design.md`` ("The main job's schedule") come from this script, seed 0, on a 2-core CPU::

    .venv/bin/python docs/scripts/demo_schedule.py --steps 2 --batch 8 --lr 1e-3 --pool 40

Synthetic data throughout: nothing here is the study's.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from survey_weights.criteria import ALL_CRITERIA
from survey_weights.evaluation.pool_scoring import evaluate_pool
from survey_weights.modpo import ProfileSampler
from survey_weights.pipeline import _steps as steps
from survey_weights.pipeline._pool import POOL_NORMALISE, POOL_REWARD_SCALE, bundled_pool, class_separation
from survey_weights.pipeline.main import MainSchedule, build_profiles
from survey_weights.preferences.split import subsample_pairs
from survey_weights.profiles.training_spec import normalize_profiles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2, help="steps per profile (the run has steps x profiles)")
    ap.add_argument("--batch", type=int, default=8, help="pairs per step")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--pairs", type=int, default=32, help="training pairs per criterion (0: all)")
    ap.add_argument("--by", default="pair", choices=["pair", "comparison"], help="subsample_pairs' unit")
    ap.add_argument("--margins", default="auto", choices=["auto", "reward_models", "labels"],
                    help="MODPOConfig.margins (auto, the main job's default: the pairs' own labels on these data)")
    ap.add_argument("--pool", type=int, default=40, help="held-out pool prompts")
    ap.add_argument("--centre", default=None, help="train_conditioned's centre (None or 'draws')")
    ap.add_argument("--per-step", type=int, default=1, help="weight vectors drawn per step (ProfileSampler)")
    ap.add_argument("--mode", default="conditioned", choices=["conditioned", "per-profile"])
    ap.add_argument("--targets", default=None, help="LoRA target modules, comma-separated (default: MODPOConfig's, "
                    "the attention projections); e.g. q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="seeds the pair subsample, LoRA init and data order (the "
                    "held-out split and the pool stay those of seed 0, the demo's)")
    ap.add_argument("--out", default="outputs/demo_schedule")
    a = ap.parse_args()
    steps.set_threads(a.threads)
    profiles = [p for p in build_profiles(steps.load_survey_frame(None, None), n_classes=3, progress=False)
                if p.n_respondents >= 10]
    split = steps.load_preference_split(None, seed=0)
    train = subsample_pairs(split.train, per_criterion=a.pairs or None, seed=a.seed, by=a.by)
    specs = normalize_profiles(profiles)
    weights = {s.name: s.weight_dict for s in specs}
    log = steps.Log(True)
    out = Path(a.out)
    crits = [c for c in ALL_CRITERIA if c in set(train["criterion"])]
    labels = None if a.margins == "reward_models" else split.train  # where each pair's other labels are read
    rms = {} if labels is not None else steps.margin_reward_models(split.train, crits, out / "reward_models", seed=0,
                                                                   per_criterion=48, log=log)
    model, tok = steps.load_model("smollm2-135m-instruct", None, log)
    cfg = replace(MainSchedule().training, max_steps=a.steps, batch_size=a.batch, lr=a.lr, seed=a.seed, progress=False,
                  margins=a.margins)
    if a.targets:
        cfg = replace(cfg, target_modules=tuple(t.strip() for t in a.targets.split(",") if t.strip()))
    t = time.perf_counter()
    common = dict(model=model, tok=tok, rms=rms, base_model="smollm2-135m-instruct", device=None, overwrite=True,
                  log=log)
    sampler = ProfileSampler(specs, per_step=a.per_step) if a.per_step != 1 else None
    if a.mode == "conditioned":
        adapters = steps.train_conditioned_profiles(specs, train, out=out / "adapters", run_dir=out / "conditioned",
                                                    cfg=replace(cfg, max_steps=a.steps * len(specs)),
                                                    centre=a.centre, weight_sampler=sampler,
                                                    margin_labels=labels,
                                                    **common)
    else:
        adapters = steps.train_profiles(specs, train, out=out / "adapters", cfg=cfg, **common,
                                        margin_labels=labels).adapters
    train_s = time.perf_counter() - t
    keep = {x.name: x.path for x in adapters if x.name == "pooled" or x.name.startswith("class ")}
    pool = bundled_pool(a.pool)
    t = time.perf_counter()
    pe = evaluate_pool(keep, pool, model=model, tokenizer=tok, normalise=POOL_NORMALISE,
                       reward_scale=POOL_REWARD_SCALE, seed=0)
    sep = class_separation(pe, weights, [n for n in weights if n.startswith("class ")])

    def f(g):
        return f"{g['estimate']:+.3f} [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}]"

    print(f"seed {a.seed}: {a.mode}, {a.steps} steps/profile x {a.batch} pairs ({a.per_step} draws per step), lr {a.lr:g}, "
          f"centre {a.centre}, margins {a.margins}, targets {','.join(cfg.target_modules)}, {len(train)} pairs "
          f"(by {a.by}): training "
          f"{train_s:.0f} s, pool {time.perf_counter() - t:.0f} s ({pool.n_prompts} prompts)")
    print("KL to base:", ", ".join(f"{n} {pe.kl_to_base(n):.4f}" for n in pe.names if n != pe.base))
    for r in sep["from_base"]:
        print(f"{r['profile']} vs base: {f(r['gain'])}")
    for c in sep["between"]:
        p, q = c["profiles"]
        od = c["oracle_at_distance"]
        print(f"{p} vs {q}: {f(c['gain_p'])} / {f(c['gain_q'])}{' passed' if c['passed'] else ''} (oracle "
              f"{pe.oracle_gain(weights[p], weights[q])['estimate']:.3f} / "
              f"{pe.oracle_gain(weights[q], weights[p])['estimate']:.3f}; at these distances "
              f"{od['gain_p']['estimate']:.3f} (SE {od['gain_p']['se']:.3f}) / "
              f"{od['gain_q']['estimate']:.3f} (SE {od['gain_q']['se']:.3f}))")
    print("separated:", sep["separated"])


if __name__ == "__main__":
    main()
