"""Choices from an offered set (`Rankings.from_choices`) and rankings with shown-but-unranked items declared per
ranking (`Rankings.from_orderings(shown=...)`): the representation, the fits against choix's top-1 estimators
(`opt_top1`, `ilsr_top1`, `log_likelihood_top1`) and statsmodels' conditional logit, and the bad-input errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import survey_weights as sw
from survey_weights import Rankings, fit_plackett_luce
from survey_weights.models._likelihood import PLDesign

# A small hand-written top-1 set in the spirit of choix's TOP1_DATA (winner, [losers]); its win graph is
# strongly connected, so the maximum-likelihood estimate exists without a prior (alpha=0, npseudo=0).
HAND_TOP1 = [(0, [1, 2]), (1, [2, 3]), (2, [0, 3]), (3, [0, 1, 2]), (1, [0]), (0, [3]), (2, [1]),
             (3, [2, 1]), (0, [1, 2, 3]), (2, [3]), (1, [3, 0])]


# choix's own top-1 test data (choix 0.4.1, MIT licence, commit 7494ad3): tests/test_opt.py's TOP1_DATA with its
# estimate at alpha=0.5, and tests/data/testcase-top1-{1,2}.json with their maximum-likelihood estimates.
CHOIX_TOP1_DATA = [(7, (6, 3, 1)), (6, (4, 5)), (5, (0, 4, 1)), (0, (3,)), (3, (0, 1))]
CHOIX_TOP1_ESTIMATE = [-0.12223311, -0.53980682, 0.0, -0.08808004, -0.40003309, 0.24075031, 0.30131247, 0.60809028]
CHOIX_TESTCASES = [  # (n_items, data, ml_est)
    (3, [[0, [1, 2]], [1, [0, 2]], [2, [0, 1]]], [0.0, 0.0, 0.0]),
    (3, [[0, [1]], [1, [2]], [2, [0, 1]]], [0.16040395, -0.32080789, 0.16040394]),
]


def _simulate(seed: int = 0, n_items: int = 8, n_obs: int = 400) -> tuple[pd.DataFrame, list]:
    """Top-1 data shaped as choix's tests: choices from random subsets of 2-5 of `n_items` items under a
    multinomial logit with random log-worths; three tasks per respondent."""
    rng = np.random.default_rng(seed)
    beta = rng.normal(size=n_items)
    rows, data = [], []
    for t in range(n_obs):
        shown = rng.choice(n_items, int(rng.integers(2, 6)), replace=False)
        p = np.exp(beta[shown])
        c = int(rng.choice(shown, p=p / p.sum()))
        rows.append({"resp": t // 3, "task": t % 3, "shown": [int(x) for x in shown], "chosen": c})
        data.append((c, [int(x) for x in shown if x != c]))
    return pd.DataFrame(rows), data


def _frame(top1: list) -> pd.DataFrame:
    return pd.DataFrame({"resp": range(len(top1)), "task": 1, "shown": [[w, *ls] for w, ls in top1],
                         "chosen": [w for w, _ in top1]})


def _choices(df: pd.DataFrame, **kw) -> Rankings:
    return Rankings.from_choices(df, respondent="resp", task="task", shown="shown", chosen="chosen", **kw)


# ---------------------------------------------------------------------------------------------- representation
def test_from_choices_holds_one_ranked_item_and_the_rest_shown():
    df = pd.DataFrame({"id": ["u", "u", "v"], "task": [1, 2, 1], "shown": [["a", "b", "c"], ["c", "d"], ["b", "d"]],
                       "chosen": ["b", "d", "b"]})
    r = Rankings.from_choices(df, respondent="id", task="task", shown="shown", chosen="chosen")
    assert r.items == ("a", "b", "c", "d") and r.n_rankings == 3 and r.n_respondents == 2
    fr = r.to_frame()
    assert list(fr.columns) == ["respondent", "ranking", "item", "rank", "top_k", "ranked"]
    assert fr["item"].tolist() == ["b", "a", "c", "d", "c", "b", "d"]
    assert fr["ranked"].tolist() == [True, False, False, True, False, True, False]
    assert fr["rank"].isna().tolist() == [not x for x in fr["ranked"]]
    assert not fr["top_k"].any()
    assert "3 with shown-but-unranked items" in repr(r)
    # a choice of b from {a, b, c} is b > a and b > c; items not shown are not compared
    pairs = r.to_pairwise()
    got = sorted((r.items[a], r.items[b], int(o)) for a, b, o in zip(pairs._a, pairs._b, pairs._outcome))
    assert got == [("b", "a", 1), ("b", "c", 1), ("b", "d", 1), ("d", "c", 1)]


def test_item_columns_and_items_order():
    df = pd.DataFrame({"id": [1, 2], "task": [1, 1], "s1": ["x", "y"], "s2": ["y", "z"], "s3": ["z", np.nan],
                       "chosen": ["z", "y"]})
    r = Rankings.from_choices(df, respondent="id", task="task", shown=["s1", "s2", "s3"], chosen="chosen",
                              items=["z", "y", "x"])
    assert r.items == ("z", "y", "x")
    fr = r.to_frame()
    assert fr.loc[fr["ranking"] == 1, "item"].tolist() == ["y", "z"]


def test_unshown_items_change_nothing_but_shown_ones_do():
    df, _ = _simulate(1, n_items=5, n_obs=60)
    r = _choices(df, items=range(5))
    assert r.data_hash() == _choices(df, items=range(5)).data_hash()
    # the same chosen items with the unranked sets left out (plain one-item rankings) hash differently
    bare = Rankings._from_arrays(r.items, r._ptr, r._item, r._rank, r._top_k, r._resp, r.respondent_ids)
    assert bare.data_hash() != r.data_hash()
    df2 = df.copy()
    i = int(np.flatnonzero(df2["shown"].map(len) > 2)[0])
    df2.at[i, "shown"] = [x for x in df2.at[i, "shown"] if x != df2.at[i, "chosen"]][:1] + [df2.at[i, "chosen"]]
    assert _choices(df2, items=range(5)).data_hash() != r.data_hash()


def test_from_orderings_shown_declares_unranked_items():
    orderings = [["a"], ["b", "a"], [("a", "c")], ["c", "b"]]
    shown = [["a", "b", "c"], ["a", "b", "d"], ["a", "c", "d"], None]
    r = Rankings.from_orderings(orderings, shown=shown)
    assert r.items == ("a", "b", "c", "d")
    fr = r.to_frame()
    assert fr.loc[~fr["ranked"], ["ranking", "item"]].values.tolist() == [[0, "b"], [0, "c"], [1, "d"], [2, "d"]]
    # a one-item ordering from a larger shown set is the choice of from_choices
    df = pd.DataFrame({"resp": [0], "task": [0], "shown": [["a", "b", "c"]], "chosen": ["a"]})
    one = Rankings.from_orderings([["a"]], shown=[["a", "b", "c"]])
    assert one.data_hash() == _choices(df).data_hash()
    # default behaviour is unchanged: no declared sets, the same arrays and hash as before
    plain = Rankings.from_orderings([["b", "a"], ["c", "b"]])
    assert plain._unranked_ptr is None and "ranked" not in plain.to_frame().columns
    assert plain.data_hash() == Rankings.from_orderings([["b", "a"], ["c", "b"]], shown=[None, None]).data_hash()


def test_shown_set_over_all_items_equals_top_k_with_ties():
    """A declared shown set of every item is a top-k ranking: same likelihood, ties (Davidson-Luce) included."""
    orderings = [[("a", "b")], ["c"], ["b", "a"], [("c", "a"), "b"], ["a", "c"], ["b"]]
    items = ["a", "b", "c"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        topk = Rankings.from_orderings(orderings, items=items, top_k=True)
    declared = Rankings.from_orderings(orderings, items=items, shown=[items] * len(orderings))
    f1, f2 = fit_plackett_luce(topk, npseudo=0.5), fit_plackett_luce(declared, npseudo=0.5)
    assert f1.loglik == pytest.approx(f2.loglik, abs=1e-10)
    np.testing.assert_allclose(f1.theta, f2.theta, atol=1e-9)
    # top_k=True with a declared set: the set replaces "every other item" for that ordering only
    mixed = Rankings.from_orderings([["a"], ["b"]], items=["a", "b", "c", "d"], top_k=True,
                                    shown=[["a", "c"], None])
    assert mixed._top_k.tolist() == [False, True]
    assert np.diff(mixed._unranked_ptr).tolist() == [1, 0]


def test_a_declared_ranking_is_its_sequence_of_choices():
    """b > a shown with {b, a, c, d}: P = w_b / (w_a + w_b + w_c + w_d) * w_a / (w_a + w_c + w_d)."""
    r = Rankings.from_orderings([["b", "a"]], items=["a", "b", "c", "d"], shown=[["b", "a", "c", "d"]])
    theta = np.array([0.3, -0.2, 0.5, 0.1])
    w = np.exp(theta)
    want = np.log(w[1] / w.sum()) + np.log(w[0] / (w[0] + w[2] + w[3]))
    for engine in ("dense", "generic"):
        d = PLDesign.from_rankings(r, npseudo=0, engine=engine)
        assert d.loglik(theta, pseudo=False) == pytest.approx(want, abs=1e-13)


def test_dense_and_generic_kernels_agree():
    df, _ = _simulate(2)
    r = _choices(df, items=range(8))
    theta = np.random.default_rng(0).normal(size=8)
    d1 = PLDesign.from_rankings(r, npseudo=0, engine="dense")
    d2 = PLDesign.from_rankings(r, npseudo=0, engine="generic")
    f1, g1, h1 = d1.fgh(theta, pseudo=False)
    f2, g2, h2 = d2.fgh(theta, pseudo=False)
    assert f1 == pytest.approx(f2, abs=1e-10)
    np.testing.assert_allclose(g1, g2, atol=1e-10)
    np.testing.assert_allclose(h1, h2, atol=1e-10)
    np.testing.assert_allclose(d1.scores(theta), d2.scores(theta), atol=1e-12)


# --------------------------------------------------------------------------------------------------- parity
def _centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean()


@pytest.mark.parametrize("case", ["simulated", "hand"])
def test_parity_with_choix_opt_top1_and_ilsr_top1(case):
    choix = pytest.importorskip("choix", reason="choix (the top-1 reference) is not installed")
    if case == "simulated":
        df, data = _simulate(3)
        n = 8
    else:
        data, n = HAND_TOP1, 4
        df = _frame(HAND_TOP1)
    r = _choices(df, items=range(n))
    fit = fit_plackett_luce(r, npseudo=0, tol=1e-12)
    assert fit.converged
    est = fit.log_worth.to_numpy()  # zero-sum, as choix's parameters
    opt = choix.opt_top1(n, data, alpha=0, method="Newton-CG", tol=1e-12)
    ilsr = choix.ilsr_top1(n, data, alpha=0, tol=1e-14, max_iter=10_000)
    assert np.abs(est - _centred(opt)).max() <= 1e-6
    assert np.abs(est - _centred(ilsr)).max() <= 1e-9
    assert fit.loglik == pytest.approx(choix.log_likelihood_top1(data, opt), abs=1e-8)
    assert fit.loglik == pytest.approx(choix.log_likelihood_top1(data, est), abs=1e-10)


@pytest.mark.parametrize("n, data, ml_est", CHOIX_TESTCASES)
def test_choix_json_testcases(n, data, ml_est):
    """choix's testcase-top1-*.json: the stored ML estimates (8 decimals) and, where installed, choix itself."""
    top1 = [(w, list(ls)) for w, ls in data]
    fit = fit_plackett_luce(_choices(_frame(top1), items=range(n)), npseudo=0, tol=1e-12)
    np.testing.assert_allclose(fit.log_worth.to_numpy(), ml_est, atol=2e-8)
    choix = pytest.importorskip("choix", reason="choix (the top-1 reference) is not installed")
    opt = choix.opt_top1(n, top1, alpha=0, method="Newton-CG", tol=1e-12)
    assert np.abs(fit.log_worth.to_numpy() - _centred(opt)).max() <= 1e-6
    assert fit.loglik == pytest.approx(choix.log_likelihood_top1(top1, opt), abs=1e-8)


