"""Speed benchmark of the fitting engine vs choix (prints a table; never asserts).

Cases: (a) 335 x 5 rankings with ties (Davidson-Luce orders 2 and 3), and (a2) the simulated 335-respondent
survey (``simulate_survey()`` -> ``Rankings.from_ratings``, ties of orders 2-4) -- ours only: choix has no
ties; (b) 5,000 rankings x 10 items and (c) 100,000 x 20 full rankings vs ``choix.ilsr_rankings``;
(d) Bradley-Terry, 1,000 items x 300,000 pairs vs ``choix.ilsr_pairwise``; (e) peak traced memory of our
fit on the largest ranking case.  Each of our timings is end to end: the public fitter from the data object,
including building the design, checking the network is connected, hashing the data and the result object;
the covariance is computed on first access, so (d2) times the fit plus ``.se`` (standard errors, which
choix does not give at all).  Our timings are medians of repeated runs after one warm-up; choix's large cases
run once (each takes seconds).

Fair comparison: both fit the plain maximum-likelihood estimate of the same model on the same data -- ours
with ``npseudo=0``, choix with its default ``alpha=0`` (no regularisation) -- each with its own convergence
tolerance at 1e-8 (ours: largest Newton step; choix: L1 change of the centred parameters).  Both
log-likelihoods are evaluated with *our* likelihood (no pseudo-comparisons) at each method's estimate; the
model is invariant to adding a constant to all log-worths, so the different centrings do not matter.  The
choix and our runs alternate in one process on the same machine, so load affects both; compare the ratio.
``ours_cpu`` is our median process CPU time (less sensitive to other processes' load than wall time).

Usage: ``python benchmarks/bench_fit.py [--quick] [--no-choix]`` (``--quick`` shrinks (c), (d) and (e)
tenfold).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import format_table, peak_memory, time_call, time_call_cpu

from survey_weights import PairedComparisons, Rankings
from survey_weights.models import fit_bradley_terry, fit_plackett_luce
from survey_weights.models._likelihood import BTDesign, PLDesign
from survey_weights.synthetic.sampling import sample_pl_rankings


def full_rankings(R: int, n: int, rng: np.random.Generator) -> tuple[Rankings, np.ndarray]:
    beta = rng.normal(size=n)
    idx = np.argsort(-(beta + rng.gumbel(size=(R, n))), axis=1)
    r = Rankings._from_arrays(list(range(n)), np.arange(0, R * n + 1, n), idx.ravel(), np.tile(np.arange(1, n + 1), R),
                              np.zeros(R, bool), np.arange(R), np.arange(R))
    return r, idx


def pairs(n: int, P: int, rng: np.random.Generator) -> tuple[PairedComparisons, list]:
    beta = rng.normal(size=n)
    a = rng.integers(0, n, P)
    b = (a + rng.integers(1, n, P)) % n
    win = rng.random(P) < 1 / (1 + np.exp(beta[b] - beta[a]))
    w, lo = np.where(win, a, b), np.where(win, b, a)
    pc = PairedComparisons._from_arrays(list(range(n)), w, lo, np.ones(P), np.ones(P), np.arange(P), np.arange(P))
    return pc, list(zip(w.tolist(), lo.tolist()))


def survey_rankings() -> Rankings:
    from survey_weights.criteria import SURVEY_CRITERIA
    from survey_weights.simulate import simulate_survey

    with warnings.catch_warnings():  # respondents who rated fewer than two criteria are dropped (DataRecodeWarning)
        warnings.simplefilter("ignore")
        return Rankings.from_ratings(simulate_survey(), SURVEY_CRITERIA, respondent="respondent_id", scale=(1, 5))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="shrink the large cases tenfold")
    ap.add_argument("--no-choix", action="store_true", help="skip the choix baselines")
    args = ap.parse_args(argv)
    try:
        import choix
    except ImportError:
        choix = None
    if args.no_choix:
        choix = None
    rng = np.random.default_rng(2026)
    rows = []
    scale = 10 if args.quick else 1
    cols = ["case", "ours_s", "ours_cpu", "choix_s", "ratio", "ll_ours", "ll_choix", "goal"]

    # (a) 335 x 5 with ties
    r = sample_pl_rankings(np.array([0.9, 0.35, -0.45, -0.3, -0.5]), 335, delta={2: 0.6, 3: 0.2},
                           items=list("ABCDE"), rng=1)
    t, tc, res = time_call_cpu(lambda: fit_plackett_luce(r), repeat=20)
    rows.append({"case": "(a) PL 335x5 ties", "ours_s": t, "ours_cpu": tc, "choix_s": "n/a (no ties)",
                 "ll_ours": res.loglik, "goal": "< 0.010 s"})
    rs = survey_rankings()
    t, tc, res = time_call_cpu(lambda: fit_plackett_luce(rs), repeat=20)
    rows.append({"case": f"(a2) PL survey {rs.n_rankings}x5 ratings", "ours_s": t, "ours_cpu": tc,
                 "choix_s": "n/a (no ties)", "ll_ours": res.loglik, "goal": "< 0.010 s"})

    # (b), (c) full rankings
    for label, R, n, rep in (("(b)", 5000, 10, 3), ("(c)", 100_000 // scale, 20, 1)):
        r, idx = full_rankings(R, n, rng)
        t, tc, res = time_call_cpu(lambda r=r: fit_plackett_luce(r, npseudo=0), repeat=rep,
                                   warmup=1 if rep > 1 else 0)
        d = PLDesign.from_rankings(r, npseudo=0)
        row = {"case": f"{label} PL {R}x{n}", "ours_s": t, "ours_cpu": tc,
               "ll_ours": d.loglik(res.theta, pseudo=False), "goal": ">= 20x"}
        if choix is not None:
            data = list(idx)
            tch, est = time_call(lambda n=n, data=data: choix.ilsr_rankings(n, data, alpha=0.0, tol=1e-8),
                                 repeat=rep, warmup=0)
            row.update(choix_s=tch, ratio=tch / t, ll_choix=d.loglik(np.asarray(est), pseudo=False))
        rows.append(row)

    # (d) Bradley-Terry 1000 x 300k
    P, NI = 300_000 // scale, 1000 // scale
    pc, plist = pairs(NI, P, rng)
    t, tc, res = time_call_cpu(lambda: fit_bradley_terry(pc, npseudo=0), repeat=5, warmup=1)
    t2, tc2, _ = time_call_cpu(lambda: fit_bradley_terry(pc, npseudo=0).se, repeat=3, warmup=0)
    d = BTDesign.from_paired(pc, npseudo=0)
    row = {"case": f"(d) BT {NI} items x {P} pairs", "ours_s": t, "ours_cpu": tc,
           "ll_ours": d.loglik(res.theta, pseudo=False), "goal": ">= 10x"}
    row2 = {"case": "(d2) the same, fit + standard errors", "ours_s": t2, "ours_cpu": tc2, "goal": "(info)"}
    if choix is not None:
        tch, est = time_call(lambda: choix.ilsr_pairwise(NI, plist, alpha=0.0, tol=1e-8), repeat=1, warmup=0)
        row.update(choix_s=tch, ratio=tch / t, ll_choix=d.loglik(np.asarray(est), pseudo=False))
        row2.update(choix_s=tch, ratio=tch / t2)
    rows += [row, row2]

    # (e) peak memory of the largest ranking case
    r, _ = full_rankings(100_000 // scale, 20, rng)
    peak, _ = peak_memory(lambda: fit_plackett_luce(r, npseudo=0))
    rows.append({"case": f"(e) peak memory PL {100_000 // scale}x20", "ours_s": f"{peak / 2**20:.0f} MiB",
                 "goal": "< 1 GiB"})
    print(format_table(rows, cols))
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"\n(finished {time.strftime('%Y-%m-%d %H:%M:%S')}; load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} on {os.cpu_count()} CPUs; timings are medians on a shared machine)")


if __name__ == "__main__":
    main()
