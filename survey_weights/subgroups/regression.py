"""Regression of item worths on respondent covariates (Plackett-Luce with ties; Bradley-Terry-Davidson for pairs;
the best-worst models for best-worst tasks).

The log-worth of item j for respondent i is ``x_i' beta_j``: ``x_i`` holds an intercept, dummy-coded categorical
covariates (reference = first level) and numeric covariates (standardised by default). Each ranking is the
usual sequence of Davidson-Luce choices (``docs/design.md``): at a stage with choice set A the chosen tie group C
has probability ``f_i(C) / sum_S f_i(S)`` over the subsets S of A of the observed tie orders, with
``log f_i(S) = log delta_|S| + mean_{j in S} x_i' beta_j``. Tie parameters are shared by all respondents. The model
is a conditional logit over these alternatives, fitted by the engine (:class:`~survey_weights.models._choice.
ChoiceDesign` with the respondents' model matrix, the one Newton driver and the one covariance routine).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._util.threads import single_thread_blas
from .._util.validation import check_option, check_scalar, format_ids
from ..data.rankings import PairedComparisons, Rankings
from ..exceptions import ConvergenceWarning
from ..models._best_worst import BEST_WORST_MODELS
from ..models._choice import ChoiceDesign
from ..models._covariance import covariance
from ..models._optim import optimize
from ..models._robust import design_summary, resolve_vcov, score_meat
from ..profiles.cells import check_min_cell_size
from ._provenance import records_data
from ._regression_result import WorthRegressionResult, _model_matrix, _Term

__all__ = ["WorthRegressionResult", "fit_regression"]

# ---------------------------------------------------------------------------------------------------------------------
# covariate coding
# ---------------------------------------------------------------------------------------------------------------------
def _check_covariates(data: Rankings | PairedComparisons, covariates: Any) -> list[Any]:
    if covariates is None:
        return []
    covs = [covariates] if isinstance(covariates, str) else list(covariates)
    frame = data.covariates
    if covs and frame is None:
        raise ValueError(
            f"`covariates` {format_ids(covs)} were requested but `data` carries no covariates. "
            "Fix: build the data with covariates=[...] (e.g. Rankings.from_ratings(df, items, covariates=[...]))."
        )
    unknown = [c for c in covs if c not in frame.columns]
    if unknown:
        raise ValueError(
            f"Unknown covariate(s) {format_ids(unknown)} in `covariates`. Available: "
            f"{format_ids(list(frame.columns), limit=20)}. Fix: check the spelling."
        )
    if len(set(covs)) != len(covs):
        raise ValueError(f"`covariates` lists a name more than once: {format_ids(covs)}.")
    return covs


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _make_terms(frame: pd.DataFrame, covs: list[Any], *, standardize: bool) -> list[_Term]:
    terms = []
    for c in covs:
        s = frame[c]
        miss = s.isna().to_numpy()
        if miss.any():
            raise ValueError(
                f"Covariate {c!r} is missing for respondent ids {format_ids(list(frame.index[miss]))}. "
                "Fix: fill in the values, or subset the data to complete cases (data.subset(mask))."
            )
        if _is_categorical(s):
            if isinstance(s.dtype, pd.CategoricalDtype):
                levels = tuple(lv for lv in s.cat.categories if (s == lv).any())
            else:
                levels = tuple(sorted(s.unique(), key=lambda v: (str(type(v)), v)))
            if len(levels) < 2:
                raise ValueError(f"Covariate {c!r} is constant (only level {levels[0]!r}). Fix: drop it.")
            terms.append(_Term(str(c), "categorical", tuple(f"{c}[{lv}]" for lv in levels[1:]), levels))
        else:
            x = s.to_numpy(dtype=float)
            sd = float(x.std())
            if not sd > 0:
                raise ValueError(f"Covariate {c!r} is constant (value {x[0]!r}). Fix: drop it.")
            terms.append(_Term(str(c), "numeric", (str(c),), (), float(x.mean()) if standardize else 0.0,
                               sd if standardize else 1.0))
    return terms


def _check_rank(X: np.ndarray, names: list[str]) -> None:
    """Raise if a model-matrix column is a linear combination of earlier ones (or of the intercept)."""
    if np.linalg.matrix_rank(X) == X.shape[1]:
        return
    bad = [names[k] for k in range(1, X.shape[1]) if np.linalg.matrix_rank(X[:, : k + 1]) <= k]
    raise ValueError(
        f"The covariates are collinear: column(s) {format_ids(bad)} are linear combinations of earlier columns "
        "(e.g. a recode of another covariate, or a level present only together with another). "
        "Fix: drop one of the redundant covariates."
    )


# ---------------------------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------------------------
@records_data
def fit_regression(
    data: Rankings | PairedComparisons,
    covariates: str | Sequence[Any] | None = None,
    *,
    npseudo: float = 0.5,
    ties: str | None = "davidson",
    model: str | None = None,
    standardize: bool = True,
    max_iter: int = 100,
    tol: float = 1e-10,
    item_covariates: Any = None,
    vcov: str | None = None,
    cluster: Any = None,
    strata: Any = None,
    small_sample: bool = False,
    min_cell_size: int = 10,
) -> WorthRegressionResult:
    """Regress item log-worths on respondent covariates (Plackett-Luce with ties, or Bradley-Terry for pairs).

    Parameters
    ----------
    data : Rankings or PairedComparisons
        Must carry the covariates (``data.covariates``) when any are requested.
    covariates : str, list of str or None, default None
        Covariate names. None or ``[]`` fits the intercept-only model, which equals the pooled fit
        (:func:`~survey_weights.models.plackett_luce.fit_plackett_luce` with the same `npseudo`). Non-numeric
        (or boolean) columns are dummy coded with the first level as reference (the category order of a
        ``Categorical``, else sorted); numeric columns enter linearly.
    npseudo : float, default 0.5
        Pseudo-comparisons of each item against a ghost item, placed at the *reference respondent* (intercept
        only): they keep the intercepts finite and shrink them slightly; covariate effects are not penalised.
    ties : {"davidson", "half", None}, default "davidson"
        Tie handling for PairedComparisons (ignored for Rankings, whose ties always follow Davidson-Luce).
    model : {"maxdiff", "sequential", "marginal"}, optional
        Best-worst tasks (:meth:`Rankings.from_best_worst`, covariates from its ``covariates=``) are fitted by
        this best-worst model of :func:`~survey_weights.fit_best_worst` (default "maxdiff") with the log-worths
        ``x_i' beta_j``; with `item_covariates` the pair (best b, worst w) gains ``gamma (u_ib - u_iw)``. For
        other data it must be None.
    standardize : bool, default True
        Centre and scale numeric covariates (coefficients per standard deviation; intercept at the mean).
    max_iter, tol : int, float
        Newton iterations and step tolerance.
    item_covariates : mapping name -> DataFrame, optional
        Respondent x item covariates with one common coefficient each (e.g. whether the respondent owns the
        item: ``{"own": frame}`` with one row per respondent id and one column per item): the log-worth of item
        j for respondent i gains ``gamma * u_ij``. Coefficients in ``result.effects``.
    vcov, cluster, strata, small_sample
        Model-based or design-based (sandwich) covariance, as in
        :func:`~survey_weights.models.plackett_luce.fit_plackett_luce` (default ``"robust"`` with sampling
        weights). Covariate tests then are Wald tests with that covariance (:meth:`WorthRegressionResult.wald_test`).
    min_cell_size : int, default 10
        Covariate cells with fewer respondents (heads with a positive frequency weight) are left out of the
        result's ``weights`` and ``profiles()`` (:attr:`WorthRegressionResult.min_cell_size`).

    Returns
    -------
    WorthRegressionResult
        ``coef``/``se`` (items x terms, zero-sum over items), ``tie_params``, ``loglik``, ``lr_test()``,
        ``predict_weights()``, ``weights`` (of the covariate cells), ``to_frame()``, ``summary()``, ``plot()``,
        ``profiles()``.

    Raises
    ------
    ValueError
        Unknown, missing-valued or constant covariates (naming the covariate and respondent ids).

    Notes
    -----
    Respondent i's log-worth of item j is ``x_i' beta_j``; the model is identified by letting only
    ``n_items - 1`` items carry free slopes and (with ``npseudo = 0``) intercepts, and is *reported* with
    zero-sum constraints over items for every term. With one categorical covariate and ``npseudo = 0`` the model
    is saturated and reproduces separate per-group fits' log-worths (tie parameters are shared, however).
    """
    bw = getattr(data, "best_worst", None) is not None
    if bw:
        model = check_option("maxdiff" if model is None else model, "model", BEST_WORST_MODELS)
    elif model is not None:
        raise ValueError("`model` applies to best-worst data (Rankings.from_best_worst) only. Fix: drop it.")
    check_scalar(npseudo, "npseudo", min_val=0.0)
    check_scalar(max_iter, "max_iter", kind=int, min_val=1)
    check_scalar(tol, "tol", min_val=0.0, include_min=False)
    min_cell_size = check_min_cell_size(min_cell_size)
    covs = _check_covariates(data, covariates)
    if not isinstance(data, (Rankings, PairedComparisons)):
        raise TypeError(f"`data` must be Rankings or PairedComparisons. Got {type(data).__name__} instead.")
    terms = _make_terms(data.covariates, covs, standardize=standardize) if covs else []
    frame = data.covariates if data.covariates is not None else pd.DataFrame(index=data.respondent_ids)
    X = _model_matrix(frame, terms)
    names = ["(Intercept)"] + [c for t in terms for c in t.columns]
    _check_rank(X, names)
    J, q = data.n_items, X.shape[1]
    spec = resolve_vcov(data, vcov, cluster, strata, small_sample)
    U, u_names = _item_covariates(data, item_covariates)
    if bw:
        design = ChoiceDesign.from_best_worst(data, model=model, npseudo=float(npseudo), covariates=X,
                                              respondent_item_covariates=U, extra_names=tuple(u_names))
    else:
        design = ChoiceDesign.from_data(data, npseudo=float(npseudo), ties=ties, covariates=X,
                                        respondent_item_covariates=U, extra_names=tuple(u_names))
    free = design.free(0)
    with single_thread_blas(True):  # threaded BLAS on tall-skinny products is pathological on a loaded box
        opt = optimize(design, method="newton", start=None, max_iter=max_iter, tol=tol, ref=0)
        theta = opt.theta
        ll = design.loglik(theta, pseudo=False)
        keep = free.copy()
        keep[0] = False  # item 0's intercept: the reference of the data information (R's PlackettLuce)
        pH = design.penalty(theta, 2)[2] if npseudo > 0 else None
        V, _ = covariance(opt.hess, keep, pseudo_H=pH, penal_keep=free)
        if spec.kind != "model":  # the sandwich A^-1 B A^-1 (models._robust)
            V = V @ score_meat(design.scores(theta, weighted=False), spec) @ V
    ok, n_iter = opt.converged, opt.n_iter
    if not ok:
        warnings.warn(f"The regression fit did not converge in {n_iter} Newton iterations (max_iter={max_iter}); "
                      "estimates may be inaccurate (often a covariate level in which an item is never or always "
                      "chosen). Fix: merge sparse levels, drop the covariate, or raise `max_iter`.",
                      ConvergenceWarning, stacklevel=2)
    nb = J * q
    G = np.kron(np.eye(J) - 1.0 / J, np.eye(q))
    B = (G @ theta[:nb]).reshape(J, q)
    Vb = G @ V[:nb, :nb] @ G.T
    items = list(data.items)
    coef = pd.DataFrame(B, index=pd.Index(items, name="item"), columns=names)
    se = pd.DataFrame(np.sqrt(np.clip(np.diag(Vb), 0, None)).reshape(J, q), index=coef.index, columns=names)
    mi = pd.MultiIndex.from_product([items, names], names=["item", "term"])
    k = len(u_names)
    tie = pd.Series(np.exp(theta[nb + k:]), index=pd.Index(design.tie_orders, name="tie_order"), name="delta")
    eff = pd.Series(theta[nb:nb + k], index=pd.Index(u_names, name="effect"), name="estimate", dtype=float)
    eff_se = pd.Series(np.sqrt(np.clip(np.diag(V)[nb:nb + k], 0, None)), index=eff.index, name="se")

    def refit(sub: list[Any]) -> WorthRegressionResult:
        return fit_regression(data, sub, npseudo=npseudo, ties=ties, model=model, standardize=standardize,
                              max_iter=max_iter, tol=tol, item_covariates=item_covariates, vcov=vcov,
                              cluster=cluster, strata=strata, small_sample=small_sample, min_cell_size=min_cell_size)

    return WorthRegressionResult(tuple(data.items), covs, names, coef, se, pd.DataFrame(Vb, index=mi, columns=mi),
                                 tie, ll, data.n_respondents, float(npseudo), ok, n_iter, terms, refit,
                                 min_cell_size=min_cell_size, effects=eff, effects_se=eff_se, vcov_type=spec.kind,
                                 sampling=design_summary(data))


def _item_covariates(data: Any, item_covariates: Any) -> tuple[np.ndarray | None, list[str]]:
    """The (respondents, items, k) array of respondent x item covariates, validated."""
    if item_covariates is None:
        return None, []
    if not isinstance(item_covariates, dict) or not item_covariates:
        raise TypeError("`item_covariates` must be a dict name -> DataFrame (one row per respondent id, one column "
                        f"per item). Got {type(item_covariates).__name__}.")
    out, names = [], []
    for name, frame in item_covariates.items():
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"`item_covariates[{name!r}]` must be a DataFrame. Got {type(frame).__name__}.")
        miss_items = [it for it in data.items if it not in frame.columns]
        miss_ids = [i for i in data.respondent_ids if i not in frame.index]
        if miss_items or miss_ids:
            raise ValueError(f"`item_covariates[{name!r}]` lacks item column(s) {miss_items[:5]} / respondent ids "
                             f"{format_ids(miss_ids)}. Fix: one row per respondent id, one column per item.")
        v = frame.loc[list(data.respondent_ids), list(data.items)].apply(pd.to_numeric, errors="coerce")
        if v.isna().any().any():
            raise ValueError(f"`item_covariates[{name!r}]` must be numbers for every respondent and item. Fix: fill "
                             "the missing or non-numeric cells.")
        out.append(v.to_numpy(dtype=float))
        names.append(str(name))
    return np.stack(out, axis=2), names
