"""fit_individual (issue 13.4): per-respondent weights shrunk toward the population, validated on simulated
respondents with known individual worths (coverage of the 95% intervals, squared error against each respondent's
own fit), the engine's derivatives, the shrinkage limits, the result vocabulary and the disclosure rule."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights.criteria import SURVEY_CRITERIA
from survey_weights.subgroups import individual as ind
from survey_weights.synthetic.sampling import sample_pl_arrays

K = 5
ITEMS = [f"c{j}" for j in range(K)]
MU = np.array([0.6, -0.2, 0.3, -0.5])  # contrasts with item c0


def _population(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """True log-worths ``[0, u_i]``, ``u_i ~ N(MU, Sigma)`` with a full Sigma, and the true weights."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(K - 1, K - 1)) * 0.4
    Sigma = A @ A.T + 0.4 * np.eye(K - 1)
    beta = np.column_stack([np.zeros(n), rng.multivariate_normal(MU, Sigma, size=n)])
    e = np.exp(beta - beta.max(axis=1, keepdims=True))
    return beta, e / e.sum(axis=1, keepdims=True), rng, Sigma


def _best_worst(beta: np.ndarray, rng: np.random.Generator, tasks: tuple = (6, 12), ids: list | None = None):
    """MaxDiff answers (4 of the 5 items shown per task) of respondents with log-worths `beta`."""
    rows = []
    for i, b in enumerate(beta):
        for t in range(int(rng.integers(tasks[0], tasks[1] + 1))):
            shown = rng.choice(K, size=4, replace=False)
            pairs = [(x, y) for x in shown for y in shown if x != y]
            p = np.exp([b[x] - b[y] for x, y in pairs])
            x, y = pairs[rng.choice(len(pairs), p=p / p.sum())]
            rows.append({"respondent": ids[i] if ids else i, "task": t, "shown": [ITEMS[j] for j in shown],
                         "best": ITEMS[x], "worst": ITEMS[y]})
    return sw.Rankings.from_best_worst(pd.DataFrame(rows), respondent="respondent", task="task", shown="shown",
                                       best="best", worst="worst", items=ITEMS)


def _rankings(beta: np.ndarray, rng: np.random.Generator, per: int = 3) -> sw.Rankings:
    """`per` full Plackett-Luce rankings of the 5 items per respondent."""
    orderings, resp = [], []
    for i, b in enumerate(beta):
        a = sample_pl_arrays(b, per, rng=rng)
        for r in range(per):
            orderings.append([ITEMS[j] for j in a["item"][a["ptr"][r]:a["ptr"][r + 1]]])
            resp.append(f"pid-{i:04d}")
    return sw.Rankings.from_orderings(orderings, respondent_ids=resp, items=ITEMS)


def _scores(res: ind.IndividualWeights, truth: np.ndarray) -> tuple[float, float]:
    fr = res.to_frame()
    lo, hi = (fr[c].to_numpy().reshape(truth.shape) for c in ("ci_low", "ci_high"))
    return float(np.mean((lo <= truth) & (truth <= hi))), float(np.mean((res.weights.to_numpy() - truth) ** 2))


def _unpooled_mse(kernel, truth: np.ndarray) -> float:
    b = ind._unpooled_log_worths(kernel, npseudo=0.5)
    e = np.exp(b - b.max(axis=1, keepdims=True))
    return float(np.mean((e / e.sum(axis=1, keepdims=True) - truth) ** 2))


@pytest.fixture(scope="module")
def bw():
    beta, truth, rng, Sigma = _population(300, seed=11)
    r = _best_worst(beta, rng, ids=[f"pid-{i:04d}" for i in range(300)])
    return r, truth, Sigma, sw.fit_individual(r)


@pytest.fixture(scope="module")
def pl():
    beta, truth, rng, Sigma = _population(300, seed=5)
    r = _rankings(beta, rng)
    return r, truth, Sigma, sw.fit_individual(r), sw.fit_individual(r, method="mixture", n_classes=3, n_starts=3)


# --------------------------------------------------------------------------------------------------- validation
def test_best_worst_coverage_and_error_beat_the_unpooled_fits(bw):
    r, truth, _, res = bw
    cover, mse = _scores(res, truth)
    unpooled = _unpooled_mse(ind._BestWorstKernel(r, "maxdiff"), truth)
    print(f"\nbest-worst (300 respondents, 6-12 MaxDiff tasks of 4 of 5 items): EB coverage {cover:.3f}, "
          f"EB MSE {mse:.5f}, unpooled MSE {unpooled:.5f}; by {res._state['estimator']}")
    assert res.converged and 0.90 <= cover <= 0.99
    assert mse < 0.8 * unpooled


