"""Plackett-Luce fits with ties of any order (Davidson-Luce; Turner et al. 2020), sub-rankings and top-k."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._util.threads import single_thread_blas
from .._util.validation import check_option, check_scalar
from ..exceptions import (
    BoundaryWarning,
    ConvergenceWarning,
    DataRecodeWarning,
    DisconnectedNetworkWarning,
    DominantWeightsWarning,
)
from ..results import BradleyTerryResult, FitResult, PlackettLuceResult
from ._choice import ChoiceDesign
from ._covariance import make_result
from ._design import NormalPrior
from ._firth import fit_firth
from ._likelihood import BTDesign, PLDesign
from ._optim import check_connected, network_components, optimize
from ._robust import VcovSpec, design_summary, resolve_vcov, score_meat
from ._ties_exploded import EXPLODED_TIES, ExplodedDesign

__all__ = ["fit_plackett_luce", "fit_design", "n_effective"]

_METHODS = ("newton", "mm", "lbfgs")
#: The ``ties=`` readings of :func:`fit_plackett_luce`: Davidson-Luce tie parameters (default), or ties as an
#: unknown order (the exploded likelihoods of :mod:`._ties_exploded`).
TIES_METHODS = ("davidson", *EXPLODED_TIES)
_DEFAULT_ITER = {"newton": 100, "mm": 20000, "lbfgs": 20000}


def resolve_prior(normal: Any, npseudo: Any, items: tuple, method: str) -> tuple[float, NormalPrior | None]:
    """``(npseudo, prior)`` of a fit: the default npseudo is 0.5 without a prior and 0 with one (a normal prior
    replaces the pseudo-comparisons, as in PlackettLuce); both together must be asked for explicitly."""
    if normal is None:
        return (0.5 if npseudo is None else float(npseudo)), None
    if not isinstance(normal, dict) or set(normal) - {"mu", "Sigma"} or "Sigma" not in normal:
        raise TypeError("`normal` must be a dict with keys 'mu' (default 0) and 'Sigma' (a variance, variances or "
                        f"a covariance matrix of the log-worths), as PlackettLuce's normal = list(mu, Sigma). "
                        f"Got {normal!r}.")
    if method == "mm":
        raise ValueError("method='mm' cannot use a normal prior. Fix: use method='newton' (default) or 'lbfgs'.")
    return (0.0 if npseudo is None else float(npseudo)), NormalPrior(normal.get("mu", 0.0), normal["Sigma"],
                                                                      len(items))


def boundary_parameters(design: Any, opt: Any, *, rel_curvature: float = 1e-7, min_abs: float = 8.0) -> tuple:
    """Names of the parameters at a boundary of the parameter space: a free parameter whose estimate is far out
    (``|value| > min_abs`` on the log scale, log-worths centred) and whose curvature ``-H_jj`` has vanished
    next to the largest one (below ``rel_curvature`` times it): the objective is flat there because the
    parameter is running off to infinity, not because the data are few."""
    H = opt.hess
    if H is None:
        return ()
    n = design.n_items
    th = np.array(opt.theta, dtype=float)
    th[:n] -= th[:n].mean()
    curv = -np.diag(H)
    big = float(np.max(curv[np.isfinite(curv)], initial=0.0))
    if not big > 0:
        return ()
    free = design.free(0)
    names = design.param_names()
    if design.item_basis is not None:
        th = np.array(opt.theta, dtype=float)
    flag = free & (np.abs(th) > min_abs) & (curv < rel_curvature * big)
    return tuple(str(names[j]) for j in np.flatnonzero(flag))


def fit_bias_reduced(data: Any, cls: type, *, npseudo: Any, normal: Any, ties: str | None = "davidson",
                     max_iter: int | None, tol: float, start: Any, extra_ties: Any = "unset",
                     vcov_spec: VcovSpec | None = None) -> FitResult:
    """Firth's bias-reduced fit (``bias_reduction=True``) on the engine's general kernel (see ``models._firth``)."""
    if normal is not None:
        raise ValueError("`bias_reduction=True` cannot be combined with a `normal` prior (both are penalties on "
                         "the log-worths). Fix: choose one.")
    if npseudo not in (None, 0, 0.0):
        raise ValueError(f"`bias_reduction=True` replaces the pseudo-comparisons; got npseudo={npseudo!r}. "
                         "Fix: leave npseudo unset (or 0).")
    refuse_if_disconnected(data)
    design = ChoiceDesign.from_data(data, npseudo=0.0, ties=ties)
    n_eff = check_design_weights(design, stacklevel=3, sampling=getattr(data, "sampling_weights", None) is not None)
    with single_thread_blas(True):
        opt = fit_firth(design, start=start, max_iter=100 if max_iter is None else int(max_iter), tol=tol)
    if not opt.converged:
        warnings.warn(f"The bias-reduced fit did not converge in {opt.n_iter} iterations (tol={tol}). "
                      "Fix: raise `max_iter`.", ConvergenceWarning, stacklevel=3)
    with single_thread_blas(True):
        extra = {"n_effective": n_eff} if extra_ties == "unset" else {"ties": extra_ties, "n_effective": n_eff}
        extra["sampling"] = design_summary(data)
        meat = _meat(design, opt.theta, vcov_spec, extra)
        return make_result(cls, design, opt, method="firth", ref=0, data_hash=data.data_hash(), meat=meat, **extra)


def item_basis_matrix(item_covariates: Any, items: tuple) -> tuple[np.ndarray, list]:
    """The (n_items, r) matrix of item-level predictors for structured worths, validated."""
    import pandas as pd

    if not isinstance(item_covariates, pd.DataFrame):
        raise TypeError("`item_covariates` must be a pandas DataFrame indexed by item, one numeric column per "
                        f"predictor. Got {type(item_covariates).__name__}.")
    missing = [it for it in items if it not in item_covariates.index]
    if missing:
        raise ValueError(f"`item_covariates` has no row for item(s) {missing[:5]}. Fix: index it by the items "
                         f"({list(items)[:5]}...).")
    X = item_covariates.loc[list(items)].apply(pd.to_numeric, errors="coerce")
    bad = X.columns[X.isna().any() | ~np.isfinite(X.to_numpy(dtype=float)).all(axis=0)].tolist()
    if bad:
        raise ValueError(f"`item_covariates` column(s) {bad} must be finite numbers for every item. Fix: fill or drop.")
    B = X.to_numpy(dtype=float)
    r = B.shape[1]
    if r == 0 or np.linalg.matrix_rank(B) < r:
        raise ValueError("`item_covariates` must have linearly independent columns (at least one). Fix: drop the "
                         "redundant predictors.")
    if np.linalg.matrix_rank(np.column_stack([np.ones(len(B)), B])) == r:
        raise ValueError("`item_covariates` span a constant (e.g. an intercept column, or dummies of every "
                         "category): log-worths are only defined up to a constant, so it is not identified. Fix: "
                         "drop the intercept or one dummy.")
    if r >= len(items):
        raise ValueError(f"`item_covariates` has {r} predictor(s) for {len(items)} items; at most n_items - 1 are "
                         "identified. Fix: use fewer predictors (or plain worths).")
    return B, [str(c) for c in X.columns]


def fit_choice_design(data: Any, cls: type, *, npseudo: float, prior: Any, stage_ties: str | None, method: str,
                      max_iter: Any, tol: float, start: Any, comparison_covariates: bool = False,
                      item_covariates: Any = None, **extra: Any) -> FitResult:
    """A fit on the engine's general kernel: comparison-level covariates or structured (item-level predictor)
    worths, which the specialised kernels do not carry."""
    basis, bnames = (None, []) if item_covariates is None else item_basis_matrix(item_covariates, tuple(data.items))
    if basis is not None and npseudo > 0:
        raise ValueError("Structured worths (`item_covariates`) take no pseudo-comparisons. Fix: leave npseudo "
                         "unset (or 0).")
    names = list(data.comparison_covariates.columns) if comparison_covariates else []
    design = ChoiceDesign.from_data(data, npseudo=npseudo, ties=stage_ties or "davidson",
                                    comparison_covariates=comparison_covariates, item_basis=basis,
                                    extra_names=tuple(str(c) for c in names)).with_prior(prior)
    if basis is not None:
        design.basis_names = tuple(bnames)
    if not design.has_penalty and basis is None:  # the MLE needs a strongly connected network
        plain = PLDesign.from_rankings(data, npseudo=0) if hasattr(data, "_ptr") else \
            BTDesign.from_paired(data, npseudo=0, ties=stage_ties)
        check_connected(plain, plain.items)
    return fit_design(design, method=method, max_iter=max_iter, tol=tol, start=start, check=False,
                      result_cls=cls, data_hash=data.data_hash(), sampling=design_summary(data), **extra)


#: A fit warns (:class:`~survey_weights.exceptions.DominantWeightsWarning`) when its effective number of
#: respondents is below this share of the respondents with positive weight (a Kish design effect above 2).
DOMINANT_WEIGHTS_RATIO = 0.5


def n_effective(weights: Any) -> float:
    """Kish's effective number of respondents, ``(sum w)^2 / sum w^2`` (0 when every weight is 0).

    Examples
    --------
    >>> n_effective([1, 1, 1, 1]), round(n_effective([1e6] + [1] * 39), 4)
    (4.0, 1.0001)
    """
    w = np.asarray(weights, dtype=float)
    ss = float(np.dot(w, w))
    return float(w.sum()) ** 2 / ss if ss > 0 else 0.0


def check_design_weights(design: Any, *, stacklevel: int, sampling: bool = False) -> float:
    """Refuse a design whose frequency weights sum to 0; warn when a few heavy ones dominate it.

    Returns its effective number of respondents (:func:`n_effective`), recorded as the result's ``n_effective``.
    With sampling weights (``sampling=True``) the design's weights include them: their spread is reported as the
    Kish design effect (``result.design_effect``), not warned about.
    """
    w = np.asarray(design.respondent_weights, dtype=float)
    if not design.total_weight() > 0:
        what = (f"frequency weights of all {len(w)} respondents are 0" if not float(w.sum()) > 0 else
                "weights of all the data (comparison weights x respondent weights) are 0")
        raise ValueError(
            f"The {what}, so there is nothing to fit (the fit would 'converge' on the pseudo-comparisons alone "
            "and have no standard errors). Fix: give the respondents positive weights (the `weights=` column or "
            "Rankings.with_respondent_weights), or fit a subset whose weights are not all 0.")
    n_eff = n_effective(w)
    n_pos = int(np.count_nonzero(w > 0))
    if n_eff < DOMINANT_WEIGHTS_RATIO * n_pos and not sampling:
        warnings.warn(
            f"A few heavy frequency weights dominate this fit: its effective number of respondents (Kish, "
            f"(sum w)^2 / sum w^2) is {n_eff:.1f}, against {n_pos} respondents with positive weight; the largest "
            f"weight ({float(w.max()):.4g}) is {float(w.max() / w.sum()):.1%} of the total. Counts of respondents "
            "(the minimum cell size, 'respondents: n') overstate how many the fit rests on; the result's "
            "`n_effective` records the effective number. Fix: check the weights (cap or trim extreme ones); if "
            "each weight counts identical answers, the estimates are right and this warning can be ignored.",
            DominantWeightsWarning, stacklevel=stacklevel + 1)
    return n_eff


class _DataNetwork:
    """The comparison network of a data object (Rankings or PairedComparisons), as :func:`network_components`
    reads a design's: for fits that build no such design (Firth's)."""

    def __init__(self, data: Any) -> None:
        self.items = tuple(data.items)
        self.n_items = len(self.items)
        if hasattr(data, "_ptr"):
            self._arrays = {"ptr": np.asarray(data._ptr), "item": np.asarray(data._item),
                            "top_k": np.asarray(data._top_k)}
            if getattr(data, "_unranked_ptr", None) is not None:
                self._arrays["unranked_ptr"] = np.asarray(data._unranked_ptr)
                self._arrays["unranked_item"] = np.asarray(data._unranked_item)
        else:
            self._pairs = (np.asarray(data._a, dtype=np.int64), np.asarray(data._b, dtype=np.int64))

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        return self._pairs


def _show(comps: list[list[Any]]) -> str:
    return ("; ".join("{" + ", ".join(map(str, c[:8])) + (", ..." if len(c) > 8 else "") + "}" for c in comps[:6])
            + ("; ..." if len(comps) > 6 else ""))


def refuse_if_disconnected(data: Any) -> None:
    """Firth's fit has no estimate on a disconnected network (its information is singular for every theta)."""
    comps = network_components(_DataNetwork(data), tuple(data.items))
    if len(comps) > 1:
        raise ValueError(
            f"The comparison network falls apart into {len(comps)} components that no comparison links: "
            f"{_show(comps)}. Shifting one component's log-worths leaves the likelihood unchanged, so the "
            "bias-reduced (Firth) estimate does not exist. Fix: fit the items of each component separately, or use "
            "npseudo > 0 (bias_reduction=False) and read the cross-component weights as arbitrary.")


