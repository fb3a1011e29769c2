"""Design-based variance: the sandwich ``A^-1 B A^-1`` for sampling-weighted (pseudo-likelihood) fits.

``A^-1`` is the engine's model-based covariance (:func:`._covariance.covariance`: the inverse data information
with one reference parameter fixed); ``B`` is the covariance of the weighted score totals of the clusters
(Binder 1983; Lumley & Scott 2017). Each respondent's score ``s_i`` (the gradient of its data log-likelihood) is
multiplied by its sampling weight ``w_i``; a frequency weight ``f_i`` counts ``f_i`` independent copies. With
clusters ``g`` (respondents by default, or a cluster column such as a recruitment site)
``B = sum_g u_g u_g'``, ``u_g = sum_{i in g} f_i w_i s_i`` (respondents as clusters: ``B = sum_i f_i (w_i s_i)
(w_i s_i)'``); with strata ``h`` the cluster totals are centred within their stratum and scaled by
``G_h / (G_h - 1)``. The small-sample factor ``G / (G - 1)`` (Stata's convention) is optional; survival's
``clogit(..., cluster=)`` uses none, and is the default here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["VCOV_TYPES", "VcovSpec", "design_summary", "resolve_vcov", "score_meat"]

VCOV_TYPES = ("model", "robust", "cluster")


@dataclass(frozen=True)
class VcovSpec:
    """How a fit's covariance is computed: ``kind`` in :data:`VCOV_TYPES`, cluster and stratum codes per
    respondent (or None), frequency and sampling weights per respondent, the small-sample factor."""

    kind: str
    cluster: np.ndarray | None
    strata: np.ndarray | None
    frequency: np.ndarray
    sampling: np.ndarray | None
    small_sample: bool = False

    @property
    def label(self) -> str:
        if self.kind == "model":
            return "model"
        s = "robust (sandwich, clustered by respondent)" if self.kind == "robust" else "cluster-robust (sandwich)"
        return s + (", stratified" if self.strata is not None else "") + (", G/(G-1)" if self.small_sample else "")


def _codes(values: Any, data: Any, what: str) -> np.ndarray:
    """Integer codes per respondent from a covariate column name or one value per respondent."""
    if isinstance(values, str):
        cov = data.covariates
        if cov is None or values not in cov.columns:
            avail = [] if cov is None else list(cov.columns)
            raise ValueError(f"`{what}` names column {values!r}, which is not a respondent covariate of the data "
                             f"(covariates: {avail[:12]}). Fix: build the data with covariates=[{values!r}, ...] "
                             "or pass one value per respondent.")
        v = cov[values]
    else:
        v = pd.Series(np.asarray(values, dtype=object).ravel())
        if len(v) != data.n_respondents:
            raise ValueError(f"`{what}` must have one value per respondent ({data.n_respondents}). Got {len(v)}.")
    if v.isna().any():
        raise ValueError(f"`{what}` is missing for {int(v.isna().sum())} respondent(s). Fix: fill it in.")
    return pd.factorize(v.to_numpy(dtype=object))[0].astype(np.int64)


def resolve_vcov(data: Any, vcov: str | None, cluster: Any = None, strata: Any = None,
                 small_sample: bool = False) -> VcovSpec:
    """Validate a fit's ``vcov`` options. Default: ``"robust"`` with sampling weights, else ``"model"``."""
    sw = getattr(data, "sampling_weights", None)
    if vcov is None:
        vcov = "cluster" if cluster is not None else ("robust" if sw is not None else "model")
    if vcov not in VCOV_TYPES:
        raise ValueError(f"Unknown `vcov` {vcov!r}. Choose one of {VCOV_TYPES} (default: 'robust' with sampling "
                         "weights, else 'model').")
    if vcov == "cluster" and cluster is None:
        raise ValueError("`vcov='cluster'` needs `cluster=` (a respondent covariate column, e.g. a recruitment "
                         "site, or one label per respondent).")
    if vcov != "cluster" and cluster is not None:
        raise ValueError(f"`cluster=` is given but vcov={vcov!r}. Fix: vcov='cluster'.")
    if vcov == "model" and strata is not None:
        raise ValueError("`strata=` needs a design-based variance: vcov='robust' or 'cluster'.")
    if vcov == "model" and sw is not None:
        import warnings

        from ..exceptions import SurveyWeightsWarning

        warnings.warn("vcov='model' with sampling weights treats them as frequencies: the standard errors shrink "
                      "with the weights' total and ignore their spread. Fix: vcov='robust' (the default).",
                      SurveyWeightsWarning, stacklevel=4)
    return VcovSpec(kind=vcov, cluster=None if cluster is None else _codes(cluster, data, "cluster"),
                    strata=None if strata is None else _codes(strata, data, "strata"),
                    frequency=np.asarray(data.respondent_weights, dtype=float),
                    sampling=None if sw is None else np.asarray(sw, dtype=float), small_sample=bool(small_sample))


def score_meat(scores: np.ndarray, spec: VcovSpec) -> np.ndarray:
    """``B`` from the unweighted per-respondent scores (N, p) (see the module docstring)."""
    f = spec.frequency
    U = scores if spec.sampling is None else scores * spec.sampling[:, None]
    if spec.kind == "robust":
        cl = np.arange(len(f))
        G = float(f.sum())
    else:
        cl = spec.cluster
        G = float(len(np.unique(cl[f > 0])))
    if spec.kind == "robust" and spec.strata is None:
        B = (U * f[:, None]).T @ U  # f_i independent copies of respondent i
    else:
        ug = np.zeros((int(cl.max()) + 1, U.shape[1]))
        np.add.at(ug, cl, U * f[:, None])
        if spec.strata is None:
            B = ug.T @ ug
        else:
            st = np.zeros(len(ug), dtype=np.int64)
            st[cl] = spec.strata
            B = np.zeros((U.shape[1], U.shape[1]))
            for h in np.unique(st):
                uh = ug[st == h]
                Gh = len(uh)
                if Gh < 2:
                    raise ValueError(f"Stratum {h} has a single cluster: its variance cannot be estimated. Fix: "
                                     "merge it with another stratum.")
                c = uh - uh.mean(axis=0)
                B += Gh / (Gh - 1.0) * (c.T @ c)
    if spec.small_sample and G > 1:
        B *= G / (G - 1.0)
    return B


def design_summary(data: Any) -> dict[str, float] | None:
    """Kish's effective sample size and design effect of the sampling weights (None without them):
    ``n_eff = (sum f w)^2 / sum f w^2`` over respondents (frequency weights f) and ``deff = n / n_eff``."""
    sw = getattr(data, "sampling_weights", None)
    if sw is None:
        return None
    f = np.asarray(data.respondent_weights, dtype=float)
    w = np.asarray(sw, dtype=float)
    n = float(f.sum())
    n_eff = float((f @ w) ** 2 / (f @ (w * w)))
    return {"n": n, "n_effective": n_eff, "design_effect": n / n_eff}
