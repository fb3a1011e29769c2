"""Best-worst scaling (MaxDiff, object case): :func:`fit_best_worst` on the engine's best-worst design."""

from __future__ import annotations

from typing import Any

from .._util.validation import check_option
from ..results import BestWorstResult
from ._best_worst import BEST_WORST_MODELS, BestWorstDesign
from ._robust import design_summary, resolve_vcov
from .plackett_luce import fit_design, resolve_prior

__all__ = ["fit_best_worst"]


def fit_best_worst(
    data: Any,
    *,
    model: str = "maxdiff",
    npseudo: float | None = None,
    normal: dict | None = None,
    vcov: str | None = None,
    cluster: Any = None,
    strata: Any = None,
    small_sample: bool = False,
    method: str = "newton",
    max_iter: int | None = None,
    tol: float = 1e-10,
    start: Any = None,
) -> BestWorstResult:
    """Fit a best-worst (MaxDiff) model to the tasks of :meth:`Rankings.from_best_worst`.

    With ``v`` the items' log-worths, ``S`` the items shown in a task, ``b`` the best and ``w`` the worst:

    * ``model="maxdiff"`` (default): ``P(b, w) = exp(v_b - v_w) / sum_{i != j in S} exp(v_i - v_j)``;
    * ``"sequential"``: best by a logit over ``S``, then worst by a logit over ``S`` without ``b`` with
      utilities ``-v``;
    * ``"marginal"``: best by a logit over ``S`` with ``v``, worst by an independent logit over ``S`` with ``-v``.

    These are ``support.BWS::bws.dataset(model = ...)`` fitted by ``survival::clogit`` (tested equal to those
    references, estimates within 1e-6). It runs on the engine's Newton optimiser and covariance routine, so the
    result works as a Plackett-Luce one: ``weights`` (``exp(v) / sum exp(v)``, the "shares of preference" of
    ``bws.sp``), ``se``, ``vcov`` / ``vcov(ref=...)``, ``coef(ref=...)``, ``summary()``, ``to_frame()``, ``plot()``
    and profiles (:func:`~survey_weights.derive_profile`).

    Parameters
    ----------
    data : Rankings
        Built by :meth:`~survey_weights.Rankings.from_best_worst`.
    model : {"maxdiff", "sequential", "marginal"}
    npseudo : float, optional
        Pseudo-comparisons against a ghost item (as in :func:`fit_plackett_luce`). Default 0: the
        maximum-likelihood estimate, which needs a strongly connected best-worst network (``ValueError`` naming
        the items otherwise, e.g. an item never chosen worst); use 0.5 for small subgroups.
    normal : dict, optional
        A normal prior on the log-worths (MAP), as in :func:`fit_plackett_luce`.
    vcov : {"model", "robust", "cluster"}, optional
        ``"robust"`` is the sandwich clustered by respondent (``clogit(..., cluster = respondent)``; no small
        sample factor unless ``small_sample=True``). Default ``"robust"`` with sampling weights, else
        ``"model"``.
    cluster, strata, small_sample
        As in :func:`fit_plackett_luce`.
    method : {"newton", "lbfgs"}, default "newton"
    max_iter, tol, start
        As in :func:`fit_plackett_luce` (``tol`` defaults to 1e-10 here).

    Returns
    -------
    BestWorstResult
        A :class:`~survey_weights.PlackettLuceResult` with ``model`` recorded and ``n_rankings`` = tasks.

    Examples
    --------
    >>> import pandas as pd
    >>> from survey_weights import Rankings
    >>> df = pd.DataFrame({"r": [1, 1, 2, 2], "t": [1, 2, 1, 2],
    ...                    "shown": [["a", "b", "c"], ["a", "b", "d"], ["b", "c", "d"], ["a", "c", "d"]],
    ...                    "best": ["a", "b", "b", "c"], "worst": ["c", "d", "d", "a"]})
    >>> bw = Rankings.from_best_worst(df, respondent="r", task="t", shown="shown", best="best", worst="worst")
    >>> fit = fit_best_worst(bw, npseudo=0.5)
    >>> round(float(fit.weights.sum()), 6), fit.model
    (1.0, 'maxdiff')
    """
    if getattr(data, "best_worst", None) is None:
        raise TypeError(f"`data` must be a Rankings built by Rankings.from_best_worst. Got {type(data).__name__}"
                        f"{' without best-worst tasks' if hasattr(data, 'best_worst') else ''}. Fix: "
                        "Rankings.from_best_worst(df, respondent=..., task=..., shown=..., best=..., worst=...).")
    check_option(model, "model", BEST_WORST_MODELS)
    check_option(method, "method", ("newton", "lbfgs"))
    spec = resolve_vcov(data, vcov, cluster, strata, small_sample)
    npseudo_, prior = resolve_prior(normal, 0.0 if npseudo is None else npseudo, tuple(data.items), method)
    design = BestWorstDesign.from_data(data, model=model, npseudo=npseudo_).with_prior(prior)
    return fit_design(design, method=method, max_iter=max_iter, tol=tol, start=start, vcov_spec=spec,
                      result_cls=BestWorstResult, data_hash=data.data_hash(), sampling=design_summary(data),
                      model=model)  # type: ignore[return-value]
