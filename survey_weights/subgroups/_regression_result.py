"""The result of :func:`~survey_weights.subgroups.regression.fit_regression` (:class:`WorthRegressionResult`) and
the covariate coding its predictions share with the fit (split from ``regression.py``, which fits the model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._util.validation import format_ids
from ._lrtest import LRTestResult, lr_test

__all__ = ["WorthRegressionResult"]


# ---------------------------------------------------------------------------------------------------------------------
# covariate coding
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Term:
    name: str  # covariate (column) name
    kind: str  # "categorical" or "numeric"
    columns: tuple[str, ...]
    levels: tuple[Any, ...] = ()
    center: float = 0.0
    scale: float = 1.0


def _model_matrix(frame: pd.DataFrame, terms: list[_Term]) -> np.ndarray:
    cols = [np.ones(len(frame))]
    for t in terms:
        if t.name not in frame.columns:
            raise ValueError(f"Column {t.name!r} (a covariate of the fit) is missing from the frame.")
        s = frame[t.name]
        miss = s.isna().to_numpy()
        if miss.any():
            raise ValueError(f"Covariate {t.name!r} is missing for rows {format_ids(list(frame.index[miss]))}.")
        if t.kind == "categorical":
            bad = ~s.isin(t.levels).to_numpy()
            if bad.any():
                raise ValueError(
                    f"Covariate {t.name!r} has level(s) {format_ids(list(pd.unique(s[bad])))} not seen in the fit "
                    f"(rows {format_ids(list(frame.index[bad]))}). Known levels: {format_ids(list(t.levels))}."
                )
            cols.extend((s == lv).to_numpy(dtype=float) for lv in t.levels[1:])
        else:
            cols.append((pd.to_numeric(s).to_numpy(dtype=float) - t.center) / t.scale)
    return np.column_stack(cols)


# ---------------------------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class WorthRegressionResult:
    """Result of :func:`fit_regression`.

    Attributes
    ----------
    items : tuple
        Item labels.
    covariates : list
        Covariate names in the model.
    terms : list of str
        Model-matrix columns: ``"(Intercept)"``, ``"col[level]"`` dummies, numeric columns.
    coef : pandas.DataFrame
        Items x terms. Zero-sum (over items) log-worth effects; the intercept column is the log-worth of the
        reference respondent (first level of every categorical covariate, numeric covariates at their mean when
        standardised, else at 0).
    se : pandas.DataFrame
        Standard errors of ``coef`` (same shape).
    vcov : pandas.DataFrame
        Covariance of the stacked zero-sum coefficients (index: MultiIndex (item, term)).
    tie_params : pandas.Series
        Davidson-Luce tie parameters ``delta_k`` (index: tie order), shared by all respondents.
    loglik : float
        Data log-likelihood at the estimate (pseudo data excluded).
    n_respondents : int
    npseudo : float
    converged : bool
    n_iter : int
    """

    items: tuple
    covariates: list
    terms: list
    coef: pd.DataFrame
    se: pd.DataFrame
    vcov: pd.DataFrame
    tie_params: pd.Series
    loglik: float
    n_respondents: int
    npseudo: float
    converged: bool
    n_iter: int
    _spec: list = field(repr=False, default_factory=list)
    _refit: Any = field(repr=False, default=None)

    @property
    def df_model(self) -> int:
        """Number of identifiable parameters: ``(n_items - 1) * n_terms + n_tie_params``."""
        return (len(self.items) - 1) * len(self.terms) + len(self.tie_params)

    def to_frame(self, *, level: float = 0.95) -> pd.DataFrame:
        """Coefficient table.

        Returns
        -------
        pandas.DataFrame
            One row per (item, term); columns ``item``, ``term``, ``estimate``, ``se``, ``z``, ``pvalue``,
            ``ci_low``, ``ci_high`` (Wald interval at `level`).
        """
        zq = stats.norm.ppf(0.5 + level / 2)
        est = self.coef.stack()
        se = self.se.stack()
        out = pd.DataFrame({"estimate": est, "se": se})
        out["z"] = out["estimate"] / out["se"]
        out["pvalue"] = 2 * stats.norm.sf(np.abs(out["z"]))
        out["ci_low"] = out["estimate"] - zq * out["se"]
        out["ci_high"] = out["estimate"] + zq * out["se"]
        out.index.names = ["item", "term"]
        return out.reset_index()

    def lr_test(self, covariate: Any) -> LRTestResult:
        """Likelihood-ratio test of one covariate: refit without it (same respondents, same `npseudo`).

        Returns
        -------
        LRTestResult
            ``statistic = 2 (loglik - loglik_without)``, ``df = (n_items - 1) x`` its number of columns.
        """
        if covariate not in self.covariates:
            raise ValueError(f"`covariate` {covariate!r} is not in the model. Choose one of "
                             f"{format_ids(self.covariates, limit=20)}.")
        reduced = self._refit([c for c in self.covariates if c != covariate])
        return lr_test(self.loglik, reduced.loglik, self.df_model - reduced.df_model,
                   f"no effect of {covariate!r} on the worths")

    def lr_tests(self) -> pd.DataFrame:
        """:meth:`lr_test` for every covariate.

        Returns
        -------
        pandas.DataFrame
            Index: covariate; columns ``statistic``, ``df``, ``pvalue``.
        """
        rows = {c: self.lr_test(c) for c in self.covariates}
        return pd.DataFrame({"statistic": [r.statistic for r in rows.values()],
                             "df": [r.df for r in rows.values()],
                             "pvalue": [r.pvalue for r in rows.values()]},
                            index=pd.Index(list(rows), name="covariate"))

    def predict_log_worth(self, new: pd.DataFrame) -> pd.DataFrame:
        """Zero-sum log-worths of new respondents (rows of `new`, which must hold the covariate columns).

        Returns
        -------
        pandas.DataFrame
            Rows: `new`'s index; columns: items.
        """
        X = _model_matrix(new, self._spec)
        return pd.DataFrame(X @ self.coef.to_numpy().T, index=new.index, columns=list(self.items))

    def predict_weights(self, new: pd.DataFrame) -> pd.DataFrame:
        """Weights (worths summing to 1 per row) of new respondents.

        Returns
        -------
        pandas.DataFrame
            Rows: `new`'s index; columns: items; each row sums to 1.
        """
        lw = self.predict_log_worth(new)
        e = np.exp(lw.to_numpy() - lw.to_numpy().max(axis=1, keepdims=True))
        return pd.DataFrame(e / e.sum(axis=1, keepdims=True), index=new.index, columns=lw.columns)

    def summary(self) -> str:
        """Printable summary: fit statistics and the coefficient table."""
        head = (f"Worth regression: {len(self.items)} items, {self.n_respondents} respondents, covariates "
                f"{self.covariates or 'none'}\nlog-likelihood {self.loglik:.3f}, {self.df_model} parameters, "
                f"npseudo={self.npseudo}, converged={self.converged} ({self.n_iter} iterations)\n"
                f"tie parameters: {', '.join(f'delta{k}={v:.3f}' for k, v in self.tie_params.items()) or 'none'}\n")
        return head + self.to_frame().round(4).to_string(index=False)

    def __repr__(self) -> str:
        return (f"WorthRegressionResult(items={len(self.items)}, covariates={self.covariates}, "
                f"loglik={self.loglik:.3f}, converged={self.converged})")