def test_rankings_coverage_and_error_empirical_bayes_and_mixture(pl):
    r, truth, _, eb, mix = pl
    c_eb, m_eb = _scores(eb, truth)
    c_mix, m_mix = _scores(mix, truth)
    unpooled = _unpooled_mse(ind._ChoiceKernel(r, np.zeros(0)), truth)
    print(f"\nrankings (300 respondents, 3 full rankings of 5 items): EB coverage {c_eb:.3f}, MSE {m_eb:.5f}; "
          f"3-class mixture coverage {c_mix:.3f}, MSE {m_mix:.5f}; unpooled MSE {unpooled:.5f}")
    assert 0.90 <= c_eb <= 0.99 and m_eb < unpooled and m_eb < m_mix
    assert c_mix < c_eb  # the coarse method: intervals of the class weight, too narrow for the individual one


def test_one_tied_ranking_per_respondent():
    """The survey's own format (one weak ordering per respondent, ties): Sigma is weakly identified, the
    importance-sampling rounds do not settle and the Laplace fit is kept; its intervals still cover ~90%."""
    beta, truth, rng, _ = _population(300, seed=7)
    orderings = []
    for b in beta:
        a = sample_pl_arrays(b, 1, delta={2: 0.6, 3: 0.3}, rng=rng)
        groups = [tuple(ITEMS[j] for j in a["item"][a["rank"] == g]) for g in np.unique(a["rank"])]
        orderings.append([g if len(g) > 1 else g[0] for g in groups])
    r = sw.Rankings.from_orderings(orderings, items=ITEMS)
    res = sw.fit_individual(r)
    cover, mse = _scores(res, truth)
    unpooled = _unpooled_mse(ind._ChoiceKernel(r, np.log(res.pooled.tie_params.to_numpy())), truth)
    print(f"\none tied ranking each (300 respondents): EB coverage {cover:.3f}, MSE {mse:.5f}, unpooled MSE "
          f"{unpooled:.5f}; by {res._state['estimator']}")
    assert cover >= 0.85 and mse < 0.5 * unpooled


def test_population_recovery(bw):
    r, _, Sigma, res = bw
    C = np.eye(K) - 1.0 / K
    A = np.vstack([np.zeros(K - 1), np.eye(K - 1)])
    true_mu = C @ np.concatenate([[0.0], MU])
    np.testing.assert_allclose(res.mu.to_numpy(), true_mu, atol=0.15)
    assert np.abs(res.sigma.to_numpy() - C @ A @ Sigma @ A.T @ C).max() < 0.3
    pooled = res.pooled.log_worth.to_numpy()
    assert np.corrcoef(pooled, res.mu.to_numpy())[0, 1] > 0.95  # the pooled fit: the same order, attenuated
    assert res.population.idxmax() == res.pooled.weights.idxmax()
    assert ((0 < res.shrinkage) & (res.shrinkage < 1)).all()


# ------------------------------------------------------------------------------------------------ the numerics
def test_penalised_gradient_and_hessian_match_finite_differences(bw):
    r = bw[0].subset(np.arange(40))
    survey = sw.Rankings.from_ratings(sw.load_example_survey().head(40), SURVEY_CRITERIA,
                                      respondent="respondent_id", scale=(1, 5))
    fit = sw.fit_plackett_luce(survey)
    rng = np.random.default_rng(0)
    S = np.eye(K - 1) + 0.3
    for kernel in (ind._BestWorstKernel(r, "maxdiff"), ind._ChoiceKernel(survey, np.log(fit.tie_params.to_numpy()))):
        N = kernel.has_data.size
        fun = ind._penalised(kernel, MU, np.linalg.inv(S))
        u = rng.normal(size=(N, K - 1))
        f, g, H = fun(u)
        eps = 1e-6
        for j in range(K - 1):
            up, um = u.copy(), u.copy()
            up[:, j] += eps
            um[:, j] -= eps
            (fp, gp, _), (fm, gm, _) = fun(up), fun(um)
            np.testing.assert_allclose((fp - fm) / (2 * eps), g[:, j], atol=1e-6)
            np.testing.assert_allclose((gp - gm) / (2 * eps), H[:, :, j], atol=1e-5)
        B = np.stack([np.column_stack([np.zeros(N), u]), np.column_stack([np.zeros(N), u + 0.1])])
        np.testing.assert_allclose(kernel.loglik_many(B)[0], kernel(B[0])[0], rtol=1e-12)
        np.testing.assert_allclose(kernel.loglik_many(B)[1], kernel(B[1])[0], rtol=1e-12)