def test_choix_top1_data_with_its_prior():
    """choix's TOP1_DATA at alpha=0.5 (penalty alpha * ||theta||^2) is the MAP under a N(0, I) prior; item 2 is
    never shown, so it sits at the prior mean 0 (and the fit warns that the network falls apart)."""
    top1 = [(w, list(ls)) for w, ls in CHOIX_TOP1_DATA]
    r = _choices(_frame(top1), items=range(8))
    with pytest.warns(sw.DisconnectedNetworkWarning):
        fit = fit_plackett_luce(r, normal={"mu": np.zeros(8), "Sigma": np.eye(8)}, tol=1e-12)
    np.testing.assert_allclose(fit.log_worth.to_numpy(), CHOIX_TOP1_ESTIMATE, atol=2e-8)
    choix = pytest.importorskip("choix", reason="choix (the top-1 reference) is not installed")
    opt = choix.opt_top1(8, top1, alpha=0.5, method="Newton-CG", tol=1e-12)
    assert np.abs(fit.log_worth.to_numpy() - opt).max() <= 1e-6


def test_parity_with_statsmodels_conditional_logit():
    """The multinomial logit of each task is a conditional logit with item dummies (reference item 0)."""
    cm = pytest.importorskip("statsmodels.discrete.conditional_models",
                             reason="statsmodels (the conditional-logit reference) is not installed")
    df, data = _simulate(4)
    fit = fit_plackett_luce(_choices(df, items=range(8)), npseudo=0, tol=1e-12, vcov="model")
    long = np.array([(t, j, int(j == c)) for t, (c, losers) in enumerate(data) for j in [c, *losers]])
    X = np.eye(8)[long[:, 1]][:, 1:]
    ref = cm.ConditionalLogit(long[:, 2], X, groups=long[:, 0]).fit(method="newton", tol=1e-14, maxiter=100,
                                                                    disp=0)
    c = fit.coef(ref=0)
    np.testing.assert_allclose(c["estimate"].to_numpy()[1:], ref.params, atol=1e-9)
    np.testing.assert_allclose(c["se"].to_numpy()[1:], ref.bse, rtol=1e-5)
    assert fit.loglik == pytest.approx(ref.llf, abs=1e-8)