def warn_if_disconnected(design: Any, *, stacklevel: int) -> None:
    """With pseudo-comparisons or a prior, warn naming the components when the comparison network falls apart
    (the fit exists, but how the components compare is the penalty's, not the data's)."""
    comps = network_components(design, tuple(design.items))
    if len(comps) <= 1:
        return
    penalties = []
    if design.npseudo > 0:
        penalties.append(f"the pseudo-comparisons (npseudo={design.npseudo:g})")
    if design.prior is not None:
        penalties.append("the normal prior")
    warnings.warn(
        f"The comparison network falls apart into {len(comps)} components that no comparison links: "
        f"{_show(comps)}. The weights within a component come from the data, but how the "
        f"components compare (each one's share of the weight, every contrast across them) comes from "
        f"{' and '.join(penalties)} alone: those numbers are arbitrary and their standard errors huge. Fix: fit the "
        "items of each component separately, drop the items of the smaller components (an item nobody answered "
        "is a component of its own), or collect answers that compare them.",
        DisconnectedNetworkWarning, stacklevel=stacklevel + 1)


def _check_common(npseudo: Any, method: Any, max_iter: Any, tol: Any) -> int:
    if npseudo is not None:
        check_scalar(npseudo, "npseudo", min_val=0.0)
    check_option(method, "method", _METHODS)
    if max_iter is None:
        max_iter = _DEFAULT_ITER[method]
    check_scalar(max_iter, "max_iter", kind=(int, np.integer), min_val=1)
    check_scalar(tol, "tol", min_val=0.0, include_min=False)
    return int(max_iter)


