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

Split search runs on aggregated sufficient statistics (:class:`~survey_weights._mfluc.PatternModel`); the leaf
models are refitted with :func:`~survey_weights.models.plackett_luce.fit_plackett_luce` /
:func:`~survey_weights.models.bradley_terry.fit_bradley_terry` and kept in ``tree.leaf_fits``.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_scalar, format_ids
from ..exceptions import DataRecodeWarning, SmallGroupWarning
from ._instability import PatternModel, bonferroni, check_suplm_pvalue, fluctuation_tests

__all__ = ["PreferenceTree", "Split", "TreeNode", "fit_tree"]

_MAX_LEVELS = 16
_FIT_KEYS = ("npseudo", "ties", "method", "max_iter", "tol")


# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """A binary split: ``variable <= threshold`` (numeric) or ``variable in left_levels`` (categorical)."""

    variable: str
    kind: str  # "numeric", "categorical" or "ordered"
    threshold: float | None = None
    left_levels: tuple = ()
    right_levels: tuple = ()
    unseen_left: bool = False  # where levels absent from the node go (the larger child)

    def goes_left(self, values: pd.Series) -> np.ndarray:
        """Boolean mask: which values go to the left child (missing values follow the larger child)."""
        if self.kind == "numeric":
            v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            return np.where(np.isnan(v), self.unseen_left, v <= self.threshold)
        v = values.astype(object).to_numpy()
        left = set(self.left_levels)
        right = set(self.right_levels)
        return np.array([(x in left) or (x not in right and self.unseen_left) for x in v], dtype=bool)

    def describe(self, left: bool) -> str:
        if self.kind == "numeric":
            return f"{self.variable} {'<=' if left else '>'} {self.threshold:.6g}"
        levels = self.left_levels if left else self.right_levels
        return f"{self.variable} in {', '.join(str(x) for x in levels)}"


