"""Bias-reduced (Firth) estimation: BradleyTerry2::BTm(br = TRUE) references (tests/reference/bt_firth.R),
the Jeffreys-penalised likelihood maximised directly, and finiteness where the MLE does not exist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from survey_weights import PairedComparisons, Rankings, fit_bradley_terry, fit_plackett_luce

REF = pd.read_csv(Path(__file__).with_name("reference") / "bt_firth_reference.csv")


def _small() -> PairedComparisons:
    small = pd.DataFrame({"p1": list("AAABBC"), "p2": list("BCDCDD"), "w1": [3, 2, 4, 2, 3, 1],
                          "w2": [0, 0, 0, 1, 1, 2]})
    rows = []
    for _, r in small.iterrows():
        rows += [(r.p1, r.p2, r.p1)] * int(r.w1) + [(r.p1, r.p2, r.p2)] * int(r.w2)
    return PairedComparisons.from_long(pd.DataFrame(rows, columns=["a", "b", "w"]), "a", "b", "w")


def _check(fit, case: str, ref_item: str) -> None:
    ref = REF[REF["case"] == case].set_index("item")
    c = fit.coef(ref=ref_item)
    np.testing.assert_allclose(c["estimate"].reindex(ref.index), ref["estimate"], atol=1e-7)
    np.testing.assert_allclose(c["se"].reindex(ref.index).iloc[1:], ref["se"].iloc[1:], rtol=1e-6)


def test_btm_br_where_an_item_never_loses():
    pc = _small()
    with pytest.raises(ValueError, match="never"):
        fit_bradley_terry(pc, npseudo=0)  # A never loses: no MLE
    fit = fit_bradley_terry(pc, bias_reduction=True, tol=1e-10)
    assert fit.method == "firth" and fit.converged and fit.npseudo == 0
    _check(fit, "never_loses", "A")


def test_btm_br_citations(external_dir):
    cit = pd.read_csv(external_dir / "bradleyterry2" / "citations_long.csv")
    cit = cit[cit["cited"] != cit["citing"]].assign(w=lambda d: d["cited"])  # a citation is a win of the cited
    fit = fit_bradley_terry(PairedComparisons.from_long(cit, "cited", "citing", "w", weight="Freq"),
                            bias_reduction=True, tol=1e-10)
    _check(fit, "citations", "Biometrika")


def test_plackett_luce_with_ties_maximises_the_jeffreys_penalised_likelihood():
    """For rankings with ties there is no R reference: maximise l + 1/2 log det I(theta) numerically."""
    from survey_weights.models._choice import ChoiceDesign

    r = Rankings.from_orderings([["a", ("b", "c"), "d"], ["b", "a", "d"], [("a", "d"), "c"], ["c", "b", "a", "d"],
                                 ["a", "b", ("c", "d")], ["d", "a", "b"], ["b", ("a", "c")]])
    fit = fit_plackett_luce(r, bias_reduction=True, tol=1e-11)
    d = ChoiceDesign.from_data(r, npseudo=0)
    free = d.free(0)

    def neg(x):
        th = np.zeros(d.n_params)
        th[free] = x
        H = d.fgh(th, 2, pseudo=False)[2]
        return -(d.loglik(th, pseudo=False) + 0.5 * np.linalg.slogdet(-H[np.ix_(free, free)])[1])

    opt = minimize(neg, np.zeros(int(free.sum())), method="Nelder-Mead",
                   options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 40000, "maxfev": 40000})
    np.testing.assert_allclose(fit.theta[free], opt.x, atol=1e-5)
    # two-item rankings are paired comparisons: the same bias-reduced estimate
    pc = _small()
    two = Rankings.from_orderings([[a if w == a else b, b if w == a else a]
                                   for a, b, w in zip(pc._a, pc._b, np.where(pc._outcome == 1, pc._a, pc._b))],
                                  items=list(range(pc.n_items)))
    bt = fit_bradley_terry(pc, bias_reduction=True, tol=1e-10)
    pl = fit_plackett_luce(two, bias_reduction=True, tol=1e-10)
    np.testing.assert_allclose(pl.log_worth.to_numpy(), bt.log_worth.to_numpy(), atol=1e-8)


def test_bias_reduction_input_errors():
    pc = _small()
    with pytest.raises(ValueError, match="npseudo"):
        fit_bradley_terry(pc, bias_reduction=True, npseudo=0.5)
    with pytest.raises(ValueError, match="normal"):
        fit_bradley_terry(pc, bias_reduction=True, normal={"Sigma": 1.0})
