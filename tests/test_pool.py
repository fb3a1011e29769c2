"""The pool evaluation's maths on a hand-built pool (no model): distributions, expected scores, the oracle formula,
MOD, paired bootstrap, Page's test against scipy and hand values, the crossover test, hypervolume, and the result."""

from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy.stats import page_trend_test

from survey_weights.evaluation import CandidatePool, PoolEvaluation, hypervolume_2d, page_trend, paired_bootstrap
from survey_weights.evaluation.pool import (
    crossover_test,
    expected_scores,
    implicit_accuracy,
    mod_distribution,
    oracle_distribution,
    pool_distribution,
)
from survey_weights.evaluation.scoring import ModelInfo

CRIT = ("empathy", "safety")


def _pool() -> CandidatePool:
    """Two prompts; p1 has 3 candidates, p2 has 2 (padded)."""
    df = pd.DataFrame({
        "prompt_id": ["p1", "p1", "p1", "p2", "p2"], "prompt": ["x"] * 3 + ["y"] * 2,
        "candidate_id": ["a", "b", "c", "a", "b"], "text": ["warm", "safe", "both", "warm", "safe"],
        "empathy": [8.0, 2.0, 6.0, 7.0, 1.0], "safety": [1.0, 9.0, 6.0, 3.0, 8.0]})
    return CandidatePool.from_frame(df, criteria=CRIT, name="hand")


def test_pool_layout_and_round_trip():
    pool = _pool()
    assert pool.scores.shape == (2, 3, 2) and pool.n_prompts == 2
    assert pool.mask.tolist() == [[True, True, True], [True, True, False]]
    assert np.isnan(pool.scores[1, 2]).all()
    back = pool.to_frame()
    assert back["text"].tolist() == ["warm", "safe", "both", "warm", "safe"]
    assert pool.weighted({"empathy": 0.5, "safety": 0.5})[0].tolist() == [4.5, 5.5, 6.0]
    with pytest.raises(ValueError, match="fewer than 2 candidates"):
        CandidatePool.from_frame(back.iloc[:4], criteria=CRIT)
    with pytest.raises(ValueError, match="weights"):
        pool.weighted({"autonomy": 1.0})


def test_distribution_and_expected_scores_by_hand():
    pool = _pool()
    lp = np.log(np.array([[0.5, 0.25, 0.25], [0.8, 0.2, np.nan]]))
    q = pool_distribution(lp, pool.mask)
    assert q[0].tolist() == pytest.approx([0.5, 0.25, 0.25])
    assert q[1].tolist() == pytest.approx([0.8, 0.2, 0.0])
    e = expected_scores(q, pool)
    # p1 empathy 0.5*8 + 0.25*2 + 0.25*6 = 6.0, safety 0.5*1 + 0.25*9 + 0.25*6 = 4.25; p2 0.8*7+0.2*1, 0.8*3+0.2*8
    assert np.allclose(e, [[6.0, 4.25], [5.8, 4.0]])
    # per token: log-probs divided by the lengths before the softmax
    lengths = np.array([[2.0, 1.0, 4.0], [1.0, 2.0, 1.0]])
    qm = pool_distribution(lp, pool.mask, lengths=lengths, normalise="mean")
    z = np.array([math.log(0.5) / 2, math.log(0.25), math.log(0.25) / 4])
    assert qm[0].tolist() == pytest.approx((np.exp(z) / np.exp(z).sum()).tolist())
    with pytest.raises(ValueError, match="lengths"):
        pool_distribution(lp, pool.mask, normalise="mean")
    with pytest.raises(ValueError, match="normalise"):
        pool_distribution(lp, pool.mask, normalise="max")


def test_oracle_formula_by_hand():
    pool = _pool()
    ref = np.log(np.array([[0.5, 0.25, 0.25], [0.5, 0.5, np.nan]]))
    w, beta, lam = {"empathy": 0.25, "safety": 0.75}, 2.0, 0.5
    q = oracle_distribution(ref, pool, w, beta=beta, reward_scale=lam)
    r = np.array([0.25 * 8 + 0.75 * 1, 0.25 * 2 + 0.75 * 9, 0.25 * 6 + 0.75 * 6])  # w's per candidate of p1
    expect = np.array([0.5, 0.25, 0.25]) * np.exp(lam * r / beta)
    assert q[0].tolist() == pytest.approx((expect / expect.sum()).tolist())
    assert q[1, 2] == 0.0
    # beta -> infinity returns the reference; tiny beta the best weighted candidate
    assert oracle_distribution(ref, pool, w, beta=1e9)[0].tolist() == pytest.approx([0.5, 0.25, 0.25])
    assert oracle_distribution(ref, pool, w, beta=1e-3)[0].argmax() == 1
    with pytest.raises(ValueError, match="beta"):
        oracle_distribution(ref, pool, w, beta=0.0)