def test_ratings_kernel_sums_to_the_engine_loglik():
    survey = sw.Rankings.from_ratings(sw.load_example_survey(), SURVEY_CRITERIA, respondent="respondent_id",
                                      scale=(1, 5))
    fit = sw.fit_plackett_luce(survey)
    k = ind._ChoiceKernel(survey, np.log(fit.tie_params.to_numpy()))
    f, _, _ = k(np.tile(fit.theta[:K], (survey.n_respondents, 1)))
    assert f.sum() == pytest.approx(fit.loglik, rel=1e-10)


def test_shrinkage_limits_and_the_unpooled_fit():
    beta, _, rng, _ = _population(4, seed=2)
    r = _best_worst(beta, rng, tasks=(80, 80))
    kernel = ind._BestWorstKernel(r, "maxdiff")
    mu = np.array([0.2, -0.1, 0.4, 0.0])
    # a huge prior variance: the mode is the respondent's own maximum-likelihood estimate
    u, V, _, ok = ind._posterior_modes(kernel, mu, 1e8 * np.eye(K - 1))
    assert ok
    for i in range(4):
        own = sw.fit_best_worst(r.subset([i])).log_worth.to_numpy()
        np.testing.assert_allclose(u[i], own[1:] - own[0], atol=1e-5)
    # a tiny one: everyone is the population
    u, V, _, _ = ind._posterior_modes(kernel, mu, 1e-10 * np.eye(K - 1))
    np.testing.assert_allclose(u, np.tile(mu, (4, 1)), atol=1e-6)
    # the unpooled comparator is the package's fit with npseudo=0.5 on the respondent's data alone
    b = ind._unpooled_log_worths(kernel, npseudo=0.5)
    for i in range(2):
        own = sw.fit_best_worst(r.subset([i]), npseudo=0.5).theta
        np.testing.assert_allclose(b[i], own, atol=1e-6)


