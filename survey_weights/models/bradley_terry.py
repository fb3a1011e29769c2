"""Bradley-Terry fits for paired comparisons, with Davidson (1970) ties or ties as half wins."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._util.validation import check_option
from ..results import BradleyTerryResult
from ._likelihood import BTDesign
from ._robust import design_summary, resolve_vcov
from .plackett_luce import _check_common, fit_bias_reduced, fit_choice_design, fit_design, resolve_prior

__all__ = ["fit_bradley_terry"]


def fit_bradley_terry(
    paired: Any,
    *,
    ties: str | None = None,
    npseudo: float | None = None,
    normal: dict | None = None,
    bias_reduction: bool = False,
    comparison_covariates: bool | None = None,
    item_covariates: Any = None,
    vcov: str | None = None,
    cluster: Any = None,
    strata: Any = None,
    small_sample: bool = False,
    method: str = "newton",
    max_iter: int | None = None,
    tol: float = 1e-8,
    start: Any = None,
) -> BradleyTerryResult:
    """Fit a Bradley-Terry model to paired comparisons (vectorised; dense Hessian over items).

    ``P(a beats b) = alpha_a / (alpha_a + alpha_b + delta sqrt(alpha_a alpha_b))`` and
    ``P(tie) = delta sqrt(alpha_a alpha_b) / (...)`` (Davidson 1970; identical to a Plackett-Luce fit of the
    comparisons as 2-item rankings).  Each comparison counts ``count x respondent weight`` times.

    Parameters
    ----------
    paired : PairedComparisons
        The data (:class:`survey_weights.PairedComparisons`).
    ties : {None, "davidson", "half"}, default None
        How to treat tied comparisons.  ``None``: the data must have no ties (a ``ValueError`` says how
        many there are and what to pass).  ``"davidson"``: estimate a tie parameter ``tie2`` (delta).
        ``"half"``: a tie counts as half a win for each item (as in BradleyTerry2 analyses of CEMS).
    npseudo : float, optional
        Ghost-item pseudo-comparisons, as in :func:`fit_plackett_luce` (default 0.5, or 0 with `normal`); 0
        for the plain MLE (which requires a strongly connected comparison network).
    normal : dict, optional
        A normal prior on the log-worths, as in :func:`fit_plackett_luce`.
    bias_reduction : bool, default False
        Firth's bias-reduced estimate, as ``BradleyTerry2::BTm(br = TRUE)`` (see :func:`fit_plackett_luce`).
    comparison_covariates : bool, optional
        Use the data's comparison-level covariates (``PairedComparisons.from_long(..., comparison_covariates=)``:
        `item_a`'s side minus `item_b`'s, e.g. an order effect or BradleyTerry2's home advantage), one
        coefficient each in ``result.effects``. Default: when the data carry them.
    item_covariates : pandas.DataFrame, optional
        Structured worths from item-level predictors, as in :func:`fit_plackett_luce`.
    vcov, cluster, strata, small_sample
        Model-based or design-based (sandwich) covariance, as in :func:`fit_plackett_luce`.
    method : {"newton", "mm", "lbfgs"}, default "newton"
        As in :func:`fit_plackett_luce` ("mm" only without Davidson ties).
    max_iter, tol, start
        As in :func:`fit_plackett_luce`.

    Returns
    -------
    BradleyTerryResult
    """
    _check_common(npseudo, method, max_iter, tol)
    check_option(ties, "ties", (None, "davidson", "half"))
    for attr in ("_a", "_b", "_outcome", "_w", "_resp", "items"):
        if not hasattr(paired, attr):
            raise TypeError(
                f"`paired` must be a survey_weights.PairedComparisons. Got {type(paired).__name__} instead. "
                f"Fix: build one with PairedComparisons.from_long or Rankings.to_pairwise()."
            )
    n_ties = int(np.sum(np.asarray(paired._outcome) == 0))
    if ties is None and n_ties:
        raise ValueError(
            f"`ties` is None but the data contain {n_ties} tied comparisons. Fix: pass ties='davidson' to "
            f"estimate a tie parameter, or ties='half' to count each tie as half a win for both items."
        )
    spec = resolve_vcov(paired, vcov, cluster, strata, small_sample)
    if bias_reduction:
        return fit_bias_reduced(paired, BradleyTerryResult, npseudo=npseudo, normal=normal,  # type: ignore
                                ties=ties, max_iter=max_iter, tol=tol, start=start, extra_ties=ties, vcov_spec=spec)
    has_cc = getattr(paired, "comparison_covariates", None) is not None
    if comparison_covariates and not has_cc:
        raise ValueError("`comparison_covariates=True` but the data carry none. Fix: build the data with "
                         "PairedComparisons.from_long(..., comparison_covariates=[...]).")
    use_cc = has_cc if comparison_covariates is None else bool(comparison_covariates)
    if item_covariates is not None:
        npseudo = 0.0 if npseudo is None else npseudo
    npseudo, prior = resolve_prior(normal, npseudo, tuple(paired.items), method)
    if use_cc or item_covariates is not None:
        return fit_choice_design(paired, BradleyTerryResult, npseudo=npseudo, prior=prior, stage_ties=ties,
                                 method=method, max_iter=max_iter, tol=tol, start=start, comparison_covariates=use_cc,
                                 item_covariates=item_covariates, ties=ties, vcov_spec=spec)  # type: ignore
    design = BTDesign.from_paired(paired, npseudo=npseudo, ties=ties).with_prior(prior)
    return fit_design(  # type: ignore[return-value]
        design, method=method, max_iter=max_iter, tol=tol, start=start, data_hash=paired.data_hash(), ties=ties,
        vcov_spec=spec, sampling=design_summary(paired))
