"""Model-based preference trees (model-based recursive partitioning, as R's ``psychotree::bttree`` and
``PlackettLuce::pltree``).

:func:`fit_tree` grows a tree whose every node holds a Plackett-Luce model with ties (for
:class:`~survey_weights.data.Rankings`) or a Bradley-Terry model (for
:class:`~survey_weights.data.PairedComparisons`). As in ``partykit::mob`` (Zeileis, Hothorn & Hornik 2008), a
node is split when a score-based M-fluctuation test finds parameter instability along a respondent covariate:
the supLM statistic for numeric covariates and the chi-square (LMuo) statistic for categorical ones, with a
Bonferroni correction over covariates; the supLM p-value is partykit's (Hansen's approximation) by default,
the exact asymptotic one with ``pvalue="exact"``. The split variable is the one with the smallest p-value; the
split point maximises the summed log-likelihood of the two child models (numeric: ``x <= c``; unordered categorical: the
best binary partition of the levels; ordered categorical: the best cut), subject to `minsize` in each child.
Splitting stops when no adjusted p-value is <= `alpha`, a node has fewer than ``2 * minsize`` respondents
(weighted) or the depth reaches `maxdepth` (the root has depth 1, as in partykit).

Split search runs on aggregated sufficient statistics (:class:`~survey_weights.models._choice.ChoiceDesign`); the leaf
models are refitted with :func:`~survey_weights.models.plackett_luce.fit_plackett_luce` /
:func:`~survey_weights.models.bradley_terry.fit_bradley_terry` and kept in ``tree.leaf_fits``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_option, check_scalar, format_ids
from ..exceptions import DataRecodeWarning
from ..models._best_worst import BEST_WORST_MODELS
from ..models._choice import ChoiceDesign
from ..models._optim import newton
from ..profiles.cells import check_not_identifying
from ._instability import bonferroni, check_suplm_pvalue, fluctuation_tests
from ._tree_result import PreferenceTree, Split, TreeNode

__all__ = ["PreferenceTree", "Split", "TreeNode", "fit_tree"]

_MAX_LEVELS = 16
_FIT_KEYS = ("npseudo", "ties", "model", "method", "max_iter", "tol")


# ---------------------------------------------------------------------------------------------------------------------
def _covariate_frame(data: Any, covariates: Any) -> pd.DataFrame:
    if isinstance(covariates, pd.DataFrame):
        missing = data.respondent_ids.difference(covariates.index)
        if len(missing):
            raise ValueError(
                f"`covariates` frame has no row for respondent ids {format_ids(list(missing))}. "
                "Fix: index the frame by respondent id and include every respondent."
            )
        return covariates.loc[data.respondent_ids]
    if isinstance(covariates, str):
        covariates = [covariates]
    if not isinstance(covariates, Sequence) or not len(covariates):
        raise ValueError(
            f"`covariates` must be a non-empty list of covariate names or a DataFrame. Got {covariates!r}."
        )
    if data.covariates is None:
        raise ValueError(
            "`covariates` names columns but the data carry no covariates. Fix: build the data with "
            "covariates=..., or pass a DataFrame indexed by respondent id."
        )
    unknown = [c for c in covariates if c not in data.covariates.columns]
    if unknown:
        raise ValueError(
            f"Unknown covariate(s) {format_ids(unknown)} in `covariates`. Available: "
            f"{format_ids(list(data.covariates.columns), limit=12)}. Fix: check the spelling."
        )
    return data.covariates[list(covariates)]


def _encode(col: pd.Series) -> tuple[str, np.ndarray, tuple]:
    """(kind, values, levels): numeric floats, or integer codes of the levels (R factor order)."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return "numeric", col.to_numpy(dtype=float), ()
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.cat.remove_unused_categories()
        kind = "ordered" if col.cat.ordered else "categorical"
    else:
        cat = col.astype(object).astype("category")  # sorted levels, like R's factor()
        kind = "categorical"
    levels = tuple(cat.cat.categories)
    if len(levels) > _MAX_LEVELS and kind == "categorical":
        raise ValueError(
            f"Covariate {col.name!r} has {len(levels)} levels; more than {_MAX_LEVELS} makes the search over "
            "binary partitions too large. Fix: merge rare levels, or make it an ordered categorical."
        )
    return kind, cat.cat.codes.to_numpy().astype(np.int64), levels


