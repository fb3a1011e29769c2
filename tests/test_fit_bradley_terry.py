"""fit_bradley_terry: ties options, equivalence with PL on 2-item rankings, methods, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey_weights import PairedComparisons, Rankings
from survey_weights.models import fit_bradley_terry, fit_plackett_luce


def _pairs(rng, n=6, P=400, ties=True):
    beta = np.linspace(-1, 1, n)
    a = rng.integers(0, n, P)
    b = (a + rng.integers(1, n, P)) % n
    pa = np.exp(beta[a]) / (np.exp(beta[a]) + np.exp(beta[b]) + 0.5 * np.exp((beta[a] + beta[b]) / 2))
    pt = 0.5 * np.exp((beta[a] + beta[b]) / 2) / (np.exp(beta[a]) + np.exp(beta[b]) +
                                                  0.5 * np.exp((beta[a] + beta[b]) / 2))
    u = rng.random(P)
    win = np.where(u < pa, a, np.where(u < pa + pt, -1, b))
    if not ties:
        win = np.where(win < 0, a, win)
    items = [f"i{k}" for k in range(n)]
    df = pd.DataFrame({"a": [items[k] for k in a], "b": [items[k] for k in b],
                       "winner": [items[k] if k >= 0 else np.nan for k in win], "resp": np.arange(P) // 2})
    return df, items


def test_bt_equals_pl_with_ties(rng):
    df, items = _pairs(rng)
    pc = PairedComparisons.from_long(df, "a", "b", "winner", respondent="resp", items=items)
    bt = fit_bradley_terry(pc, ties="davidson")
    ords = [[w, (lo if w == hi else hi)] if isinstance(w, str) else [(lo, hi)]
            for lo, hi, w in zip(df.a, df.b, df.winner)]
    pl = fit_plackett_luce(Rankings.from_orderings(ords, items=items, respondent_ids=df.resp.tolist()))
    np.testing.assert_allclose(bt.log_worth, pl.log_worth, atol=1e-8)
    np.testing.assert_allclose(bt.se, pl.se, atol=1e-8)
    np.testing.assert_allclose(bt.tie_params, pl.tie_params, rtol=1e-8)
    assert bt.loglik == pytest.approx(pl.loglik)
    assert bt.n_rankings == len(df)


def test_ties_options(rng):
    df, items = _pairs(rng)
    pc = PairedComparisons.from_long(df, "a", "b", "winner", respondent="resp", items=items)
    with pytest.raises(ValueError, match="ties='davidson'"):
        fit_bradley_terry(pc)
    half = fit_bradley_terry(pc, ties="half")
    assert len(half.tie_params) == 0
    # half = every tie replaced by one win each with weight 1/2
    t = df[df.winner.isna()]
    dup = pd.concat([df[df.winner.notna()].assign(w=1.0), t.assign(winner=t.a, w=0.5), t.assign(winner=t.b, w=0.5)])
    pc2 = PairedComparisons.from_long(dup, "a", "b", "winner", weight="w", items=items)
    np.testing.assert_allclose(fit_bradley_terry(pc2).log_worth, half.log_worth, atol=1e-9)
    with pytest.raises(ValueError, match="ties"):
        fit_bradley_terry(pc, ties="rao-kupper")


def test_methods_agree_and_mm(rng):
    df, items = _pairs(rng, ties=False)
    pc = PairedComparisons.from_long(df, "a", "b", "winner", items=items)
    a = fit_bradley_terry(pc, npseudo=0)
    b = fit_bradley_terry(pc, npseudo=0, method="mm", tol=1e-11)
    c = fit_bradley_terry(pc, npseudo=0, method="lbfgs", tol=1e-10)
    np.testing.assert_allclose(a.log_worth, b.log_worth, atol=1e-7)
    np.testing.assert_allclose(a.log_worth, c.log_worth, atol=1e-5)
    assert a.summary().info["comparisons"] == len(df)


def test_disconnected_bt():
    df = pd.DataFrame({"a": ["x", "x", "y"], "b": ["y", "z", "z"], "winner": ["x", "x", "y"]})
    pc = PairedComparisons.from_long(df, "a", "b", "winner")
    with pytest.raises(ValueError, match="never lose: x"):
        fit_bradley_terry(pc, npseudo=0)
    assert fit_bradley_terry(pc).converged
