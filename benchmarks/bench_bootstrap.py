"""Benchmark of survey_weights.subgroups.bootstrap (and, with --coverage, the full coverage simulation).

Usage::

    .venv/bin/python benchmarks/bench_bootstrap.py                 # 1,000 replicates of the 335-respondent survey
    .venv/bin/python benchmarks/bench_bootstrap.py --coverage      # 200 simulated surveys x 200 replicates

Timing goal: 1,000 replicates in under 5 s on 2 cores. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from survey_weights.criteria import SURVEY_CRITERIA
from survey_weights.data import Rankings
from survey_weights.simulate import simulate_survey
from survey_weights.subgroups.bootstrap import bootstrap
from survey_weights.synthetic.sampling import sample_weak_orders

GOAL_S = 5.0


def _survey() -> Rankings:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Rankings.from_ratings(simulate_survey(335), list(SURVEY_CRITERIA), respondent="respondent_id")


def bench_timing(n_boot: int = 1000, repeats: int = 3) -> float:
    r = _survey()
    bootstrap(r, n_boot=20, seed=0, progress=False)  # warm-up (imports, caches)
    times = []
    for k in range(repeats):
        t = time.perf_counter()
        res = bootstrap(r, n_boot=n_boot, seed=k, progress=False)
        times.append(time.perf_counter() - t)
    best = min(times)
    print(f"bootstrap: {n_boot} replicates, {r.n_respondents} respondents, {r.n_items} items: "
          f"best {best:.2f} s of {repeats} (all: {', '.join(f'{x:.2f}' for x in times)}); "
          f"goal {GOAL_S:.0f} s -> ratio {best / GOAL_S:.2f}; failed refits {res.n_failed}")
    t = time.perf_counter()
    bootstrap(r, n_boot=n_boot, seed=0, progress=False, method="bca")
    print(f"bootstrap with BCa jackknife: {time.perf_counter() - t:.2f} s")
    return best


def bench_coverage(n_rep: int = 200, n_boot: int = 200, n: int = 335, seed: int = 2024) -> float:
    beta = np.array([0.6, 0.2, 0.0, -0.3, -0.5])
    truth = np.exp(beta) / np.exp(beta).sum()
    rng = np.random.default_rng(seed)
    hits = {"percentile": [], "bca": []}
    t = time.perf_counter()
    for _ in range(n_rep):
        r = sample_weak_orders(beta, {2: np.log(0.4), 3: np.log(0.3)}, n, rng)
        res = bootstrap(r, n_boot=n_boot, seed=rng, method="bca", progress=False)
        for m, h in hits.items():
            ci = res.ci(method=m)
            h.append(((ci["ci_low"] <= truth) & (truth <= ci["ci_high"])).to_numpy())
    for m, h in hits.items():
        h = np.array(h)
        print(f"coverage ({m}, 95%): {h.mean():.3f} overall; per item "
              f"{', '.join(f'{x:.3f}' for x in h.mean(axis=0))} ({n_rep} surveys of n={n}, {n_boot} replicates)")
    print(f"coverage simulation took {time.perf_counter() - t:.1f} s")
    return float(np.mean(hits["percentile"]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coverage", action="store_true", help="run the coverage simulation instead of the timing")
    ap.add_argument("--n-boot", type=int, default=None)
    ap.add_argument("--n-rep", type=int, default=200)
    args = ap.parse_args(argv)
    if args.coverage:
        bench_coverage(n_rep=args.n_rep, n_boot=args.n_boot or 200)
    else:
        bench_timing(n_boot=args.n_boot or 1000)


if __name__ == "__main__":
    main()