def test_parity_with_direct_mle():
    """An independent scipy maximisation of sum_t log(w_chosen / sum_shown w), item 0 fixed at 0."""
    from scipy.optimize import minimize

    df, data = _simulate(5, n_items=6, n_obs=250)

    def nll(b: np.ndarray) -> tuple[float, np.ndarray]:
        beta = np.concatenate([[0.0], b])
        f, g = 0.0, np.zeros(6)
        for c, losers in data:
            s = np.array([c, *losers])
            p = np.exp(beta[s] - beta[s].max())
            p /= p.sum()
            f -= np.log(p[0])
            g[c] -= 1
            np.add.at(g, s, p)
        return f, g[1:]

    opt = minimize(nll, np.zeros(5), jac=True, method="BFGS", options={"gtol": 1e-11})
    fit = fit_plackett_luce(_choices(df, items=range(6)), npseudo=0, tol=1e-12)
    np.testing.assert_allclose(fit.coef(ref=0)["estimate"].to_numpy()[1:], opt.x, atol=1e-6)
    assert fit.loglik == pytest.approx(-opt.fun, abs=1e-9)


# ------------------------------------------------------------------------------------------- the other tools
def test_subset_bootstrap_and_groups_carry_the_shown_sets():
    df, _ = _simulate(6, n_items=5, n_obs=300)
    df["group"] = np.where(df["resp"] % 2 == 0, "even", "odd")
    r = _choices(df, items=range(5), covariates=["group"])
    even = r.subset(r.covariates["group"].to_numpy() == "even")
    direct = _choices(df[df["group"] == "even"], items=range(5))
    assert even.data_hash() == direct.data_hash()
    f_sub, f_dir = fit_plackett_luce(even, npseudo=0), fit_plackett_luce(direct, npseudo=0)
    np.testing.assert_allclose(f_sub.theta, f_dir.theta, atol=1e-10)
    g = sw.fit_by_group(r, "group", min_cell_size=5, npseudo=0)
    np.testing.assert_allclose(g.fits["even"].theta, f_dir.theta, atol=1e-8)
    b = sw.bootstrap(r, n_boot=20, seed=1, npseudo=0, progress=False)
    assert np.isfinite(np.asarray(b.ci())).all()


