"""Benchmark model-based preference trees and latent-class mixtures (prints, never asserts).

Usage::

    python benchmarks/bench_trees.py                    # Topmodel2007 bttree and beans pltree vs R timings
    python benchmarks/bench_trees.py --false-splits 200 # false-split rate on null simulated surveys
    python benchmarks/bench_trees.py --mixture 20       # mixture ARI vs the Bayes classifier, 20 data sets

R reference timings (2-core machine, /work/shared/docs/anchors.md): psychotree::bttree on Topmodel2007 0.65 s,
PlackettLuce::pltree on beans about 5.8-6 s. Goal: >= 5x faster.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from survey_weights.subgroups.trees import fit_tree

R_SECONDS = {"topmodel2007 bttree": 0.65, "beans pltree": 5.8}


def _external() -> Path:
    return Path(os.environ.get("SURVEY_WEIGHTS_EXTERNAL", ROOT.parent / "shared" / "external"))


def _timeit(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def bench_parity_trees(repeat: int = 5) -> None:
    from test_trees import (  # the loaders used by the parity tests
        TOP_COV,
        load_beans,
        load_topmodel,
    )

    if not (_external() / "psychotree" / "topmodel2007.csv").exists():
        print(f"external data not found at {_external()}; skipping the R comparisons")
        return
    top, beans = load_topmodel(), load_beans()
    fit_tree(top, TOP_COV, minsize=5, npseudo=0)  # warm-up (imports)
    cases = {
        "topmodel2007 bttree": lambda: fit_tree(top, TOP_COV, minsize=5, npseudo=0),
        "beans pltree": lambda: fit_tree(beans, ["season", "year", "maxTN"], minsize=0.05 * 842, maxdepth=3),
    }
    print(f"{'case':<22}{'python s':>10}{'R s':>8}{'R / python':>12}  leaves")
    for name, fn in cases.items():
        sec, tree = _timeit(fn, repeat)
        sizes = tree.membership.value_counts().sort_index().to_dict()
        print(f"{name:<22}{sec:>10.3f}{R_SECONDS[name]:>8.2f}{R_SECONDS[name] / sec:>11.1f}x  {sizes}")


def false_split_rate(n_sims: int, *, n: int = 335, minsize: float = 30, alpha: float = 0.05, seed0: int = 0,
                     covariates: list[str] | None = None) -> None:
    from test_trees import SURVEY_COV, survey

    covariates = covariates or SURVEY_COV
    from tqdm.auto import tqdm

    splits, first_vars, pmins = 0, {}, []
    t0 = time.perf_counter()
    for s in tqdm(range(n_sims), desc="null simulations"):
        r = survey(n, seed=seed0 + s, heterogeneity=0.0)
        tree = fit_tree(r, covariates, minsize=minsize, alpha=alpha)
        pmins.append(float(tree.tests(1)["pvalue"].min()))
        if tree.n_leaves > 1:
            splits += 1
            v = tree.nodes[1].split.variable
            first_vars[v] = first_vars.get(v, 0) + 1
    rate = splits / n_sims
    se = np.sqrt(rate * (1 - rate) / n_sims)
    print(f"false-split rate: {splits}/{n_sims} = {rate:.3f} (binomial SE {se:.3f}; alpha = {alpha}) "
          f"at n = {n}, minsize = {minsize}, covariates = {covariates}; {time.perf_counter() - t0:.1f} s")
    print(f"rejections at alpha of the root's smallest adjusted p-value: {np.mean(np.array(pmins) <= alpha):.3f}; "
          f"at 0.10: {np.mean(np.array(pmins) <= 0.10):.3f}; split variables: {first_vars}")


def mixture_ari(n_sets: int, *, n: int = 335) -> None:
    from test_mixture import bayes_membership, simulate_classes

    from survey_weights.subgroups.mixture import adjusted_rand_index, fit_mixture

    rows = []
    for s in range(n_sets):
        r, z = simulate_classes(n, seed=1000 + s)
        t0 = time.perf_counter()
        fit = fit_mixture(r, 3, seed=s)
        rows.append({"seed": s, "ari_fit": adjusted_rand_index(fit.membership.to_numpy(), z),
                     "ari_bayes": adjusted_rand_index(bayes_membership(r), z), "seconds": time.perf_counter() - t0})
    df = pd.DataFrame(rows)
    df["gap"] = df["ari_bayes"] - df["ari_fit"]
    print(df.round(3).to_string(index=False))
    print(f"mean ARI fit {df.ari_fit.mean():.3f}, Bayes {df.ari_bayes.mean():.3f}; worst gap {df.gap.max():.3f}; "
          f"mean fit time {df.seconds.mean():.2f} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--false-splits", type=int, nargs="?", const=200, default=None, metavar="N",
                    help="run N null simulations (default 200) and print the false-split rate")
    ap.add_argument("--mixture", type=int, nargs="?", const=20, default=None, metavar="N",
                    help="mixture ARI vs Bayes ARI over N simulated data sets")
    ap.add_argument("--covariates", default=None,
                    help="comma-separated covariates for --false-splits (default: the test-suite set)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.false_splits is None and args.mixture is None:
        bench_parity_trees(args.repeat)
    if args.false_splits is not None:
        false_split_rate(args.false_splits,
                         covariates=args.covariates.split(",") if args.covariates else None)
    if args.mixture is not None:
        mixture_ari(args.mixture)


if __name__ == "__main__":
    main()
