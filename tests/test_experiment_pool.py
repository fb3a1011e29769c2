"""The experiment's pool analysis (trend, crossover, fronts, hypervolume, conditioned vs per-profile, pass
criteria) on a hand-built pool whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey_weights.evaluation import ModelInfo
from survey_weights.evaluation.pool import CandidatePool, hypervolume_2d, page_trend
from survey_weights.evaluation.pool_result import PoolEvaluation
from survey_weights.pipeline._experiment_pool import analyse_pool, pool_findings_markdown, sweep_weights

P = 12
SWEEP = (0.25, 0.5, 0.75)


def _pool() -> CandidatePool:
    rows = []
    for i in range(P):  # candidate 0 warm, 1 safe, 2 in between
        for j, (e, s) in enumerate([(8.0, 2.0), (2.0, 8.0), (5.0, 5.0)]):
            rows.append({"prompt_id": f"p{i}", "prompt": f"q{i}", "text": f"c{j}", "empathy": e + 0.1 * i,
                         "safety": s})
    return CandidatePool.from_frame(pd.DataFrame(rows), criteria=("empathy", "safety"))


def _q(w: float, jitter: float) -> np.ndarray:
    """Mass (1 - w) on the warm reply, w on the safe one, a little on the middle; `jitter` varies by prompt."""
    out = np.empty((P, 3))
    for i in range(P):
        a = min(max(w + jitter * ((i % 3) - 1) / 10, 0.01), 0.99)
        out[i] = [(1 - a) * 0.9, a * 0.9, 0.1]
    return np.log(out)


def _evaluation(cond_shift: float = 0.0) -> PoolEvaluation:
    lp = {"base": np.log(np.full((P, 3), 1 / 3)), "dpo_empathy": _q(0.02, 0.0), "dpo_safety": _q(0.98, 0.0)}
    for w in SWEEP:
        lp[f"modpo_s{w:g}"] = _q(w, 1.0)
        lp[f"merge_exact_s{w:g}"] = _q(0.5 + (w - 0.5) / 2, 0.5)  # a flatter front than MODPO's
        lp[f"merge_ab_s{w:g}"] = _q(0.5 + (w - 0.5) / 3, 0.5)
    for w in (0.0, *SWEEP, 1.0):
        lp[f"conditioned_s{w:g}"] = _q(min(max(w + cond_shift, 0.02), 0.98), 0.0)
    models = [ModelInfo(n, "base" if n == "base" else "dpo" if n.startswith("dpo") else
                        "merge" if n.startswith("merge") else "modpo") for n in lp]
    return PoolEvaluation.from_logps(_pool(), lp, base="base", models=models, beta=1.0, n_boot=300, seed=1)


def _analyse(pe: PoolEvaluation) -> dict:
    return analyse_pool(pe, sweep={w: f"modpo_s{w:g}" for w in SWEEP},
                        merges={m: {w: f"{m}_s{w:g}" for w in SWEEP} for m in ("merge_exact", "merge_ab")},
                        conditioned={w: f"conditioned_s{w:g}" for w in (0.0, *SWEEP, 1.0)}, crossover=(0.25, 0.75))


def test_analysis_finds_the_built_in_trade_off():
    pe = _evaluation()
    a = _analyse(pe)
    names = [f"modpo_s{w:g}" for w in SWEEP]
    # Page's test as scipy computes it on the per-prompt values
    ref = page_trend(np.column_stack([pe.per_prompt(n)["safety"] for n in names]))
    assert a["trend"]["safety"]["statistic"] == ref["statistic"] and a["trend"]["safety"]["pvalue"] < 1e-3
    assert a["trend"]["empathy"]["direction"] == "decreasing" and a["trend"]["empathy"]["pvalue"] < 1e-3
    cr = a["crossover"][0]
    assert cr["profiles"] == ["modpo_s0.25", "modpo_s0.75"] and cr["passed"]
    # gain_p by hand: modpo_s0.25 minus modpo_s0.75 on {empathy: 0.75, safety: 0.25}
    w = sweep_weights(0.25)
    by_hand = (pe.objective("modpo_s0.25", w) - pe.objective("modpo_s0.75", w)).mean()
    assert cr["gain_p"]["estimate"] == pytest.approx(by_hand)
    # hypervolume of MODPO's front (with the DPO ends) against the nadir, by hand
    pts = np.array([pe.point(n) for n in a["fronts"]["modpo"]])
    assert a["hypervolume"]["modpo"] == pytest.approx(hypervolume_2d(pts, a["hypervolume_reference"]))
    assert a["fronts"]["modpo"][0] == "dpo_empathy" and a["fronts"]["modpo"][-1] == "dpo_safety"
    assert a["fronts"]["merge_exact"][1:-1] == [f"merge_exact_s{w:g}" for w in SWEEP]
    every = np.array([pe.point(n) for n in pe.names])
    assert np.all(np.asarray(a["hypervolume_reference"]) <= every.min(axis=0) + 1e-12)
    assert a["hypervolume"]["oracle"] > 0 and a["hypervolume"]["mod"] > 0
    # conditioned identical in shape to the DPO ends and sweep without jitter: differences are by hand
    rows = {r["safety_weight"]: r for r in a["conditioned_vs_per_profile"]}
    assert list(rows) == [0.0, 0.25, 0.5, 0.75, 1.0] and rows[0.0]["per_profile"] == "dpo_empathy"
    d = (pe.objective("conditioned_s0.5", sweep_weights(0.5)) - pe.objective("modpo_s0.5", sweep_weights(0.5))).mean()
    assert rows[0.5]["difference"]["estimate"] == pytest.approx(d)
    lo, hi = rows[0.5]["difference"]["ci"]
    assert lo <= d <= hi
    p = a["pass"]
    assert p["safety_rises"]["passed"] and p["empathy_falls"]["passed"] and p["crossover"]["passed"]
    assert p["modpo_vs_merge_exact"]["passed"] and p["modpo_vs_merge_ab"]["passed"]
    assert 0 < p["modpo_vs_oracle"]["share_of_oracle"] and p["conditioned_vs_modpo"]["ratio"] > 0
    assert a["distance"]["ratio"] >= 1.0 and set(a["distance"]["kl_to_base"]) == set(a["fronts"]["modpo"])
    md = pool_findings_markdown(a)
    assert "Pass criteria" in md and "**safety_rises**: passed" in md and "Crossover test" in md
    assert "conditioned_s0.5" in md and md.count("| modpo_s") == 3 + 3  # model table + comparison rows


def test_analysis_reports_a_miss_as_a_miss():
    """A sweep that goes the wrong way fails its criteria; nothing is forced to pass."""
    pe = _evaluation()
    lp = dict(pe.logps)
    for w in SWEEP:  # reverse the sweep
        lp[f"modpo_s{w:g}"] = pe.logps[f"modpo_s{1 - w:g}"]
    rev = PoolEvaluation.from_logps(pe.pool, lp, base="base", models=list(pe.models), beta=1.0, n_boot=300, seed=1)
    a = _analyse(rev)
    assert not a["pass"]["safety_rises"]["passed"] and not a["pass"]["empathy_falls"]["passed"]
    assert not a["pass"]["crossover"]["passed"]
    assert "**crossover**: not passed" in pool_findings_markdown(a)


def test_analysis_bad_input():
    pe = _evaluation()
    with pytest.raises(ValueError, match="at least 3 weight points"):
        analyse_pool(pe, sweep={0.25: "modpo_s0.25", 0.75: "modpo_s0.75"})
    with pytest.raises(ValueError, match="must be points of the sweep"):
        analyse_pool(pe, sweep={w: f"modpo_s{w:g}" for w in SWEEP}, crossover=(0.1, 0.75))


def test_schedule_checks():
    from survey_weights.pipeline import ExperimentSchedule

    with pytest.raises(ValueError, match="at least 3 points"):
        ExperimentSchedule(safety_weights=(0.25, 0.75))
    with pytest.raises(ValueError, match="two points of `safety_weights`"):
        ExperimentSchedule(crossover=(0.3, 0.75))
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        ExperimentSchedule(safety_weights=(0.0, 0.5, 1.0))
    with pytest.raises(TypeError, match="`generate`"):
        ExperimentSchedule(generate="base")


def test_class_separation_from_base_and_between():
    from survey_weights.pipeline._pool import class_separation

    pe = _evaluation()
    names = ["modpo_s0.25", "modpo_s0.75"]
    weights = {n: sweep_weights(w) for n, w in zip(names, (0.25, 0.75))}
    sep = class_separation(pe, weights, [*names, "not a model"])
    assert [r["profile"] for r in sep["from_base"]] == names
    w = weights["modpo_s0.25"]
    by_hand = (pe.objective("modpo_s0.25", w) - pe.objective("base", w)).mean()
    assert sep["from_base"][0]["gain"]["estimate"] == pytest.approx(by_hand)
    assert len(sep["between"]) == 1 and sep["between"][0]["profiles"] == names
    assert sep["separated"] is (all(r["separated"] for r in sep["from_base"]) and sep["between"][0]["passed"])
    kl = {n: pe.kl_to_base(n) for n in names}
    assert [r["kl_to_base"] for r in sep["from_base"]] == pytest.approx([kl[n] for n in names])
    od = sep["between"][0]["oracle_at_distance"]
    assert od["gain_p"] == pe.oracle_gain(w, weights[names[1]], kl_p=kl[names[0]], kl_q=kl[names[1]])
    same = class_separation(pe, {"a": w}, [])
    assert same == {"from_base": [], "between": [], "separated": None}
    # a class adapter identical to the base is not separated from it
    lp = dict(pe.logps)
    lp["modpo_s0.25"] = pe.logps["base"]
    flat = PoolEvaluation.from_logps(pe.pool, lp, base="base", models=list(pe.models), beta=1.0, n_boot=300, seed=1)
    assert class_separation(flat, weights, names)["separated"] is False


def _two_classes() -> tuple[PoolEvaluation, list[str], dict, dict]:
    """The hand-built pool with its 0.25 and 0.75 MODPO adapters as two "classes", and their separation."""
    import matplotlib

    matplotlib.use("Agg")
    from survey_weights.pipeline._pool import class_separation

    pe = _evaluation()
    names = ["modpo_s0.25", "modpo_s0.75"]
    weights = {n: sweep_weights(w) for n, w in zip(names, (0.25, 0.75))}
    return pe, names, weights, class_separation(pe, weights, names)


def test_class_separation_plot_shows_every_gain_with_its_interval(tmp_path):
    from survey_weights.pipeline._pool import plot_class_separation, write_pool_section
    from survey_weights.plotting import new_figure

    pe, names, weights, sep = _two_classes()
    fig, ax = new_figure()
    assert plot_class_separation(sep, ax=ax) is ax
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["modpo_s0.25 over base", "modpo_s0.75 over base",
                      "modpo_s0.25 over modpo_s0.75 on modpo_s0.25's objective",
                      "modpo_s0.75 over modpo_s0.25 on modpo_s0.75's objective"]
    bars = ax.containers
    assert len(bars) == 4
    first = sep["from_base"][0]["gain"]
    x, _ = bars[0].lines[0].get_data()
    assert x[0] == pytest.approx(first["estimate"])
    seg = bars[0].lines[2][0].get_segments()[0]  # the horizontal interval
    assert sorted(seg[:, 0]) == pytest.approx(sorted(first["ci"]))
    # the oracle at the adapters' distances: one grey cross per crossover side, at its estimate
    od = sep["between"][0]["oracle_at_distance"]
    (cross,) = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert list(cross.get_xdata()) == pytest.approx([od["gain_p"]["estimate"], od["gain_q"]["estimate"]])
    assert list(cross.get_ydata()) == [2, 3]
    # written beside the report by the main job's pool section
    (tmp_path / "evaluation.json").write_text("{}")
    (tmp_path / "report.md").write_text("# report\n")
    paths = write_pool_section(pe, [], tmp_path, seconds=1.0, separation=sep)
    assert paths["pool_separation"].stat().st_size > 1000
    assert "![class separation](pool_separation.png)" in (tmp_path / "report.md").read_text()


def test_oracle_at_a_distance_by_hand():
    """Two candidates, a uniform base and scores (1, 0): q*_beta = (sigma(1/beta), 1 - sigma(1/beta)), so
    KL(q* || base) = log 2 - H(q*); oracle_beta inverts it and the oracle at that KL scores sigma(1/beta)."""
    from scipy.optimize import brentq
    from scipy.special import expit, xlogy

    rows = [{"prompt_id": "p0", "prompt": "q", "text": t, "empathy": e} for t, e in (("a", 1.0), ("b", 0.0))]
    pool = CandidatePool.from_frame(pd.DataFrame(rows), criteria=("empathy",))
    pe = PoolEvaluation.from_logps(pool, {"base": np.log([[0.5, 0.5]])}, base="base", beta=1.0, n_boot=50, seed=0)

    def kl(beta):
        p = expit(1.0 / beta)
        return np.log(2) + xlogy(p, p) + xlogy(1 - p, 1 - p)

    for target in (0.001, 0.05, 0.3):
        beta = brentq(lambda b, t=target: kl(b) - t, 1e-2, 1e4)
        assert pe.oracle_beta({"empathy": 1.0}, target) == pytest.approx(beta, rel=1e-6)
        assert pe.oracle({"empathy": 1.0}, kl=target)[0, 0] == pytest.approx(expit(1.0 / beta), rel=1e-6)
    assert pe.oracle_beta({"empathy": 1.0}, 0.0) == float("inf")
    assert pe.oracle({"empathy": 1.0}, kl=0.0)[0, 0] == pytest.approx(0.5)  # no distance: the base itself
    assert pe.oracle({"empathy": 1.0})[0, 0] == pytest.approx(expit(1.0))  # default: the evaluation's beta
    with pytest.raises(ValueError, match="beyond the oracle's reach"):
        pe.oracle_beta({"empathy": 1.0}, 0.7)  # more than log 2
    with pytest.raises(ValueError, match="`kl`"):
        pe.oracle_beta({"empathy": 1.0}, -0.1)


def test_oracle_gain_at_the_adapters_distances():
    """At equal distance a profile's own oracle beats the other's on its objective; at no distance both are the
    base (gain 0); unequal distances are each oracle at its own KL, by hand."""
    pe = _evaluation()
    w_e, w_s = sweep_weights(0.25), sweep_weights(0.75)
    w = np.array([w_e[c] for c in pe.pool.criteria])
    eq = pe.oracle_gain(w_e, w_s, kl_p=0.05, kl_q=0.05)
    assert eq["estimate"] > 0 and eq["detectable"]
    assert eq["estimate"] == pytest.approx(((pe.oracle(w_e, kl=0.05) - pe.oracle(w_s, kl=0.05)) @ w).mean())
    assert pe.oracle_gain(w_e, w_s, kl_p=0.0, kl_q=0.0)["estimate"] == pytest.approx(0.0, abs=1e-12)
    far = pe.oracle_gain(w_e, w_s, kl_p=0.02, kl_q=0.3)
    assert far["estimate"] == pytest.approx(((pe.oracle(w_e, kl=0.02) - pe.oracle(w_s, kl=0.3)) @ w).mean())
    assert far["estimate"] != pytest.approx(eq["estimate"])


def test_oracle_improvement_bounds_every_model_at_its_distance():
    """The oracle at a model's KL is the best distribution at that distance (the exponential tilt maximises the
    objective under a mean-KL bound): no model of the pool gains more over the base on an objective than it;
    at no distance it gains nothing; by hand it is the oracle's objective minus the base's."""
    pe = _evaluation()
    w_e = sweep_weights(0.25)
    w = np.array([w_e[c] for c in pe.pool.criteria])
    base = pe.per_prompt("base").to_numpy() @ w
    for name in pe.names:
        if name == "base":
            continue
        kl = pe.kl_to_base(name)
        best = pe.oracle_improvement(w_e, kl=kl)
        assert best["estimate"] == pytest.approx(((pe.oracle(w_e, kl=kl) @ w) - base).mean())
        assert pe.difference(name, "base", w_e)["estimate"] <= best["estimate"] + 1e-9
        assert best["ci"][0] <= best["estimate"] <= best["ci"][1] and best["se"] > 0
    assert pe.oracle_improvement(w_e, kl=0.0)["estimate"] == pytest.approx(0.0, abs=1e-12)
    assert pe.oracle_improvement(w_e, kl=0.2)["estimate"] > pe.oracle_improvement(w_e, kl=0.05)["estimate"] > 0


def test_class_separation_efficiency_and_margin_by_design(tmp_path):
    from survey_weights.pipeline._pool import class_separation, write_pool_section

    pe, names, weights, sep = _two_classes()
    for r in sep["from_base"]:
        best = pe.oracle_improvement(weights[r["profile"]], kl=pe.kl_to_base(r["profile"]))
        assert r["oracle_at_distance"] == best
        assert r["efficiency"] == pytest.approx(r["gain"]["estimate"] / best["estimate"])
        assert 0 < r["efficiency"] <= 1 + 1e-9
    c = sep["between"][0]
    best = {r["profile"]: r["oracle_at_distance"]["estimate"] for r in sep["from_base"]}
    assert c["margin_by_design"]["p"] == pytest.approx(c["oracle_at_distance"]["gain_p"]["estimate"] / best[names[0]])
    assert c["margin_by_design"]["q"] == pytest.approx(c["oracle_at_distance"]["gain_q"]["estimate"] / best[names[1]])
    # an adapter equal to the base: its oracle at distance 0 gains nothing, so no efficiency or margin
    lp = dict(pe.logps)
    lp["modpo_s0.25"] = pe.logps["base"]
    flat = PoolEvaluation.from_logps(pe.pool, lp, base="base", models=list(pe.models), beta=1.0, n_boot=300, seed=1)
    fsep = class_separation(flat, weights, names)
    assert fsep["from_base"][0]["efficiency"] is None and fsep["between"][0]["margin_by_design"]["p"] is None
    (tmp_path / "evaluation.json").write_text("{}")
    (tmp_path / "report.md").write_text("# report\n")
    write_pool_section(pe, [], tmp_path, seconds=1.0, separation=sep)
    text = (tmp_path / "report.md").read_text()
    assert f"efficiency {sep['from_base'][0]['efficiency']:.0%}" in text
    assert f"margin {c['margin_by_design']['p']:.0%} / {c['margin_by_design']['q']:.0%}" in text


def test_outcome_words_follow_the_distances():
    """The results page's distance sentence says within/outside from the ratio and names the least-moved adapter
    from the record, instead of asserting where the sweep moves least."""
    from survey_weights.pipeline.experiment import _outcome_md

    a = _analyse(_evaluation())
    d = a["distance"]
    least = min(d["kl_to_base"], key=d["kl_to_base"].get)
    text = _outcome_md(a)
    assert f"(least moved: `{least}`)" in text and f"{d['ratio']:.1f}-fold" in text
    assert ("are comparable" in text) == (d["ratio"] <= 2) and ("are not comparable" in text) == (d["ratio"] > 2)
    # the same record with the least-moved adapter moved twenty times as far: the words follow
    kl = dict(d["kl_to_base"], **{least: 20 * max(d["kl_to_base"].values())})
    b = dict(a, distance={"kl_to_base": kl, "ratio": max(kl.values()) / min(kl.values())})
    new_least = min(kl, key=kl.get)
    assert new_least != least and f"(least moved: `{new_least}`)" in _outcome_md(b) and "are not comparable" in _outcome_md(b)


def test_balancing_paragraph_from_a_record():
    """The balancing paragraph and table come from ``distance_balancing`` alone: an adapter that got more steps and
    ended closer to the base is named (once, in the singular), the DPO ends' budgets are given, and every row of
    the table carries the record's numbers."""
    from survey_weights.pipeline.experiment import _balancing_md

    bal = {"kl_first": {"dpo_empathy": 0.08, "dpo_safety": 0.12, "modpo_s0.5": 0.02},
           "kl": {"dpo_empathy": 0.07, "dpo_safety": 0.05, "modpo_s0.5": 0.006},
           "max_steps": {"dpo_empathy": 13, "dpo_safety": 9, "modpo_s0.5": 64},
           "ratio_first": 6.0, "ratio": 0.07 / 0.006, "rounds": [{}, {}], "max_ratio": 2.0, "n_sequences": 48}
    text = "\n".join(_balancing_md(bal, 16))
    assert "left it at **11.67** (goal 2)" in text and "without the least-moved adapter (`modpo_s0.5`) it is 1.40" in text
    assert "`modpo_s0.5` ended *closer* to the base" in text and "did not bring it into the band" in text
    assert "dpo_empathy 13 steps, dpo_safety 9 steps" in text
    assert "| modpo_s0.5 | 0.0200 | 64 | 0.0060 |" in text
    # nobody came closer: no such sentence
    bal2 = dict(bal, kl={"dpo_empathy": 0.07, "dpo_safety": 0.05, "modpo_s0.5": 0.03})
    assert "closer" not in "\n".join(_balancing_md(bal2, 16))


