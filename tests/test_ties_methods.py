"""`fit_plackett_luce(ties=...)`: ties as an unknown order (Breslow, Efron, exact marginal, discrete exact).

Parity with R (survival 3.5-3 `clogit`, own brute-force exact marginal likelihood; shared/external/ties, see its
README): estimates <= 1e-6, SEs (model and cluster-robust by respondent) <= 1e-5 relative, log-likelihoods
<= 1e-6.  Skipped when ../shared/external/ties is absent."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights.models._ties_exploded import EXPLODED_TIES, ExplodedDesign

ITEMS = ["empathy", "active_listening", "self_motivated_change", "trust_rapport", "patient_autonomy"]
TIES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "external" / "ties"
METHODS = ("breslow", "efron", "exact_marginal", "discrete_exact")


def _ratings(rng: np.random.Generator, n_resp: int = 40, n_items: int = 5, scale: int = 3) -> pd.DataFrame:
    X = rng.integers(1, scale + 1, size=(n_resp, n_items)).astype(float)
    df = pd.DataFrame(X, columns=[f"i{j}" for j in range(n_items)])
    df["rid"] = np.arange(n_resp)
    return df


def _rankings(df: pd.DataFrame, **kw) -> sw.Rankings:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cols = [c for c in df.columns if str(c).startswith("i")]
        return sw.Rankings.from_ratings(df, cols, respondent="rid", all_tied="drop", **kw)


# ------------------------------------------------------------------------------------------------------ parity
@pytest.fixture(scope="module")
def ref():
    if not (TIES_DIR / "survey_ties_estimates.csv").is_file():
        pytest.skip(f"R references for the tie methods not found at {TIES_DIR} (../shared/external/ties)")
    df = pd.read_csv(TIES_DIR / "survey_importance_ratings.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = sw.Rankings.from_ratings(df, ITEMS, respondent="respondent_id", scale=(1, 5), all_tied="drop")
    return {"rankings": r, "est": pd.read_csv(TIES_DIR / "survey_ties_estimates.csv"),
            "vcov": pd.read_csv(TIES_DIR / "survey_ties_vcov.csv"),
            "summary": pd.read_csv(TIES_DIR / "survey_ties_fit_summary.csv").set_index("method"),
            "grid": pd.read_csv(TIES_DIR / "survey_ties_loglik_grid.csv")}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("vcov", ["model", "robust"])
def test_parity_with_r(ref, method, vcov):
    r = ref["rankings"]
    assert r.n_respondents == 333
    fit = sw.fit_plackett_luce(r, ties=method, npseudo=0, vcov=vcov, tol=1e-10)
    assert fit.converged and fit.ties == method and fit.tie_params.empty
    e = ref["est"].query("method == @method").set_index("item").loc[ITEMS[1:]]
    c = fit.coef(ref="empathy").loc[ITEMS[1:]]
    np.testing.assert_allclose(c["estimate"], e["log_worth"], rtol=0, atol=1e-6)
    col = "se_model" if vcov == "model" else "se_cluster"
    np.testing.assert_allclose(c["se"], e[col], rtol=1e-5)
    kind = "model" if vcov == "model" else "cluster"
    V = ref["vcov"]
    Vr = (V[(V["method"] == method) & (V["type"] == kind)].pivot(index="row", columns="col", values="value")
          .loc[ITEMS[1:], ITEMS[1:]])
    np.testing.assert_allclose(fit.vcov(ref="empathy").loc[ITEMS[1:], ITEMS[1:]], Vr, rtol=1e-5, atol=1e-9)
    s = ref["summary"].loc[method]
    assert fit.loglik == pytest.approx(s["loglik"], abs=1e-6)


def test_all_tied_respondents_kept_change_nothing(ref):
    """Under an unknown-order reading an all-tied respondent has no stage: keeping them (the package default)
    gives the same estimates, SEs and log-likelihood as dropping them (the references)."""
    df = pd.read_csv(TIES_DIR / "survey_importance_ratings.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keep = sw.Rankings.from_ratings(df, ITEMS, respondent="respondent_id", scale=(1, 5))
    assert keep.n_respondents == 335
    for m in ("efron", "exact_marginal"):
        a = sw.fit_plackett_luce(keep, ties=m, npseudo=0, vcov="robust")
        b = sw.fit_plackett_luce(ref["rankings"], ties=m, npseudo=0, vcov="robust")
        np.testing.assert_allclose(a.log_worth, b.log_worth, atol=1e-12)
        np.testing.assert_allclose(a.se, b.se, rtol=1e-10)
        assert a.loglik == pytest.approx(b.loglik, abs=1e-9)


def test_parity_loglik_grid_and_dfact_constant(ref):
    """Each likelihood at each method's estimate (and at 0); Breslow/Efron + sum log d! on the exact scale."""
    r, est, grid = ref["rankings"], ref["est"], ref["grid"]
    designs = {m: ExplodedDesign.from_rankings(r, ties=m, npseudo=0) for m in METHODS}
    for at in (*METHODS, "zero"):
        theta = np.zeros(5) if at == "zero" else \
            est.query("method == @at").set_index("item").loc[ITEMS, "log_worth"].to_numpy()
        for m in METHODS:
            want = grid.query("likelihood == @m and at_estimate_of == @at")["loglik"].iloc[0]
            assert designs[m].loglik(theta, pseudo=False) == pytest.approx(want, abs=1e-6)
    s = ref["summary"]
    assert designs["efron"].log_dfact == pytest.approx(s.loc["efron", "sum_log_dfact"], abs=1e-8)
    z = np.zeros(5)
    assert designs["efron"].loglik(z, pseudo=False) + designs["efron"].log_dfact == pytest.approx(
        designs["exact_marginal"].loglik(z, pseudo=False), abs=1e-9)