def test_mod_is_a_geometric_mixture():
    pool = _pool()
    la = np.log(np.array([[0.6, 0.2, 0.2], [0.9, 0.1, np.nan]]))
    lb = np.log(np.array([[0.1, 0.7, 0.2], [0.3, 0.7, np.nan]]))
    assert mod_distribution(la, lb, 0.0, pool.mask)[0].tolist() == pytest.approx([0.6, 0.2, 0.2])
    assert mod_distribution(la, lb, 1.0, pool.mask)[1, :2].tolist() == pytest.approx([0.3, 0.7])
    g = np.sqrt(np.array([0.6, 0.2, 0.2]) * np.array([0.1, 0.7, 0.2]))
    assert mod_distribution(la, lb, 0.5, pool.mask)[0].tolist() == pytest.approx((g / g.sum()).tolist())


def test_paired_bootstrap_is_seeded_and_paired():
    rng = np.random.default_rng(3)
    a = rng.normal(size=40)
    b = a + 0.5 + 0.01 * rng.normal(size=40)
    est_a, lo_a, hi_a = paired_bootstrap(a, n_boot=400, seed=7)
    assert est_a == pytest.approx(a.mean()) and lo_a < est_a < hi_a
    assert paired_bootstrap(a, n_boot=400, seed=7)[1] == lo_a  # same seed, same resamples
    # paired: the interval of the difference is far narrower than either model's own interval
    d_est, d_lo, d_hi = paired_bootstrap(b - a, n_boot=400, seed=7)
    assert d_hi - d_lo < 0.1 * (hi_a - lo_a) and d_lo > 0.45
    both = paired_bootstrap(np.column_stack([a, b]), n_boot=400, seed=7)
    assert both[1][0] == pytest.approx(lo_a, abs=1e-12)  # columns resample the same prompts
    with pytest.raises(ValueError, match="n_boot"):
        paired_bootstrap(a, n_boot=3)


def test_page_trend_against_scipy_and_hand():
    data = np.array([[1.0, 2.0, 3.0], [1.0, 3.0, 2.0], [2.0, 1.0, 3.0], [1.0, 2.0, 3.0]])
    res = page_trend(data)
    ref = page_trend_test(data)
    assert res["statistic"] == ref.statistic and res["pvalue"] == ref.pvalue
    # L = sum_j j * R_j with column rank sums R = (5, 8, 11): 1*5 + 2*8 + 3*11 = 54
    assert res["statistic"] == 54.0 and res["direction"] == "increasing"
    down = page_trend(data[:, ::-1], direction="decreasing")
    assert down["statistic"] == 54.0 and down["pvalue"] == pytest.approx(ref.pvalue)
    assert page_trend(data, direction="decreasing")["pvalue"] > 0.9
    with pytest.raises(ValueError, match="M >= 3"):
        page_trend(data[:, :2])


def test_crossover_by_hand():
    jpp = np.array([3.0, 4.0, 5.0, 4.0])
    jpq = np.array([2.0, 3.0, 4.5, 3.5])    # p's model beats q's on p's objective by 0.75 on average
    jqq = np.array([1.0, 1.0, 1.0, 1.0])
    jqp = np.array([1.5, 1.2, 1.1, 1.0])    # q's model loses on q's objective: -0.2
    out = crossover_test(jpp, jpq, jqq, jqp, n_boot=500, seed=0)
    assert out["gain_p"]["estimate"] == pytest.approx(0.75)
    assert out["gain_q"]["estimate"] == pytest.approx(-0.2)
    assert out["gain_p"]["ci"][0] > 0 and out["gain_q"]["ci"][1] <= 0 and out["passed"] is False
    both = crossover_test(jpp, jpq, jqp, jqq, n_boot=500, seed=0)
    assert both["gain_q"]["estimate"] == pytest.approx(0.2) and both["passed"] is True


