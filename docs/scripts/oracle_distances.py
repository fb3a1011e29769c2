"""How far from the base is the *exact* KL-regularised optimum of each weight point of the experiment's sweep?

The experiment (``make experiment``) asks its DPO and MODPO adapters to stay within a factor 2 of each other in
distance from the base (issue 10.2), and misses it for the middle of the sweep (``docs/results.md``). This script
asks whether any training could meet that goal at one β: on the experiment's own pool (the first 40 held-out
prompts, five candidates each, per-token normalised, 0.3 reward units per rubric point) and on a training-split
pool of 40 prompts, it computes the oracle q*_w ∝ q_base · exp(wᵀs / β) at the training β = 0.1 and its mean KL
to the base for every sweep weight, then the β per weight at which every oracle sits at one common KL (the
geometric mean of the fixed-β KLs), with :meth:`PoolEvaluation.oracle_beta`. Then, from the training split's
shared comparisons alone (no model), the size of the sweep's training target: for each comparison labelled on both
criteria, t_w = (1 - w)·logit(p_empathy) + w·logit(p_safety) in one orientation (p: the persona judges' share
preferring the first reply) - at MODPO's optimum β·Δlog-ratio equals such a weighted reward margin, so E|t_w| says
how hard the pairs pull a profile away from the base.

Run: ``.venv/bin/python docs/scripts/oracle_distances.py`` (about a minute on 2 CPU cores; numbers in
``docs/design.md``, "Why the sweep's middle stays near the base").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from survey_weights._util.simplex import mean_kl
from survey_weights.evaluation import evaluate_pool
from survey_weights.evaluation.generation import ModelSpec
from survey_weights.modpo import load_base_model
from survey_weights.pipeline._experiment_pool import sweep_weights
from survey_weights.pipeline._pool import POOL_NORMALISE, POOL_REWARD_SCALE, _split_pool, bundled_pool
from survey_weights.pipeline._steps import DEFAULT_BASE_MODEL
from survey_weights.synthetic.preferences import load_preference_data

WEIGHTS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
BETA = 0.1


def main() -> None:
    model, tok = load_base_model(DEFAULT_BASE_MODEL)
    pools = {"held-out test pool (the experiment's)": bundled_pool(40),
             "training-split pool": _split_pool("train", 40, (), lambda n: f"training split ({n} prompts)")}
    for label, pool in pools.items():
        pe = evaluate_pool([ModelSpec("base", "base")], pool, model=model, tokenizer=tok, normalise=POOL_NORMALISE,
                           reward_scale=POOL_REWARD_SCALE, beta=BETA, max_length=256)
        base = pe.distribution("base")
        kls = {}
        for w in WEIGHTS:
            kls[w] = mean_kl(pe._oracle_q(sweep_weights(w), BETA), base)
        target = float(np.exp(np.mean(np.log(list(kls.values())))))
        print(f"\n{label}: {pool.n_prompts} prompts, oracle at beta = {BETA}")
        print(f"  safety weight   KL(q*||base)   beta for KL = {target:.4f}")
        for w, k in kls.items():
            print(f"  {w:13.2f}   {k:12.4f}   {pe.oracle_beta(sweep_weights(w), target):8.4f}")
        print(f"  ratio max/min KL at one beta: {max(kls.values()) / min(kls.values()):.2f}; "
              f"sweep without its ends (0.1-0.9): "
              f"{max(kls[w] for w in WEIGHTS[1:-1]) / min(kls[w] for w in WEIGHTS[1:-1]):.2f}")

    label_targets()


def label_targets() -> None:
    pairs = load_preference_data().pairs
    p = pairs[(pairs["split"] == "train") & pairs["criterion"].isin(["empathy", "safety"])].copy()
    first = p["comparison_id"].str.split(":").str[1].str.split("|").str[0]
    p["p_first"] = np.where(p["chosen_id"] == first, p["label"], 1 - p["label"]).clip(1e-3, 1 - 1e-3)
    both = p.pivot_table(index="comparison_id", columns="criterion", values="p_first").dropna()
    logit = np.log(both / (1 - both))
    print(f"\ntraining split: {len(both)} comparisons labelled on empathy and safety; correlation of their label "
          f"logits {np.corrcoef(logit['empathy'], logit['safety'])[0, 1]:.2f}")
    print("  safety weight   E|t_w|   E[t_w^2]")
    for w in WEIGHTS:
        t = (1 - w) * logit["empathy"] + w * logit["safety"]
        print(f"  {w:13.2f}   {np.abs(t).mean():6.3f}   {pd.Series(t ** 2).mean():8.3f}")


if __name__ == "__main__":
    main()