def _fit_options(data: Any, fit_options: dict) -> dict:
    unknown = set(fit_options) - set(_FIT_KEYS)
    if unknown:
        raise TypeError(f"Unknown fit option(s) {sorted(unknown)}. Allowed: {list(_FIT_KEYS)}.")
    opts = dict(fit_options)
    check_scalar(opts.setdefault("npseudo", 0.5), "npseudo", min_val=0.0)
    if hasattr(data, "_a"):
        opts.setdefault("ties", "davidson" if data.has_ties else None)
        if opts["ties"] not in (None, "davidson", "half"):
            raise ValueError(f"Unknown `ties` {opts['ties']!r}. Choose one of {{None, 'davidson', 'half'}}.")
        if opts["ties"] is None and data.has_ties:
            raise ValueError("`ties` is None but the data contain tied comparisons. Fix: ties='davidson' or 'half'.")
    elif opts.get("ties") not in (None, "davidson"):
        raise ValueError(f"fit_tree reads rankings' ties by Davidson-Luce only (ties={opts['ties']!r} given): its "
                         "node fits and split search run on the Davidson-Luce design's sufficient statistics. Fix: "
                         "drop `ties`, or compare the tree's leaves under another reading with fit_by_group(data, "
                         "by, ties=...) on the leaf labels (tree.predict).")
    if _is_best_worst(data):
        check_option(opts.setdefault("model", "maxdiff"), "model", BEST_WORST_MODELS)
    elif "model" in opts:
        raise ValueError("`model` applies to best-worst data (Rankings.from_best_worst) only.")
    return opts


def _is_best_worst(data: Any) -> bool:
    return getattr(data, "best_worst", None) is not None


