"""The result of :func:`~survey_weights.subgroups.regression.fit_regression` (:class:`WorthRegressionResult`) and
the covariate coding its predictions share with the fit (split from ``regression.py``, which fits the model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import format_ids
from ..data.rankings import Rankings
from ..profiles.cells import check_min_cell_size, count_respondents, reportable
from ..profiles.profile import DEFAULT_SAFETY, derive_profile
from ..results import Summary
from ._lrtest import LRTestResult, lr_test
from ._provenance import FitView

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
    weights : pandas.DataFrame
        Predicted weights of every covariate cell of at least :attr:`min_cell_size` fitted respondents (see the
        property); :meth:`predict_weights` gives them for any covariate values.
    loglik : float
        Data log-likelihood at the estimate (pseudo data excluded).
    n_respondents : int
    npseudo : float
    converged : bool
    n_iter : int
    min_cell_size : int
        Covariate cells with fewer respondents (heads with a positive frequency weight) are left out of
        :attr:`weights` and :meth:`profiles` (default 10).
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
    #: Coefficients of respondent x item covariates (``item_covariates=``) and their SEs; empty otherwise.
    effects: pd.Series = field(default_factory=lambda: pd.Series(dtype=float, name="estimate"))
    effects_se: pd.Series = field(default_factory=lambda: pd.Series(dtype=float, name="se"))
    #: ``"model"``, ``"robust"`` or ``"cluster"``: how :attr:`vcov` and :attr:`se` were computed.
    vcov_type: str = "model"
    #: Kish's effective n and design effect of the sampling weights, or None.
    sampling: dict | None = None

    @property
    def design_effect(self) -> float:
        """Kish's design effect of the sampling weights (1.0 without them)."""
        return 1.0 if self.sampling is None else float(self.sampling["design_effect"])

    def wald_test(self, covariate: Any) -> LRTestResult:
        """Wald test that a covariate has no effect on the worths, with this fit's covariance (the robust one
        under sampling weights, where the likelihood-ratio test's chi-square reference fails).

        Returns
        -------
        LRTestResult
            ``statistic = b' V^+ b`` over the covariate's zero-sum coefficients, ``df = (n_items - 1) x`` its
            number of columns (the rank of their covariance).
        """
        if covariate not in self.covariates:
            raise ValueError(f"`covariate` {covariate!r} is not in the model. Choose one of "
                             f"{format_ids(self.covariates, limit=20)}.")
        cols = [c for t in self._spec if t.name == covariate for c in t.columns]
        b = self.coef[cols].to_numpy().ravel()
        idx = pd.MultiIndex.from_product([list(self.items), cols])
        Vs = self.vcov.loc[idx, idx].to_numpy()
        df = (len(self.items) - 1) * len(cols)
        stat = float(b @ np.linalg.pinv(Vs, rcond=1e-10) @ b)
        from scipy import stats

        return LRTestResult(stat, df, float(stats.chi2.sf(stat, df)), f"no effect of {covariate!r} on the worths "
                            f"(Wald, {self.vcov_type} covariance)")
    _data: Any = field(repr=False, default=None)
    min_cell_size: int = 10

    @property
    def df_model(self) -> int:
        """Number of identifiable parameters: ``(n_items - 1) * n_terms + n_tie_params``."""
        return (len(self.items) - 1) * len(self.terms) + len(self.tie_params)

    def to_frame(self, *, level: float = 0.95) -> pd.DataFrame:
        """Coefficient table (a regression has coefficients, not one weight per item: see :attr:`weights`).

        Parameters
        ----------
        level : float, default 0.95
            Confidence level of the coefficient intervals.

        Returns
        -------
        pandas.DataFrame
            One row per (item, term); columns ``item``, ``term``, ``estimate`` (zero-sum log-worth effect; the
            ``"(Intercept)"`` term is the reference respondent's log-worth), ``se``, ``z``, ``pvalue``, ``ci_low``,
            ``ci_high`` (Wald interval of the coefficient at `level`, on the log-worth scale). Unlike the other
            results' tables, ``ci_low``/``ci_high`` bound a coefficient, not a weight; the weights of covariate cells
            are :attr:`weights` and :meth:`predict_weights`.
        """
        from scipy import stats  # lazy: scipy.stats alone takes longer to import than the package

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
        if self.sampling is not None:  # a pseudo-likelihood: the LR statistic has no chi-square reference
            return self.wald_test(covariate)
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

    # ----------------------------------------------------------------------------------- cells and weights
    def _cells(self) -> tuple[pd.DataFrame, list[str], list[int]]:
        """Distinct covariate values of the fitted respondents with a positive weight: (frame, labels, counts)."""
        if self._data is None:
            raise ValueError("This result does not know its data (it was not made by fit_regression), so it has no "
                             "covariate cells. Fix: use predict_weights(frame) with the covariate values.")
        covs = list(self.covariates)
        counted = np.asarray(self._data.respondent_weights, dtype=float) > 0
        if not covs:
            return pd.DataFrame(index=[0]), ["pooled"], [count_respondents(counted)]
        frame = self._data.covariates[covs][counted]
        counts = frame.groupby(covs, observed=True, sort=True, dropna=False).size()
        cells = counts.index.to_frame(index=False)
        labels = [", ".join(f"{c}={v}" for c, v in zip(covs, row)) for row in cells.itertuples(index=False)]
        return cells, labels, [int(n) for n in counts.to_numpy()]

    @property
    def weights(self) -> pd.DataFrame:
        """Predicted weights of every covariate cell of the fitted respondents.

        Returns
        -------
        pandas.DataFrame
            Index ``cell`` (``"col=value, ..."``, or ``"pooled"`` without covariates), columns ``item``; each row
            sums to 1 (:meth:`predict_weights` of the cell's covariate values). Only cells of at least
            :attr:`min_cell_size` respondents are listed (with a numeric covariate most cells hold one respondent).
        """
        cells, labels, counts = self._cells()
        keep = np.asarray(counts) >= self.min_cell_size
        w = self.predict_weights(cells).to_numpy()[keep]
        return pd.DataFrame(w.reshape(-1, len(self.items)), index=pd.Index(list(np.asarray(labels, dtype=object)[keep]),
                            name="cell"), columns=pd.Index(self.items, name="item"))

    def _cell_vcov(self, x: np.ndarray) -> np.ndarray:
        """Covariance of the log-worths ``B x`` of a model-matrix row `x` (delta method, exact: linear)."""
        J = len(self.items)
        M = np.kron(np.eye(J), np.asarray(x, float)[:, None])  # (J q) x J, rows ordered (item, term) as vcov
        return M.T @ self.vcov.to_numpy() @ M

    # ------------------------------------------------------------------------------------------ reporting
    def summary(self) -> Summary:
        """Fit statistics, the coefficient table and the shared tie parameters.

        Returns
        -------
        Summary
            ``table``: :meth:`to_frame` indexed by (item, term); ``ties``: log tie parameters.
        """
        tab = self.to_frame().set_index(["item", "term"])
        ties = pd.DataFrame({"estimate": np.log(self.tie_params.to_numpy())},
                            index=pd.Index([f"tie{k}" for k in self.tie_params.index], name="tie"))
        info = {"respondents": self.n_respondents, "log-likelihood": self.loglik, "df": self.df_model,
                "npseudo": self.npseudo, "iterations": self.n_iter, "converged": self.converged}
        title = f"Worth regression on {self.covariates or 'no covariates'} (zero-sum log-worth effects)"
        return Summary(title, tab, ties if len(ties) else pd.DataFrame(), info)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Coefficients with their 95% Wald intervals, one series per term (the intercept only without covariates).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when None.
        **kwargs
            ``title``, ``xlabel`` (:func:`~survey_weights.plotting.plot_intervals`).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ..plotting import plot_intervals

        tab = self.to_frame()
        if len(self.terms) > 1:
            tab = tab[tab["term"] != "(Intercept)"]
        kwargs.setdefault("xlabel", "effect on the zero-sum log-worth (95% CI)")
        return plot_intervals(tab, key="term", value="estimate", ax=ax, reference=0.0, **kwargs)

    def profiles(self, *, safety: Any = DEFAULT_SAFETY, min_cell_size: int | None = None,
                 level: float = 0.95) -> list:
        """One :class:`~survey_weights.profiles.WeightProfile` per covariate cell (``source="regression"``).

        A cell is one combination of covariate values among the fitted respondents; its weights are the model's
        prediction (:attr:`weights`), with intervals from the coefficients' covariance (the log-worths are linear
        in them) by :func:`~survey_weights.derive_profile`'s recipe.

        Parameters
        ----------
        safety : float, dict or None, default ``{"floor": 0.2}``
            Constraint objective and its rule, as in :func:`~survey_weights.derive_profile` (None: none).
        min_cell_size : int, optional
            Cells with fewer respondents are withheld (:class:`~survey_weights.exceptions.SmallGroupWarning`);
            default :attr:`min_cell_size` (10). With a numeric covariate most cells hold a single respondent.
        level : float, default 0.95
            Confidence level of the intervals.

        Returns
        -------
        list of WeightProfile
            Named ``"col=value,..."`` with ``group={col: value, ...}`` (``"pooled"`` without covariates),
            ``n_respondents`` = the cell's respondents, and the hash of the fitted data.
        """
        cells, labels, counts = self._cells()
        keep = set(reportable(dict(zip(labels, counts)), check_min_cell_size(min_cell_size, self.min_cell_size),
                              what="covariate cell(s)"))
        X = _model_matrix(cells, self._spec)
        lw = self.predict_log_worth(cells)
        base = "plackett_luce" if isinstance(self._data, Rankings) else "bradley_terry"
        items = pd.Index(self.items, name="item")
        out = []
        for k, label in enumerate(labels):
            if label not in keep:
                continue
            view = FitView(self.items, pd.Series(lw.iloc[k].to_numpy(), index=items),
                           pd.DataFrame(self._cell_vcov(X[k]), index=items, columns=items), counts[k],
                           f"{base}_regression", npseudo=self.npseudo, converged=self.converged)
            group = {c: _plain(v) for c, v in zip(self.covariates, cells.iloc[k])} or None
            out.append(derive_profile(view, safety=safety, level=level, group=group, source="regression",
                                      data_hash=self._data.data_hash()))
        return out

    def __repr__(self) -> str:
        return (f"WorthRegressionResult(items={len(self.items)}, covariates={self.covariates}, "
                f"loglik={self.loglik:.3f}, converged={self.converged})")


def _plain(v: Any) -> Any:
    """A covariate value as a JSON-native scalar (numpy bools and numbers to Python)."""
    return v.item() if isinstance(v, np.generic) else v
