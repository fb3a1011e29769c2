"""The result of :func:`~survey_weights.subgroups.trees.fit_tree`: :class:`PreferenceTree`, its
:class:`TreeNode` objects and their :class:`Split` rules (split from ``trees.py``, which grows the tree)."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import format_ids
from ..exceptions import SmallGroupWarning
from ..profiles.cells import check_min_cell_size, count_respondents
from ..profiles.intervals import softmax, weight_intervals
from ..profiles.profile import DEFAULT_SAFETY, derive_profile
from ..results import Summary

__all__ = ["PreferenceTree", "Split", "TreeNode"]


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
    min_cell_size : int
        Leaves with fewer respondents (heads with a positive frequency weight) never appear with their weights in
        a reporting output: :meth:`profiles` (and so exports), :meth:`to_frame`, :attr:`weights`, :meth:`summary`,
        :meth:`plot`, :meth:`predict` and ``str(tree)`` withhold them. The model's own accessors
        (:meth:`weights_of`, :meth:`log_worth`, :attr:`leaf_fits`, :attr:`nodes`) do not: they are for the
        analyst, not for reports.
    weights : pandas.DataFrame
        Reportable leaves x items (see the property); :meth:`weights_of` gives one node's weights.
    """

    def __init__(self, data: Any, covariates: pd.DataFrame, root: TreeNode, *, settings: dict,
                 min_cell_size: int, opts: dict) -> None:
        self.data, self.covariates, self.root = data, covariates, root
        self.settings, self.min_cell_size, self.fit_options = settings, min_cell_size, opts
        self.items = tuple(data.items)
        self.model = "Bradley-Terry" if hasattr(data, "_a") else (
            f"Best-worst ({opts['model']})" if getattr(data, "best_worst", None) is not None else "Plackett-Luce")
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
        rw = np.asarray(data.respondent_weights, dtype=float)
        #: node id -> respondents (positive frequency weight) for the minimum-cell-size rule
        self.cell_sizes = {nid: count_respondents(rw[nd.positions]) for nid, nd in self.nodes.items()}

    @functools.cached_property
    def leaf_fits(self) -> dict[int, Any]:
        """Leaf id -> full fit result of the leaf's respondents (computed on first use), or None."""
        return {nid: self._refit(self.nodes[nid]) for nid in self.leaf_ids}

    def _refit(self, node: TreeNode) -> Any:
        from ..models.best_worst import fit_best_worst
        from ..models.bradley_terry import fit_bradley_terry
        from ..models.plackett_luce import fit_plackett_luce

        sub = self.data.subset(node.positions)
        kw = {k: v for k, v in self.fit_options.items() if k in ("npseudo", "method", "max_iter", "tol")}
        try:
            if self.model == "Bradley-Terry":
                return fit_bradley_terry(sub, ties=self.fit_options.get("ties"), **kw)
            if "model" in self.fit_options:
                return fit_best_worst(sub, model=self.fit_options["model"], **kw)
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

    def weights_of(self, node: int) -> pd.Series:
        """Weights of one node's model (any node, inner nodes included), indexed by item; they sum to 1."""
        return pd.Series(softmax(self.log_worth(node).to_numpy()), index=pd.Index(self.items, name="item"),
                         name="weight")

    def _shown(self) -> list[int]:
        """Leaves with at least :attr:`min_cell_size` respondents (no warning)."""
        return [i for i in self.leaf_ids if self.cell_sizes[i] >= self.min_cell_size]

    @property
    def weights(self) -> pd.DataFrame:
        """Weights of the reportable leaves, leaves x items (index ``node``, columns ``item``); each row sums to 1.

        Leaves with fewer than :attr:`min_cell_size` respondents are left out (see :meth:`summary` for which);
        :meth:`weights_of` gives one node's weights, inner nodes included.
        """
        shown = self._shown()
        return pd.DataFrame([self.weights_of(i).to_numpy() for i in shown],
                            index=pd.Index(shown, name="node"), columns=pd.Index(self.items, name="item"))

    def tests(self, node: int = 1) -> pd.DataFrame:
        """Parameter-instability tests of a node: statistic, pvalue (adjusted if bonferroni), unadjusted, df."""
        t = self._node(node).tests
        if t is None:
            return pd.DataFrame(columns=["statistic", "pvalue", "pvalue_unadjusted", "df"])
        return t.copy()

    def short_rules(self) -> dict[int, str]:
        """Leaf id -> its rule with one condition per covariate (the tightest), for labels, e.g. ``"age_group in
        18-24 & severity in Moderate"`` where :meth:`rules` lists ``"severity in Moderate, Severe & severity in
        Moderate"``; a numeric covariate split on both sides reads ``"2 < x <= 5"``."""
        out: dict[int, str] = {}

        def walk(node: TreeNode, conds: dict[str, dict[str, Any]]) -> None:
            if node.is_leaf:
                parts = []
                for var, c in conds.items():
                    if "in" in c:
                        parts.append(f"{var} in {', '.join(str(x) for x in c['in'])}")
                    elif "<=" in c and ">" in c:
                        parts.append(f"{c['>']:.6g} < {var} <= {c['<=']:.6g}")
                    else:
                        op = "<=" if "<=" in c else ">"
                        parts.append(f"{var} {op} {c[op]:.6g}")
                out[node.id] = " & ".join(parts) or "root"
                return
            sp = node.split
            for child, left in zip(node.children, (True, False)):
                c = dict(conds.get(sp.variable, {}))
                if sp.kind == "numeric":
                    c["<=" if left else ">"] = sp.threshold  # deeper splits are tighter
                else:
                    c["in"] = sp.left_levels if left else sp.right_levels
                walk(child, {**conds, sp.variable: c})

        walk(self.root, {})
        return {i: out[i] for i in self.leaf_ids}

    def rules(self) -> dict[int, str]:
        """Leaf id -> its rule, e.g. ``"age <= 52 & q2 in yes"`` (``"root"`` for a tree without splits)."""
        return {i: " & ".join(self.nodes[i].rule) or "root" for i in self.leaf_ids}

    def to_frame(self, *, level: float = 0.95) -> pd.DataFrame:
        """Long table of the leaf estimates.

        Parameters
        ----------
        level : float, default 0.95
            Confidence level of the weight intervals.

        Returns
        -------
        pandas.DataFrame
            One row per (leaf, item); columns ``node`` (leaf id), ``item``, ``weight`` (as :attr:`weights`),
            ``ci_low``, ``ci_high`` (its interval: delta method on the logit scale,
            :func:`~survey_weights.profiles.intervals.weight_intervals`, with the covariance of the leaf's refit in
            :attr:`leaf_fits`; NaN without a refit), ``weight_se``, ``log_worth`` (zero-sum), ``se`` (of the
            log-worth), ``n`` (respondents), ``rule``, ``reportable`` (``n >= min_cell_size``: always True, since
            leaves with fewer than :attr:`min_cell_size` respondents are left out; :meth:`summary` lists them).
        """
        rows = []
        rules = self.rules()
        nan = np.full(len(self.items), np.nan)
        for i in self._shown():
            b = self.log_worth(i).to_numpy()
            fit = self.leaf_fits[i]
            iv = weight_intervals(b, fit.vcov.to_numpy() if fit is not None else np.diag(nan), level)
            n = self.cell_sizes[i]
            rows.append(pd.DataFrame({"node": i, "item": list(self.items), "weight": iv["weight"],
                                      "ci_low": iv["ci_low"], "ci_high": iv["ci_high"], "weight_se": iv["weight_se"],
                                      "log_worth": b, "se": fit.se.to_numpy() if fit is not None else nan, "n": n,
                                      "rule": rules[i], "reportable": n >= self.min_cell_size}))
        if not rows:
            cols = ["node", "item", "weight", "ci_low", "ci_high", "weight_se", "log_worth", "se", "n", "rule",
                    "reportable"]
            return pd.DataFrame(columns=cols)
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
        DataFrame indexed like `newdata`: column ``node`` (leaf id), then the leaf's weight of every item (NaN for a
        leaf with fewer than :attr:`min_cell_size` respondents: its weights are withheld).
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
        shown = set(self._shown())
        W = np.array([self.weights_of(i).to_numpy() if i in shown else np.full(len(self.items), np.nan)
                      for i in self.leaf_ids]).reshape(len(self.leaf_ids), len(self.items))
        row = {nid: k for k, nid in enumerate(self.leaf_ids)}
        out = pd.DataFrame(W[[row[a] for a in at]], index=newdata.index, columns=list(self.items))
        out.insert(0, "node", at)
        return out

    # --------------------------------------------------------------------------------------- reporting
    def _reportable(self, what: str, min_cell_size: int | None = None) -> list[int]:
        limit = self.min_cell_size if min_cell_size is None else min_cell_size
        small = [i for i in self.leaf_ids if self.cell_sizes[i] < limit]
        if small:
            warnings.warn(
                f"{len(small)} leaf/leaves with fewer than min_cell_size={limit} respondents "
                f"(node(s) {format_ids(small)}) are not {what}.", SmallGroupWarning, stacklevel=3)
        return [i for i in self.leaf_ids if i not in small]

    def summary(self) -> Summary:
        """Leaf sizes and weights, the leaves' rules, the tree's fit statistics.

        Returns
        -------
        Summary
            ``table``: reportable leaves x (``n``, items) weights; ``notes``: each leaf's rule, and the leaves
            withheld for having fewer than :attr:`min_cell_size` respondents (without their weights).
        """
        tab = self.weights.copy()
        tab.insert(0, "n", [self.cell_sizes[i] for i in tab.index])
        notes = [f"[{i}] {rule}" for i, rule in self.rules().items()]
        small = [i for i in self.leaf_ids if self.cell_sizes[i] < self.min_cell_size]
        if small:
            notes.append(f"Withheld (fewer than min_cell_size={self.min_cell_size} respondents; not in tables, "
                         "plots or exports): " + "; ".join(f"[{i}] (n={self.cell_sizes[i]})" for i in small))
        info = {"respondents": self.data.n_respondents, "inner nodes": self.n_nodes - self.n_leaves,
                "leaves": self.n_leaves, "parameters per node": len(self.root.theta) - 1,
                "log-likelihood": self.loglik, **{k: v for k, v in self.settings.items() if v is not None}}
        return Summary(f"{self.model} tree: leaf weights", tab, info=info, notes=tuple(notes))

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Weights with 95% intervals, one series per reportable leaf (small leaves are never shown).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when None.
        **kwargs
            ``title`` (default ``"<model> tree: <k> leaves"``), ``xlabel``
            (:func:`~survey_weights.plotting.plot_intervals`).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from ..plotting import plot_intervals

        leaves = self._reportable("plotted")
        frame = self.to_frame()
        rules = self.short_rules()
        labels = {i: f"[{i}] {rules[i]} (n={self.cell_sizes[i]})" for i in leaves}
        withheld = self.n_leaves - len(leaves)
        kwargs.setdefault("title", f"{self.model} tree: {self.n_leaves} leaves"
                          + (f" ({withheld} withheld, n < {self.min_cell_size})" if withheld else ""))
        kwargs.setdefault("xlabel", "weight (95% CI)")
        return plot_intervals(frame[frame["node"].isin(leaves)], key="node", ax=ax, labels=labels,
                              reference=1.0 / len(self.items), **kwargs)

    def profiles(self, *, safety: Any = DEFAULT_SAFETY, min_cell_size: int | None = None,
                 level: float = 0.95) -> list:
        """One :class:`~survey_weights.profiles.WeightProfile` per reportable leaf (``source="tree"``).

        Parameters
        ----------
        safety : float, dict or None, default ``{"floor": 0.2}``
            Constraint objective and its rule, as in :func:`~survey_weights.derive_profile` (None: none).
        min_cell_size : int, optional
            Leaves with fewer respondents are withheld (:class:`~survey_weights.exceptions.SmallGroupWarning`);
            default the tree's :attr:`min_cell_size` (which this call does not change).
        level : float, default 0.95
            Confidence level of the intervals.

        Returns
        -------
        list of WeightProfile
            Named ``"tree node <id>: <rule>"``, ``group`` = the leaf's conditions by covariate, derived from the leaf
            refits in :attr:`leaf_fits`, with the hash of the tree's data.

        Raises
        ------
        ValueError
            If a reportable leaf has no refit (its maximum-likelihood estimate does not exist).
        """
        leaves = self._reportable("exported", check_min_cell_size(min_cell_size, self.min_cell_size))
        out = []
        for i in leaves:
            fit = self.leaf_fits[i]
            if fit is None:
                raise ValueError(f"Leaf {i} has no refit (its MLE does not exist). Fix: refit with npseudo > 0.")
            group: dict[str, str] = {}
            for cond in self.nodes[i].rule:
                var, rest = cond.split(" ", 1)
                group[var] = f"{group[var]} & {rest}" if var in group else rest
            out.append(derive_profile(fit, safety=safety, level=level, name=f"tree node {i}: {self.rules()[i]}",
                                      group=group or None, source="tree", data_hash=self.data.data_hash(),
                                      n_respondents=self.cell_sizes[i]))
        return out

    def __str__(self) -> str:
        covs = ", ".join(map(str, self.covariates.columns))
        lines = [f"{self.model} tree ({self.data.n_respondents} respondents; covariates: {covs})", ""]

        def walk(nd: TreeNode, prefix: str, label: str) -> None:
            head = f"{prefix}[{nd.id}] {label}"
            if nd.is_leaf:
                n = self.cell_sizes[nd.id]
                if n < self.min_cell_size:
                    lines.append(f"{head}: n = {n} (fewer than min_cell_size={self.min_cell_size}: weights withheld)")
                    return
                lines.append(f"{head}: n = {n}")
                w = self.weights_of(nd.id)
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