def fit_tree(
    data: Any,
    covariates: Sequence[str] | pd.DataFrame,
    *,
    minsize: float,
    maxdepth: int | None = None,
    alpha: float = 0.05,
    bonferroni: bool = True,
    trim: float = 0.1,
    pvalue: str = "partykit",
    min_cell_size: int = 10,
    progress: bool = False,
    **fit_options: Any,
) -> PreferenceTree:
    """Grow a model-based preference tree (MOB) with M-fluctuation parameter-instability tests.

    Parameters
    ----------
    data : Rankings or PairedComparisons
        Rankings give Plackett-Luce models with ties (as ``pltree``); paired comparisons give Bradley-Terry
        models (as ``bttree``), with Davidson ties when the data have ties; best-worst tasks
        (:meth:`Rankings.from_best_worst`, covariates from its ``covariates=``) give the best-worst model of
        :func:`~survey_weights.fit_best_worst` (``model=`` below).
    covariates : list of str or DataFrame
        Partitioning variables: names of columns of ``data.covariates``, or a frame indexed by respondent id.
        Numeric columns split as ``x <= c``; others are categorical (pandas categories keep their order, other
        values are sorted like R's ``factor``; an ordered categorical splits only at cut points). Respondents
        with a missing value are dropped (:class:`DataRecodeWarning`). A column that identifies respondents is
        refused: a categorical one with a different value for every respondent, or any that holds the respondent
        ids or is named like an id (``respondent_id``, ``ResponseId``, ...) with all values different.
    minsize : float
        Minimum (weighted) number of respondents in each child, >= 2. Also the minimum trimming of the supLM
        test (partykit: ``from = max(ceiling(n * trim), minsize)``).
    maxdepth : int, optional
        Maximum depth; the root has depth 1, so ``maxdepth=3`` allows two levels of splits. Default: no limit.
    alpha : float, default 0.05
        Significance level of the (Bonferroni-adjusted) instability tests.
    bonferroni : bool, default True
        Adjust the p-values for the number of covariates tested (``1 - (1 - p)^m``, as partykit).
    trim : float, default 0.1
        Trimming fraction of the supLM test.
    pvalue : {"partykit", "exact"}, default "partykit"
        p-value of the supLM test (numeric covariates; the statistics are the same either way).
        ``"partykit"`` (the default) is Hansen's (1997) response-surface approximation as ``partykit::mob``
        computes it, so the p-values, and with them the splits at a given `alpha`, are those of R's
        ``psychotree::bttree`` and ``PlackettLuce::pltree``: the default keeps the package's trees comparable with
        the published R trees. ``"exact"`` is the exact asymptotic p-value of the supLM statistic (the limit the
        approximation targets); at ``trim=0.1`` it is 8-22 % larger than Hansen's for p-values between 0.001 and
        0.2 (0.9-1.35 times over trimmings 0.01-0.49), so borderline splits can differ. Example: in psychotree's
        EuropeanValuesStudy tree (``alpha = 0.01``) node 5 splits on ``eduage`` at adjusted p = 0.0094 with
        "partykit"; "exact" gives 0.0123 and does not split. Categorical covariates use the chi-square p-value
        either way.
    min_cell_size : int, default 10
        Leaves with fewer respondents (heads with a positive frequency weight) never appear with their weights:
        not in the profiles and exports, tables (:meth:`PreferenceTree.to_frame`, ``summary``, ``weights``),
        plots, ``predict`` or ``str(tree)``.
    progress : bool, default False
        Show a tqdm progress bar over nodes.
    **fit_options
        ``npseudo`` (default 0.5; use 0 for the maximum-likelihood fits of bttree), ``ties`` (paired
        comparisons: None, "davidson" or "half"; rankings: Davidson-Luce only, other readings raise
        ``ValueError``), ``model`` (best-worst data: "maxdiff" (default), "sequential" or "marginal"),
        ``method``, ``max_iter``, ``tol`` (leaf refits).

    Returns
    -------
    PreferenceTree

    Examples
    --------
    >>> tree = fit_tree(rankings, ["age_group", "severity"], minsize=30)  # doctest: +SKIP
    >>> print(tree)                                                      # doctest: +SKIP
    """
    if not (hasattr(data, "_ptr") or hasattr(data, "_a")):
        raise TypeError(
            f"`data` must be a Rankings or PairedComparisons. Got {type(data).__name__}. "
            "Fix: build one with Rankings.from_wide / from_ratings / from_orderings or PairedComparisons.from_long."
        )
    if getattr(data, "sampling_weights", None) is not None:
        raise ValueError(
            "fit_tree does not take sampling weights: its score-based fluctuation tests (as partykit's mob) treat "
            "weights as case weights, and no design-based version of those tests is established, so its splits "
            "and p-values would not be valid for a weighted sample. Fix: fit the tree unweighted "
            "(data.with_sampling_weights(None)) and report the weighted fits of its nodes (fit_by_group on the "
            "node labels from tree.predict) with their robust standard errors."
        )
    check_scalar(minsize, "minsize", min_val=0.0)
    if minsize < 2:
        raise ValueError(
            f"`minsize` must be >= 2 respondents (each child needs enough data for a model). Got {minsize!r}. "
            "Fix: use e.g. minsize=0.05 * n_respondents."
        )
    if maxdepth is not None:
        check_scalar(maxdepth, "maxdepth", kind=(int, np.integer), min_val=1)
    check_scalar(alpha, "alpha", min_val=0.0, max_val=1.0, include_min=False)
    check_scalar(trim, "trim", min_val=0.0, max_val=0.5, include_min=False, include_max=False)
    check_suplm_pvalue(pvalue)
    check_scalar(min_cell_size, "min_cell_size", kind=(int, np.integer), min_val=0)
    opts = _fit_options(data, fit_options)
    zf = _covariate_frame(data, covariates)
    check_not_identifying(zf, list(zf.columns), what="covariates", respondent_ids=data.respondent_ids,
                          numeric_ok=True)
    miss = zf.isna().any(axis=1).to_numpy()
    if miss.any():
        warnings.warn(
            f"Dropped {int(miss.sum())} respondent(s) with missing covariate values: respondent ids "
            f"{format_ids(list(data.respondent_ids[miss]))}.", DataRecodeWarning, stacklevel=2)
        data = data.subset(~miss)
        zf = zf.loc[data.respondent_ids]
    enc = {c: _encode(zf[c]) for c in zf.columns}
    grower = _Grower(data, enc, minsize=float(minsize), maxdepth=maxdepth, alpha=float(alpha),
                     bonferroni=bool(bonferroni), trim=float(trim), pvalue=pvalue, opts=opts, progress=progress)
    root = grower.grow()
    settings = {"minsize": float(minsize), "maxdepth": maxdepth, "alpha": float(alpha),
                "bonferroni": bool(bonferroni), "trim": float(trim), "pvalue": pvalue}
    return PreferenceTree(data, zf, root, settings=settings, min_cell_size=int(min_cell_size), opts=opts)


