"""Regression of item worths on respondent covariates (Plackett-Luce with ties; Bradley-Terry-Davidson for pairs).

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._util.threads import single_thread_blas
from .._util.validation import check_scalar, format_ids
from ..data.rankings import PairedComparisons, Rankings
from ..exceptions import ConvergenceWarning
from ..models._choice import ChoiceDesign
from ..models._covariance import covariance
from ..models._optim import optimize
from ._lrtest import LRTestResult, lr_test

__all__ = ["WorthRegressionResult", "fit_regression"]

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


def fit_regression(
    data: Rankings | PairedComparisons,
    covariates: str | Sequence[Any] | None = None,
    *,
    npseudo: float = 0.5,
    ties: str | None = "davidson",
    standardize: bool = True,
    max_iter: int = 100,
    tol: float = 1e-10,
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
    standardize : bool, default True
        Centre and scale numeric covariates (coefficients per standard deviation; intercept at the mean).
    max_iter, tol : int, float
        Newton iterations and step tolerance.

    Returns
    -------
    WorthRegressionResult
        ``coef``/``se`` (items x terms, zero-sum over items), ``tie_params``, ``loglik``, ``lr_test()``,
        ``predict_weights()``.

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
    check_scalar(npseudo, "npseudo", min_val=0.0)
    check_scalar(max_iter, "max_iter", kind=int, min_val=1)
    check_scalar(tol, "tol", min_val=0.0, include_min=False)
    covs = _check_covariates(data, covariates)
    if not isinstance(data, (Rankings, PairedComparisons)):
        raise TypeError(f"`data` must be Rankings or PairedComparisons. Got {type(data).__name__} instead.")
    terms = _make_terms(data.covariates, covs, standardize=standardize) if covs else []
    frame = data.covariates if data.covariates is not None else pd.DataFrame(index=data.respondent_ids)
    X = _model_matrix(frame, terms)
    names = ["(Intercept)"] + [c for t in terms for c in t.columns]
    _check_rank(X, names)
    J, q = data.n_items, X.shape[1]
    design = ChoiceDesign.from_data(data, npseudo=float(npseudo), ties=ties, covariates=X)
    free = design.free(0)
    with single_thread_blas(True):  # threaded BLAS on tall-skinny products is pathological on a loaded box
        opt = optimize(design, method="newton", start=None, max_iter=max_iter, tol=tol, ref=0)
        theta = opt.theta
        ll = design.loglik(theta, pseudo=False)
        keep = free.copy()
        keep[0] = False  # item 0's intercept: the reference of the data information (R's PlackettLuce)
        pH = design.penalty(theta, 2)[2] if npseudo > 0 else None
        V, _ = covariance(opt.hess, keep, pseudo_H=pH, penal_keep=free)
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
    tie = pd.Series(np.exp(theta[nb:]), index=pd.Index(design.tie_orders, name="tie_order"), name="delta")

    def refit(sub: list[Any]) -> WorthRegressionResult:
        return fit_regression(data, sub, npseudo=npseudo, ties=ties, standardize=standardize,
                              max_iter=max_iter, tol=tol)

    return WorthRegressionResult(tuple(data.items), covs, names, coef, se, pd.DataFrame(Vb, index=mi, columns=mi),
                                 tie, ll, data.n_respondents, float(npseudo), ok, n_iter, terms, refit)
