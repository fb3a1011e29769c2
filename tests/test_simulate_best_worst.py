"""Simulator best-worst mode (issue 13): simulate_best_worst / balanced_best_worst_design from the survey's true
worths, recovered by fit_best_worst."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights.criteria import SURVEY_CRITERIA
from survey_weights.synthetic import balanced_best_worst_design, simulate_best_worst, simulate_survey


def _rankings(df, **kw):
    return sw.Rankings.from_best_worst(df, respondent="respondent_id", task="task", shown="shown", best="best",
                                       worst="worst", **kw)


def test_exported_everywhere():
    assert sw.simulate.simulate_best_worst is simulate_best_worst
    assert "simulate_best_worst" in sw.synthetic.__all__ and "simulate_survey" in sw.simulate.__all__


def test_seeded_and_layout():
    sv = simulate_survey(30, seed=1, return_truth=True)
    a = simulate_best_worst(sv, n_tasks=6, seed=5)
    b = simulate_best_worst(sv, n_tasks=6, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(simulate_best_worst(sv, n_tasks=6, seed=6))
    assert list(a.columns[:5]) == ["respondent_id", "task", "shown", "best", "worst"]
    assert {"age_group", "severity", "att_trust"} <= set(a.columns) and "empathy" not in a.columns
    assert len(a) == 180 and a.groupby("respondent_id").size().eq(6).all()
    assert all(len(s) == 4 and set(s) <= set(SURVEY_CRITERIA) for s in a["shown"])
    assert all(b_ in s and w in s and b_ != w for s, b_, w in zip(a["shown"], a["best"], a["worst"]))
    r = _rankings(a, covariates=["age_group"])
    assert r.best_worst.n_tasks == 180 and set(r.items) == set(SURVEY_CRITERIA)
    only = simulate_best_worst(sv[1], n_tasks=2, seed=1)  # a bare truth: no covariates
    assert list(only.columns) == ["respondent_id", "task", "shown", "best", "worst"]


@pytest.mark.parametrize(("J", "T", "k"), [(5, 10, 4), (9, 12, 3), (6, 15, 4), (5, 7, 3)])
def test_balanced_design(J, T, k):
    d = balanced_best_worst_design(J, T, k, seed=2)
    assert d.shape == (T, k) and all(len(set(r)) == k for r in d)
    c = np.bincount(d.ravel(), minlength=J)
    assert c.max() - c.min() <= 1
    P = np.zeros((J, J))
    for r in d:
        for a, b in itertools.combinations(r, 2):
            P[min(a, b), max(a, b)] += 1
    pc = P[np.triu_indices(J, 1)]
    assert pc.max() - pc.min() <= (0 if (J, T, k) in {(5, 10, 4), (9, 12, 3)} else 2)
    np.testing.assert_array_equal(d, balanced_best_worst_design(J, T, k, seed=2))
    # each respondent of the simulated survey gets a balanced design of their own
    df = simulate_best_worst(pd.DataFrame(np.zeros((3, J)), columns=[f"i{j}" for j in range(J)]),
                             n_tasks=T, items_per_task=k, seed=1)
    for _, g in df.groupby("respondent_id"):
        c = pd.Series([x for s in g["shown"] for x in s]).value_counts()
        assert len(c) == J and c.max() - c.min() <= 1


@pytest.mark.parametrize("model", ["maxdiff", "sequential"])
def test_recovers_true_worths(model):
    sv = simulate_survey(1500, seed=3, heterogeneity=0.0, return_truth=True)
    df = simulate_best_worst(sv, n_tasks=8, model=model, seed=4)
    fit = sw.fit_best_worst(_rankings(df), model=model)
    truth = sv[1].pooled_log_worth
    est = fit.coef()["estimate"].reindex(truth.index)
    se = fit.se.reindex(truth.index)
    z = (est - (truth - truth.mean())) / se
    assert np.all(np.abs(z) < 4), z
    assert est.idxmax() == "empathy" and est.idxmin() == "self_motivated_change"


def test_random_design_and_custom_worths():
    v = pd.DataFrame([[1.0, 0.0, -1.0, 0.5, 0.0, -0.5]] * 800, columns=list("abcdef"))
    df = simulate_best_worst(v, n_tasks=6, items_per_task=3, design="random", seed=9)
    assert df["respondent_id"].nunique() == 800 and all(len(s) == 3 for s in df["shown"])
    fit = sw.fit_best_worst(_rankings(df))
    z = (fit.coef()["estimate"] - (v.iloc[0] - v.iloc[0].mean())) / fit.se
    assert np.all(np.abs(z) < 4)


def test_bad_inputs():
    sv = simulate_survey(5, seed=1, return_truth=True)
    with pytest.raises(ValueError, match="design"):
        simulate_best_worst(sv, design="orthogonal")
    with pytest.raises(ValueError, match="model"):
        simulate_best_worst(sv, model="marginal")
    with pytest.raises(ValueError, match="items_per_task"):
        simulate_best_worst(sv, items_per_task=6)
    with pytest.raises(ValueError, match="items_per_task"):
        simulate_best_worst(sv, items_per_task=1)
    with pytest.raises(ValueError, match="n_tasks"):
        simulate_best_worst(sv, n_tasks=0)
    with pytest.raises(TypeError, match="truth"):
        simulate_best_worst([1, 2, 3])
    with pytest.raises(TypeError, match="seed"):
        simulate_best_worst(sv, seed=1.5)
    with pytest.raises(ValueError, match="finite"):
        simulate_best_worst(pd.DataFrame({"a": [0.0], "b": [np.nan]}))
    with pytest.raises(ValueError, match="respondent ids"):
        simulate_best_worst(sv[1], covariates=pd.DataFrame({"x": [1]}, index=[99]))