# ------------------------------------------------------------------------------------------------ derivatives
@pytest.mark.parametrize("method", METHODS)
def test_gradient_hessian_and_scores_match_finite_differences(method):
    rng = np.random.default_rng(7)
    r = _rankings(_ratings(rng, 30, 5, 3))
    d = ExplodedDesign.from_rankings(r, ties=method, npseudo=0.5)
    assert not d.tie_free
    th = rng.normal(scale=0.7, size=d.n_params)
    f, g, H = d.fgh(th, 2)
    h = 1e-6
    gn = np.array([(d.loglik(th + h * e) - d.loglik(th - h * e)) / (2 * h) for e in np.eye(len(th))])
    np.testing.assert_allclose(g, gn, rtol=1e-6, atol=1e-6)
    Hn = np.column_stack([(d.grad(th + h * e) - d.grad(th - h * e)) / (2 * h) for e in np.eye(len(th))])
    np.testing.assert_allclose(H, Hn, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    np.testing.assert_allclose(d.scores(th).sum(axis=0), d.grad(th, pseudo=False), atol=1e-10)
    assert d.respondent_loglik(th).sum() == pytest.approx(d.loglik(th, pseudo=False), abs=1e-9)


def test_exact_marginal_equals_inclusion_exclusion():
    """The sum over orders equals sum_{A subset E} (-1)^|A| W_L / (W_L + W_A) (README's independent form)."""
    rng = np.random.default_rng(3)
    d = ExplodedDesign.from_rankings(_rankings(_ratings(rng, 25, 6, 3)), ties="exact_marginal", npseudo=0)
    beta = rng.normal(size=6)
    from itertools import combinations

    total = 0.0
    for b in d.blocks:
        k = b["d"]
        for row, wt in zip(b["idx"], b["w"]):
            w = np.exp(beta[row])
            WL = w[k:].sum()
            p = sum((-1) ** len(A) * WL / (WL + w[list(A)].sum()) for j in range(k + 1)
                    for A in combinations(range(k), j))
            total += wt * np.log(p)
    assert d.loglik(beta, pseudo=False) == pytest.approx(total, rel=1e-12)


# ---------------------------------------------------------------------------------------------- the options
def test_tie_free_data_all_methods_equal():
    rng = np.random.default_rng(11)
    orders = [list(rng.permutation(5)) for _ in range(40)]
    r = sw.Rankings.from_orderings(orders)
    base = sw.fit_plackett_luce(r)
    for m in METHODS:
        f = sw.fit_plackett_luce(r, ties=m)
        np.testing.assert_allclose(f.log_worth, base.log_worth, atol=1e-8)
        np.testing.assert_allclose(f.se, base.se, rtol=1e-6)
        assert f.loglik == pytest.approx(base.loglik, abs=1e-8)
    f = sw.fit_plackett_luce(r, ties="efron", method="mm")  # MM handles the tie-free exploded data too
    np.testing.assert_allclose(f.log_worth, base.log_worth, atol=1e-6)
    # top-k rankings without ties: the unranked items stay in every risk set, as in the Davidson stages
    tk = sw.Rankings.from_orderings([list(o[:2]) for o in orders], items=list(range(5)), top_k=True)
    base = sw.fit_plackett_luce(tk)
    for m in METHODS:
        np.testing.assert_allclose(sw.fit_plackett_luce(tk, ties=m).log_worth, base.log_worth, atol=1e-8)


def test_davidson_is_the_default():
    r = sw.Rankings.from_orderings([["a", ("b", "c")], ["b", "a", "c"], ["c", "a"], [("a", "c"), "b"]])
    a, b = sw.fit_plackett_luce(r), sw.fit_plackett_luce(r, ties="davidson")
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.vcov_full.to_numpy(), b.vcov_full.to_numpy())
    assert a.loglik == b.loglik and a.ties == b.ties == "davidson" and list(a.tie_params.index) == ["tie2"]