def test_scaling_paragraph_from_a_record():
    """With ``method`` "scale" the paragraph names the scaled adapters with their scales, says whether the final
    ratio is within the goal, and the table carries each adapter's scale; an unscaled record says so."""
    from survey_weights.pipeline.experiment import _balancing_md

    bal = {"method": "scale", "kl_first": {"dpo_empathy": 0.04, "dpo_safety": 0.03, "modpo_s0.5": 0.005},
           "kl": {"dpo_empathy": 0.04, "dpo_safety": 0.03, "modpo_s0.5": 0.018},
           "scale": {"dpo_empathy": 1.0, "dpo_safety": 1.0, "modpo_s0.5": 1.9},
           "max_steps": {"dpo_empathy": 16, "dpo_safety": 16, "modpo_s0.5": 16},
           "ratio_first": 8.0, "ratio": 0.04 / 0.018, "rounds": [{}], "max_ratio": 2.0, "n_sequences": 48}
    text = "\n".join(_balancing_md(bal, 16))
    assert "after training every adapter 16 steps" in text and "ratio was 8.00" in text
    assert "`modpo_s0.5` × 1.90" in text and "`dpo_empathy` ×" not in text and "in 1 round(s)" in text
    assert "ratio at **2.22**, still outside the goal of 2" in text
    assert "| modpo_s0.5 | 0.0050 | 1.90 | 0.0180 |" in text and "| dpo_safety | 0.0300 | 1.00 | 0.0300 |" in text
    ok = dict(bal, kl={**bal["kl"], "modpo_s0.5": 0.025}, ratio=0.04 / 0.025)
    assert "ratio at **1.60**, within the goal of 2" in "\n".join(_balancing_md(ok, 16))
    none = dict(bal, scale={n: 1.0 for n in bal["scale"]}, rounds=[], ratio=1.5, ratio_first=1.5)
    assert "no adapter was scaled" in "\n".join(_balancing_md(none, 16))


def test_load_warning_counts_the_runs_own_threads():
    """A run on 2 threads keeps the 1-min load near 2 by itself: that is not another job."""
    from survey_weights.pipeline.experiment import _load_md

    assert _load_md({"load_average_1min_at_end": 2.0, "cpu_count": 2, "torch_threads": 2}) == []
    assert _load_md({"load_average_1min_at_end": 2.4, "cpu_count": 2, "torch_threads": 2}) == []
    busy = _load_md({"load_average_1min_at_end": 3.1, "cpu_count": 2, "torch_threads": 2})
    assert "shared with other jobs" in busy[0] and "3.1 on 2 cores" in busy[0] and "own 2 thread(s)" in busy[0]
    assert "shared" in _load_md({"load_average_1min_at_end": 1.8, "cpu_count": 4, "torch_threads": 1})[0]
    assert _load_md({"load_average_1min_at_end": None, "cpu_count": 2}) == []
