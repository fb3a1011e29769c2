"""The result of a pool evaluation: expected scores with paired intervals, oracle and MOD fronts, trend, crossover,
hypervolume, and a plot. Torch-free; built by :func:`survey_weights.evaluation.evaluate_pool` or
:meth:`PoolEvaluation.from_logps`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._util.simplex import mean_kl
from .pool import (
    CandidatePool,
    _weight_vector,
    crossover_test,
    expected_scores,
    hypervolume_2d,
    mod_distribution,
    oracle_distribution,
    page_trend,
    paired_bootstrap,
    pool_distribution,
)
from .scoring import ModelInfo

__all__ = ["PoolEvaluation"]


@dataclass(frozen=True)
class PoolEvaluation:
    """Models scored on one :class:`~survey_weights.evaluation.pool.CandidatePool`.

    Attributes
    ----------
    pool : CandidatePool
    logps : dict name -> ndarray, shape (P, K)
        Summed response log-probabilities of every candidate under each model.
    lengths : ndarray, shape (P, K)
        Response tokens per candidate (for ``normalise="mean"``).
    models : tuple of ModelInfo
        Name, kind and weights of each model, in evaluation order.
    base : str
        The reference model (no adapter): the oracle's :math:`q_{ref}` and the baseline of gains.
    normalise : {"sum", "mean"}
        Summed or per-token log-probabilities define :math:`q(k|x)` (:func:`~.pool.pool_distribution`).
    beta : float
        KL strength of the oracle (the training β).
    reward_scale : float
        Reward units per rubric point in the oracle.
    n_boot, seed, level
        Paired bootstrap over prompts (the same resamples for every statistic).
    """

    pool: CandidatePool
    logps: dict[str, np.ndarray]
    lengths: np.ndarray
    models: tuple[ModelInfo, ...]
    base: str
    normalise: str = "sum"
    beta: float = 0.1
    reward_scale: float = 1.0
    n_boot: int = 2000
    seed: int = 0
    level: float = 0.95
    settings: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------ construction
    @classmethod
    def from_logps(cls, pool: CandidatePool, logps: Mapping[str, np.ndarray], *, base: str,
                   lengths: np.ndarray | None = None, models: Sequence[ModelInfo] | None = None,
                   **kw: Any) -> PoolEvaluation:
        """From precomputed log-probabilities (e.g. a hand-built pool in a test).

        Parameters
        ----------
        pool : CandidatePool
        logps : mapping name -> array, shape (P, K)
        base : str
            Name of the reference model in `logps`.
        lengths : array, shape (P, K), optional
            Default: ones (then ``normalise="mean"`` equals ``"sum"``).
        models : sequence of ModelInfo, optional
            Default: kind "base" for `base`, "modpo" for the others, no weights.
        **kw
            ``normalise``, ``beta``, ``reward_scale``, ``n_boot``, ``seed``, ``level``, ``settings``.
        """
        shape = pool.scores.shape[:2]
        lp = {}
        for name, v in logps.items():
            a = np.asarray(v, dtype=float)
            if a.shape != shape:
                raise ValueError(f"`logps[{name!r}]` must have shape {shape} (prompts x candidates). Got {a.shape}.")
            if not np.isfinite(a[pool.mask]).all():
                raise ValueError(f"`logps[{name!r}]` has non-finite values on real candidates.")
            lp[str(name)] = a
        if base not in lp:
            raise ValueError(f"`base` {base!r} is not in `logps` ({list(lp)}). Fix: include the reference model.")
        infos = tuple(models) if models is not None else tuple(
            ModelInfo(n, "base" if n == base else "modpo") for n in lp)
        if [m.name for m in infos] != list(lp):
            raise ValueError("`models` must list the models of `logps` in the same order.")
        ln = np.ones(shape) if lengths is None else np.asarray(lengths, dtype=float)
        return cls(pool, lp, ln, infos, base, **kw)

    # ------------------------------------------------------------------------------------------ distributions
    @property
    def names(self) -> list[str]:
        """Model names in evaluation order."""
        return [m.name for m in self.models]

    def info(self, name: str) -> ModelInfo:
        """The :class:`ModelInfo` of model `name`."""
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"No model {name!r}; models: {self.names}.")

    def distribution(self, name: str) -> np.ndarray:
        """:math:`q(k|x)` of model `name`, shape (P, K)."""
        self.info(name)
        return pool_distribution(self.logps[name], self.pool.mask, lengths=self.lengths, normalise=self.normalise)

    def per_prompt(self, name: str) -> pd.DataFrame:
        """Expected score per prompt (rows, index = prompt id) and criterion (columns) of model `name`."""
        return self._frame(expected_scores(self.distribution(name), self.pool))

    def _frame(self, values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=pd.Index(self.pool.prompt_ids, name="prompt_id"),
                            columns=list(self.pool.criteria))

    def _boot(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return paired_bootstrap(values, n_boot=self.n_boot, seed=self.seed, level=self.level)

    def kl_to_base(self, name: str) -> float:
        """Mean over prompts of KL(q_name ‖ q_base) on the pool (nats): how far the model moved, seen on the pool."""
        return mean_kl(self.distribution(name), self.distribution(self.base))

    # ------------------------------------------------------------------------------------------ tables
    def to_frame(self) -> pd.DataFrame:
        """Tidy: one row per model x criterion with ``expected``, its interval ``ci_lo``/``ci_hi``, the paired
        gain over the base ``gain``/``gain_lo``/``gain_hi``, and ``kind``, ``weights``, ``normalise``."""
        base = expected_scores(self.distribution(self.base), self.pool)
        rows = []
        for m in self.models:
            e = expected_scores(self.distribution(m.name), self.pool)
            est, lo, hi = self._boot(e)
            g, glo, ghi = self._boot(e - base)
            for i, c in enumerate(self.pool.criteria):
                rows.append((m.name, m.kind, m.weights, c, est[i], lo[i], hi[i], g[i], glo[i], ghi[i], self.normalise))
        return pd.DataFrame(rows, columns=["model", "kind", "weights", "criterion", "expected", "ci_lo", "ci_hi",
                                           "gain", "gain_lo", "gain_hi", "normalise"])

    def summary(self) -> pd.DataFrame:
        """One row per model: kind, KL to the base on the pool, and per criterion the expected score and the
        gain over the base (``<criterion>`` and ``<criterion>_vs_base``)."""
        t = self.to_frame()
        wide = t.pivot(index="model", columns="criterion", values="expected")[list(self.pool.criteria)]
        gain = t.pivot(index="model", columns="criterion", values="gain")[list(self.pool.criteria)]
        out = pd.concat([wide, gain.add_suffix("_vs_base")], axis=1).loc[self.names]
        out.insert(0, "kl_to_base", [self.kl_to_base(n) for n in self.names])
        out.insert(0, "kind", [m.kind for m in self.models])
        out.columns.name = None
        return out

    # ------------------------------------------------------------------------------------------ objectives
    def objective(self, name: str, weights: Mapping[str, float]) -> np.ndarray:
        """Per-prompt weighted objective :math:`J_w = \\sum_c w_c E_c` of model `name`, shape (P,)."""
        w = _weight_vector(weights, self.pool.criteria)
        return self.per_prompt(name).to_numpy() @ w

    def difference(self, a: str, b: str, weights: Mapping[str, float]) -> dict[str, Any]:
        """Model `a` minus model `b` on the weighted objective `weights`, averaged over prompts, with its paired
        bootstrap interval: ``{"estimate", "ci": [lo, hi]}``."""
        d = self.objective(a, weights) - self.objective(b, weights)
        est, lo, hi = self._boot(d[:, None])
        return {"estimate": float(est[0]), "ci": [float(lo[0]), float(hi[0])]}

    def oracle(self, weights: Mapping[str, float], *, kl: float | None = None) -> np.ndarray:
        """Per-prompt expected scores (P, C) of the oracle :math:`q^*_w` (:func:`~.pool.oracle_distribution`) at the
        evaluation's β, or - with `kl` - at the β where it is `kl` nats from the base (:meth:`oracle_beta`): the
        best any model can do on `weights`' objective at that distance."""
        beta = self.beta if kl is None else self.oracle_beta(weights, kl)
        return expected_scores(self._oracle_q(weights, beta), self.pool)

    def _oracle_q(self, weights: Mapping[str, float], beta: float) -> np.ndarray:
        return oracle_distribution(self.logps[self.base], self.pool, weights, beta=beta,
                                   reward_scale=self.reward_scale, lengths=self.lengths, normalise=self.normalise)

    def oracle_beta(self, weights: Mapping[str, float], kl: float) -> float:
        """The β at which the oracle :math:`q^*_w` is `kl` nats from the base on the pool (mean over prompts of
        KL(q* ‖ q_base), as :meth:`kl_to_base`): the KL-constrained optimum at that distance. The KL falls
        monotonically as β grows; bisection on log β over [1e-4, 1e6] (inf when `kl` is 0).

        Raises
        ------
        ValueError
            `kl` is negative or not finite, or beyond the largest distance the oracle reaches (β = 1e-4).
        """
        if isinstance(kl, bool) or not isinstance(kl, (int, float)) or not np.isfinite(kl) or kl < 0:
            raise ValueError(f"`kl` must be a finite number >= 0 (nats). Got {kl!r}.")
        if kl == 0:
            return float("inf")
        base = self.distribution(self.base)  # once, not per bisection step
        lo, hi = np.log(1e-4), np.log(1e6)
        if mean_kl(self._oracle_q(weights, float(np.exp(lo))), base) < kl:
            raise ValueError(f"`kl` = {kl:g} nats is beyond the oracle's reach on this pool (its KL at β = 1e-4 is "
                             "smaller). Fix: pass a smaller distance.")
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if mean_kl(self._oracle_q(weights, float(np.exp(mid))), base) > kl:
                lo = mid
            else:
                hi = mid
        return float(np.exp(0.5 * (lo + hi)))

    def oracle_front(self, x: str = "empathy", y: str = "safety", n: int = 11, *, kl: float | None = None
                     ) -> pd.DataFrame:
        """Oracle expected scores for ``w = (1 - t) e_x + t e_y``, t = 0..1 (n points): ``t, <x>, <y>``; at the
        evaluation's β, or - with `kl` - each point the KL-constrained optimum at that distance from the base
        (:meth:`oracle_beta`): the best front any model `kl` nats from the base can reach."""
        rows = []
        for t in np.linspace(0.0, 1.0, n):
            e = self.oracle({x: 1.0 - t, y: t}, kl=kl).mean(axis=0)
            rows.append((t, e[self.pool.criteria.index(x)], e[self.pool.criteria.index(y)]))
        return pd.DataFrame(rows, columns=["t", x, y])

    def mod_front(self, a: str, b: str, *, x: str = "empathy", y: str = "safety", n: int = 11) -> pd.DataFrame:
        """MOD decoding front from models `a` and `b`: expected ``x``, ``y`` of :math:`q \\propto \\pi_a^{1-w}\\pi_b^{w}`."""
        rows = []
        for w in np.linspace(0.0, 1.0, n):
            q = mod_distribution(self.logps[a], self.logps[b], float(w), self.pool.mask, lengths=self.lengths,
                                 normalise=self.normalise)
            e = expected_scores(q, self.pool).mean(axis=0)
            rows.append((w, e[self.pool.criteria.index(x)], e[self.pool.criteria.index(y)]))
        return pd.DataFrame(rows, columns=["w", x, y])

    def oracle_gain(self, weights_p: Mapping[str, float], weights_q: Mapping[str, float], *,
                    kl_p: float | None = None, kl_q: float | None = None) -> dict[str, Any]:
        """Predicted gain of profile p over q on p's objective at the oracle: ``J_p(q*_p) - J_p(q*_q)``, with its
        bootstrap standard error and interval (``estimate``, ``se``, ``ci``) and ``detectable`` (estimate >= 2 se).

        By default both oracles are at the evaluation's β. With ``kl_p`` / ``kl_q`` each is the KL-constrained
        optimum at that distance from the base (:meth:`oracle_beta`; e.g. the distances two adapters reached,
        :meth:`kl_to_base`): the gain the best possible pair of models *at those distances* would show, so a
        crossover that fails where this prediction is below twice its SE was not detectable at that training
        budget, and one that fails where it is large was missed by the training."""
        w = _weight_vector(weights_p, self.pool.criteria)
        out = self._mean_with_se((self.oracle(weights_p, kl=kl_p) - self.oracle(weights_q, kl=kl_q)) @ w)
        return {**out, "detectable": bool(out["estimate"] >= 2 * out["se"])}

    def oracle_improvement(self, weights: Mapping[str, float], *, kl: float | None = None) -> dict[str, Any]:
        """What the oracle gains over the base on `weights`' own objective: ``J_w(q*_w) - J_w(base)``, at the
        evaluation's β or - with `kl` - at that distance from the base (:meth:`oracle_beta`), with its bootstrap
        standard error and interval (``estimate``, ``se``, ``ci``). An adapter's gain over the base divided by
        this, at the adapter's own :meth:`kl_to_base`, is how much of the best possible gain at its distance its
        training reached (its efficiency)."""
        w = _weight_vector(weights, self.pool.criteria)
        return self._mean_with_se((self.oracle(weights, kl=kl) - self.per_prompt(self.base).to_numpy()) @ w)

    def _mean_with_se(self, d: np.ndarray) -> dict[str, Any]:
        """Mean of per-prompt values `d` (P,) with the paired bootstrap's interval and standard error (the same
        resamples as every other statistic): ``{"estimate", "se", "ci"}``."""
        est, lo, hi = self._boot(d)
        idx = np.random.default_rng(self.seed).integers(0, len(d), size=(self.n_boot, len(d)))
        se = float(d[idx].mean(axis=1).std(ddof=1))
        return {"estimate": float(est), "se": se, "ci": [float(lo), float(hi)]}

    # ------------------------------------------------------------------------------------------ tests
    def trend(self, names: Sequence[str], criterion: str, direction: str = "increasing") -> dict[str, Any]:
        """Page's trend test of `criterion` across models `names` in their order (:func:`~.pool.page_trend`)."""
        v = np.column_stack([self.per_prompt(n)[criterion].to_numpy() for n in names])
        return page_trend(v, direction=direction)

    def crossover(self, p: str, q: str, weights_p: Mapping[str, float], weights_q: Mapping[str, float]
                  ) -> dict[str, Any]:
        """Crossover test of models `p` and `q` with their profiles' weights (:func:`~.pool.crossover_test`);
        the result also holds ``profiles`` ``[p, q]``."""
        out = crossover_test(self.objective(p, weights_p), self.objective(q, weights_p), self.objective(q, weights_q),
                             self.objective(p, weights_q), n_boot=self.n_boot, seed=self.seed, level=self.level)
        return {"profiles": [p, q], **out}

    def point(self, name: str, x: str = "empathy", y: str = "safety") -> tuple[float, float]:
        """Expected ``(x, y)`` of model `name`."""
        e = self.per_prompt(name)[[x, y]].mean()
        return float(e[x]), float(e[y])

    def hypervolume(self, names: Sequence[str] | np.ndarray, *, x: str = "empathy", y: str = "safety",
                    reference: Sequence[float] | None = None) -> float:
        """Hypervolume of the front of models `names` (or of an (n, 2) array of points) against `reference`
        (default: the base model's point)."""
        pts = (np.asarray(names, dtype=float) if isinstance(names, np.ndarray)
               else np.array([self.point(n, x, y) for n in names]))
        ref = self.point(self.base, x, y) if reference is None else reference
        return hypervolume_2d(pts, ref)

    def to_dict(self, **extra: Any) -> dict[str, Any]:
        """JSON-ready block: ``criteria``, ``normalise``, ``beta``, ``n_prompts``, ``base``, ``models`` (``name, kind,
        weights, expected, ci, gain, gain_ci, kl_to_base``) and any `extra` (e.g. ``trend=``, ``crossover=``,
        ``hypervolume=``)."""
        t = self.to_frame()
        models = []
        for m in self.models:
            r = t[t["model"] == m.name].set_index("criterion")
            models.append({"name": m.name, "kind": m.kind, "weights": m.weights,
                           "expected": {c: round(float(r.loc[c, "expected"]), 6) for c in self.pool.criteria},
                           "ci": {c: [round(float(r.loc[c, "ci_lo"]), 6), round(float(r.loc[c, "ci_hi"]), 6)]
                                  for c in self.pool.criteria},
                           "gain": {c: round(float(r.loc[c, "gain"]), 6) for c in self.pool.criteria},
                           "gain_ci": {c: [round(float(r.loc[c, "gain_lo"]), 6), round(float(r.loc[c, "gain_hi"]), 6)]
                                       for c in self.pool.criteria},
                           "kl_to_base": round(self.kl_to_base(m.name), 6)})
        return {"pool": self.pool.name, "criteria": list(self.pool.criteria), "normalise": self.normalise,
                "beta": self.beta, "reward_scale": self.reward_scale, "n_prompts": self.pool.n_prompts,
                "n_boot": self.n_boot, "seed": self.seed, "level": self.level, "base": self.base, "models": models,
                **extra}

    # ------------------------------------------------------------------------------------------ plot
    def plot(self, ax: Any = None, *, x: str = "empathy", y: str = "safety", oracle: bool = True,
             fronts: Mapping[str, Sequence[str]] | None = None, labels: bool | str = True,
             relative_to: str | None = None, oracle_kl: float | str | None = None) -> Any:
        """Expected ``x`` vs ``y`` per model with bootstrap whiskers, the oracle front as a line, and `fronts`
        (label -> ordered model names) joined by lines; labels are offset alternately so they do not overlap.
        ``labels="legend"`` names the models in a legend outside the axes instead (for many models close
        together; every model gets its own colour and marker); ``labels=False`` names none.

        ``relative_to`` (a model name, e.g. the base): plot each model's gain over that model on ``x`` and ``y``
        with *paired* bootstrap whiskers (the same resampled prompts for both models), which resolve differences
        that the models' own intervals - dominated by how the prompts differ - hide; the oracle front and `fronts`
        are shifted the same way. ``oracle_kl``: draw the oracle front at that distance from the base (nats,
        :meth:`oracle_front` with ``kl``) instead of at the evaluation's β; ``"median"``: at the median
        :meth:`kl_to_base` of the models other than the base - the best front reachable by models as far from the
        base as these are.

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        if relative_to is not None and relative_to not in self.names:
            raise ValueError(f"`relative_to` {relative_to!r} is not a model of this evaluation ({self.names}).")
        kl = self._plot_kl(oracle_kl)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4.5))
        t = self.to_frame().set_index(["model", "criterion"]) if relative_to is None else None  # else: paired gains
        ox, oy = self.point(relative_to, x, y) if relative_to is not None else (0.0, 0.0)
        if oracle:
            what = f"oracle (β={self.beta:g})" if kl is None else f"oracle at KL {kl:.3g} from the base"
            try:
                f = self.oracle_front(x, y, n=21, kl=kl)
            except ValueError:  # a distance beyond the oracle's reach on this pool: its front at beta instead
                f, what, kl = self.oracle_front(x, y, n=21), f"oracle (β={self.beta:g}; KL {kl:.3g} out of reach)", None
            ax.plot(f[x] - ox, f[y] - oy, "-" if kl is None else "--", color="0.6", lw=1.2, label=what, zorder=1)
        for label, names in (fronts or {}).items():
            pts = np.array([self.point(n, x, y) for n in names])
            ax.plot(pts[:, 0] - ox, pts[:, 1] - oy, "-", lw=1.0, alpha=0.7, label=label, zorder=2)
        order = sorted(self.names, key=lambda n: self.point(n, x, y))
        markers = "o^vDsP*X<>hp"
        palette = plt.get_cmap("tab20" if len(order) > 10 else "tab10")
        n_col = palette.N
        for i, n in enumerate(order):
            if t is not None:
                ex, ey = t.loc[(n, x), "expected"], t.loc[(n, y), "expected"]
                xlo, xhi, ylo, yhi = (t.loc[(n, x), "ci_lo"], t.loc[(n, x), "ci_hi"], t.loc[(n, y), "ci_lo"],
                                      t.loc[(n, y), "ci_hi"])
            else:
                dx, dy_ = self.difference(n, relative_to, {x: 1.0}), self.difference(n, relative_to, {y: 1.0})
                ex, ey = dx["estimate"], dy_["estimate"]
                (xlo, xhi), (ylo, yhi) = dx["ci"], dy_["ci"]
            is_ref = n == (relative_to if relative_to is not None else self.base)
            style = ({"fmt": "s", "color": "k"} if is_ref else
                     {"fmt": markers[(i // n_col) % len(markers)] if labels == "legend" else "o",
                      "color": palette(i % n_col) if labels == "legend" else None})
            ax.errorbar([ex], [ey], xerr=[[ex - xlo], [xhi - ex]], yerr=[[ey - ylo], [yhi - ey]], ms=5, capsize=2,
                        lw=0.8, zorder=3, label=n if labels == "legend" else None, **style)
            if labels and labels != "legend":
                dy = (8 + 9 * (i % 3)) * (1 if i % 2 == 0 else -1)
                ax.annotate(n, (ex, ey), xytext=(6, dy), textcoords="offset points", fontsize=7,
                            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.5"})
        if relative_to is None:
            ax.set_xlabel(f"pool-expected {x}")
            ax.set_ylabel(f"pool-expected {y}")
        else:
            ax.axhline(0.0, color="0.8", lw=0.8, zorder=0)
            ax.axvline(0.0, color="0.8", lw=0.8, zorder=0)
            ax.set_xlabel(f"{x}: gain over {relative_to} (paired 95% interval)")
            ax.set_ylabel(f"{y}: gain over {relative_to} (paired 95% interval)")
        ax.set_title(f"{self.pool.name}: {self.pool.n_prompts} prompts, q from {self.normalise} log-probs")
        if labels == "legend":
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        elif oracle or fronts:
            ax.legend(fontsize=7, loc="best")
        return ax

    def _plot_kl(self, oracle_kl: float | str | None) -> float | None:
        """:meth:`plot`'s ``oracle_kl`` as nats (None: at β)."""
        if oracle_kl is None:
            return None
        if oracle_kl == "median":
            kls = [self.kl_to_base(n) for n in self.names if n != self.base]
            if not kls:
                raise ValueError("`oracle_kl='median'` needs at least one model besides the base.")
            return float(np.median(kls))
        if isinstance(oracle_kl, str):
            raise ValueError(f"`oracle_kl` must be a distance in nats, 'median' or None. Got {oracle_kl!r}.")
        return float(oracle_kl)