def test_bad_ties_value_names_parameter_and_options():
    r = sw.Rankings.from_orderings([["a", "b", "c"], ["b", "a", "c"]])
    with pytest.raises(ValueError, match=r"`ties` 'exact'.*davidson.*breslow.*efron.*exact_marginal"):
        sw.fit_plackett_luce(r, ties="exact")
    with pytest.raises(ValueError, match="bias_reduction"):
        sw.fit_plackett_luce(r, ties="efron", bias_reduction=True)
    assert set(EXPLODED_TIES) == set(METHODS)


def test_weights_vcov_types_and_results_vocabulary():
    rng = np.random.default_rng(5)
    df = _ratings(rng, 30, 4, 4)
    r = _rankings(df)
    # frequency weights = duplicated respondents
    fw = rng.integers(1, 4, size=len(df))
    df_w = df.assign(fw=fw)
    rw = _rankings(df_w, weights="fw")
    rdup = _rankings(df.loc[df.index.repeat(fw)].assign(rid=lambda x: np.arange(len(x))))
    for m in METHODS:
        a = sw.fit_plackett_luce(rw, ties=m, npseudo=0)
        b = sw.fit_plackett_luce(rdup, ties=m, npseudo=0)
        np.testing.assert_allclose(a.log_worth, b.log_worth, atol=1e-8)
        np.testing.assert_allclose(a.se, b.se, rtol=1e-6)
        assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    # sampling weights: the sandwich by default
    sr = _rankings(df.assign(sw=rng.uniform(0.5, 2.0, size=len(df))), sampling_weights="sw")
    for m in METHODS:
        f = sw.fit_plackett_luce(sr, ties=m)
        assert f.vcov_type == "robust" and f.sampling is not None and np.all(np.isfinite(f.se))
    # cluster and npseudo default (0.5); the result's vocabulary works without tie parameters
    cl = np.arange(r.n_respondents) % 5
    f = sw.fit_plackett_luce(r, ties="exact_marginal", vcov="cluster", cluster=cl)
    assert f.vcov_type == "cluster" and f.npseudo == 0.5 and f.tie_params.empty and f.tie_se.empty
    assert f.weights.sum() == pytest.approx(1.0)
    assert len(f.to_frame()) == 4 and "ties" in str(f.summary())
    assert list(f.coef().index) == list(r.items)


# ------------------------------------------------------------------------------------------- tie_sensitivity
def test_tie_sensitivity_table():
    rng = np.random.default_rng(2)
    df = _ratings(rng, 40, 4, 5)
    df.iloc[0, 1] = np.nan
    r = _rankings(df)
    t = sw.tie_sensitivity(r, ratings=df, npseudo=0.5)
    assert "tie_sensitivity" in sw.__all__
    assert list(t.index) == list(r.items)
    assert list(t.columns) == ["davidson", "breslow", "efron", "exact_marginal", "mean_rating", "ipsatised_mean"]
    for m in ("davidson", "breslow", "efron", "exact_marginal"):
        np.testing.assert_allclose(t[m].to_numpy(), sw.fit_plackett_luce(r, ties=m).weights.to_numpy(), atol=1e-12)
    X = df[list(r.items)].to_numpy(dtype=float)
    np.testing.assert_allclose(t["mean_rating"], np.nanmean(X, axis=0))
    np.testing.assert_allclose(t["ipsatised_mean"], np.nanmean(X - np.nanmean(X, axis=1, keepdims=True), axis=0))
    assert list(sw.tie_sensitivity(r).columns) == ["davidson", "breslow", "efron", "exact_marginal"]
    with pytest.raises(TypeError, match="ties"):
        sw.tie_sensitivity(r, ties="efron")
    with pytest.raises(ValueError, match="no column"):
        sw.tie_sensitivity(r, ratings=df.drop(columns="i2"))