def fit_design(design: PLDesign | BTDesign, *, method: str = "newton", max_iter: int | None = None,
               tol: float = 1e-8, start: Any = None, ref: int = 0, check: bool = True,
               vcov_spec: VcovSpec | None = None, **extra: Any) -> FitResult:
    """Fit a prepared design (fast path for refits: bootstrap, mixtures, subgroup / tree nodes).

    Parameters
    ----------
    design : PLDesign or BTDesign
        From :mod:`survey_weights.models._likelihood`; reweight it with ``design.reweight(w)``.
    method, max_iter, tol
        As in :func:`fit_plackett_luce`.
    start : array-like, optional
        Full ``theta`` (raw log-worths, then log tie parameters), e.g. a previous ``result.theta``.
    ref : int, default 0
        Index of the item fixed at log-worth 0 while optimising when ``npseudo == 0``.
    check : bool, default True
        Check the comparison network: with ``npseudo == 0`` it must be strongly connected (``ValueError``
        naming the items); with pseudo-comparisons or a prior a disconnected one issues a
        :class:`~survey_weights.exceptions.DisconnectedNetworkWarning` naming its components. Also warns
        (:class:`~survey_weights.exceptions.DominantWeightsWarning`) when a few heavy frequency weights
        dominate. Frequency weights that sum to 0 raise ``ValueError`` either way.
    vcov_spec : VcovSpec, optional
        Design-based covariance (``models._robust.resolve_vcov``); default model-based.

    Returns
    -------
    PlackettLuceResult or BradleyTerryResult
    """
    max_iter = _check_common(design.npseudo, method, max_iter, tol)
    if check:
        extra.setdefault("n_effective", check_design_weights(design, stacklevel=3,
                                                             sampling=extra.get("sampling") is not None))
        if design.has_penalty:
            warn_if_disconnected(design, stacklevel=3)
        else:
            check_connected(design, design.items)
    else:
        extra.setdefault("n_effective", n_effective(design.respondent_weights))
        if not design.total_weight() > 0:
            check_design_weights(design, stacklevel=3)  # raises
    with single_thread_blas(True):  # small dense linear algebra: threads only add contention
        opt = optimize(design, method=method, start=None if start is None else np.asarray(start, float),
                       max_iter=max_iter, tol=tol, ref=ref)
    if not opt.converged:
        warnings.warn(
            f"The {method} fit did not converge in {opt.n_iter} iterations (max_iter={max_iter}, tol={tol}); "
            f"estimates may be inaccurate. Fix: raise `max_iter`, or use npseudo > 0 for weakly connected data.",
            ConvergenceWarning, stacklevel=3)
    cls = extra.pop("result_cls", None) or (BradleyTerryResult if isinstance(design, BTDesign) else PlackettLuceResult)
    boundary = boundary_parameters(design, opt)
    if boundary:
        extra["boundary"] = boundary
        warnings.warn(
            f"{len(boundary)} estimate(s) are on the boundary of the parameter space: {', '.join(boundary)} "
            "run(s) off to +-infinity (the objective keeps rising along it, with no curvature left), so the "
            "reported value is where the optimiser stopped and its standard error is meaningless. A tie "
            "parameter does this when (almost) every stage of that order is a tie; a log-worth when an item "
            "(almost) always or never wins. Fix: use npseudo > 0 (the default 0.5) or a normal prior, or merge "
            "the categories that cause it.", BoundaryWarning, stacklevel=3)
    if design.prior is not None:
        extra["normal"] = {"mu": design.prior.mu, "Sigma": design.prior.sigma}
    with single_thread_blas(True):
        meat = _meat(design, opt.theta, vcov_spec, extra)
        return make_result(cls, design, opt, method=method, ref=ref, meat=meat, **extra)