def test_hypervolume_by_hand():
    pts = np.array([[3.0, 1.0], [1.0, 3.0], [2.0, 2.0], [0.5, 0.5]])
    # staircase above (0, 0): 3x1 + 2x(2-1) + 1x(3-2) = 6; the dominated (0.5, 0.5) adds nothing
    assert hypervolume_2d(pts, (0.0, 0.0)) == 6.0
    # against (1, 1): only (3,1) and (1,3) touch its edges: (2-1)*(2-1) = 1
    assert hypervolume_2d(pts, (1.0, 1.0)) == 1.0
    assert hypervolume_2d(pts, (5.0, 5.0)) == 0.0


def test_implicit_accuracy_by_hand():
    r = implicit_accuracy(np.array([1.0, -1.0, 0.0, 2.0]), np.array([0.9, 0.6, 0.7, np.nan]))
    assert r["accuracy"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert r["soft_accuracy"] == pytest.approx((0.9 + 0.4 + 0.5 + 1.0) / 4)
    assert r["mean_margin"] == 0.5 and r["n_pairs"] == 4


def _evaluation() -> PoolEvaluation:
    pool = _pool()
    u = np.log(np.array([[1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, np.nan]]))
    warm = np.log(np.array([[0.8, 0.1, 0.1], [0.9, 0.1, np.nan]]))
    safe = np.log(np.array([[0.1, 0.8, 0.1], [0.1, 0.9, np.nan]]))
    mid = np.log(np.array([[0.2, 0.2, 0.6], [0.5, 0.5, np.nan]]))
    models = [ModelInfo("base", "base"), ModelInfo("warm", "dpo", {"empathy": 1.0}),
              ModelInfo("mid", "modpo", {"empathy": 0.5, "safety": 0.5}), ModelInfo("safe", "dpo", {"safety": 1.0})]
    return PoolEvaluation.from_logps(pool, {"base": u, "warm": warm, "mid": mid, "safe": safe}, base="base",
                                     models=models, beta=1.0, n_boot=200, seed=0)


def test_pool_evaluation_tables_tests_and_plot():
    ev = _evaluation()
    t = ev.to_frame()
    assert set(t.columns) >= {"model", "criterion", "expected", "ci_lo", "ci_hi", "gain", "gain_lo", "gain_hi"}
    warm_e = t[(t.model == "warm") & (t.criterion == "empathy")].iloc[0]
    # by hand: p1 0.8*8 + 0.1*2 + 0.1*6 = 7.2, p2 0.9*7 + 0.1*1 = 6.4 -> 6.8; base p1 16/3, p2 4 -> 14/3
    assert warm_e.expected == pytest.approx(6.8) and warm_e.gain == pytest.approx(6.8 - 14 / 3)
    assert (t.ci_lo <= t.expected + 1e-12).all() and (t.expected <= t.ci_hi + 1e-12).all()
    s = ev.summary()
    assert list(s.index) == ["base", "warm", "mid", "safe"] and s.loc["base", "kl_to_base"] == 0.0
    assert s.loc["warm", "empathy_vs_base"] > 0 > s.loc["warm", "safety_vs_base"]
    # objectives, crossover between the two single-objective models
    assert ev.objective("warm", {"empathy": 1.0}).tolist() == pytest.approx([7.2, 6.4])
    cx = ev.crossover("warm", "safe", {"empathy": 1.0}, {"safety": 1.0})
    assert cx["profiles"] == ["warm", "safe"] and cx["gain_p"]["estimate"] > 0 and cx["gain_q"]["estimate"] > 0
    tr = ev.trend(["warm", "mid", "safe"], "safety")
    assert tr["statistic"] == page_trend(np.column_stack(
        [ev.per_prompt(n)["safety"] for n in ("warm", "mid", "safe")]))["statistic"]
    # oracle: its front is at least as good as any model in the limit of strong rewards
    front = ev.oracle_front(n=5)
    assert front["empathy"].iloc[0] > front["empathy"].iloc[-1] and front["safety"].iloc[-1] > front["safety"].iloc[0]
    gain = ev.oracle_gain({"empathy": 1.0}, {"safety": 1.0})
    assert gain["estimate"] > 0 and gain["se"] >= 0
    mod = ev.mod_front("warm", "safe", n=3)
    assert mod["empathy"].tolist()[0] == pytest.approx(ev.point("warm")[0])
    hv = ev.hypervolume(["warm", "mid", "safe"])
    bx, by = ev.point("base")
    pts = np.array([ev.point(n) for n in ("warm", "mid", "safe")])
    assert hv == hypervolume_2d(pts, (bx, by))
    d = ev.to_dict(trend={"safety": tr})
    assert d["models"][1]["name"] == "warm" and d["trend"]["safety"]["direction"] == "increasing"
    fig, ax = plt.subplots()
    out = ev.plot(ax=ax, fronts={"DPO/MODPO": ["warm", "mid", "safe"]})
    assert out is ax and len(ax.texts) == 4 and ax.get_xlabel() == "pool-expected empathy"
    plt.close(fig)
    fig, ax = plt.subplots()  # many models close together: names in a legend outside the axes, none on the points
    ev.plot(ax=ax, labels="legend")
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    assert not ax.texts and set(ev.names) <= set(names)
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)