def test_every_engine_reads_the_shown_sets():
    """Tie-free choices: the exploded-ties design (breslow), the choice-set design (item covariates that span
    the log-worths) and the plain fit are the same multinomial logit."""
    df, _ = _simulate(7, n_items=5, n_obs=300)
    r = _choices(df, items=range(5))
    plain = fit_plackett_luce(r, npseudo=0, tol=1e-12)
    bres = fit_plackett_luce(r, npseudo=0, ties="breslow", tol=1e-12)
    np.testing.assert_allclose(bres.log_worth.to_numpy(), plain.log_worth.to_numpy(), atol=1e-9)
    ic = pd.DataFrame(np.eye(5)[:, 1:], index=list(range(5)))
    cov = fit_plackett_luce(r, item_covariates=ic, tol=1e-12)
    np.testing.assert_allclose(cov.log_worth.to_numpy(), plain.log_worth.to_numpy(), atol=1e-7)
    assert cov.loglik == pytest.approx(plain.loglik, abs=1e-9)
    assert fit_plackett_luce(r, bias_reduction=True).converged


def test_disconnected_choices_name_the_item_that_never_wins():
    df = pd.DataFrame({"resp": [1, 2, 3], "task": 1, "shown": [["a", "b", "c"], ["b", "a"], ["c", "a"]],
                       "chosen": ["a", "b", "a"]})
    with pytest.raises(ValueError, match=r"never win: c"):
        fit_plackett_luce(_choices(df), npseudo=0)
    fit = fit_plackett_luce(_choices(df))  # pseudo-comparisons: finite
    assert fit.weights["c"] < fit.weights["b"]


