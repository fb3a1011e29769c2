"""Parity with R reference outputs (PlackettLuce 0.4.5, psychotools/psychotree, BradleyTerry2).

Data and references: shared/external (see its README).  Tolerances: |d coef| <= 1e-5, |d se| <= 1e-4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey_weights import PairedComparisons, Rankings
from survey_weights.models import fit_bradley_terry, fit_plackett_luce

COEF_TOL, SE_TOL = 1e-5, 1e-4


def _check(res, ref_item, est, se):
    c = res.coef(ref_item).loc[est.index]
    np.testing.assert_allclose(c["estimate"].to_numpy(), est.to_numpy(), atol=COEF_TOL)
    m = se.notna().to_numpy() & (se.to_numpy() != 0)
    np.testing.assert_allclose(c["se"].to_numpy()[m], se.to_numpy()[m], atol=SE_TOL)


def _nascar(ext):
    nas = pd.read_csv(ext / "plackettluce/nascar_orderings.csv")
    drv = pd.read_csv(ext / "plackettluce/nascar_drivers.csv")
    names = dict(zip(drv.driver_id, drv.driver))
    ords = [[names[int(x)] for x in row.iloc[1:].dropna()] for _, row in nas.iterrows()]
    return ords, list(drv.driver)


def test_salad_mle(external_dir):
    sal = pd.read_csv(external_dir / "plackettluce/salad.csv")
    ords = [list(sal.columns[np.argsort(row.to_numpy(), kind="stable")]) for _, row in sal.iterrows()]
    res = fit_plackett_luce(Rankings.from_orderings(ords, items=list(sal.columns)), npseudo=0)
    ref = pd.read_csv(external_dir / "reference_outputs/salad_mle_fit.csv", index_col=0)
    _check(res, "A", ref["log_ref1"], ref["se"])
    np.testing.assert_allclose(res.weights.to_numpy(), ref["worth"].to_numpy(), atol=1e-6)
    assert res.loglik == pytest.approx(-76.4152892, abs=1e-6)


def test_nascar83_mle(external_dir):
    ords, items = _nascar(external_dir)
    keep = set(items[:83])
    r = Rankings.from_orderings([[d for d in o if d in keep] for o in ords], items=items[:83])
    res = fit_plackett_luce(r, npseudo=0)
    ref = pd.read_csv(external_dir / "reference_outputs/nascar_mle83_fit.csv", index_col=0)
    _check(res, "Austin Cameron", ref["log_worth_ref1"], ref["se"])
    assert res.loglik == pytest.approx(-4191.097285, abs=1e-5)


def test_nascar87_pseudo(external_dir):
    ords, items = _nascar(external_dir)
    r = Rankings.from_orderings(ords, items=items)
    res = fit_plackett_luce(r, npseudo=0.5)
    ref = pd.read_csv(external_dir / "reference_outputs/nascar_pseudo87_fit.csv", index_col=0)
    _check(res, "Austin Cameron", ref["log_worth_ref1"], ref["se"])
    assert res.loglik == pytest.approx(-4193.592342, abs=1e-5)
    with pytest.raises(ValueError, match="never win: Andy Hillenburg, Gary Bradberry"):
        fit_plackett_luce(r, npseudo=0)


def _pudding_frame(ext):
    pud = pd.read_csv(ext / "plackettluce/pudding.csv")
    rows = []
    for _, x in pud.iterrows():
        rows += [dict(a=x.i, b=x.j, winner=x.i, n=x.w_ij), dict(a=x.i, b=x.j, winner=x.j, n=x.w_ji),
                 dict(a=x.i, b=x.j, winner=np.nan, n=x.t_ij)]
    return pd.DataFrame(rows)


def test_pudding_davidson(external_dir):
    df = _pudding_frame(external_dir)
    ref = pd.read_csv(external_dir / "reference_outputs/pudding_davidson_fit.csv", index_col=0)
    ref.index = [int(i) if i.isdigit() else i for i in ref.index.astype(str)]
    items = [1, 2, 3, 4, 5, 6]
    bt = fit_bradley_terry(PairedComparisons.from_long(df, "a", "b", "winner", weight="n", items=items),
                           ties="davidson", npseudo=0)
    ords = [[w, b if w == a else a] if not np.isnan(w) else [(a, b)] for a, b, w in zip(df.a, df.b, df.winner)]
    pl = fit_plackett_luce(Rankings.from_orderings([[int(x) if not isinstance(x, tuple) else
                                                     tuple(int(y) for y in x) for x in o] for o in ords],
                                                   items=items, weights=df.n.tolist()), npseudo=0)
    for res in (bt, pl):
        _check(res, 1, ref["log_ref1"], ref["se_ref1"])
        np.testing.assert_allclose(res.weights.to_numpy(), ref["worth_converged"].to_numpy()[:6], atol=1e-5)
        assert res.tie_params["tie2"] == pytest.approx(ref.loc["tie2", "worth_converged"], abs=1e-5)
        np.testing.assert_allclose(res.quasi_se.to_numpy(), ref["quasiSE"].to_numpy()[:6], atol=1e-4)
        np.testing.assert_allclose(res.se.to_numpy(), ref["se_refmean"].to_numpy()[:6], atol=1e-4)
        assert res.loglik == pytest.approx(-809.7095101, abs=1e-5)
        assert res.aic == pytest.approx(1631.419, abs=1e-3)


def test_topmodel2007_pooled_bt(external_dir):
    tm = pd.read_csv(external_dir / "psychotree/topmodel2007.csv")
    cols = [c for c in tm.columns if ":" in c]
    long = tm.melt(id_vars="respondent", value_vars=cols, var_name="pair", value_name="y").dropna()
    long[["a", "b"]] = long["pair"].str.split(":", expand=True)
    long["winner"] = np.where(long["y"] == 1, long["a"], long["b"])
    items = ["Barbara", "Anni", "Hana", "Fiona", "Mandy", "Anja"]
    pc = PairedComparisons.from_long(long, "a", "b", "winner", respondent="respondent", items=items)
    res = fit_bradley_terry(pc, npseudo=0)
    ref = pd.read_csv(external_dir / "reference_outputs/topmodel2007_btmodel_pooled.csv", index_col=0)
    _check(res, "Barbara", ref["Estimate"], ref["Std..Error"])
    assert res.loglik == pytest.approx(-1912.054832, abs=1e-5)
    assert res.n_respondents == 192


def test_citations_bt(external_dir):
    cit = pd.read_csv(external_dir / "bradleyterry2/citations_long.csv")
    cit = cit[cit["cited"] != cit["citing"]].assign(winner=lambda d: d["cited"])  # A cites B: B beats A
    res = fit_bradley_terry(PairedComparisons.from_long(cit, "cited", "citing", "winner", weight="Freq"),
                            npseudo=0)
    ref = pd.read_csv(external_dir / "reference_outputs/citations_btm_abilities.csv", index_col=0)
    _check(res, "Biometrika", ref["ability"], ref["s.e."])


def test_netflix138(external_dir):
    pytest.skip("netflix 00004-00000138 data are not redistributed in shared/external (reference only)")


def test_pseudo_comparisons_enter_as_two_item_rankings_with_ties():
    """R PlackettLuce 0.4.5's S3-methods snapshot (tests/testthat/_snaps/S3-methods.md): with ties in the data
    and the default npseudo = 0.5, the ghost comparisons are ordinary 2-item rankings, so delta_2 enters them.
    Printed: banana 0.2868, orange -0.4637, tie2 -1.0701 (log scale, ref apple), AIC 27.61."""
    from survey_weights import Rankings, fit_plackett_luce

    r = Rankings.from_orderings([["apple", "banana"], ["banana", "orange", "apple"], [("banana", "orange"), "apple"],
                                 ["apple", "banana", "orange"], [("banana", "orange"), "apple"], ["apple", "orange"]],
                                items=["apple", "banana", "orange"])
    fit = fit_plackett_luce(r)
    c = fit.coef(ref="apple")["estimate"]
    assert round(c["banana"], 4) == 0.2868 and round(c["orange"], 4) == -0.4637 and round(c["tie2"], 4) == -1.0701
    assert round(fit.aic, 2) == 27.61
    # the gradient of the fitted objective (pseudo terms with the tie alternative) vanishes at the estimate
    from survey_weights.models._likelihood import PLDesign

    d = PLDesign.from_rankings(r, npseudo=0.5)
    assert np.abs(d.grad(fit.theta)).max() < 1e-7


def _game_coarsened(external_dir):
    from survey_weights import Rankings

    g = pd.read_csv(external_dir / "mlogit" / "game.csv")
    plats = [c[3:] for c in g.columns if c.startswith("ch.")]
    ords = []
    for _, row in g.iterrows():
        o = sorted(plats, key=lambda p: int(row["ch." + p]))
        ords.append([tuple(o[0:2]), tuple(o[2:4]), tuple(o[4:6])])  # positions {1,2}, {3,4}, {5,6} tied
    return Rankings.from_orderings(ords, items=plats)


def test_boundary_estimates_are_reported(external_dir):
    """mlogit's Game rankings coarsened to tied pairs: every stage is a tie of two, so the MLE of delta_2 is
    infinite; the fit says so (a BoundaryWarning naming tie2, result.boundary) instead of printing 33.6."""
    from survey_weights import BoundaryWarning, fit_plackett_luce

    r = _game_coarsened(external_dir)
    with pytest.warns(BoundaryWarning, match="tie2"):
        fit = fit_plackett_luce(r, npseudo=0)
    assert fit.boundary == ("tie2",) and np.log(fit.tie_params["tie2"]) > 8
    # the pseudo-comparisons (two-item rankings that never tie) keep delta_2 finite, and nothing is flagged
    fit = fit_plackett_luce(r)
    assert fit.boundary == () and np.isfinite(fit.tie_se).all() and fit.tie_se.max() < 10


def test_finite_fits_flag_nothing():
    """Weakly but strongly connected data have a finite MLE: the boundary check stays silent (no false alarms),
    even with an item that wins a single comparison out of 61."""
    from survey_weights import PairedComparisons, fit_bradley_terry

    rows = [("a", "b", "a")] * 20 + [("b", "a", "b")] * 20 + [("a", "c", "a")] * 30 + [("c", "b", "b")] * 30
    rows += [("c", "a", "c")]
    df = pd.DataFrame(rows, columns=["i", "j", "w"])
    fit = fit_bradley_terry(PairedComparisons.from_long(df, "i", "j", "w"), npseudo=0)
    assert fit.boundary == () and np.isfinite(fit.se).all() and fit.log_worth["c"] < -2