def test_plot_relative_to_base_uses_paired_gains_and_the_oracle_at_a_distance():
    ev = _evaluation()
    fig, ax = plt.subplots()
    out = ev.plot(ax=ax, labels="legend", relative_to="base", oracle_kl="median")
    assert out is ax and "gain over base" in ax.get_xlabel()
    # every model's point is its paired gain over the base; the base sits at the origin
    pts = {c.get_label(): c.lines[0].get_xydata()[0] for c in ax.containers}
    for n in ev.names:
        gx = ev.difference(n, "base", {"empathy": 1.0})["estimate"]
        gy = ev.difference(n, "base", {"safety": 1.0})["estimate"]
        assert pts[n] == pytest.approx([gx, gy])
    assert pts["base"] == pytest.approx([0.0, 0.0])
    # the oracle line is the KL-constrained front at the models' median distance, shifted by the base's point
    kl = float(np.median([ev.kl_to_base(n) for n in ev.names if n != "base"]))
    front = ev.oracle_front(n=21, kl=kl)
    bx, by = ev.point("base")
    line = next(ln for ln in ax.get_lines() if ln.get_label().startswith("oracle at KL"))
    assert line.get_xdata() == pytest.approx(front["empathy"] - bx)
    assert line.get_ydata() == pytest.approx(front["safety"] - by)
    # each point of that front is as far from the base as asked
    beta = ev.oracle_beta({"empathy": 0.5, "safety": 0.5}, kl)
    from survey_weights._util.simplex import mean_kl
    assert mean_kl(ev._oracle_q({"empathy": 0.5, "safety": 0.5}, beta), ev.distribution("base")) == pytest.approx(kl)
    # distinct colour-marker pairs for the legend's models
    styles = {(c.lines[0].get_color(), c.lines[0].get_marker()) for c in ax.containers}
    assert len(styles) == len(ev.names)
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    fig, ax = plt.subplots()  # a distance no model on this pool can reach: the front at beta, and the label says so
    ev.plot(ax=ax, oracle_kl=1e6, labels=False)
    assert any("out of reach" in ln.get_label() for ln in ax.get_lines())
    plt.close(fig)
    with pytest.raises(ValueError, match="relative_to"):
        ev.plot(relative_to="nobody")
    with pytest.raises(ValueError, match="oracle_kl"):
        ev.plot(oracle_kl="mean")


def test_plot_legend_styles_stay_distinct_beyond_ten_models():
    pool = _pool()
    rng = np.random.default_rng(0)
    logps = {f"m{i}": np.where(pool.mask, rng.normal(size=pool.mask.shape), np.nan) for i in range(13)}
    logps["base"] = np.where(pool.mask, 0.0, np.nan)
    ev = PoolEvaluation.from_logps(pool, logps, base="base", beta=1.0, n_boot=50, seed=0)
    fig, ax = plt.subplots()
    ev.plot(ax=ax, labels="legend", relative_to="base")
    colours = [tuple(c.lines[0].get_color()) if not isinstance(c.lines[0].get_color(), str)
               else c.lines[0].get_color() for c in ax.containers]
    assert len(set(colours)) == len(ev.names) == 14  # 20 colours before any repeats
    plt.close(fig)


def test_from_logps_validates():
    pool = _pool()
    with pytest.raises(ValueError, match="shape"):
        PoolEvaluation.from_logps(pool, {"base": np.zeros((2, 2))}, base="base")
    with pytest.raises(ValueError, match="base"):
        PoolEvaluation.from_logps(pool, {"m": np.zeros((2, 3))}, base="base")
