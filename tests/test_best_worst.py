"""Best-worst scaling (issue 13.1-13.4): Rankings.from_best_worst, fit_best_worst (maxdiff / sequential /
marginal) on the engine, count scores. Parity with survival::clogit and support.BWS references in
../shared/external/bws (skipped when absent)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights.models._best_worst import BestWorstDesign

MODELS = ("maxdiff", "sequential", "marginal")
BWS = Path(__file__).resolve().parents[1].parent / "shared" / "external" / "bws"
needs_bws = pytest.mark.skipif(not (BWS / "ricebws1_long.csv").is_file(),
                               reason=f"best-worst R references not found at {BWS} (../shared/external/bws)")


def _simulate(n_resp=40, k=4, n_items=6, seed=3, v=None):
    """Best-worst answers drawn from the maxdiff model, one row per task, `shown` a list column."""
    rng = np.random.default_rng(seed)
    items = [f"i{j}" for j in range(n_items)]
    v = rng.normal(size=n_items) if v is None else np.asarray(v)
    rows = []
    for r in range(n_resp):
        for t in range(5):
            S = rng.choice(n_items, size=k, replace=False)
            pairs = [(a, b) for a in S for b in S if a != b]
            p = np.exp([v[a] - v[b] for a, b in pairs])
            a, b = pairs[rng.choice(len(pairs), p=p / p.sum())]
            rows.append({"rid": f"r{r}", "task": t, "shown": [items[j] for j in S], "best": items[a],
                         "worst": items[b], "seg": r % 2})
    return pd.DataFrame(rows), items


def _bw(df, items=None, **kw):
    return sw.Rankings.from_best_worst(df, respondent="rid", task="task", shown="shown", best="best", worst="worst",
                                       items=items, **kw)


# --------------------------------------------------------------------------------------------------- data object
def test_from_best_worst_structure_and_list_vs_columns():
    df, items = _simulate()
    r = _bw(df, items, covariates=["seg"])
    assert r.best_worst.n_tasks == len(df) == r.n_rankings
    assert r.n_respondents == 40 and list(r.covariates.columns) == ["seg"]
    wide = df.copy()
    for j in range(4):
        wide[f"s{j}"] = [s[j] for s in df["shown"]]
    r2 = sw.Rankings.from_best_worst(wide, respondent="rid", task="task", shown=["s0", "s1", "s2", "s3"],
                                     best="best", worst="worst", items=items)
    assert r.data_hash() == r2.data_hash()
    # weak ordering: best rank 1, middle tied, worst last
    fr = r.to_frame()
    first = fr[fr.ranking == 0]
    assert first["item"].iloc[0] == df["best"].iloc[0] and first["item"].iloc[-1] == df["worst"].iloc[0]
    assert list(first["rank"]) == [1, 2, 2, 3]
    sub = r.subset(np.arange(10))
    assert sub.best_worst.n_tasks == 50 and sub.best_worst.resp.max() == 9


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.assign(worst=d["best"]), ["both best", "'best'", "'worst'", "respondent 'r0'", "task 0"]),
    (lambda d: d.assign(best=["zz"] + list(d["best"][1:])), ["'best'", "'zz'", "not among the items shown",
                                                               "respondent 'r0'", "task 0", "Fix"]),
    (lambda d: d.assign(worst=["zz"] + list(d["worst"][1:])), ["'worst'", "'zz'", "not among", "Fix"]),
    (lambda d: d.assign(shown=[d["shown"][0][:3] + [d["shown"][0][0]]] + list(d["shown"][1:])),
     ["shown twice", "respondent 'r0'", "task 0", "Fix"]),
    (lambda d: d.assign(shown=[[d["best"][0]]] + list(d["shown"][1:])), ["1 item(s) shown", "at least 2",
                                                                        "respondent 'r0'", "Fix"]),
    (lambda d: pd.concat([d, d.iloc[:1]]), ["more than one row", "respondent 'r0'", "task 0"]),
])
def test_from_best_worst_validation(mutate, words):
    df, items = _simulate(n_resp=3)
    with pytest.raises(ValueError) as ei:
        _bw(mutate(df.copy()))
    for w in words:
        assert w in str(ei.value), (w, str(ei.value))


def test_fit_refuses_plain_rankings_and_unknown_model():
    r = sw.Rankings.from_orderings([["a", "b", "c"], ["b", "c", "a"]])
    with pytest.raises(TypeError, match="from_best_worst"):
        sw.fit_best_worst(r)
    df, items = _simulate(n_resp=5)
    with pytest.raises(ValueError, match="model"):
        sw.fit_best_worst(_bw(df), model="maxdif")


# ------------------------------------------------------------------------------------------------------ engine
@pytest.mark.parametrize("model", MODELS)
def test_gradient_hessian_scores_vs_finite_differences(model):
    df, items = _simulate(n_resp=15, k=4, seed=11)
    # a task of 3 and one of 2 too: blocks of several sizes
    extra = pd.DataFrame([{"rid": "r0", "task": 99, "shown": ["i0", "i1", "i2"], "best": "i2", "worst": "i0",
                           "seg": 0},
                          {"rid": "r1", "task": 99, "shown": ["i3", "i4"], "best": "i3", "worst": "i4", "seg": 1}])
    r = _bw(pd.concat([df, extra], ignore_index=True), items)
    w = np.linspace(0.5, 2.0, r.n_respondents)
    d = BestWorstDesign.from_data(r.with_respondent_weights(w), model=model, npseudo=0.3)
    th = np.random.default_rng(1).normal(scale=0.7, size=d.n_params)
    f, g, H = d.fgh(th)
    eps = 1e-6
    E = np.eye(len(th))
    g_fd = np.array([(d.loglik(th + eps * e) - d.loglik(th - eps * e)) / (2 * eps) for e in E])
    H_fd = np.array([(d.grad(th + eps * e) - d.grad(th - eps * e)) / (2 * eps) for e in E])
    np.testing.assert_allclose(g, g_fd, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(H, H_fd, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    S = d.scores(th)
    np.testing.assert_allclose(S.sum(axis=0), d.grad(th, pseudo=False), atol=1e-10)
    np.testing.assert_allclose(d.respondent_loglik(th) @ w, d.loglik(th, pseudo=False), rtol=1e-12)


def test_maxdiff_probabilities_sum_to_one():
    """Enumerating every (best, worst) answer of one task: the probabilities of each model sum to 1."""
    shown = ["a", "b", "c", "d"]
    v = np.array([0.3, -0.2, 1.0, 0.0])
    rows = [{"rid": f"{b}{w}", "task": 1, "shown": shown, "best": b, "worst": w}
            for b in shown for w in shown if b != w]
    r = _bw(pd.DataFrame(rows), shown)
    for model in MODELS:
        d = BestWorstDesign.from_data(r, model=model)
        total = np.exp(d.respondent_loglik(v)).sum()
        assert total == pytest.approx(1.0 if model != "marginal" else
                                      1.0 - sum(np.exp(v[j]) * np.exp(-v[j]) for j in range(4))
                                      / (np.exp(v).sum() * np.exp(-v).sum()), rel=1e-12)


def test_fit_recovers_truth_and_result_api():
    truth = np.array([0.0, 0.5, -0.4, 1.0, -1.0, 0.2])
    df, items = _simulate(n_resp=400, seed=5, v=truth)
    r = _bw(df, items, covariates=["seg"])
    fit = sw.fit_best_worst(r)
    assert isinstance(fit, sw.BestWorstResult) and isinstance(fit, sw.PlackettLuceResult)
    assert fit.model == "maxdiff" and fit.converged and fit.n_rankings == len(df)
    est = fit.coef(ref="i0")
    assert np.all(np.abs(est["estimate"].to_numpy() - truth) < 4 * np.nan_to_num(est["se"].to_numpy()) + 1e-9)
    assert "Best-worst (maxdiff)" in str(fit.summary()) and "tasks" in str(fit.summary())
    tab = fit.to_frame()
    assert len(tab) == len(items)
    assert fit.weights.sum() == pytest.approx(1.0)
    prof = sw.derive_profile(fit, safety=None)
    assert prof is not None
    import matplotlib

    matplotlib.use("Agg")
    assert fit.plot() is not None
    rob = sw.fit_best_worst(r, vcov="robust")
    assert rob.vcov_type == "robust"
    cl = sw.fit_best_worst(r, vcov="cluster", cluster="seg")
    assert cl.vcov_type == "cluster" and np.all(np.isfinite(cl.se))
    np.testing.assert_allclose(rob.log_worth, fit.log_worth)
    ps = sw.fit_best_worst(r, npseudo=0.5)
    assert ps.npseudo == 0.5 and np.max(np.abs(ps.log_worth - fit.log_worth)) < 0.05


def test_disconnected_mle_is_refused_and_pseudo_fixes_it():
    rows = [{"rid": 1, "task": t, "shown": ["a", "b", "c"], "best": "a", "worst": w}
            for t, w in enumerate(["b", "c", "b"])]
    r = _bw(pd.DataFrame(rows))
    with pytest.raises(ValueError, match="never lose"):
        sw.fit_best_worst(r)
    assert sw.fit_best_worst(r, npseudo=0.5).converged


def test_plackett_luce_on_best_worst_warns_beyond_three_items():
    df, items = _simulate(n_resp=20, k=4)
    with pytest.warns(sw.DataRecodeWarning, match="more than 3 items"):
        sw.fit_plackett_luce(_bw(df, items))
    df3, items3 = _simulate(n_resp=20, k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sw.DataRecodeWarning)
        sw.fit_plackett_luce(_bw(df3, items3))


def test_counts_small():
    rows = [{"rid": 1, "task": 1, "shown": ["a", "b", "c"], "best": "a", "worst": "c"},
            {"rid": 1, "task": 2, "shown": ["a", "b", "d"], "best": "b", "worst": "a"},
            {"rid": 2, "task": 1, "shown": ["a", "c", "d"], "best": "a", "worst": "d"}]
    r = _bw(pd.DataFrame(rows))
    c = sw.best_worst_counts(r)
    assert list(c["B"]) == [2, 1, 0, 0] and list(c["W"]) == [1, 0, 1, 1]
    assert c.loc["a", "stdBW"] == pytest.approx(1 / 3)
    by = sw.best_worst_counts(r, by_respondent=True)
    assert len(by) == 4 + 3 and set(by.columns) >= {"respondent", "item", "B", "W", "BW", "stdBW"}


# ------------------------------------------------------------------------------------------------------ parity
def _load(ds):
    df = pd.read_csv(BWS / f"{ds}_long.csv")
    items = pd.read_csv(BWS / f"{ds}_counts.csv")["item"].tolist()
    shown = [c for c in df.columns if c.startswith("shown_")]
    cov = ["age", "hp", "chem"] if ds == "ricebws1" else ["segment", "age"]
    r = sw.Rankings.from_best_worst(df, respondent="respondent", task="task", shown=shown, best="best",
                                    worst="worst", items=items, covariates=cov)
    return r, items


@needs_bws
@pytest.mark.parametrize("ds", ["ricebws1", "synth_a"])
@pytest.mark.parametrize("model", MODELS)
def test_parity_with_clogit(ds, model):
    r, items = _load(ds)
    ref = items[0]
    est = pd.read_csv(BWS / f"{ds}_estimates.csv").query("model == @model").set_index("item").loc[items]
    summ = pd.read_csv(BWS / f"{ds}_fit_summary.csv").query("model == @model").iloc[0]
    vc = pd.read_csv(BWS / f"{ds}_vcov.csv").query("model == @model")
    fit = sw.fit_best_worst(r, model=model)
    rob = sw.fit_best_worst(r, model=model, vcov="robust")
    c, cr = fit.coef(ref=ref), rob.coef(ref=ref)
    np.testing.assert_allclose(c["estimate"].to_numpy(), est["estimate"].to_numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(c["se"].to_numpy()[1:], est["se_model"].to_numpy()[1:], rtol=1e-5)
    np.testing.assert_allclose(cr["se"].to_numpy()[1:], est["se_cluster"].to_numpy()[1:], rtol=1e-5)
    assert fit.loglik == pytest.approx(summ["loglik"], abs=1e-6)
    assert fit.null_loglik == pytest.approx(summ["loglik_null"], abs=1e-6)
    np.testing.assert_allclose(fit.weights.to_numpy(), est["share_of_preference"].to_numpy(), atol=1e-7)
    rest = items[1:]
    for typ, f in (("model", fit), ("cluster", rob)):
        V = vc[vc["type"] == typ].pivot(index="row", columns="col", values="value").loc[rest, rest]
        np.testing.assert_allclose(f.vcov(ref=ref).loc[rest, rest].to_numpy(), V.to_numpy(), rtol=1e-5, atol=1e-9)


@needs_bws
@pytest.mark.parametrize("ds", ["ricebws1", "synth_a"])
def test_counts_parity(ds):
    r, items = _load(ds)
    ref = pd.read_csv(BWS / f"{ds}_counts.csv").set_index("item")
    got = sw.best_worst_counts(r)
    for col in ("appearances_per_respondent", "appearances_total", "B", "W", "BW", "stdBW", "sqrtBW",
                "std_sqrtBW"):
        np.testing.assert_allclose(got[col].to_numpy(), ref.loc[items, col].to_numpy(), rtol=1e-12, err_msg=col)
    by_ref = pd.read_csv(BWS / f"{ds}_counts_by_respondent.csv")
    by = sw.best_worst_counts(r, by_respondent=True)
    m = by.merge(by_ref, on=["respondent", "item"], suffixes=("", "_ref"))
    assert len(m) == len(by_ref) == len(by)
    for col in ("appearances", "B", "W", "BW", "stdBW"):
        np.testing.assert_allclose(m[col].to_numpy(), m[col + "_ref"].to_numpy(), rtol=1e-12, err_msg=col)


def test_fit_by_group_uses_the_best_worst_model():
    truth = np.array([0.0, 0.5, -0.4, 1.0, -1.0, 0.2])
    df, items = _simulate(n_resp=120, seed=8, v=truth)
    r = _bw(df, items, covariates=["seg"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", sw.DataRecodeWarning)  # not the weak-ordering Plackett-Luce reading
        g = sw.fit_by_group(r, by="seg", min_cell_size=10)
    for lvl, fit in g.fits.items():
        assert isinstance(fit, sw.BestWorstResult)
        sub = r.subset(np.flatnonzero(r.covariates["seg"].to_numpy() == (lvl[0] if isinstance(lvl, tuple) else lvl)))
        np.testing.assert_allclose(fit.log_worth, sw.fit_best_worst(sub).log_worth, atol=1e-8)
    assert np.isfinite(g.lr_test().statistic)


def test_counts_interval_is_the_clustered_ratio_variance():
    df, items = _simulate(n_resp=60, seed=2)
    r = _bw(df, items)
    c = sw.best_worst_counts(r, level=0.95)
    by = sw.best_worst_counts(r, by_respondent=True)
    for it in items[:3]:
        d = by[by["item"] == it]
        R = d["BW"].sum() / d["appearances"].sum()
        n = r.n_respondents  # every respondent appears; those who never saw the item add a zero residual
        var = n / (n - 1) * ((d["BW"] - R * d["appearances"]) ** 2).sum() / d["appearances"].sum() ** 2
        assert c.loc[it, "stdBW_se"] == pytest.approx(np.sqrt(var), rel=1e-12)
        assert c.loc[it, "stdBW_lower"] < c.loc[it, "stdBW"] < c.loc[it, "stdBW_upper"]
    with pytest.raises(ValueError, match="level"):
        sw.best_worst_counts(r, level=95)


def test_sampling_and_frequency_weights():
    df, items = _simulate(n_resp=50, seed=4)
    df["sw"] = 1.0 + (df["rid"].str[1:].astype(int) % 3)
    r = sw.Rankings.from_best_worst(df, respondent="rid", task="task", shown="shown", best="best", worst="worst",
                                    items=items, sampling_weights="sw")
    fit = sw.fit_best_worst(r)
    assert fit.vcov_type == "robust" and fit.sampling is not None
    # frequency weight 2 on a respondent = the respondent twice
    rw = sw.Rankings.from_best_worst(df.assign(f=np.where(df["rid"] == "r0", 2.0, 1.0)), respondent="rid",
                                     task="task", shown="shown", best="best", worst="worst", items=items,
                                     weights="f")
    dup = pd.concat([df, df[df["rid"] == "r0"].assign(rid="r0b")], ignore_index=True)
    np.testing.assert_allclose(sw.fit_best_worst(rw).log_worth, sw.fit_best_worst(_bw(dup, items)).log_worth,
                               atol=1e-9)


@pytest.mark.parametrize("model", ["maxdiff", "sequential"])
def test_bootstrap_refits_the_best_worst_model(model):
    truth = np.array([0.0, 0.5, -0.4, 1.0, -1.0, 0.2])
    df, items = _simulate(n_resp=150, seed=9, v=truth)
    r = _bw(df, items)
    fit = sw.fit_best_worst(r, model=model, vcov="robust")
    b = sw.bootstrap(r, n_boot=200, seed=1, progress=False, best_worst_model=model, method="bca")
    np.testing.assert_allclose(b.log_worth, fit.log_worth, atol=1e-7)  # centred on fit_best_worst's estimate
    assert b.converged.all()
    # the bootstrap SE of the log-worths is the sandwich's, up to Monte Carlo error
    se_boot = b.log_worth_replicates.std(axis=0).to_numpy()
    np.testing.assert_allclose(se_boot, fit.se.to_numpy(), rtol=0.25)
    with pytest.raises(ValueError, match="best_worst_model"):
        sw.bootstrap(r, n_boot=2, progress=False, best_worst_model="max")
    assert np.all(np.isfinite(b.ci().to_numpy(dtype=float)))


def test_plackett_luce_on_best_worst_warns_it_is_the_weak_ordering_reading():
    df, items = _simulate(n_resp=60, k=4, seed=12)
    r = _bw(df, items, covariates=["seg"])
    with pytest.warns(sw.DataRecodeWarning, match="fit_regression and fit_tree use it for best-worst data, "
                                                  "fit_mixture does not yet"):
        sw.fit_plackett_luce(r)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sw.DataRecodeWarning)  # the best-worst model: no weak-ordering warning
        sw.fit_regression(r, ["seg"])
