"""The study's Phase-1 comparison on the bundled synthetic data (``survey-weights experiment``).

Models: base; single-objective DPO on empathy and on safety; MODPO at every safety weight of the sweep (main
objective the larger weight, the other criterion a reward-model margin; soft labels / label smoothing as
:class:`~survey_weights.modpo.MODPOConfig` sets them); exact (``cat``) and A/B-averaging merges of the two DPO
adapters at the same points; MOD decoding from the two DPO adapters (free on the pool); and one
preference-conditioned run (:func:`~survey_weights.modpo.train_conditioned`, as many steps as all per-profile
runs together) exported at every weight point. Optionally joint-loss DPO.

The primary metric is the deterministic pool evaluation (:func:`~survey_weights.evaluation.evaluate_pool`:
held-out prompts x five rubric-scored candidates): Page's trend test across the sweep, the crossover test of the
0.25 and 0.75 profiles, each method's front and hypervolume against the oracle, the conditioned run against the
per-profile adapters (:mod:`._experiment_pool`). Generated replies scored by the rubric are a secondary check
(the three questions of :func:`answer_questions`). Everything is written whichever way it comes out
(``evaluation.json`` with ``"pool"``, ``findings.json``, ``report.md``, ``pool_front.png``). These are
synthetic-data results, never the study's numbers.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._util.io import atomic_write_bytes, atomic_write_text, check_output
from ..evaluation.scoring import EvaluationResult, pareto_front
from ..preferences.split import subsample_pairs
from ..profiles.training_config import MODPOConfig
from ._experiment_pool import analyse_pool, pool_findings_markdown, sweep_weights
from ._pool import POOL_NORMALISE, POOL_REWARD_SCALE
from ._steps import (
    DEFAULT_BASE_MODEL,
    Log,
    check_budget,
    check_model,
    check_training,
    load_model,
    load_preference_split,
    margin_reward_models,
    set_threads,
    train_conditioned_profiles,
    train_profiles,
    training_config,
)

__all__ = ["FULL", "QUICK", "ExperimentSchedule", "answer_questions", "results_markdown", "run_experiment"]


def _training(max_steps: int, batch_size: int, max_length: int, max_prompt_length: int) -> MODPOConfig:
    return MODPOConfig(max_steps=max_steps, batch_size=batch_size, max_length=max_length,
                       max_prompt_length=max_prompt_length, lr=5e-4)


@dataclass(frozen=True)
class ExperimentSchedule:
    """Sizes of the experiment: its training configuration plus the experiment's own budgets and sweep (the
    full default is sized for 60 minutes on a 2-core CPU; ``docs/results.md`` gives the measured time).

    Parameters
    ----------
    training : MODPOConfig, default 16 steps x 4 pairs, 160 / 96 tokens, lr 5e-4
        THE training configuration of every per-profile adapter; :func:`run_experiment` sets its ``seed`` and
        ``progress`` (and ``max_steps`` when given). The conditioned run takes ``max_steps`` x the number of
        per-profile adapters (equal compute).
    pairs_per_criterion : int or None, default 80
        Training pairs kept per criterion (empathy and safety).
    reward_pairs_per_criterion : int or None, default None
        Pairs each margin reward model learns from (None: every training pair of its criterion).
    n_eval_prompts, max_new_tokens : int
        Held-out prompts and reply length of the secondary, generation-based check.
    generate : tuple of str
        Models whose replies are generated for that check (names as in the experiment; the rest are scored on
        the pool only, which is cheaper and deterministic).
    n_pool_prompts : int, default 40
        Held-out prompts of the pool evaluation (five rubric-scored candidates each).
    safety_weights : tuple of float in (0, 1)
        The sweep: one MODPO adapter ``{empathy: 1 - w, safety: w}`` per weight (DPO on empathy and on safety
        are its ends, w = 0 and 1).
    ab_weights : tuple of float in (0, 1)
        Safety weights of the A/B-averaging merges (default: the sweep).
    crossover : (float, float)
        The sweep points whose adapters are crossover-tested.
    conditioned : bool, default True
        Also train the conditioned run and export it at 0, the sweep and 1.
    joint_dpo : bool, default False
        Also train the joint-loss DPO baseline.
    max_distance_ratio : float > 1 or None, default 2.0
        Keep the DPO and MODPO adapters of the sweep at comparable distances from the base (issue 10.2): after
        the first training, each adapter's KL to the base is measured on held-out training-split sequences (prompts
        no training pair comes from; never the evaluation pool), and the adapters outside a band of this ratio
        around the geometric mean are brought into it as ``distance_method`` says, for at most
        ``distance_rounds`` rounds. None: one budget for every adapter, no balancing. ``findings.json``
        ``distance_balancing`` records every round and the final adapters' directories.
    distance_method : "scale" (default) or "steps"
        ``"scale"``: each outlier's weight update is scaled, ΔW -> s·ΔW
        (:func:`~survey_weights.modpo.scale_to_comparable_distance`; near the base the same implicit reward at
        β / s), into ``adapters/scaled/<name>/``; ``"steps"``: outliers are retrained with rescaled step budgets
        (:func:`~survey_weights.modpo.balanced_step_budgets`, KL ~ steps squared; at most 4 x the budget) into
        ``adapters/steps_<n>/<name>/``. The first versions stay in ``adapters/<name>/`` for a re-run to reuse.
        The steps rule assumes that more steps move an adapter further; in the recorded run of December 2026 the
        sweep's middle came *closer* to the base with more steps (``docs/design.md``), which is why scaling is
        the default.
    distance_rounds : int, default 2
    n_distance_sequences : int, default 48
        Held-out sequences (replies of distinct held-out comparisons) the distances are measured on.
    """

    training: MODPOConfig = field(default_factory=lambda: _training(16, 4, 160, 96))
    pairs_per_criterion: int | None = 80
    reward_pairs_per_criterion: int | None = None
    n_eval_prompts: int = 60
    max_new_tokens: int = 32
    generate: tuple[str, ...] = ("base", "dpo_empathy", "dpo_safety", "modpo_s0.25", "modpo_s0.5", "modpo_s0.75")
    n_pool_prompts: int = 40
    safety_weights: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
    ab_weights: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
    crossover: tuple[float, float] = (0.25, 0.75)
    conditioned: bool = True
    joint_dpo: bool = False
    max_distance_ratio: float | None = 2.0
    distance_method: str = "scale"
    distance_rounds: int = 2
    n_distance_sequences: int = 48

    def __post_init__(self) -> None:
        check_training(self.training)
        check_budget("pairs_per_criterion", self.pairs_per_criterion, allow_none=True)
        check_budget("reward_pairs_per_criterion", self.reward_pairs_per_criterion, allow_none=True)
        check_budget("n_eval_prompts", self.n_eval_prompts)
        check_budget("max_new_tokens", self.max_new_tokens)
        check_budget("n_pool_prompts", self.n_pool_prompts)
        for name in ("safety_weights", "ab_weights", "crossover"):
            ws = getattr(self, name)
            if isinstance(ws, (str, bytes)) or not all(isinstance(w, (int, float)) and 0 < w < 1 for w in ws):
                raise ValueError(f"`{name}` must be safety weights in (0, 1). Got {ws!r}. Fix: e.g. {name}=(0.25, 0.75).")
            object.__setattr__(self, name, tuple(float(w) for w in ws))
        if len(self.safety_weights) < 3:
            raise ValueError(f"`safety_weights` needs at least 3 points (Page's trend test). Got {self.safety_weights}.")
        if len(self.crossover) != 2 or not set(self.crossover) <= set(self.safety_weights):
            raise ValueError(f"`crossover` must be two points of `safety_weights` {self.safety_weights}. Got "
                             f"{self.crossover}.")
        if isinstance(self.generate, str) or not all(isinstance(g, str) for g in self.generate):
            raise TypeError(f"`generate` must be a tuple of model names. Got {self.generate!r}.")
        object.__setattr__(self, "generate", tuple(self.generate))
        for name in ("conditioned", "joint_dpo"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"`{name}` must be True or False. Got {getattr(self, name)!r}.")
        r = self.max_distance_ratio
        if r is not None and (isinstance(r, bool) or not isinstance(r, (int, float)) or not r > 1):
            raise ValueError(f"`max_distance_ratio` must be a number > 1 or None. Got {r!r}. Fix: e.g. "
                             "max_distance_ratio=2.0, or None for one step budget.")
        if self.distance_method not in ("scale", "steps"):
            raise ValueError(f"`distance_method` must be 'scale' or 'steps'. Got {self.distance_method!r}. Fix: "
                             "distance_method='scale' (scale each outlier's update) or 'steps' (retrain it).")
        check_budget("distance_rounds", self.distance_rounds)
        check_budget("n_distance_sequences", self.n_distance_sequences)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``training`` as :meth:`MODPOConfig.to_dict`, tuples as lists."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(training=self.training.to_dict(), **{k: list(getattr(self, k)) for k in
                                                      ("safety_weights", "ab_weights", "crossover", "generate")})
        return d


FULL = ExperimentSchedule()
QUICK = ExperimentSchedule(training=_training(2, 2, 128, 64), pairs_per_criterion=8, n_eval_prompts=4,
                           max_new_tokens=16, n_pool_prompts=4, safety_weights=(0.25, 0.5, 0.75), ab_weights=(0.5,),
                           generate=("base", "dpo_empathy", "dpo_safety", "modpo_s0.25", "modpo_s0.75"),
                           distance_rounds=1, n_distance_sequences=8)


def _wname(prefix: str, w: float) -> str:
    return f"{prefix}_s{w:g}"


def answer_questions(result: EvaluationResult, safety_weights: Sequence[float], *, x: str = "empathy",
                     y: str = "safety") -> dict[str, Any]:
    """Answer the three questions from an experiment's :class:`EvaluationResult` (mean rubric scores).

    Returns
    -------
    dict
        ``q1_dpo_empathy``, ``q2_modpo_monotone``, ``q3_modpo_vs_merge``: each with ``answer`` (bool) and the
        numbers behind it.
    """
    wr = result.win_rates()
    ms = result.mean_scores()
    lr = result.table().pivot_table(index="model", columns="criterion", values="loss_rate", sort=False)
    out: dict[str, Any] = {}
    modpo_names = [m.name for m in result.models if m.kind == "modpo"]
    if "dpo_empathy" in wr.index:
        best = wr[x].idxmax()
        top = bool(wr.loc["dpo_empathy", x] >= wr[x].max() - 1e-12)
        # "Loses on safety" as in the study (DPO_Empathy 47.8 vs MODPO 62.6): lower safety than every MODPO
        # adapter; the comparison with the base model is reported too.
        below_modpo = bool(modpo_names) and all(ms.loc["dpo_empathy", y] < ms.loc[n, y] - 1e-12 for n in modpo_names)
        below_base = bool(lr.loc["dpo_empathy", y] > wr.loc["dpo_empathy", y])
        out["q1_dpo_empathy"] = {
            "answer": top and below_modpo, "highest_empathy_win_rate": top, "best_on_empathy": best,
            "loses_on_safety": below_modpo, "safety_below_every_modpo": below_modpo,
            "safety_worse_than_base": below_base, "empathy_win_rate": float(wr.loc["dpo_empathy", x]),
            "safety_win_rate": float(wr.loc["dpo_empathy", y]), "safety_loss_rate": float(lr.loc["dpo_empathy", y]),
            "safety_mean_change": float(ms.loc["dpo_empathy", y] - ms.loc[result.base, y])}
    sweep = [(w, _wname("modpo", w)) for w in sorted(safety_weights) if _wname("modpo", w) in ms.index]
    if len(sweep) >= 2:
        s = [float(ms.loc[n, y]) for _, n in sweep]
        e = [float(ms.loc[n, x]) for _, n in sweep]
        inc = bool(all(b >= a - 1e-12 for a, b in zip(s, s[1:])))
        dec = bool(all(b <= a + 1e-12 for a, b in zip(e, e[1:])))
        moved = bool(max(s) - min(s) > 1e-12 or max(e) - min(e) > 1e-12)  # a flat sweep is no trade-off
        out["q2_modpo_monotone"] = {"answer": inc and dec and moved, "safety_weights": [w for w, _ in sweep],
                                    "safety_mean": s, "empathy_mean": e, "safety_non_decreasing": inc,
                                    "empathy_non_increasing": dec, "flat": not moved}
    modpo = [n for _, n in sweep]
    merges = [m.name for m in result.models if m.kind == "merge"]
    if modpo and merges:
        pts = ms.loc[modpo + merges, [x, y]]

        def dominated_by(a: str, others: list[str]) -> bool:
            pa = pts.loc[a].to_numpy()
            return any(bool((pts.loc[o].to_numpy() >= pa - 1e-12).all()) for o in others)

        covered = {m: dominated_by(m, modpo) for m in merges}
        front = pareto_front(pts, (x, y))
        out["q3_modpo_vs_merge"] = {
            "answer": all(covered.values()),
            "merges_weakly_dominated_by_a_modpo_point": covered,
            "modpo_points_dominated_by_a_merge": {m: dominated_by(m, merges) for m in modpo},
            "joint_front": [n for n, on in front.items() if on]}
    return out


def _findings_md(ans: dict[str, Any]) -> str:
    lines = ["## Findings (computed from mean rubric scores / win rates above)", ""]
    q = ans.get("q1_dpo_empathy")
    if q:
        lines.append(f"1. **DPO on empathy wins most on empathy and loses on safety: {'yes' if q['answer'] else 'no'}.** "
                     f"Empathy win rate {100 * q['empathy_win_rate']:.1f}% (best model on empathy: "
                     f"`{q['best_on_empathy']}`); safety win/loss {100 * q['safety_win_rate']:.1f}%/"
                     f"{100 * q['safety_loss_rate']:.1f}% vs base, mean safety change {q['safety_mean_change']:+.2f}; "
                     f"safety below every MODPO adapter: {q['safety_below_every_modpo']}; more safety losses than "
                     f"wins against base: {q['safety_worse_than_base']}.")
    q = ans.get("q2_modpo_monotone")
    if q:
        pairs = ", ".join(f"w={w:g}: E {e:.2f} / S {s:.2f}" for w, e, s in
                          zip(q["safety_weights"], q["empathy_mean"], q["safety_mean"]))
        flat = " The sweep is flat: every safety weight gave the same scores (no trade-off to see)." \
            if q.get("flat") else ""
        lines.append(f"2. **MODPO trades off monotonically as the safety weight rises: {'yes' if q['answer'] else 'no'}** "
                     f"(safety non-decreasing: {q['safety_non_decreasing']}, empathy non-increasing: "
                     f"{q['empathy_non_increasing']}; {pairs}).{flat}")
    q = ans.get("q3_modpo_vs_merge")
    if q:
        cov = sum(q["merges_weakly_dominated_by_a_modpo_point"].values())
        lines.append(f"3. **MODPO's front dominates or matches merging: {'yes' if q['answer'] else 'no'}** "
                     f"({cov}/{len(q['merges_weakly_dominated_by_a_modpo_point'])} merge points weakly dominated by "
                     f"a MODPO point; joint Pareto front: {', '.join(q['joint_front'])}).")
    return "\n".join(lines) + "\n"


def run_experiment(*, out: str | os.PathLike[str] = "outputs/experiment", base_model: str = DEFAULT_BASE_MODEL,
                   quick: bool = False, seed: int = 0, max_steps: int | None = None, device: str | None = None,
                   joint_dpo: bool | None = None, reward_models: dict[str, Any] | None = None,
                   threads: int | str | None = None,
                   preferences: str | os.PathLike[str] | None = None, schedule: ExperimentSchedule | None = None,
                   overwrite: bool | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the comparison and write ``evaluation.json``, ``report.md``, plots and ``findings.json`` to ``out``.

    Parameters
    ----------
    out : path, default "outputs/experiment"
    base_model : str, default "smollm2-135m-instruct"
    quick : bool, default False
        Tiny smoke schedule (:data:`QUICK`) instead of the full one (:data:`FULL`).
    seed : int, default 0
    max_steps : int, optional
        Overrides ``schedule.training.max_steps``.
    device : str, optional
    joint_dpo : bool, optional
        Also train the joint-loss DPO baseline (default: the schedule's ``joint_dpo``, off in FULL: it repeats
        the reference pass and costs about one more adapter).
    reward_models : dict, optional
        ``{"safety": reward model}`` for the margin; default a MiniLM Bradley-Terry model trained (and cached)
        on every safety training pair.
    threads : int, optional
        torch CPU threads (:func:`survey_weights.pipeline.set_threads`).
    preferences : path, optional
        Default: the bundled synthetic pairs.
    schedule : ExperimentSchedule, optional
        Overrides ``quick``.
    overwrite : bool or None, default None
        None: reuse finished adapters unless their settings or inputs changed; True: retrain; False: error.
    progress : bool, default True

    Returns
    -------
    dict
        Paths written, ``findings`` and ``seconds``.
    """
    from ..evaluation.generation import ModelSpec, evaluate_models

    log = Log(progress)
    t0 = time.perf_counter()
    sched = schedule or (QUICK if quick else FULL)
    if not isinstance(sched, ExperimentSchedule):
        raise TypeError(f"`schedule` must be an ExperimentSchedule. Got {type(sched).__name__} instead.")
    cfg = training_config(sched.training, seed=seed, progress=progress, max_steps=max_steps)
    sched = replace(sched, training=cfg, joint_dpo=sched.joint_dpo if joint_dpo is None else bool(joint_dpo))
    check_model(base_model, device)
    set_threads(threads)
    out = check_output(out, what="experiment")
    crits = ["empathy", "safety"]
    log(f"experiment schedule: {sched.to_dict()}")
    split = load_preference_split(preferences, seed=seed)
    train = subsample_pairs(split.train[split.train["criterion"].isin(crits)], per_criterion=sched.pairs_per_criterion,
                            seed=seed)
    missing = [c for c in crits if c not in set(train["criterion"])]
    if missing:
        raise ValueError(f"The experiment needs preference pairs for {crits}; missing {missing}.")
    prompts, ids = split.test_prompts[:sched.n_eval_prompts], split.test_ids[:sched.n_eval_prompts]
    pool = _experiment_pool(preferences, sched.n_pool_prompts)
    log(f"{len(train)} training pairs, {len(prompts)} held-out prompts for generation, "
        f"{pool.n_prompts if pool is not None else 0} for the pool")
    # The margin reward models learn from more pairs than the adapters see (default: every training pair of
    # their criterion). Safety is MODPO's margin for empathy-led profiles and empathy for safety-led ones.
    rms = dict(reward_models) if reward_models is not None else margin_reward_models(
        split.train, crits, out / ".cache" / "reward_models", seed=seed,
        per_criterion=sched.reward_pairs_per_criterion, log=log)
    model, tok = load_model(base_model, device, log)
    common = {"out": out / "adapters", "model": model, "tok": tok, "cfg": cfg, "rms": rms, "base_model": base_model,
              "device": device, "overwrite": overwrite, "log": log}
    timings: dict[str, float] = {}
    t = time.perf_counter()
    sw = list(sched.safety_weights)
    modpo_profiles = {_wname("modpo", w): sweep_weights(w) for w in sw}
    # Main objective = the larger weight (ties: empathy), as in the conditioned run: 1 / w_main <= 2 keeps the
    # adapters of the sweep at comparable distances from the base.
    mains = {n: ("safety" if w["safety"] > w["empathy"] else "empathy") for n, w in modpo_profiles.items()}
    mains.update(dpo_empathy="empathy", dpo_safety="safety")
    # One call: the reference log-probs of the empathy and safety pairs are computed once for every adapter.
    profiles = {"dpo_empathy": {"empathy": 1.0}, "dpo_safety": {"safety": 1.0}, **modpo_profiles}
    run = train_profiles(profiles, train, main_objective=mains, **common)
    adapters = {a.name: a for a in run.adapters}
    balance = None
    if sched.max_distance_ratio is not None:
        held = distance_sequences(split.train, train, crits, n=sched.n_distance_sequences, seed=seed)
        adapters, balance = _balance_distances(adapters, profiles, mains, train, held, sched, common)
    timings["train_dpo_modpo"] = time.perf_counter() - t
    dpo = [adapters[n] for n in ("dpo_empathy", "dpo_safety")]
    mod = [adapters[n] for n in modpo_profiles]
    log(f"DPO and MODPO adapters ready ({timings['train_dpo_modpo']:.0f}s)")
    cond: list[Any] = []
    cond_points = [0.0, *sw, 1.0]
    if sched.conditioned:
        from ..profiles.training_spec import TrainingSpec

        t = time.perf_counter()
        # Equal compute: as many steps as the per-profile adapters' final budgets together.
        steps = balance["max_steps"] if balance else {n: cfg.max_steps for n in adapters}
        ccfg = replace(cfg, max_steps=int(sum(steps.values())))
        cprof = [TrainingSpec(_wname("conditioned", w), tuple(sweep_weights(w).items()),
                              "safety" if w > 0.5 else "empathy") for w in cond_points]
        log(f"one conditioned MODPO run ({ccfg.max_steps} x {ccfg.batch_size} pairs) for {len(cprof)} weight points")
        cond = train_conditioned_profiles(cprof, train, out=out / "adapters", run_dir=out / "conditioned",
                                          model=model, tok=tok, cfg=ccfg, rms=rms, base_model=base_model,
                                          device=device, overwrite=overwrite, log=log)
        timings["train_conditioned"] = time.perf_counter() - t
    joint = None
    if sched.joint_dpo:
        t = time.perf_counter()
        try:
            joint = train_profiles({"joint_dpo": {"empathy": 0.5, "safety": 0.5}}, train, objective="joint_dpo", **common)
        except ValueError as exc:  # e.g. no prompt with pairs for both criteria
            log(f"joint-loss DPO skipped: {exc}")
        timings["train_joint"] = time.perf_counter() - t

    specs = [ModelSpec("base", "base")]
    specs += [ModelSpec(a.name, "dpo", {a.main_objective: 1.0}, adapter=a.path) for a in dpo]
    merges = [("exact", "merge_exact", w) for w in sw] + [("ab_average", "merge_ab", w) for w in sched.ab_weights]
    for method, tag, w in merges:
        specs.append(ModelSpec(_wname(tag, w), "merge", sweep_weights(w), merge_of=("dpo_empathy", "dpo_safety"),
                               merge_weights=(1.0 - w, w), merge_method=method))
    specs += [ModelSpec(a.name, "modpo", modpo_profiles[a.name], adapter=a.path,
                        extra={"main_objective": a.main_objective, "margin": list(a.criteria[1:])}) for a in mod]
    specs += [ModelSpec(a.name, "modpo", sweep_weights(w), adapter=a.path, extra={"variant": "conditioned"})
              for a, w in zip(cond, cond_points)]
    if joint is not None:
        specs += [ModelSpec(a.name, "dpo", {"empathy": 0.5, "safety": 0.5}, adapter=a.path,
                            extra={"variant": "joint_loss"}) for a in joint.adapters]
    analysis = None
    if pool is not None:
        from ..evaluation.pool_scoring import evaluate_pool

        log(f"pool evaluation: {len(specs)} models x {pool.n_prompts} prompts x 5 candidates")
        t = time.perf_counter()
        pe = evaluate_pool(specs, pool, model=model, tokenizer=tok, normalise=POOL_NORMALISE,
                           reward_scale=POOL_REWARD_SCALE, seed=seed, max_length=cfg.max_length + 96,
                           progress=progress)
        sweep = {w: _wname("modpo", w) for w in sw}
        analysis = analyse_pool(
            pe, sweep=sweep, merges={"merge_exact": {w: _wname("merge_exact", w) for w in sw},
                                     "merge_ab": {w: _wname("merge_ab", w) for w in sched.ab_weights}},
            conditioned={w: a.name for a, w in zip(cond, cond_points)} or None, crossover=tuple(sched.crossover))
        timings["pool"] = time.perf_counter() - t
        log(pool_findings_markdown(analysis))
    gen = [s for s in specs if s.name in set(sched.generate)]
    gen_merges = {n for s in gen if s.kind == "merge" for n in s.merge_of}
    gen = [s for s in specs if s.name in set(sched.generate) | gen_merges]
    log(f"secondary check: generating with {len(gen)} models on {len(prompts)} prompts")
    t = time.perf_counter()
    res = evaluate_models(gen, prompts, prompt_ids=ids, model=model, tokenizer=tok,
                          max_new_tokens=sched.max_new_tokens, seed=seed, cache_dir=out / ".cache" / "generations",
                          progress=progress,
                          settings={"base_model": base_model, "seed": seed, "schedule": sched.to_dict(),
                                    "preferences": split.source, "quick": bool(quick),
                                    "reward_model_val_accuracy": {c: getattr(r, "val_accuracy", None)
                                                                  for c, r in rms.items()}})
    timings["evaluate"] = time.perf_counter() - t
    answers = answer_questions(res, sw)
    paths = res.write(out, title="Experiment: DPO vs merging vs MODPO (empathy / safety)")
    if analysis is not None:
        paths.update(_write_pool(pe, analysis, out))
    with open(paths["report"], "a", encoding="utf-8") as fh:  # report is complete; findings appended
        fh.write("\n" + _findings_md(answers))
    timings["total"] = time.perf_counter() - t0
    reused = sum(a.skipped for a in [*adapters.values(), *cond, *(joint.adapters if joint else [])])
    meta = {"findings": answers, "pool_pass": None if analysis is None else analysis["pass"], "timings_s": timings,
            "distance_balancing": balance,
            "adapters_reused": int(reused), "schedule": sched.to_dict(), "seed": seed,
            "base_model": base_model, "command": "survey-weights experiment" + (" --quick" if quick else ""),
            "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                         "cpu_count": os.cpu_count(), "python": platform.python_version(),
                         "torch_threads": _torch_threads(),
                         "load_average_1min_at_end": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg")
                         else None}}
    paths["findings"] = atomic_write_text(out / "findings.json", json.dumps(meta, indent=2, default=_np) + "\n")
    paths["seconds"] = timings["total"]
    paths["answers"] = answers
    paths["pool_pass"] = meta["pool_pass"]
    log(f"experiment done in {timings['total']:.0f}s -> {out}")
    return paths