def _meat(design: Any, theta: np.ndarray, spec: VcovSpec | None, extra: dict) -> np.ndarray | None:
    """The sandwich's meat for a design-based covariance (None: model-based); records the variance type."""
    if spec is None or spec.kind == "model":
        return None
    extra["vcov_type"] = spec.kind
    return score_meat(np.asarray(design.scores(theta, weighted=False)), spec)


def warn_best_worst_as_ranking(data: Any, *, stacklevel: int) -> None:
    """Warn when best-worst tasks of more than 3 items are fitted as the weak orderings ``best > (rest tied) >
    worst``: a Plackett-Luce (Davidson-Luce) likelihood of that ordering is not a best-worst model (it is one only
    for 3 items, where the middle is a single item)."""
    bw = getattr(data, "best_worst", None)
    if bw is None:
        return
    big = int(np.count_nonzero(bw.sizes > 3))
    if big:
        warnings.warn(
            f"{big} of {bw.n_tasks} best-worst tasks show more than 3 items: as a ranking they are the weak ordering "
            "best > (the others, tied) > worst, whose Plackett-Luce likelihood treats the unchosen middle items as "
            "a tie group, which is not what a best-worst answer says (the reading is exact only for 3 items). "
            "Fix: fit_best_worst(data, model='maxdiff' | 'sequential' | 'marginal'); fit_by_group, bootstrap, "
            "fit_regression and fit_tree use it for best-worst data, fit_mixture does not yet.",
            DataRecodeWarning, stacklevel=stacklevel + 1)