@dataclass
class TreeNode:
    """One node of a :class:`PreferenceTree` (ids in depth-first pre-order, root = 1, as in partykit)."""

    id: int
    depth: int
    positions: np.ndarray = field(repr=False)
    n: int
    n_weighted: float
    theta: np.ndarray = field(repr=False)
    loglik: float
    tests: pd.DataFrame | None = field(default=None, repr=False)
    split: Split | None = None
    children: tuple = ()
    rule: tuple[str, ...] = ()

    @property
    def is_leaf(self) -> bool:
        return not self.children


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
    elif opts.get("ties") is not None:
        raise ValueError("`ties` applies to PairedComparisons only; rankings always use Davidson-Luce ties.")
    return opts


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
        models (as ``bttree``), with Davidson ties when the data have ties.
    covariates : list of str or DataFrame
        Partitioning variables: names of columns of ``data.covariates``, or a frame indexed by respondent id.
        Numeric columns split as ``x <= c``; others are categorical (pandas categories keep their order, other
        values are sorted like R's ``factor``; an ordered categorical splits only at cut points). Respondents
        with a missing value are dropped (:class:`DataRecodeWarning`).
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
        Leaves with fewer respondents are never exported (:meth:`PreferenceTree.profiles`) or plotted.
    progress : bool, default False
        Show a tqdm progress bar over nodes.
    **fit_options
        ``npseudo`` (default 0.5; use 0 for the maximum-likelihood fits of bttree), ``ties`` (paired
        comparisons: None, "davidson" or "half"), ``method``, ``max_iter``, ``tol`` (leaf refits).

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
        self.pm = PatternModel.from_data(data, ties=opts.get("ties"))
        self.npseudo = float(opts["npseudo"])
        self.w = self.pm.weights
        self.progress = progress
        self._next_id = 0

    def _fit(self, stats_, start, tol: float = 1e-10):
        theta, ll, _ = self.pm.fit(stats_=stats_, npseudo=self.npseudo, start=start, tol=tol)
        return theta, ll

    def grow(self) -> TreeNode:
        from .._util.progress import tqdm

        with tqdm(desc="tree nodes", disable=not self.progress, unit="node") as bar:
            self._bar = bar
            return self._grow(np.arange(self.pm.n_respondents), depth=1, start=None, rule=())

    def _grow(self, pos: np.ndarray, depth: int, start, rule) -> TreeNode:
        self._next_id += 1
        nid = self._next_id
        w_node = np.zeros(self.pm.n_respondents)
        w_node[pos] = self.w[pos]
        s, c = self.pm.aggregate(w_node)
        theta, ll = self._fit((s, c), start, tol=1e-15)
        node = TreeNode(id=nid, depth=depth, positions=pos, n=len(pos), n_weighted=float(self.w[pos].sum()),
                        theta=theta, loglik=ll, rule=rule)
        self._bar.update(1)
        wpos = self.w[pos]
        keep = wpos > 0
        if keep.sum() >= 2:
            scores = self.pm.estfun(theta, w_node)[pos[keep]]
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
        S = self.pm.num[pos] * w[:, None]
        C = self.pm.counts[pos].multiply(w[:, None]).tocsr()
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


# ---------------------------------------------------------------------------------------------------------------------
class PreferenceTree:
    """A fitted model-based preference tree (from :func:`fit_tree`).

    Attributes
    ----------
    root : TreeNode
    nodes : dict
        Node id -> :class:`TreeNode` (pre-order ids, root = 1, as in partykit).
    leaf_fits : dict
        Leaf id -> fit result of the leaf's respondents (``fit_plackett_luce`` / ``fit_bradley_terry``, with
        standard errors), or None when the refit was impossible; computed on first use. Worths reported by the
        tree come from the node fits made while growing it (the same estimates, to ~1e-8).
    membership : pandas.Series
        Training respondent id -> leaf id.
    items : tuple
    model : str
        "Plackett-Luce" or "Bradley-Terry".
    """

    def __init__(self, data: Any, covariates: pd.DataFrame, root: TreeNode, *, settings: dict,
                 min_cell_size: int, opts: dict) -> None:
        self.data, self.covariates, self.root = data, covariates, root
        self.settings, self.min_cell_size, self.fit_options = settings, min_cell_size, opts
        self.items = tuple(data.items)
        self.model = "Bradley-Terry" if hasattr(data, "_a") else "Plackett-Luce"
        self.nodes: dict[int, TreeNode] = {}
        stack = [root]
        while stack:
            nd = stack.pop()
            self.nodes[nd.id] = nd
            stack.extend(nd.children)
        self.nodes = dict(sorted(self.nodes.items()))
        memb = np.zeros(data.n_respondents, dtype=np.int64)
        for nid in self.leaf_ids:
            memb[self.nodes[nid].positions] = nid
        self.membership = pd.Series(memb, index=data.respondent_ids, name="node")

    @functools.cached_property
    def leaf_fits(self) -> dict[int, Any]:
        """Leaf id -> full fit result of the leaf's respondents (computed on first use), or None."""
        return {nid: self._refit(self.nodes[nid]) for nid in self.leaf_ids}

    def _refit(self, node: TreeNode) -> Any:
        from ..models.bradley_terry import fit_bradley_terry
        from ..models.plackett_luce import fit_plackett_luce

        sub = self.data.subset(node.positions)
        kw = {k: v for k, v in self.fit_options.items() if k in ("npseudo", "method", "max_iter", "tol")}
        try:
            if self.model == "Bradley-Terry":
                return fit_bradley_terry(sub, ties=self.fit_options.get("ties"), **kw)
            return fit_plackett_luce(sub, **kw)
        except ValueError:  # e.g. MLE does not exist (npseudo=0, disconnected leaf)
            return None

    # --------------------------------------------------------------------------------------------- structure
    @property
    def leaf_ids(self) -> list[int]:
        return [i for i, nd in self.nodes.items() if nd.is_leaf]

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_ids)

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def loglik(self) -> float:
        """Sum of the leaf models' data log-likelihoods (pseudo-comparisons excluded)."""
        return float(sum(self.nodes[i].loglik for i in self.leaf_ids))

    def _node(self, node: int) -> TreeNode:
        if node not in self.nodes:
            raise ValueError(f"Unknown node {node!r}. Nodes: {list(self.nodes)}.")
        return self.nodes[node]

    def log_worth(self, node: int) -> pd.Series:
        """Zero-sum log-worths of a node's model (any node, inner nodes included)."""
        nd = self._node(node)
        b = nd.theta[: len(self.items)]
        return pd.Series(b - b.mean(), index=pd.Index(self.items, name="item"), name="log_worth")

    def weights(self, node: int) -> pd.Series:
        b = self.log_worth(node).to_numpy()
        e = np.exp(b - b.max())
        return pd.Series(e / e.sum(), index=pd.Index(self.items, name="item"), name="weight")

    def tests(self, node: int = 1) -> pd.DataFrame:
        """Parameter-instability tests of a node: statistic, pvalue (adjusted if bonferroni), unadjusted, df."""
        t = self._node(node).tests
        if t is None:
            return pd.DataFrame(columns=["statistic", "pvalue", "pvalue_unadjusted", "df"])
        return t.copy()

    def rules(self) -> dict[int, str]:
        """Leaf id -> its rule, e.g. ``"age <= 52 & q2 in yes"`` (``"root"`` for a tree without splits)."""
        return {i: " & ".join(self.nodes[i].rule) or "root" for i in self.leaf_ids}

    def to_frame(self) -> pd.DataFrame:
        """One row per leaf x item: node, n, item, log_worth, weight, se, rule, reportable (n >= min cell)."""
        rows = []
        rules = self.rules()
        for i in self.leaf_ids:
            lw, w = self.log_worth(i), self.weights(i)
            fit = self.leaf_fits[i]
            se = fit.se.to_numpy() if fit is not None else np.full(len(self.items), np.nan)
            n = self.nodes[i].n
            rows.append(pd.DataFrame({"node": i, "n": n, "item": list(self.items), "log_worth": lw.to_numpy(),
                                      "weight": w.to_numpy(), "se": se, "rule": rules[i],
                                      "reportable": n >= self.min_cell_size}))
        return pd.concat(rows, ignore_index=True)

    # ------------------------------------------------------------------------------------------- prediction
    def predict(self, newdata: pd.DataFrame) -> pd.DataFrame:
        """Route respondents down the tree.

        Parameters
        ----------
        newdata : DataFrame
            Must hold the split covariates (other columns are ignored). Missing values and levels unseen in a
            node follow that node's larger child.

        Returns
        -------
        DataFrame indexed like `newdata`: column ``node`` (leaf id), then the leaf's weight of every item.
        """
        if not isinstance(newdata, pd.DataFrame):
            raise TypeError(f"`newdata` must be a DataFrame of covariates. Got {type(newdata).__name__}.")
        used = sorted({nd.split.variable for nd in self.nodes.values() if nd.split is not None})
        missing = [c for c in used if c not in newdata.columns]
        if missing:
            raise ValueError(f"`newdata` lacks the split covariate(s) {format_ids(missing)}. Add those columns.")
        at = np.ones(len(newdata), dtype=np.int64)
        for nid, nd in self.nodes.items():  # pre-order: parents before children
            if nd.split is None:
                continue
            here = at == nid
            if here.any():
                left = nd.split.goes_left(newdata[nd.split.variable].iloc[np.flatnonzero(here)])
                at[np.flatnonzero(here)] = np.where(left, nd.children[0].id, nd.children[1].id)
        W = np.vstack([self.weights(i).to_numpy() for i in self.leaf_ids])
        row = {nid: k for k, nid in enumerate(self.leaf_ids)}
        out = pd.DataFrame(W[[row[a] for a in at]], index=newdata.index, columns=list(self.items))
        out.insert(0, "node", at)
        return out

    # --------------------------------------------------------------------------------------- reporting
    def _reportable(self, what: str) -> list[int]:
        small = [i for i in self.leaf_ids if self.nodes[i].n < self.min_cell_size]
        if small:
            warnings.warn(
                f"{len(small)} leaf/leaves with fewer than min_cell_size={self.min_cell_size} respondents "
                f"(node(s) {format_ids(small)}) are not {what}.", SmallGroupWarning, stacklevel=3)
        return [i for i in self.leaf_ids if i not in small]

    def plot(self, ax: Any = None) -> Any:
        """Per-leaf worth panel (one line per reportable leaf); returns the matplotlib Axes."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(7, 4))
        x = np.arange(len(self.items))
        for k, i in enumerate(self._reportable("plotted")):
            ax.plot(x, self.weights(i).to_numpy(), marker="o", color=f"C{k % 10}",
                    label=f"[{i}] {self.rules()[i]} (n={self.nodes[i].n})")
        ax.axhline(1.0 / len(self.items), color="grey", lw=0.8, ls=":")
        ax.set_xticks(x)
        ax.set_xticklabels([str(i) for i in self.items], rotation=30, ha="right")
        ax.set_ylabel("worth (weight)")
        ax.set_title(f"{self.model} tree: {self.n_leaves} leaves")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        return ax

    def profiles(self, *, safety: Any = None, min_cell_size: int | None = None, **kwargs: Any) -> list:
        """One :class:`~survey_weights.profiles.WeightProfile` per reportable leaf (``source="tree"``).

        Parameters
        ----------
        safety : float or dict, optional
            Passed to :func:`~survey_weights.profiles.derive_profile` (its default when None).
        min_cell_size : int, optional
            Override the tree's minimum cell size; smaller leaves are withheld (:class:`SmallGroupWarning`).
        **kwargs
            More :func:`derive_profile` options (``level``, ``criteria``).
        """
        from ..profiles.profile import derive_profile

        if min_cell_size is not None:
            check_scalar(min_cell_size, "min_cell_size", kind=(int, np.integer), min_val=0)
            saved, self.min_cell_size = self.min_cell_size, int(min_cell_size)
        try:
            leaves = self._reportable("exported")
        finally:
            if min_cell_size is not None:
                self.min_cell_size = saved
        if safety is not None:
            kwargs["safety"] = safety
        out = []
        for i in leaves:
            fit = self.leaf_fits[i]
            if fit is None:
                raise ValueError(f"Leaf {i} has no refit (its MLE does not exist). Fix: refit with npseudo > 0.")
            group: dict[str, str] = {}
            for cond in self.nodes[i].rule:
                var, rest = cond.split(" ", 1)
                group[var] = f"{group[var]} & {rest}" if var in group else rest
            out.append(derive_profile(fit, name=f"tree node {i}: {self.rules()[i]}", group=group or None,
                                      source="tree", data_hash=self.data.data_hash(), **kwargs))
        return out

    def __str__(self) -> str:
        covs = ", ".join(map(str, self.covariates.columns))
        lines = [f"{self.model} tree ({self.data.n_respondents} respondents; covariates: {covs})", ""]

        def walk(nd: TreeNode, prefix: str, label: str) -> None:
            head = f"{prefix}[{nd.id}] {label}"
            if nd.is_leaf:
                lines.append(f"{head}: n = {nd.n}")
                w = self.weights(nd.id)
                lines.append(prefix + "    " + "  ".join(f"{k} {v:.4f}" for k, v in w.items()))
                return
            lines.append(head)
            for child, left in zip(nd.children, (True, False)):
                walk(child, prefix + "|   ", nd.split.describe(left))

        walk(self.root, "", "root")
        k = len(self.root.theta) - 1
        lines += ["", "(leaf lines: worths, summing to 1)",
                  f"Number of inner nodes:    {self.n_nodes - self.n_leaves}",
                  f"Number of terminal nodes: {self.n_leaves}",
                  f"Number of parameters per node: {k}",
                  f"Objective function (negative log-likelihood): {-self.loglik:.6f}"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"PreferenceTree({self.model}, {self.n_leaves} leaves, {self.data.n_respondents} respondents, "
                f"loglik={self.loglik:.3f})")