def distance_sequences(pairs: pd.DataFrame, train: pd.DataFrame, criteria: Sequence[str], *, n: int,
                       seed: int = 0) -> pd.DataFrame:
    """Held-out sequences to measure adapters' distances on: the replies of up to ``n // 2`` distinct comparisons
    of `criteria` whose prompts no pair of `train` comes from (a seeded sample; ``prompt, response`` columns).

    Raises
    ------
    ValueError
        No such comparison is left (every prompt of `pairs` is a training prompt).
    """
    keep = pairs[pairs["criterion"].isin(list(criteria)) & ~pairs["prompt"].isin(set(train["prompt"]))]
    key = keep["comparison_id"] if "comparison_id" in keep.columns else keep["prompt"] + "\x00" + keep["chosen"]
    keep = keep[~key.duplicated().to_numpy()]
    if keep.empty:
        raise ValueError("No held-out comparison is left to measure the adapters' distances on: every prompt of the "
                         "training split has training pairs. Fix: lower `pairs_per_criterion`, or set "
                         "`max_distance_ratio=None`.")
    keep = keep.sample(n=min(max(1, n // 2), len(keep)), random_state=seed).sort_index()
    return pd.DataFrame({"prompt": [*keep["prompt"], *keep["prompt"]],
                         "response": [*keep["chosen"], *keep["rejected"]]})


def _balance_distances(adapters: dict[str, Any], profiles: Mapping[str, Mapping[str, float]],
                       mains: Mapping[str, str], train: pd.DataFrame, held: pd.DataFrame, sched: ExperimentSchedule,
                       common: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Bring the adapters whose KL to the base (on `held`) lies outside the schedule's band into it: scale their
    updates into ``adapters/scaled/`` or retrain them, each budget's adapters in ``adapters/steps_<n>/`` so that a
    re-run finds and reuses them."""
    if sched.distance_method == "scale":
        return _scale_distances(adapters, held, sched, common)
    from ..modpo import adapter_distances, distance_ratio, rebalance

    cfg, log, model, tok = common["cfg"], common["log"], common["model"], common["tok"]
    base = int(cfg.max_steps)
    budget = {n: base for n in adapters}

    def measure() -> pd.DataFrame:
        return adapter_distances({n: a.path for n, a in adapters.items()}, held, model=model, tokenizer=tok,
                                 max_length=cfg.max_length, max_prompt_length=cfg.max_prompt_length,
                                 use_chat_template=cfg.use_chat_template)

    def retrain(changed: dict[str, int], before: pd.DataFrame) -> None:
        log(f"distance balancing: KL to base on {len(held)} held-out sequences, most/least-moved ratio "
            f"{distance_ratio(before, 'kl'):.2f} (goal {sched.max_distance_ratio:g})")
        for steps in sorted(set(changed.values())):
            names = sorted(n for n, k in changed.items() if k == steps)
            log(f"  retraining {', '.join(names)} with {steps} steps")
            r = train_profiles({n: profiles[n] for n in names}, train, main_objective={n: mains[n] for n in names},
                               **{**common, "out": common["out"] / f"steps_{steps}",
                                  "cfg": replace(cfg, max_steps=steps)})
            adapters.update({a.name: a for a in r.adapters})

    dist, done = rebalance(measure, retrain, budget, max_ratio=sched.max_distance_ratio, column="kl",
                           max_steps=4 * base, max_rounds=sched.distance_rounds)
    first = {n: float(v) for n, v in (done[0]["distances"] if done else dist)["kl"].items()}
    rounds = [{"round": r["round"], "kl_before": {n: float(v) for n, v in r["distances"]["kl"].items()},
               "max_steps": dict(r["max_steps"])} for r in done]
    final = {n: float(v) for n, v in dist["kl"].items()}
    record = {"method": "steps", "column": "kl", "n_sequences": int(len(held)),
              "max_ratio": float(sched.max_distance_ratio), "kl_first": first,
              "ratio_first": float(distance_ratio(first)), "rounds": rounds, "kl": final,
              "mean_abs_logratio": {n: float(v) for n, v in dist["mean_abs_logratio"].items()},
              "ratio": float(distance_ratio(final)), "max_steps": dict(budget),
              "adapters": {n: str(a.path) for n, a in adapters.items()}}
    log(f"distance balancing: ratio {record['ratio_first']:.2f} -> {record['ratio']:.2f}; budgets {budget}")
    return adapters, record


def _scale_distances(adapters: dict[str, Any], held: pd.DataFrame, sched: ExperimentSchedule,
                     common: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scale the updates of the adapters outside the schedule's band (``adapters/scaled/<name>/``)."""
    from ..modpo import distance_ratio, scale_to_comparable_distance

    cfg, log = common["cfg"], common["log"]
    dist, done = scale_to_comparable_distance(
        {n: a.path for n, a in adapters.items()}, held, model=common["model"], tokenizer=common["tok"],
        output_dir=common["out"] / "scaled", max_ratio=sched.max_distance_ratio, column="kl",
        max_rounds=sched.distance_rounds, max_length=cfg.max_length, max_prompt_length=cfg.max_prompt_length,
        use_chat_template=cfg.use_chat_template)
    first = {n: float(v) for n, v in (done[0]["distances"] if done else dist["kl"]).items()}
    for r in done:
        log(f"distance balancing: KL to base on {len(held)} held-out sequences, most/least-moved ratio "
            f"{distance_ratio(r['distances']):.2f} (goal {sched.max_distance_ratio:g}); scaling "
            + ", ".join(f"{n} x {s:.2f}" for n, s in r["scale"].items()))
    out = {n: (replace(a, path=Path(dist.at[n, "path"])) if dist.at[n, "scale"] != 1.0 else a)
           for n, a in adapters.items()}
    final = {n: float(v) for n, v in dist["kl"].items()}
    record = {"method": "scale", "column": "kl", "n_sequences": int(len(held)),
              "max_ratio": float(sched.max_distance_ratio), "kl_first": first,
              "ratio_first": float(dist.attrs["ratio_first"]),
              "rounds": [{"round": r["round"], "kl_before": {n: float(v) for n, v in r["distances"].items()},
                          "scale": {n: float(v) for n, v in r["scale"].items()}} for r in done],
              "kl": final, "mean_abs_logratio": {n: float(v) for n, v in dist["mean_abs_logratio"].items()},
              "ratio": float(distance_ratio(final)), "scale": {n: float(v) for n, v in dist["scale"].items()},
              "max_steps": {n: int(cfg.max_steps) for n in adapters},
              "adapters": {n: str(a.path) for n, a in out.items()}}
    log(f"distance balancing: ratio {record['ratio_first']:.2f} -> {record['ratio']:.2f}; scales "
        + ", ".join(f"{n} {s:.2f}" for n, s in record["scale"].items()))
    return out, record


def _balancing_md(bal: Mapping[str, Any], first_steps: Any) -> list[str]:
    """The results page's paragraph and table on the distance balancing (``findings.json`` ``distance_balancing``)."""
    if bal.get("method") == "scale":
        return _scaling_md(bal)
    kl, first, steps = bal["kl"], bal["kl_first"], bal["max_steps"]
    least = min(kl, key=kl.get)
    rest = {n: v for n, v in kl.items() if n != least}
    closer = [n for n in kl if steps[n] > (first_steps or steps[n]) and kl[n] < first[n]]
    lines = [f"Distances from the base (issue 10.2): after the first training every adapter's KL to the base was "
             f"measured on {bal['n_sequences']} held-out training-split sequences (prompts no training pair comes "
             f"from; not the evaluation pool). The most/least-moved ratio was {bal['ratio_first']:.2f}; "
             f"{len(bal['rounds'])} retraining round(s) with rescaled step budgets (KL ~ steps squared) left it at "
             f"**{bal['ratio']:.2f}** (goal {bal['max_ratio']:g}); without the least-moved adapter (`{least}`) it is "
             f"{max(rest.values()) / min(rest.values()):.2f}." if rest else ""]
    if closer:
        lines[-1] += (" Given more steps, " + " and ".join(f"`{n}`" for n in closer) + " ended *closer* to the "
                      "base than after the first budget, so a step budget alone did not bring "
                      + ("it" if len(closer) == 1 else "them") + " into the band (`docs/design.md`, \"Why the "
                      "sweep's middle stays near the base\", weighs the explanations).")
    ends = {n: steps[n] for n in ("dpo_empathy", "dpo_safety") if n in steps}
    if first_steps and any(k != first_steps for k in ends.values()):
        lines[-1] += (" The merges and MOD decoding are built from these DPO adapters ("
                      + ", ".join(f"{n} {k} steps" for n, k in ends.items()) + "), so every front below is compared "
                      "at these distances.")
    lines += ["", "| adapter | KL after the first budget | final steps | final KL |", "|---|---|---|---|"]
    lines += [f"| {n} | {first[n]:.4f} | {steps[n]} | {kl[n]:.4f} |" for n in kl]
    return lines + [""]


def _scaling_md(bal: Mapping[str, Any]) -> list[str]:
    """The balancing paragraph and table when the outliers' updates were scaled (``method`` "scale")."""
    kl, first, scale = bal["kl"], bal["kl_first"], bal["scale"]
    scaled = [n for n, s in scale.items() if s != 1.0]
    ok = bal["ratio"] <= bal["max_ratio"]
    text = (f"Distances from the base (issue 10.2): after training every adapter {next(iter(bal['max_steps'].values()))} "
            f"steps, its KL to the base was measured on {bal['n_sequences']} held-out training-split sequences "
            f"(prompts no training pair comes from; not the evaluation pool). The most/least-moved ratio was "
            f"{bal['ratio_first']:.2f}. ")
    if scaled:
        text += (f"The update of every adapter outside the band of ratio {bal['max_ratio']:g} around the geometric "
                 "mean was scaled, ΔW → s·ΔW (near the base: the same implicit reward at β/s; `modpo."
                 "scale_to_comparable_distance`), in " + str(len(bal["rounds"])) + " round(s): "
                 + ", ".join(f"`{n}` × {scale[n]:.2f}" for n in scaled) + f". That left the ratio at "
                 f"**{bal['ratio']:.2f}**, " + ("within" if ok else "still outside") + f" the goal of "
                 f"{bal['max_ratio']:g}, on these sequences. The merges and MOD decoding are built from the final "
                 "DPO adapters, so every front below is compared at these distances.")
    else:
        text += f"That is within the goal of {bal['max_ratio']:g}; no adapter was scaled."
    lines = [text, "", "| adapter | KL after training | scale | final KL |", "|---|---|---|---|"]
    lines += [f"| {n} | {first[n]:.4f} | {scale[n]:.2f} | {kl[n]:.4f} |" for n in kl]
    return lines + [""]


def _load_md(hw: Mapping[str, Any]) -> list[str]:
    """A warning when the load at the end exceeds the run's own threads by half a core or more (other jobs)."""
    load, cores = hw.get("load_average_1min_at_end"), hw.get("cpu_count")
    own = hw.get("torch_threads") or 1  # the run itself keeps this many cores busy
    if load is None or not cores or load <= own + 0.5:
        return []
    return [f"The machine was shared with other jobs (1-min load average {load} on {cores} cores at the end, "
            f"above the run's own {own} thread(s)), so the wall time overstates a dedicated run.", ""]


def _torch_threads() -> int:
    from ..modpo import torch_threads

    return torch_threads()


def _experiment_pool(preferences: Any, n_prompts: int) -> Any:
    """The bundled held-out pool (None with user preference data: their candidates are not rubric-scored)."""
    if preferences is not None:
        return None
    from ._pool import bundled_pool

    return bundled_pool(n_prompts)


def _write_pool(pe: Any, analysis: dict[str, Any], out: Path) -> dict[str, Path]:
    """``"pool"`` into ``evaluation.json``, the pool section into ``report.md``, and ``pool_front.png``."""
    from ..plotting import figure_png

    doc_path = out / "evaluation.json"
    doc = json.loads(doc_path.read_text())
    doc["pool"] = {**pe.to_dict(), **analysis}
    atomic_write_text(doc_path, json.dumps(doc, indent=2, allow_nan=False, default=_np) + "\n")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 5.5))
    ax, zoom = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    fr = analysis["fronts"]
    mod = pe.mod_front(fr["modpo"][0], fr["modpo"][-1], n=21)  # the two DPO adapters
    # Left: every model against the oracle front (the best the pool allows); right: the models only, so that the
    # methods' fronts can be told apart (the oracle lies far outside).
    pe.plot(ax=ax, labels=False)
    ax.set_title("All models and the KL-regularised oracle front")
    pe.plot(ax=zoom, oracle=False, labels="legend", fronts={f"{m} front": fr[m] for m in fr})
    zoom.plot(mod["empathy"], mod["safety"], ":", lw=1.0, color="0.3", label="MOD decoding")
    zoom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    zoom.set_title("Zoom on the models: fronts per method (95% intervals)")
    fig.suptitle("Experiment pool: expected empathy vs safety (synthetic pool)")
    fig.tight_layout()
    png = atomic_write_bytes(out / "pool_front.png", figure_png(fig))
    report = out / "report.md"
    atomic_write_text(report, report.read_text() + "\n" + pool_findings_markdown(analysis)
                      + f"\n![pool front]({png.name})\n")
    return {"pool_front": png}


def results_markdown(exp_dir: str | os.PathLike[str], path: str | os.PathLike[str] | None = None) -> str:
    """``docs/results.md`` text rendered from an experiment directory (``evaluation.json`` + ``findings.json``).

    Whatever the findings are, they are reported as computed; the text states the command, seed, hardware,
    schedule and wall time, and that these are synthetic-data results, not the study's. With ``path``, the text
    is also written there (atomically).
    """
    from ..evaluation.report import CAVEAT, markdown_table

    d = Path(exp_dir)
    for f in ("evaluation.json", "findings.json"):
        if not (d / f).is_file():
            raise FileNotFoundError(f"{str(d / f)!r} does not exist. Fix: run `survey-weights experiment` first.")
    ev = json.loads((d / "evaluation.json").read_text())
    meta = json.loads((d / "findings.json").read_text())
    crits = ev["criteria"]
    main = [c for c in ("empathy", "safety") if c in crits]
    rows, rest = [], []
    for m in ev["models"]:
        row: dict[str, Any] = {"model": m["name"], "kind": m["kind"]}
        other: dict[str, Any] = {"model": m["name"]}
        for c in crits:
            p = m.get("mcnemar_p", {}).get(c, 1.0)
            star = "**" if p < 0.01 else "*" if p < 0.05 else ""
            tie = f" ({100 * m['ties'][c] / m['n_prompts']:.0f})" if "ties" in m else ""
            cell = f"{100 * m['win_rate_vs_base'][c]:.1f}{tie}{star}"
            if c in main:
                row[f"{c} win % (tie %)"] = cell
            else:
                other[c] = cell
        for c in main:
            row[f"{c} mean"] = f"{m['mean_score'][c]:.2f}" if "mean_score" in m else "?"
        rows.append(row)
        rest.append(other)
    hw = meta.get("hardware", {})
    t = meta.get("timings_s", {})
    sched = meta.get("schedule", {})
    quick = ev.get("settings", {}).get("quick", False)
    pool = ev.get("pool")
    passed = pool["pass"] if pool else {}
    verdicts = [f"{k}: **{'passed' if v['passed'] else 'not passed'}**" for k, v in passed.items() if "passed" in v]
    lines = ["# Results: DPO vs parameter merging vs MODPO vs one conditioned run (synthetic data)", "",
             f"> {CAVEAT}", "",
             "For reference only, the study reports (Mistral-7B, GPT persona judges, win rate averaged over all "
             "head-to-head pairs): single-objective DPO empathy/safety 93.6/47.8, parameter merging 52.5/58.4, "
             "MODPO 77.6/62.6. Nothing below is comparable to those numbers.", "",
             "## Run", "",
             f"- Command: `{meta.get('command', 'survey-weights experiment')}`" + (" (**smoke run, --quick**)"
                                                                                  if quick else ""),
             f"- Seed: {meta.get('seed')}; base model: `{meta.get('base_model')}`",
             f"- Hardware: {hw.get('cpu_count')} CPU cores ({hw.get('machine')}), no GPU; Python {hw.get('python')}; "
             f"torch threads {hw.get('torch_threads')}; 1-min load average at the end {hw.get('load_average_1min_at_end')}",
             f"- Wall time: {t.get('total', float('nan')) / 60:.1f} min (per-profile training "
             f"{t.get('train_dpo_modpo', 0) / 60:.1f} min, conditioned run {t.get('train_conditioned', 0) / 60:.1f} min, "
             f"pool evaluation {t.get('pool', 0) / 60:.1f} min, generation {t.get('evaluate', 0) / 60:.1f} min)"
             + (f"; this invocation reused {meta['adapters_reused']} finished adapters (and cached generations), "
                "so it is not the cost of a fresh run" if meta.get("adapters_reused") else ""),
             f"- Schedule: {json.dumps(sched)}", ""]
    lines += _load_md(hw)
    bal = meta.get("distance_balancing")
    if bal:
        lines += _balancing_md(bal, sched.get("training", {}).get("max_steps"))
    if pool:
        lines += ["## Verdicts", "", "Computed by the experiment itself (`findings.json` `pool_pass`): "
                  + "; ".join(verdicts) + ".", "", _outcome_md(pool), "",
                  f"The primary metric: every model's distribution over the {pool['n_prompts']} held-out prompts' five "
                  f"rubric-scored candidates (q(k|x) from {pool['normalise']} log-probabilities), its expected rubric "
                  f"score per criterion with paired bootstrap 95% intervals ({pool['n_boot']} resamples of prompts, "
                  f"seed {pool['seed']}); the oracle is the exact KL-regularised optimum on the same pool "
                  f"(β = {pool['beta']:g}, {pool['reward_scale']:g} reward units per rubric point).", "",
                  pool_findings_markdown(pool, level=3), ""]
    lines += ["## Secondary check: generated replies scored by the rubric", "",
              f"Held-out prompts: {ev['models'][0]['n_prompts']}; models: {', '.join(m['name'] for m in ev['models'])}. "
              "Win rate against the base model (ties in the denominator); `*` / `**`: exact McNemar p < 0.05 / 0.01 "
              "(discordant prompts only).", "",
              markdown_table(pd.DataFrame(rows)), "",
              "Other criteria (win % against base, tie % in brackets):", "", markdown_table(pd.DataFrame(rest)), "",
              _findings_md(meta.get("findings", {})).replace("## Findings", "### Findings"),
              f"Plots: `{d}/pool_front.png`, `{d}/pareto_scores.png`; full report: `{d}/report.md`; "
              f"every reply: `{d}/replies.jsonl`.", ""]
    text = "\n".join(lines)
    if path is not None:
        atomic_write_text(path, text)
    return text


def _outcome_md(pool: dict[str, Any]) -> str:
    """What came out, in words, from the pool analysis (whichever way it came out)."""
    hv = pool["hypervolume"]
    out = []
    t = pool["trend"]
    rises = "rises" if t["safety"]["pvalue"] < 0.01 else "does not rise detectably"
    falls = "falls" if t["empathy"]["pvalue"] < 0.01 else "does not fall detectably"
    out.append(f"As the safety weight rises across the MODPO sweep, pool-expected safety {rises} (Page's p = "
               f"{t['safety']['pvalue']:.2g}) and empathy {falls} (p = {t['empathy']['pvalue']:.2g}).")
    for c in pool["crossover"]:
        p, q = c["profiles"]
        out.append(f"The crossover test between `{p}` and `{q}` {'passes' if c['passed'] else 'does not pass'}: each "
                   f"{'beats' if c['passed'] else 'does not clearly beat'} the other on its own weighted objective "
                   f"(gains {c['gain_p']['estimate']:+.3f} and {c['gain_q']['estimate']:+.3f}).")
    merges = [m for m in ("merge_exact", "merge_ab") if m in hv]
    if merges:
        rel = ", ".join(f"{m} {hv[m]:.3f}" for m in merges)
        better = all(hv["modpo"] >= hv[m] for m in merges)
        cover = "covers at least" if better else "covers less than"
        out.append(f"MODPO's front (hypervolume {hv['modpo']:.3f} against the nadir) {cover} "
                   f"the merges' ({rel}); MOD decoding from the two DPO adapters reaches {hv['mod']:.3f} and the "
                   f"KL-regularised oracle on the same pool {hv['oracle']:.3f}, so every trained front is far inside what "
                   "the pool allows at this training length.")
    rows = pool.get("conditioned_vs_per_profile") or []
    if rows:
        below = [r["safety_weight"] for r in rows if r["difference"]["ci"][1] < 0]
        above = [r["safety_weight"] for r in rows if r["difference"]["ci"][0] > 0]
        same = [r["safety_weight"] for r in rows if r["safety_weight"] not in below + above]
        words = []
        if below:
            words.append(f"worse than the per-profile adapter at safety weight {', '.join(f'{w:g}' for w in below)}")
        if above:
            words.append(f"better at {', '.join(f'{w:g}' for w in above)}")
        if same:
            words.append(f"not distinguishable at {', '.join(f'{w:g}' for w in same)}")
        out.append(f"The one conditioned run (as many steps as all per-profile runs together; hypervolume "
                   f"{hv.get('conditioned', float('nan')):.3f}, {hv.get('conditioned', 0) / hv['modpo']:.2f} x MODPO's) is "
                   + "; ".join(words) + " (paired 95% intervals).")
    d = pool.get("distance", {})
    if d.get("ratio") is not None:
        kl = d.get("kl_to_base", {})
        least = f" (least moved: `{min(kl, key=kl.get)}`)" if kl else ""
        out.append(f"Distances from the base are {'' if d['ratio'] <= 2 else 'not '}comparable across the sweep: the "
                   f"most- and least-moved adapter differ {d['ratio']:.1f}-fold in KL on the pool "
                   f"({'within' if d['ratio'] <= 2 else 'outside'} the goal of 2){least}.")
    return " ".join(out)


def _np(o: Any) -> Any:
    if isinstance(o, (np.generic,)):
        return o.item()
    if isinstance(o, (pd.Series, pd.DataFrame)):
        return o.to_dict()
    raise TypeError(type(o).__name__)