# ---------------------------------------------------------------------------------------------------------------------
class _Grower:
    def __init__(self, data, enc, *, minsize, maxdepth, alpha, bonferroni, trim, pvalue, opts, progress):
        self.data, self.enc = data, enc
        self.minsize, self.maxdepth, self.alpha = minsize, maxdepth, alpha
        self.bonf, self.trim, self.pvalue, self.opts = bonferroni, trim, pvalue, opts
        self.npseudo = float(opts["npseudo"])
        if _is_best_worst(data):
            self.design = ChoiceDesign.from_best_worst(data, model=opts["model"], npseudo=self.npseudo)
        else:
            self.design = ChoiceDesign.from_data(data, ties=opts.get("ties") or "davidson", npseudo=self.npseudo)
        self.num, self.counts = self.design.respondent_stats()
        self.n = data.n_respondents
        self.w = np.asarray(data.respondent_weights, dtype=float)
        self.free = self.design.free(0)
        self.progress = progress
        self._next_id = 0

    def _fit(self, stats_, start, tol: float = 1e-8):
        """Fit on a node's sufficient statistics (the engine's Newton driver); data log-likelihood."""
        view = self.design.with_stats(*stats_)
        theta = np.zeros(view.n_params) if start is None else np.array(start, dtype=float)
        theta[~self.free] = 0.0
        theta = newton(view, theta, self.free, 100, tol).theta
        return theta, view.loglik(theta, pseudo=False)

    def grow(self) -> TreeNode:
        from .._util.progress import tqdm

        with tqdm(desc="tree nodes", disable=not self.progress, unit="node") as bar:
            self._bar = bar
            return self._grow(np.arange(self.n), depth=1, start=None, rule=())

    def _grow(self, pos: np.ndarray, depth: int, start, rule) -> TreeNode:
        self._next_id += 1
        nid = self._next_id
        w_node = np.zeros(self.n)
        w_node[pos] = self.w[pos]
        theta, ll = self._fit(self.design.stats(w_node), start, tol=1e-10)
        node = TreeNode(id=nid, depth=depth, positions=pos, n=len(pos), n_weighted=float(self.w[pos].sum()),
                        theta=theta, loglik=ll, rule=rule)
        self._bar.update(1)
        wpos = self.w[pos]
        keep = wpos > 0
        if keep.sum() >= 2:
            # estfun w.r.t. all but item 0's log-worth (the reference, as partykit's mob on PlackettLuce)
            scores = (self.design.scores(theta, weighted=False)[:, 1:] * w_node[:, None])[pos[keep]]
            z = [("numeric" if k == "numeric" else "categorical", v[pos[keep]]) for k, v, _ in self.enc.values()]
            stat, p, df = fluctuation_tests(scores, z, wpos[keep], minsize=self.minsize, trim=self.trim,
                                            pvalue=self.pvalue)
            padj = bonferroni(p) if self.bonf else p
            node.tests = pd.DataFrame({"statistic": stat, "pvalue": padj, "pvalue_unadjusted": p, "df": df},
                                      index=pd.Index(list(self.enc), name="covariate"))
        if (node.tests is None or node.n_weighted < 2 * self.minsize
                or (self.maxdepth is not None and depth >= self.maxdepth)):
            return node
        padj = node.tests["pvalue"].to_numpy()
        if np.all(np.isnan(padj)) or np.nanmin(padj) > self.alpha:
            return node
        var = node.tests.index[int(np.nanargmin(node.tests["pvalue_unadjusted"].to_numpy()))]  # as partykit
        split = self._find_split(var, pos, theta)
        if split is None:
            return node
        node.split = split
        left = split.goes_left(self._raw(var, pos))
        lpos, rpos = pos[left], pos[~left]
        node.children = (
            self._grow(lpos, depth + 1, theta, rule + (split.describe(True),)),
            self._grow(rpos, depth + 1, theta, rule + (split.describe(False),)),
        )
        return node

    def _raw(self, var: str, pos: np.ndarray) -> pd.Series:
        kind, v, levels = self.enc[var]
        if kind == "numeric":
            return pd.Series(v[pos])
        return pd.Series(np.asarray(levels, dtype=object)[v[pos]])

    def _objective(self, sl, cl, st, ct, start) -> float:
        """Negative summed log-likelihood of the two children (warm-started from the previous candidate)."""
        th_l, ll_l = self._fit((sl, cl), self._warm[0] if self._warm else start)
        th_r, ll_r = self._fit((st - sl, ct - cl), self._warm[1] if self._warm else start)
        ok = np.all(np.isfinite(th_l)) and np.all(np.isfinite(th_r))
        self._warm = (th_l, th_r) if ok and max(np.abs(th_l).max(), np.abs(th_r).max()) < 20 else None
        return -(ll_l + ll_r)

    def _find_split(self, var: str, pos: np.ndarray, theta: np.ndarray) -> Split | None:
        kind, v, levels = self.enc[var]
        self._warm = None
        zv = v[pos]
        w = self.w[pos]
        S = self.num[pos] * w[:, None]
        C = self.counts[pos].multiply(w[:, None]).tocsr()
        st, ct = S.sum(axis=0), np.asarray(C.sum(axis=0)).ravel()
        wt = float(w.sum())
        if kind == "numeric":
            order = np.argsort(zv, kind="stable")
            zs = zv[order]
            S, C, w = S[order], C[order], w[order]
            last = np.flatnonzero(zs[1:] != zs[:-1])
            cw = np.cumsum(w)[last]
            ok = (cw >= self.minsize) & (wt - cw >= self.minsize)
            best, best_obj = None, np.inf
            cand = np.flatnonzero(ok)
            cS = np.cumsum(S, axis=0)[last[cand]]
            if C.shape[0] * C.shape[1] <= 20_000_000:
                cC = np.cumsum(C.toarray(), axis=0)[last[cand]]
            else:  # memory-light: sums between consecutive candidates
                bounds = np.concatenate([[0], last[cand] + 1])
                parts = [np.asarray(C[a:b].sum(axis=0)) for a, b in itertools.pairwise(bounds)]
                cC = np.cumsum(np.vstack(parts), axis=0)
            for jj, j in enumerate(cand):
                obj = self._objective(cS[jj], cC[jj], st, ct, theta)
                if obj < best_obj - 1e-10 * (1 + abs(obj)):
                    best, best_obj = zs[last[j]], obj
            if best is None:
                return None
            left_w = float(w[zs <= best].sum())
            return Split(var, "numeric", threshold=float(best), unseen_left=left_w >= wt - left_w)
        present = np.unique(zv)
        L = len(present)
        if L < 2:
            return None
        idx = np.searchsorted(present, zv)
        sl_lev = np.zeros((L, len(st)))
        np.add.at(sl_lev, idx, S)
        ind = np.zeros((L, len(zv)))
        ind[idx, np.arange(len(zv))] = 1.0
        cl_lev = np.asarray((C.T @ ind.T).T)
        wl = np.bincount(idx, weights=w, minlength=L)
        if kind == "ordered":
            masks = [np.arange(L) <= j for j in range(L - 1)]
        else:
            masks = [((i >> np.arange(L)) & 1).astype(bool) for i in range(1, 2 ** (L - 1))]
        best, best_obj = None, np.inf
        for mk in masks:
            lw = wl[mk].sum()
            if lw < self.minsize or wt - lw < self.minsize:
                continue
            obj = self._objective(sl_lev[mk].sum(axis=0), cl_lev[mk].sum(axis=0), st, ct, theta)
            if obj < best_obj - 1e-10 * (1 + abs(obj)):
                best, best_obj = mk, obj
        if best is None:
            return None
        lv = np.asarray(levels, dtype=object)
        lw = wl[best].sum()
        return Split(var, kind, left_levels=tuple(lv[present[best]]), right_levels=tuple(lv[present[~best]]),
                     unseen_left=bool(lw >= wt - lw))
