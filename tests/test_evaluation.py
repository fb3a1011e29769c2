"""Evaluation: win rates with ties in the denominator, exact McNemar, Pareto fronts, personalisation, schema."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from survey_weights.evaluation import (
    EvaluationResult,
    ModelInfo,
    compare_with_base,
    mcnemar_exact,
    paired_bootstrap,
    pareto_front,
    personalisation_check,
    plot_pareto,
    weighted_utility,
)


def _scores(emp, saf, ids=None):
    ids = ids or [f"p{i}" for i in range(len(emp))]
    return pd.DataFrame({"empathy": emp, "safety": saf}, index=pd.Index(ids, name="prompt_id"), dtype=float)


@pytest.fixture
def table():
    base = _scores([1, 1, 2, 0, 5, 3], [7, 7, 7, 7, 7, 7])
    model = _scores([2, 1, 3, 0, 4, 6], [7, 8, 6, 7, 7, 7])
    return compare_with_base({"base": base, "m": model})


def test_win_rate_counts_ties_in_denominator(table):
    r = table[(table.model == "m") & (table.criterion == "empathy")].iloc[0]
    assert (r.wins, r.losses, r.ties, r.n_prompts) == (3, 1, 2, 6)
    assert r.win_rate == pytest.approx(3 / 6)  # not 3 / 4
    assert r.win_rate + r.loss_rate + r.tie_rate == pytest.approx(1.0)
    s = table[(table.model == "m") & (table.criterion == "safety")].iloc[0]
    assert (s.wins, s.losses, s.ties) == (1, 1, 4) and s.win_rate == pytest.approx(1 / 6)
    b = table[table.model == "base"]
    assert (b.win_rate == 0).all() and (b.tie_rate == 1).all() and (b.mcnemar_p == 1).all()


def test_win_rate_aligns_prompts_by_id():
    base = _scores([1, 2], [0, 0], ids=["a", "b"])
    model = _scores([3, 1], [0, 0], ids=["b", "a"])  # reversed order: b=3 > 2, a=1 = 1
    t = compare_with_base({"base": base, "m": model}).set_index(["model", "criterion"])
    assert t.loc[("m", "empathy"), "wins"] == 1 and t.loc[("m", "empathy"), "ties"] == 1


@pytest.mark.parametrize("b,c", [(0, 0), (9, 1), (1, 9), (5, 5), (12, 3), (0, 7), (30, 18), (1, 0)])
def test_mcnemar_exact_matches_scipy_binomtest(b, c):
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_mcnemar_in_table_uses_discordant_prompts_only(table):
    r = table[(table.model == "m") & (table.criterion == "empathy")].iloc[0]
    assert r.mcnemar_p == pytest.approx(binomtest(3, 4, 0.5).pvalue)


def test_mcnemar_rejects_bad_counts():
    with pytest.raises(ValueError, match="n_better"):
        mcnemar_exact(-1, 2)


def test_compare_errors():
    base = _scores([1, 2], [0, 0])
    with pytest.raises(ValueError, match="base model"):
        compare_with_base({"m": base})
    with pytest.raises(ValueError, match="other prompts"):
        compare_with_base({"base": base, "m": _scores([1, 2], [0, 0], ids=["x", "y"])})
    with pytest.raises(ValueError, match="NaN"):
        compare_with_base({"base": base, "m": _scores([np.nan, 2], [0, 0])})


def test_pareto_front():
    p = pd.DataFrame({"empathy": [1, 2, 0, 2, 0.5, 2], "safety": [1, 0, 2, 1, 0.5, 1]},
                     index=["a", "b", "c", "d", "e", "f"])
    front = pareto_front(p)
    assert front.to_dict() == {"a": False, "b": False, "c": True, "d": True, "e": False, "f": True}
    with pytest.raises(ValueError, match="objective"):
        pareto_front(p, ("empathy", "trust_rapport"))


def test_weighted_utility_renormalises_unscored():
    s = _scores([2, 4], [6, 8])
    u = weighted_utility(s, {"empathy": 0.25, "safety": 0.25, "trust_rapport": 0.5})
    assert u.tolist() == pytest.approx([4.0, 6.0])


def test_personalisation_check_constructed_case():
    # Subgroup A weighs empathy; its adapter is warmer, a bit less safe. Subgroup B weighs safety;
    # its adapter is no better than pooled on safety (should not beat pooled).
    pooled = _scores([3, 3, 3, 3], [6, 6, 6, 6])
    a = _scores([6, 5, 3, 7], [5, 6, 6, 5])
    b = _scores([3, 2, 3, 3], [6, 6, 5, 6])
    prof = {"A": {"empathy": 0.8, "safety": 0.2}, "B": {"empathy": 0.2, "safety": 0.8}, "pooled": {"empathy": .5}}
    res = personalisation_check({"pooled": pooled, "A": a, "B": b}, prof, pooled="pooled").set_index("profile")
    assert list(res.index) == ["A", "B"]
    assert bool(res.loc["A", "beats_pooled"]) and not bool(res.loc["B", "beats_pooled"])
    assert res.loc["A", "mean_own"] == pytest.approx(np.mean(0.8 * np.array([6, 5, 3, 7]) + 0.2 * np.array([5, 6, 6, 5])))
    assert res.loc["A", "mean_pooled"] == pytest.approx(0.8 * 3 + 0.2 * 6)
    assert (res.loc["A", "wins"], res.loc["A", "ties"]) == (3, 1)
    assert res.loc["A", "win_rate"] == pytest.approx(0.75)
    assert res.loc["B", "losses"] == 2 and res.loc["B", "wins"] == 0
    # The difference's interval: a bootstrap over prompts, the same as paired_bootstrap's on the per-prompt gaps.
    d_a = 0.8 * np.array([3, 2, 0, 4]) + 0.2 * np.array([-1, 0, 0, -1])  # (2.2, 1.6, 0, 3.0): never below 0
    est, lo, hi = paired_bootstrap(d_a, n_boot=2000, seed=0)
    assert (res.loc["A", "difference"], res.loc["A", "ci_low"], res.loc["A", "ci_high"]) == pytest.approx(
        (float(est), float(lo), float(hi)))
    assert 0 < res.loc["A", "ci_low"] < res.loc["A", "difference"] < res.loc["A", "ci_high"]
    assert res.loc["A", "verdict"] == "better"
    # B: gaps (0, -0.2, -0.8, 0). All-zero resamples have chance (1/2)^4 > 2.5%, so the upper bound is 0:
    # worse on average (beats_pooled False) but not resolved.
    assert res.loc["B", "ci_high"] == pytest.approx(0.0) and res.loc["B", "verdict"] == "not resolved"


def test_personalisation_check_verdict_reads_the_interval():
    rng = np.random.default_rng(3)
    pooled = _scores(list(rng.uniform(2, 8, 40)), list(rng.uniform(2, 8, 40)))
    worse = _scores(list(pooled["empathy"] - 1.0 - rng.uniform(0, 0.5, 40)), list(pooled["safety"]))
    noisy = _scores(list(pooled["empathy"] + rng.normal(0, 1, 40)), list(pooled["safety"]))
    prof = {"W": {"empathy": 1.0}, "N": {"empathy": 1.0}}
    res = personalisation_check({"pooled": pooled, "W": worse, "N": noisy}, prof, seed=5).set_index("profile")
    assert res.loc["W", "verdict"] == "worse" and res.loc["W", "ci_high"] < 0
    assert res.loc["N", "ci_low"] < 0 < res.loc["N", "ci_high"] and res.loc["N", "verdict"] == "not resolved"
    # beats_pooled is the sign of the estimate alone, kept for old readers
    assert bool(res.loc["N", "beats_pooled"]) == bool(res.loc["N", "difference"] > 0)
    one = personalisation_check({"pooled": pooled.iloc[:1], "W": worse.iloc[:1]}, {"W": {"empathy": 1.0}})
    assert np.isnan(one.loc[0, "ci_low"]) and one.loc[0, "verdict"] == "not resolved"


def _result():
    rng = np.random.default_rng(0)
    scores = {n: _scores(rng.integers(0, 10, 8), rng.integers(0, 10, 8)) for n in ("base", "dpo_empathy", "mix", "w05")}
    models = [ModelInfo("base", "base"), ModelInfo("dpo_empathy", "dpo", {"empathy": 1.0}),
              ModelInfo("mix", "merge", {"empathy": .5, "safety": .5}, {"merge_method": "exact"}),
              ModelInfo("w05", "modpo", {"empathy": .5, "safety": .5})]
    return EvaluationResult(criteria=("empathy", "safety"), models=models, scores=scores,
                            replies={n: [f"reply {i}" for i in range(8)] for n in scores},
                            prompts=[f"prompt {i}" for i in range(8)], settings={"max_new_tokens": 8, "n_prompts": 8})


def test_evaluation_json_schema(tmp_path):
    res = _result()
    paths = res.write(tmp_path)
    doc = json.loads((tmp_path / "evaluation.json").read_text())
    assert doc["criteria"] == ["empathy", "safety"]
    assert [m["name"] for m in doc["models"]] == ["base", "dpo_empathy", "mix", "w05"]
    for m in doc["models"]:
        assert {"name", "kind", "weights", "win_rate_vs_base", "n_prompts"} <= set(m)
        assert m["kind"] in {"base", "sft", "dpo", "merge", "modpo"}
        assert set(m["win_rate_vs_base"]) == {"empathy", "safety"}
        assert all(0 <= v <= 1 for v in m["win_rate_vs_base"].values())
        assert m["n_prompts"] == 8
    assert doc["models"][0]["weights"] is None and doc["models"][1]["weights"] == {"empathy": 1.0}
    wr = res.win_rates()
    assert doc["models"][1]["win_rate_vs_base"]["empathy"] == pytest.approx(wr.loc["dpo_empathy", "empathy"])
    report = (tmp_path / "report.md").read_text()
    assert "ties stay in the denominator" in report and "not the study's numbers" in report
    for key in ("pareto_scores", "pareto_win_rates"):
        assert paths[key].is_file() and paths[key].read_bytes()[:4] == b"\x89PNG"
        assert paths[key].name in report
    assert len((tmp_path / "replies.jsonl").read_text().splitlines()) == 32


def test_plot_pareto_accepts_ax():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    out = plot_pareto(_result(), ax=ax, metric="win_rate")
    assert out is ax and ax.get_xlabel().startswith("empathy")
    with pytest.raises(ValueError, match="metric"):
        plot_pareto(_result(), metric="median")
    plt.close(fig)


def test_model_info_validation():
    with pytest.raises(ValueError, match="kind"):
        ModelInfo("x", "rlhf")
    with pytest.raises(ValueError, match="unique"):
        EvaluationResult(criteria=("empathy",), models=[ModelInfo("base", "base")] * 2,
                         scores={"base": _scores([1], [1])})


def test_resolution_names_flat_criteria_and_the_report_says_what_they_hide(tmp_path):
    """A criterion on which (almost) every reply scores the same cannot show a profile's gain: resolution()
    counts the replies off the modal score, and the report names such criteria with the profiles' weight on them."""
    n = 30
    rng = np.random.default_rng(1)
    varied = {m: rng.uniform(0, 10, n) for m in ("base", "pooled", "A")}
    flat = {m: np.full(n, 4.0) for m in ("base", "pooled", "A")}
    flat["A"][0] = 5.5  # 1 of 90 replies off the mode: flat at the default 5%
    scores = {m: _scores(list(varied[m]), list(flat[m])) for m in varied}
    models = [ModelInfo("base", "base"), ModelInfo("pooled", "modpo", {"empathy": .5, "safety": .5}),
              ModelInfo("A", "modpo", {"empathy": .3, "safety": .7})]
    pers = personalisation_check(scores, {"A": {"empathy": .3, "safety": .7}})
    res = EvaluationResult(criteria=("empathy", "safety"), models=models, scores=scores, personalisation=pers,
                           replies={m: ["r"] * n for m in scores}, prompts=[f"p{i}" for i in range(n)])
    r = res.resolution()
    assert r.loc["safety", "modal_score"] == 4.0 and r.loc["safety", "n_replies"] == 3 * n
    assert r.loc["safety", "n_off_mode"] == 1 and r.loc["safety", "share_off_mode"] == pytest.approx(1 / 90)
    assert bool(r.loc["safety", "flat"]) and not bool(r.loc["empathy", "flat"])
    assert not bool(res.resolution(flat=0.01).loc["safety", "flat"])  # 1.1% off the mode is not below 1%
    with pytest.raises(ValueError, match="flat"):
        res.resolution(flat=1.5)
    res.write(tmp_path, plots=False)
    report = (tmp_path / "report.md").read_text()
    assert "fewer than 5% of all replies" in report and "`safety` (89 of 90 replies score 4)" in report
    assert "A 0.70" in report
    assert "beats_pooled" not in report and "| verdict |" in report and f"| {pers.loc[0, 'verdict']} |" in report
    doc = json.loads((tmp_path / "evaluation.json").read_text())
    assert doc["resolution"]["safety"] == {"modal_score": 4.0, "n_replies": 90, "n_off_mode": 1,
                                           "share_off_mode": pytest.approx(1 / 90), "flat": True}