def fit_plackett_luce(
    rankings: Any,
    *,
    npseudo: float | None = None,
    normal: dict | None = None,
    bias_reduction: bool = False,
    item_covariates: Any = None,
    ties: str = "davidson",
    vcov: str | None = None,
    cluster: Any = None,
    strata: Any = None,
    small_sample: bool = False,
    method: str = "newton",
    max_iter: int | None = None,
    tol: float = 1e-8,
    start: Any = None,
) -> PlackettLuceResult:
    """Fit a Plackett-Luce model with ties (Davidson-Luce), sub-rankings, top-k rankings and weights.

    A ranking ``C1 > C2 > ...`` (tie groups ``C_j``) is a sequence of choices: at stage j the choice set is
    ``A_j = C_j + C_{j+1} + ...`` (plus every unranked item for a top-k ranking, or the ranking's declared
    shown-but-unranked items, as from :meth:`~survey_weights.Rankings.from_choices`) and
    ``P(C_j | A_j) = f(C_j) / sum_{k in orders} sum_{S in A_j, |S| = k} f(S)`` with
    ``f(S) = delta_|S| (prod_{i in S} alpha_i)^(1/|S|)``, ``delta_1 = 1`` and ``orders`` the tie orders seen
    in the data (unseen intermediate orders have ``delta = 0``), as in R's PlackettLuce.  Each ranking counts
    with its respondent's frequency weight.

    Parameters
    ----------
    rankings : Rankings
        The data (:class:`survey_weights.Rankings`).
    npseudo : float, optional
        Pseudo-comparisons against a ghost item of log-worth 0: each item wins `npseudo` times and loses
        `npseudo` times, entered as ordinary two-item rankings (so with ties of order 2 in the data the tie
        parameter enters them, as in PlackettLuce).  They enter the fit and its standard errors but not the
        reported log-likelihood.  Default 0.5, or 0 with a `normal` prior.  ``npseudo=0`` gives the plain
        maximum-likelihood estimate and raises ``ValueError`` naming the items when the comparison network is
        not strongly connected.
    normal : dict, optional
        ``{"mu": mean, "Sigma": covariance}`` of a multivariate normal prior on the log-worths (``mu`` a number
        or one per item, default 0; ``Sigma`` a variance, one variance per item or a covariance matrix), as
        PlackettLuce's ``normal = list(mu, Sigma)``: the fit is the maximum a posteriori estimate and its
        standard errors come from the curvature of the log posterior.  choix's ``alpha`` is
        ``Sigma = 1 / (2 alpha)``.  Useful for small subgroups.
    bias_reduction : bool, default False
        Firth's (1993) bias-reduced estimate (as ``BradleyTerry2::BTm(br = TRUE)``): the maximum of the
        Jeffreys-penalised likelihood, finite even where an item never loses or never wins (a small subgroup);
        standard errors from the information at the estimate.  Replaces the pseudo-comparisons
        (``method="firth"`` in the result).
    item_covariates : pandas.DataFrame, optional
        Structured worths (item-level predictors, as BradleyTerry2's structured abilities and PlackettLuce's
        ``pladmm``): rows = items, numeric columns x; log-worth of item j is ``x_j' gamma``, with no free worth
        per item.  ``result.effects`` holds gamma (SEs in ``result.effects_se``); the log-worths and weights
        are the implied ``x_j' gamma``.  The columns must not span a constant.
    ties : {"davidson", "breslow", "efron", "exact_marginal", "discrete_exact"}, default "davidson"
        How a tie group is read. ``"davidson"``: the Davidson-Luce model above (tie parameters ``tie2, ...``).
        The others read a tie as an *unknown order* (rank-ordered logit, exploded by tie group: stage s chooses
        the group ``G_s`` from ``G_s + ... + G_K``; the last group contributes nothing) and have no tie
        parameters (``tie_params`` is empty): ``"exact_marginal"`` is the Plackett-Luce probability that the
        group comes first in *some* order, summed over its ``d!`` orders (Allison & Christakis 1994; Stata's
        ``rologit, ties(exactm)``; groups of at most 7 items before others); ``"efron"`` and ``"breslow"`` are
        survival's approximations of one order (add ``sum log(d!)`` to their log-likelihood to compare it with
        the exact one); ``"discrete_exact"`` is ``clogit(method="exact")``, a different model (the group
        chosen at once as a set). Pseudo-comparisons are then tie-free two-item rankings (default npseudo
        0.5 as for Davidson). Not with `bias_reduction` or `item_covariates`; ``method="mm"`` only on tie-free
        data.
    vcov : {"model", "robust", "cluster"}, optional
        ``"model"``: the inverse information; ``"robust"``: the sandwich clustered by respondent (each
        respondent's summed score is one cluster, so several rankings per respondent are handled);
        ``"cluster"``: clustered by `cluster`. Default ``"robust"`` when the data carry sampling weights, else
        ``"model"``. It reaches ``se``, quasi-SEs, the weights' intervals, ``summary()``, ``to_frame()``, profiles
        and the export.
    cluster, strata : respondent covariate name or one value per respondent, optional
        Clusters (e.g. a recruitment site; ``vcov="cluster"``) and strata of a design-based variance.
    small_sample : bool, default False
        Multiply the meat by ``G / (G - 1)`` (Stata's convention; survival's has none).
    method : {"newton", "mm", "lbfgs"}, default "newton"
        Damped Newton with a line search (default); Hunter's MM / iterative scaling (tie-free data only);
        or scipy's L-BFGS-B.  All maximise the same concave objective.
    max_iter : int, optional
        Iteration limit; default 100 for Newton, 20000 for MM and L-BFGS.
    tol : float, default 1e-8
        Newton/MM: largest absolute parameter change; L-BFGS: projected-gradient tolerance.
    start : array-like, optional
        Starting ``theta`` (raw log-worths in item order, then log tie parameters), e.g. ``result.theta``.

    Returns
    -------
    PlackettLuceResult
        Non-convergence issues a :class:`~survey_weights.exceptions.ConvergenceWarning` and sets
        ``converged=False``.

    Examples
    --------
    >>> from survey_weights import Rankings
    >>> r = Rankings.from_orderings([["a", ("b", "c")], ["b", "a", "c"], ["c", "a"]])
    >>> res = fit_plackett_luce(r)
    >>> round(float(res.weights.sum()), 6)
    1.0
    """
    _check_common(npseudo, method, max_iter, tol)
    for attr in ("_ptr", "_item", "_rank", "_top_k", "_resp", "items"):
        if not hasattr(rankings, attr):
            raise TypeError(
                f"`rankings` must be a survey_weights.Rankings. Got {type(rankings).__name__} instead. "
                f"Fix: build one with Rankings.from_orderings / from_wide / from_ratings."
            )
    check_option(ties, "ties", TIES_METHODS)
    warn_best_worst_as_ranking(rankings, stacklevel=3)
    spec = resolve_vcov(rankings, vcov, cluster, strata, small_sample)
    if ties != "davidson":
        if bias_reduction or item_covariates is not None:
            raise ValueError(f"ties={ties!r} cannot be combined with "
                             f"{'bias_reduction=True' if bias_reduction else 'item_covariates'}. Fix: use "
                             "ties='davidson' (the default) for those fits.")
        npseudo, prior = resolve_prior(normal, npseudo, tuple(rankings.items), method)
        design = ExplodedDesign.from_rankings(rankings, ties=ties, npseudo=npseudo).with_prior(prior)
        return fit_design(design, method=method, max_iter=max_iter, tol=tol, start=start, vcov_spec=spec,
                          data_hash=rankings.data_hash(), sampling=design_summary(rankings),
                          result_cls=PlackettLuceResult, ties=ties)  # type: ignore[return-value]
    if bias_reduction:
        return fit_bias_reduced(rankings, PlackettLuceResult, npseudo=npseudo, normal=normal,  # type: ignore
                                max_iter=max_iter, tol=tol, start=start, vcov_spec=spec)
    if item_covariates is not None:
        npseudo = 0.0 if npseudo is None else npseudo
    npseudo, prior = resolve_prior(normal, npseudo, tuple(rankings.items), method)
    if item_covariates is not None:
        return fit_choice_design(rankings, PlackettLuceResult, npseudo=npseudo, prior=prior, stage_ties="davidson",
                                 method=method, max_iter=max_iter, tol=tol, start=start,
                                 item_covariates=item_covariates, vcov_spec=spec)  # type: ignore[return-value]
    design = PLDesign.from_rankings(rankings, npseudo=npseudo).with_prior(prior)
    return fit_design(design, method=method, max_iter=max_iter, tol=tol, start=start, vcov_spec=spec,
                      data_hash=rankings.data_hash(), sampling=design_summary(rankings))  # type: ignore[return-value]
