"""Latent preference classes: finite mixtures of Plackett-Luce models with ties, fitted by EM.

Every respondent belongs to one of K unobserved classes (all of a respondent's rankings share the class); class k
has its own log-worths and tie parameters and prior probability ``pi_k``. :func:`fit_mixture` maximises the
(pseudo-data penalised) likelihood by EM from several random starts; :func:`select_n_classes` compares K = 1, 2,
... by BIC or ICL. Each M-step refits every class on the aggregated sufficient statistics of
:class:`~survey_weights.models._choice.ChoiceDesign` with respondent weights ``posterior x frequency weight``,
warm-started from the previous iteration.

Classes are labelled 1..K in decreasing order of their mixing proportion (ties: by the index of the class's top
item), so labels do not depend on the start that won.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._util.validation import check_option, check_scalar
from ..exceptions import ConvergenceWarning, DominantWeightsWarning
from ..models._choice import ChoiceDesign
from ..models._optim import newton, optimize
from ..models.plackett_luce import warn_best_worst_as_ranking
from ..profiles.cells import check_min_cell_size, reportable
from ..profiles.intervals import weight_intervals
from ..profiles.profile import DEFAULT_SAFETY, derive_profile
from ..results import Summary

__all__ = ["MixtureResult", "adjusted_rand_index", "fit_mixture", "select_n_classes"]

_SHORT_RUN = 25  # EM iterations of each start before the best start is run to convergence


# ---------------------------------------------------------------------------------------------------------------------
def adjusted_rand_index(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Adjusted Rand index of two labelings (Hubert & Arabie 1985); 1 = identical partitions, ~0 = chance."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"The labelings must have the same length. Got {a.shape} and {b.shape}.")
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    tab = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(tab, (ia.ravel(), ib.ravel()), 1)

    def c2(x: np.ndarray) -> float:
        return float(np.sum(x * (x - 1) / 2.0))

    n = len(a)
    s_ij, s_a, s_b = c2(tab), c2(tab.sum(axis=1)), c2(tab.sum(axis=0))
    expected = s_a * s_b / (n * (n - 1) / 2.0) if n > 1 else 0.0
    top = 0.5 * (s_a + s_b)
    if top == expected:
        return 1.0
    return (s_ij - expected) / (top - expected)


# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MixtureResult:
    """A fitted mixture of Plackett-Luce models with ties (from :func:`fit_mixture`).

    Attributes
    ----------
    n_classes : int
    items : tuple
    posterior : pandas.DataFrame
        Respondent id x class (1..K): posterior class probabilities.
    membership : pandas.Series
        Respondent id -> most probable class.
    proportions : pandas.Series
        Mixing proportions by class.
    log_worth : pandas.DataFrame
        Class x item, zero-sum log-worths.
    class_weights : pandas.DataFrame
        Class x item worths (sum to 1 per class); also :attr:`weights`.
    tie_params : pandas.DataFrame
        Class x tie order (delta scale); no columns without ties.
    loglik : float
        Mixture log-likelihood of the data (pseudo-comparisons excluded).
    n_params : int
        ``K (n_items - 1 + n_tie_orders) + K - 1``.
    bic, icl : float
        ``-2 loglik + n_params log(n)`` (n = total respondent weight) and ``bic + 2 * entropy`` of the
        posterior; smaller is better.
    converged : bool
    n_iter : int
        EM iterations of the winning start.
    start_logliks : numpy.ndarray
        Final penalised log-likelihood of every start (spread = how multimodal the likelihood is).
    min_cell_size : int
        Classes with fewer modal members (heads with a positive frequency weight) never appear with their weights in
        a reporting output: :meth:`profiles` (and so exports), :meth:`to_frame`, :attr:`weights`, :meth:`summary`
        and :meth:`plot` withhold them. The model's own attributes (:attr:`class_weights`, :attr:`log_worth`,
        :attr:`posterior`, :attr:`fits`) do not.
    """

    n_classes: int
    items: tuple
    posterior: pd.DataFrame
    membership: pd.Series
    proportions: pd.Series
    log_worth: pd.DataFrame
    class_weights: pd.DataFrame
    tie_params: pd.DataFrame
    loglik: float
    n_params: int
    bic: float
    icl: float
    converged: bool
    n_iter: int
    start_logliks: np.ndarray = field(repr=False)
    npseudo: float = 0.5
    min_cell_size: int = 10
    _rankings: Any = field(default=None, repr=False)
    _theta: np.ndarray | None = field(default=None, repr=False)

    @property
    def class_sizes(self) -> pd.Series:
        """Number of respondents whose most probable class is each class (heads with a positive frequency weight)."""
        memb = self.membership
        if self._rankings is not None:
            memb = memb[np.asarray(self._rankings.respondent_weights, dtype=float) > 0]
        return memb.value_counts().reindex(self.proportions.index, fill_value=0).rename("n")

    def _shown(self) -> list:
        """Classes with at least :attr:`min_cell_size` modal members (no warning)."""
        sizes = self.class_sizes
        return [c for c in self.proportions.index if sizes[c] >= self.min_cell_size]

    @functools.cached_property
    def fits(self) -> list:
        """Per-class fit results (``fit_plackett_luce`` with respondent weights = posterior x frequency weight).

        Their standard errors treat the posterior weights as known (they ignore classification uncertainty), and
        their ``n_respondents`` is the number of modal members of the class.
        """
        from ..models.plackett_luce import fit_plackett_luce

        base = np.asarray(self._rankings.respondent_weights, dtype=float)
        out = []
        sizes = self.class_sizes
        for cls in self.proportions.index:
            r = self._rankings.with_respondent_weights(base * self.posterior[cls].to_numpy())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                # posterior weights: non-members carry ~0, so Kish's n_effective is the class size, by design
                warnings.simplefilter("ignore", DominantWeightsWarning)
                f = fit_plackett_luce(r, npseudo=self.npseudo)
            if dataclasses.is_dataclass(f):
                f = dataclasses.replace(f, n_respondents=int(sizes[cls]))
            out.append(f)
        return out

    @property
    def weights(self) -> pd.DataFrame:
        """Weights, reportable classes x items (index ``class``, columns ``item``); each row sums to 1.

        Classes with fewer than :attr:`min_cell_size` modal members are left out (:attr:`class_weights` has all).
        """
        return self.class_weights.loc[self._shown()]

    def to_frame(self, *, level: float = 0.95) -> pd.DataFrame:
        """Long table of the per-class estimates.

        Parameters
        ----------
        level : float, default 0.95
            Confidence level of the weight intervals.

        Returns
        -------
        pandas.DataFrame
            One row per (class, item); columns ``class``, ``item``, ``weight`` (the EM estimate, as
            :attr:`weights`), ``ci_low``, ``ci_high`` (its interval: delta method on the logit scale, the recipe of
            :func:`~survey_weights.profiles.intervals.weight_intervals`, with the covariance of the class's refit in
            :attr:`fits`, which treats the posterior weights as known), ``weight_se``, ``log_worth`` (zero-sum),
            ``se`` (of the log-worth), ``proportion`` (mixing proportion), ``n`` (modal members). Classes with fewer
            than :attr:`min_cell_size` modal members are left out (:meth:`summary` names them).
        """
        rows = []
        sizes = self.class_sizes
        shown = set(self._shown())
        for k, cls in enumerate(self.proportions.index):
            if cls not in shown:
                continue
            b = self.log_worth.loc[cls].to_numpy()
            V = self.fits[k].vcov.to_numpy()
            iv = weight_intervals(b, V, level)
            rows.append(pd.DataFrame({
                "class": cls, "item": list(self.items), "weight": self.class_weights.loc[cls].to_numpy(),
                "ci_low": iv["ci_low"], "ci_high": iv["ci_high"], "weight_se": iv["weight_se"], "log_worth": b,
                "se": self.fits[k].se.to_numpy(), "proportion": self.proportions[cls], "n": int(sizes[cls])}))
        if not rows:
            return pd.DataFrame(columns=["class", "item", "weight", "ci_low", "ci_high", "weight_se", "log_worth",
                                         "se", "proportion", "n"])
        return pd.concat(rows, ignore_index=True)

    def summary(self) -> Summary:
        """Class proportions, sizes and weights; fit statistics.

        Returns
        -------
        Summary
            ``table``: reportable classes x (``proportion``, ``n``, items); ``ties``: their tie parameters (log
            scale); ``notes``: the classes withheld for having fewer than :attr:`min_cell_size` modal members.
        """
        shown = self._shown()
        sizes = self.class_sizes
        tab = self.class_weights.loc[shown].copy()
        tab.insert(0, "n", sizes.loc[shown].to_numpy())
        tab.insert(0, "proportion", self.proportions.loc[shown].to_numpy())
        ties = np.log(self.tie_params.loc[shown]) if self.tie_params.shape[1] else pd.DataFrame()
        info = {"log-likelihood": self.loglik, "parameters": self.n_params, "BIC": self.bic, "ICL": self.icl,
                "npseudo": self.npseudo, "EM iterations": self.n_iter, "converged": self.converged,
                "starts": len(self.start_logliks), "min_cell_size": self.min_cell_size}
        small = [c for c in self.proportions.index if c not in shown]
        notes = ()
        if small:
            notes = (f"Withheld (fewer than min_cell_size={self.min_cell_size} modal members; not in tables, plots "
                     "or exports): " + "; ".join(f"class {c} (n={int(sizes[c])})" for c in small),)
        return Summary(f"Plackett-Luce mixture, {self.n_classes} classes: weights", tab, ties, info, notes=notes)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Weights with 95% intervals, one series per reportable class (small classes are never shown).

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

        sizes = self.class_sizes
        shown = reportable({f"class {c}": int(sizes[c]) for c in self.proportions.index}, self.min_cell_size,
                           what="class(es)", output="the plot")
        labels = {c: f"class {c} ({self.proportions[c]:.0%}, n={int(sizes[c])})" for c in self.proportions.index
                  if f"class {c}" in shown}
        kwargs.setdefault("xlabel", "weight (95% CI)")
        return plot_intervals(self.to_frame(), key="class", ax=ax, labels=labels, reference=1.0 / len(self.items),
                              **kwargs)

    def profiles(self, *, safety: Any = DEFAULT_SAFETY, min_cell_size: int | None = None,
                 level: float = 0.95) -> list:
        """One :class:`~survey_weights.profiles.WeightProfile` per class (``source="class"``).

        Parameters
        ----------
        safety : float, dict or None, default ``{"floor": 0.2}``
            Constraint objective and its rule, as in :func:`~survey_weights.derive_profile` (None: none).
        min_cell_size : int, optional
            Classes with fewer modal members are withheld (:class:`~survey_weights.exceptions.SmallGroupWarning`);
            default the result's :attr:`min_cell_size` (10).
        level : float, default 0.95
            Confidence level of the intervals.

        Returns
        -------
        list of WeightProfile
            Named ``"class <k>"``, ``group={"class": k}``, derived from the class's refit in :attr:`fits`
            (weights within ~1e-4 of :attr:`weights`), with the hash of the fitted rankings.
        """
        sizes = self.class_sizes
        keep = set(reportable({f"class {c}": int(sizes[c]) for c in self.proportions.index},
                              check_min_cell_size(min_cell_size, self.min_cell_size), what="class(es)"))
        return [derive_profile(self.fits[k], safety=safety, level=level, name=f"class {c}", group={"class": int(c)},
                               source="class", data_hash=self._rankings.data_hash())
                for k, c in enumerate(self.proportions.index) if f"class {c}" in keep]

    def __repr__(self) -> str:
        props = ", ".join(f"{p:.2f}" for p in self.proportions)
        return (f"MixtureResult({self.n_classes} classes, proportions [{props}], loglik={self.loglik:.3f}, "
                f"bic={self.bic:.2f}, icl={self.icl:.2f})")


# ---------------------------------------------------------------------------------------------------------------------
def _lse(x: np.ndarray) -> np.ndarray:
    mx = x.max(axis=1)
    return mx + np.log(np.exp(x - mx[:, None]).sum(axis=1))


def _em(design: ChoiceDesign, num: np.ndarray, counts: Any, theta: np.ndarray, logpi: np.ndarray, *,
        npseudo: float, max_iter: int, tol: float):
    """EM (generalised: two Newton steps of the engine's driver per M-step) from (theta, logpi).

    Returns theta, logpi, log posterior, penalised objective, iterations, converged.
    """
    w = design.respondent_weights
    K = len(logpi)
    free = design.free(0)
    prev = -np.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is reported after the loop
        ll = np.column_stack([design.respondent_loglik(theta[k]) for k in range(K)]) + logpi
        norm = _lse(ll)
        logpost = ll - norm[:, None]
        obj = float(w @ norm)
        if npseudo > 0:
            obj += sum(design.penalty(theta[k], 0)[0] for k in range(K))
        if abs(obj - prev) < tol * (1.0 + abs(obj)):
            converged = True
            break
        prev = obj
        wk = np.exp(logpost) * w[:, None]
        tot = wk.sum(axis=0)
        logpi = np.log(np.maximum(tot, 1e-300) / tot.sum())
        S = wk.T @ num
        C = np.asarray((counts.T @ wk).T)
        for k in range(K):
            theta[k] = newton(design.with_stats(S[k], C[k]), theta[k], free, 2, 1e-14).theta
    return theta, logpi, logpost, obj, it, converged


def fit_mixture(
    rankings: Any,
    n_classes: int,
    *,
    seed: int | np.random.Generator | None,
    n_starts: int = 10,
    max_iter: int = 2000,
    tol: float = 1e-8,
    npseudo: float = 0.5,
    min_cell_size: int = 10,
    progress: bool = False,
) -> MixtureResult:
    """Fit a finite mixture of Plackett-Luce models with ties (latent preference classes) by EM.

    Parameters
    ----------
    rankings : Rankings
        Several rankings per respondent are allowed; they share the respondent's class. Frequency weights count.
    n_classes : int
        Number of classes K >= 1.
    seed : int, Generator or None
        Seed of the random starts (required, so results are reproducible; None = fresh entropy).
    n_starts : int, default 10
        Random starts (class log-worths = pooled estimate + N(0, 1) noise). Each runs 25 EM iterations; the
        start with the best penalised likelihood is then run to convergence (em-EM).
    max_iter : int, default 2000
        EM iterations of the best start (EM crawls when a small class drives a tie parameter to its boundary
        at 0: the pseudo-comparisons, which never tie, pull it there in a class without observed ties).
    tol : float, default 1e-8
        Relative change of the penalised log-likelihood that stops EM.
    npseudo : float, default 0.5
        Ghost-item pseudo-comparisons per item and class (a weak prior that keeps small classes finite).
    min_cell_size : int, default 10
        Classes with fewer modal members (heads with a positive frequency weight) are withheld from the result's
        tables, plots and profiles (:attr:`MixtureResult.min_cell_size`).
    progress : bool, default False
        tqdm progress bar over starts.

    Returns
    -------
    MixtureResult
    """
    warn_best_worst_as_ranking(rankings, stacklevel=2)
    for attr in ("_ptr", "_item", "_rank", "_resp"):
        if not hasattr(rankings, attr):
            raise TypeError(f"`rankings` must be a survey_weights.Rankings. Got {type(rankings).__name__}.")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"`n_classes` must be an integer >= 1. Got {n_classes!r}.")
    check_scalar(n_starts, "n_starts", kind=(int, np.integer), min_val=1)
    check_scalar(max_iter, "max_iter", kind=(int, np.integer), min_val=1)
    check_scalar(tol, "tol", min_val=0.0, include_min=False)
    check_scalar(npseudo, "npseudo", min_val=0.0)
    min_cell_size = check_min_cell_size(min_cell_size)
    if n_classes > rankings.n_respondents:
        raise ValueError(f"`n_classes` ({n_classes}) exceeds the number of respondents ({rankings.n_respondents}).")
    from .._util.progress import tqdm

    design = ChoiceDesign.from_data(rankings, npseudo=npseudo)
    num, counts = design.respondent_stats()
    rng = np.random.default_rng(seed)
    K, m, p = int(n_classes), design.n_items, design.n_params
    pooled = optimize(design.with_npseudo(max(npseudo, 1e-3)), method="newton", start=None, max_iter=100,
                      tol=1e-10).theta
    # em-EM (Biernacki et al. 2003): short runs from every start, then the best one to convergence
    short = min(_SHORT_RUN, int(max_iter))
    best = None
    objs = []
    for _ in tqdm(range(n_starts if K > 1 else 1), desc=f"EM, {K} classes", disable=not progress):
        theta = np.tile(pooled, (K, 1))
        if K > 1:
            theta[:, :m] += rng.normal(size=(K, m))
        res = _em(design, num, counts, theta, np.full(K, -np.log(K)), npseudo=npseudo, max_iter=short,
                  tol=float(tol))
        if best is None or res[3] > best[3] + 1e-9 * abs(res[3]):
            best = res
        objs.append(res[3])
    theta, logpi, logpost, _, n_iter, converged = best
    if not converged:
        theta, logpi, logpost, obj, more, converged = _em(design, num, counts, theta, logpi, npseudo=npseudo,
                                                          max_iter=int(max_iter) - short + 1, tol=float(tol))
        n_iter += more - 1
        objs[int(np.argmax(objs))] = obj
    if not converged:
        warnings.warn(f"EM did not converge in max_iter={max_iter} iterations. Fix: raise `max_iter`.",
                      ConvergenceWarning, stacklevel=2)
    # deterministic labels: by decreasing proportion, then by the index of the top item
    beta = theta[:, :m] - theta[:, :m].mean(axis=1, keepdims=True)
    order = sorted(range(K), key=lambda k: (-round(float(np.exp(logpi[k])), 9), int(np.argmax(beta[k]))))
    theta, logpi, logpost, beta = theta[order], logpi[order], logpost[:, order], beta[order]
    labels = pd.Index(np.arange(1, K + 1), name="class")
    ids = rankings.respondent_ids
    post = pd.DataFrame(np.exp(logpost), index=ids, columns=labels)
    w = design.respondent_weights
    ll_resp = np.column_stack([design.respondent_loglik(theta[k]) for k in range(K)]) + logpi
    loglik = float(w @ _lse(ll_resp))
    n_par = K * (p - 1) + K - 1
    n_eff = float(w.sum())
    bic = -2.0 * loglik + n_par * np.log(n_eff)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -float(np.sum(w[:, None] * np.where(post.to_numpy() > 0, post.to_numpy() * logpost, 0.0)))
    item_idx = pd.Index(rankings.items, name="item")
    e = np.exp(beta - beta.max(axis=1, keepdims=True))
    return MixtureResult(
        n_classes=K, items=tuple(rankings.items), posterior=post,
        membership=pd.Series(labels.to_numpy()[np.argmax(logpost, axis=1)], index=ids, name="class"),
        proportions=pd.Series(np.exp(logpi), index=labels, name="proportion"),
        log_worth=pd.DataFrame(beta, index=labels, columns=item_idx),
        class_weights=pd.DataFrame(e / e.sum(axis=1, keepdims=True), index=labels, columns=item_idx),
        tie_params=pd.DataFrame(np.exp(theta[:, m:]), index=labels,
                                columns=[f"tie{k}" for k in design.tie_orders]),
        loglik=loglik, n_params=n_par, bic=float(bic), icl=float(bic + 2.0 * ent), converged=bool(converged),
        n_iter=int(n_iter), start_logliks=np.asarray(objs), npseudo=float(npseudo), min_cell_size=min_cell_size,
        _rankings=rankings,
        _theta=theta.copy(),
    )


def select_n_classes(
    rankings: Any,
    max_classes: int = 4,
    *,
    criterion: str = "bic",
    seed: int | None,
    min_classes: int = 1,
    **kwargs: Any,
) -> tuple[MixtureResult, pd.DataFrame]:
    """Fit mixtures with ``min_classes..max_classes`` classes and pick the one with the smallest BIC or ICL.

    Parameters
    ----------
    rankings : Rankings
    max_classes : int, default 4
    criterion : {"bic", "icl"}, default "bic"
    seed : int or None
        Seed for every fit (the same seed is used for each K).
    min_classes : int, default 1
    **kwargs
        Passed to :func:`fit_mixture` (``n_starts``, ``max_iter``, ``tol``, ``npseudo``, ``progress``).

    Returns
    -------
    best : MixtureResult
    table : DataFrame
        One row per K: n_classes, loglik, n_params, bic, icl, smallest_class (modal members), chosen.

    Notes
    -----
    ``select_n_classes`` only fits; what is reported of the chosen mixture follows its ``min_cell_size``.
    """
    check_option(criterion, "criterion", ("bic", "icl"))
    check_scalar(min_classes, "min_classes", kind=(int, np.integer), min_val=1)
    check_scalar(max_classes, "max_classes", kind=(int, np.integer), min_val=min_classes)
    fits = [fit_mixture(rankings, k, seed=seed, **kwargs) for k in range(int(min_classes), int(max_classes) + 1)]
    table = pd.DataFrame({
        "n_classes": [f.n_classes for f in fits], "loglik": [f.loglik for f in fits],
        "n_params": [f.n_params for f in fits], "bic": [f.bic for f in fits], "icl": [f.icl for f in fits],
        "smallest_class": [int(f.class_sizes.min()) for f in fits]})
    k = int(np.argmin(table[criterion].to_numpy()))
    table["chosen"] = np.arange(len(fits)) == k
    return fits[k], table