def test_frequency_weights_weight_the_population(bw):
    r = bw[0].subset(np.arange(60))
    zero = sw.fit_individual(r.with_respondent_weights(np.r_[np.zeros(10), np.ones(50)]))
    rest = sw.fit_individual(r.subset(np.arange(10, 60)))
    np.testing.assert_allclose(zero.mu.to_numpy(), rest.mu.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(zero.sigma.to_numpy(), rest.sigma.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(zero.weights.iloc[10:].to_numpy(), rest.weights.to_numpy(), atol=1e-6)
    assert zero.weights.shape == (60, K)  # a respondent of weight 0 still gets a posterior


# -------------------------------------------------------------------------------------------- the result object
def test_to_frame_weights_and_intervals(bw):
    r, _, _, res = bw
    fr = res.to_frame()
    assert list(fr.columns) == ["respondent", "criterion", "weight", "ci_low", "ci_high"]
    assert len(fr) == K * r.n_respondents and list(fr["criterion"][:K]) == ITEMS
    assert ((fr["ci_low"] <= fr["weight"]) & (fr["weight"] <= fr["ci_high"])).all()
    np.testing.assert_allclose(fr.groupby("respondent")["weight"].sum(), 1.0)
    np.testing.assert_allclose(res.weights.sum(axis=1), 1.0)
    assert res.weights.index.name == "respondent" and list(res.weights.index) == list(r.respondent_ids)
    wide, narrow = res.to_frame(level=0.99), res.to_frame(level=0.5)
    assert ((wide["ci_high"] - wide["ci_low"]) >= (narrow["ci_high"] - narrow["ci_low"])).all()
    again = sw.fit_individual(r.subset(np.arange(60)), seed=0).to_frame()
    pd.testing.assert_frame_equal(again, sw.fit_individual(r.subset(np.arange(60)), seed=0).to_frame())


def test_printed_and_exported_outputs_name_no_respondent(bw, tmp_path):
    r, _, _, res = bw
    texts = [repr(res), str(res), str(res.summary()), res.summary()._repr_html_()]
    profs = res.profiles()
    texts += [json.dumps(p.to_dict()) for p in profs]
    out = sw.export_profiles(res, tmp_path / "w.json")
    texts.append(out[0].read_text())
    for t in texts:
        assert not any(str(i) in t for i in r.respondent_ids), t[:200]
    assert [p.name for p in profs] == ["pooled"] and profs[0].n_respondents == r.n_respondents
    assert [p.name for p in sw.read_profiles(out[0])] == ["pooled"]


def test_identifiable_output_needs_an_explicit_acknowledged_call(bw, tmp_path):
    res = bw[3]
    with pytest.raises(ValueError, match="acknowledge=True"):
        res.write_identifiable_health_data(tmp_path / "ind.csv")
    with pytest.raises(ValueError, match=".csv"):
        res.write_identifiable_health_data(tmp_path / "ind.json", acknowledge=True)
    path = res.write_identifiable_health_data(tmp_path / "ind.csv", acknowledge=True)
    assert path.read_text().startswith("# IDENTIFIABLE HEALTH DATA")
    back = pd.read_csv(path, comment="#")
    assert list(back.columns) == ["respondent", "criterion", "weight", "ci_low", "ci_high"]
    np.testing.assert_allclose(back["weight"], res.to_frame()["weight"], rtol=1e-8)
    with pytest.raises(ValueError):
        sw.read_profiles(path)


def test_plot(bw):
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    r, _, _, res = bw
    ax = Figure().subplots()
    assert res.plot(ax=ax) is ax
    ids = list(r.respondent_ids[:3])
    ax2 = res.plot(ax=Figure().subplots(), respondents=ids)
    assert isinstance(ax2, Axes) and any(len(c.get_segments()) for c in ax2.collections)
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == [f"respondent {i}" for i in ids]
    assert set(ITEMS) <= {t.get_text() for t in ax2.get_yticklabels()}
    with pytest.raises(ValueError, match="respondents"):
        res.plot(respondents=["nobody"])


def test_bad_input_fails_fast(bw):
    r = bw[0]
    with pytest.raises(ValueError, match="`method`"):
        sw.fit_individual(r, method="bayes")
    with pytest.raises(TypeError, match="Rankings"):
        sw.fit_individual(pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="n_draws"):
        sw.fit_individual(r, n_draws=10)
    with pytest.raises(ValueError, match="best_worst_model"):
        sw.fit_individual(r, best_worst_model="best")
    with pytest.raises(ValueError, match="best-worst"):
        sw.fit_individual(r, method="mixture", n_classes=2)
    with pytest.raises(ValueError, match="level"):
        bw[3].to_frame(level=1.5)
    with pytest.raises(TypeError, match="seed"):
        sw.fit_individual(r, seed="x")
    survey = sw.Rankings.from_orderings([["a", "b"], ["b", "c"]])
    with pytest.raises(ValueError, match="n_classes"):
        sw.fit_individual(survey, method="mixture")
    empty = sw.Rankings._from_arrays(["a", "b", "c"], np.array([0, 2, 4]), np.array([0, 1, 1, 2]),
                                     np.array([1, 2, 1, 2]), np.zeros(2, bool), np.array([0, 1]),
                                     pd.Index(["x", "y", "z"]), np.ones(3))
    with pytest.raises(ValueError, match="no comparison"):
        sw.fit_individual(empty)


# ---------------------------------------------------------------------------------------- the other data kinds
def test_ratings_with_ties_and_paired_comparisons():
    survey = sw.Rankings.from_ratings(sw.load_example_survey().head(80), SURVEY_CRITERIA,
                                      respondent="respondent_id", scale=(1, 5))
    res = sw.fit_individual(survey)
    assert res.weights.shape == (80, K) and res.converged
    fr = res.to_frame()
    assert ((fr["ci_low"] <= fr["weight"]) & (fr["weight"] <= fr["ci_high"])).all()
    assert (res.shrinkage > 0).all() and (res.shrinkage < 1).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sw.DataRecodeWarning)
        paired = survey.to_pairwise()
    pc = sw.fit_individual(paired)
    np.testing.assert_allclose(pc.weights.sum(axis=1), 1.0)
    assert pc.pooled.__class__.__name__ == "BradleyTerryResult"