def test_top_k_and_declared_sets_are_exclusive():
    with pytest.raises(ValueError, match="top-k ranking cannot also declare"):
        Rankings._from_arrays(["a", "b", "c"], [0, 1], [0], [1], [True], [0], [0],
                              unranked=([0, 1], [1]))


# ------------------------------------------------------------------------------------------------------ errors
def _bad(**cols) -> pd.DataFrame:
    base = {"resp": [1, 1, 2], "task": [1, 2, 1], "shown": [["a", "b"], ["a", "b", "c"], ["b", "c"]],
            "chosen": ["a", "c", "b"]}
    base.update(cols)
    return pd.DataFrame(base)


@pytest.mark.parametrize("df, pattern", [
    (_bad(chosen=["a", "d", "b"]),
     r"respondent 1, task 2: column 'chosen' is 'd', which is not among the items shown \['a', 'b', 'c'\]\. Fix"),
    (_bad(chosen=["a", None, "b"]), r"respondent 1, task 2: column 'chosen' is missing\. Fix"),
    (_bad(shown=[["a", "b"], ["a", "c", "c"], ["b", "c"]]),
     r"respondent 1, task 2: item 'c' is shown twice .*Fix"),
    (_bad(shown=[["a", "b"], ["c"], ["b", "c"]]),
     r"respondent 1, task 2: 1 item\(s\) shown .*a choice task needs at least 2\. Fix"),
    (_bad(task=[1, 1, 1]), r"respondent 1, task 1 appears on more than one row \(columns 'resp', 'task'\).*Fix"),
    (_bad(resp=[1, None, 2]), r"Column 'resp' is missing at row position\(s\) 1\. Fix"),
    (_bad(task=[1, 2, np.nan]), r"Column 'task' is missing at row position\(s\) 2\. Fix"),
])
def test_bad_input_names_respondent_task_column_and_value(df, pattern):
    with pytest.raises(ValueError, match=pattern):
        _choices(df)


def test_unknown_item_label_names_where():
    with pytest.raises(ValueError, match=r"Item\(s\) 'c' are shown but not in `items` \(first at respondent 1, "
                                         r"task 2, .*Fix"):
        _choices(_bad(), items=["a", "b"])


def test_bad_shown_column():
    with pytest.raises(TypeError, match="must hold a list"):
        _choices(_bad(shown=["a", "b", "c"]))
    with pytest.raises(ValueError, match="chosen"):
        Rankings.from_choices(_bad(), respondent="resp", task="task", shown="shown", chosen="pick")


def test_from_orderings_shown_errors():
    with pytest.raises(ValueError, match=r"Ordering 0 \(respondent id 0\) ranks item\(s\) 'c' that are not in its `shown` set"):
        Rankings.from_orderings([["a", "c"]], shown=[["a", "b"]])
    with pytest.raises(ValueError, match=r"`shown\[0\]` .* lists item\(s\) 'b' more than once"):
        Rankings.from_orderings([["a"]], shown=[["a", "b", "b"]])
    with pytest.raises(ValueError, match="`shown` has 1 entries but there are 2 orderings"):
        Rankings.from_orderings([["a", "b"], ["b", "a"]], shown=[None])
    with pytest.raises(ValueError, match=r"Unknown item\(s\) 'z' in `orderings` or `shown`"):
        Rankings.from_orderings([["a", "b"]], items=["a", "b"], shown=[["a", "b", "z"]])
