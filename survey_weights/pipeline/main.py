"""The end-to-end main job (:func:`run_main`).

Main job: survey -> pooled, subgroup and latent-class weight profiles -> reward models -> one MODPO LoRA
adapter per profile -> evaluation on held-out prompts. Every step reuses finished work: adapters resume or
skip (``profile.json``), reward models and generations are cached under ``<out>/.cache`` keyed by a hash of
their inputs.

Everything here is synthetic-data machinery: the numbers it produces are **not** the study's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from .._util.io import atomic_write_bytes, check_output
from ..criteria import ALL_CRITERIA
from ..profiles.training_config import MODPOConfig
from ..profiles.training_spec import normalize_profiles
from ._steps import (
    DEFAULT_BASE_MODEL,
    REWARD_PAIRS_PER_CRITERION,
    Log,
    SurveySpec,
    check_budget,
    check_mode,
    check_model,
    check_training,
    load_model,
    load_preference_split,
    load_survey_frame,
    margin_reward_models,
    quiet_small_groups,
    reward_accuracies,
    set_threads,
    survey_rankings,
    train_conditioned_profiles,
    train_profiles,
    training_config,
    training_pairs,
)

__all__ = ["MainSchedule", "SUBGROUP_FACTORS", "build_profiles", "export_weights", "run_main"]

SUBGROUP_FACTORS: tuple[str, ...] = ("age_group", "severity")


def _main_training() -> MODPOConfig:
    return MODPOConfig(max_steps=3, batch_size=8, max_length=160, max_prompt_length=96, lr=1e-3, margins="auto")


@dataclass(frozen=True)
class MainSchedule:
    """Sizes of the main job: its training configuration plus the job's own budgets (the defaults fit 15 minutes
    on a 2-core Intel Xeon, not on the slower 2-core AMD EPYC machines; README, "How long `make demo` takes").

    Parameters
    ----------
    training : MODPOConfig, default 3 steps x 8 pairs, 160 / 96 tokens, lr 1e-3, margins "auto"
        THE training configuration of every adapter (:class:`~survey_weights.modpo.MODPOConfig`); in the default
        conditioned mode the one run has ``max_steps`` x the number of profiles steps (36 for the bundled survey's
        12 profiles). The job sets its ``seed`` and ``progress`` from :func:`run_main`'s arguments (and
        ``max_steps`` when given). Measured on the bundled data with ``docs/scripts/demo_schedule.py`` (40 pool
        prompts, seed 0; ``docs/design.md``, "The main job's schedule"): fewer, larger steps (3 x 8 pairs per
        profile, against 8 x 2 before) put every latent class above the base on its own objective with an
        interval above 0 and pass the class 2 / class 3 crossover test, where 8 x 2 left class 2 at +0.038
        [-0.004, +0.081] and passed no crossover. ``margins="auto"`` reads MODPO's margins from the pairs' own
        labels when every comparison is labelled on every criterion (the bundled data; the labels come from the
        whole training split, so no reward model is trained), else from reward models: with the labels every
        class's gain over the base rose 1.6-2.4 times (+0.063 / +0.090 / +0.117 against +0.040 / +0.046 /
        +0.049). With the calibrated mixing (``n_calibration_prompts``) every class's gain rose again and classes
        1 / 2 and 2 / 3 pass the crossover test; class 3's side against class 1 (the smallest margin by design)
        does not on 40 pool prompts and does on all 60 (``docs/design.md``, "Calibrated mixing").
    pairs_per_criterion : int or None, default 32
        Training pairs kept per criterion (seeded subsample; with the pairs' labels as margins, those labels come
        from every training pair) - bounds the reference/margin precompute.
    reward_pairs_per_criterion : int or None, default 48
        Pairs per criterion the margin reward models learn from (:func:`reward_pairs`: the same budget for
        ``run``, ``adapters`` and ``train-rewards``, so they share reward models).
    n_eval_prompts : int, default 60
        Held-out prompts answered by every model (the secondary, generation-based check: greedy replies scored by
        the rubric; the bundled data have 60, the pool's prompts). Every model answers in the same batches
        (:func:`~survey_weights.modpo.generate_adapters`): on a 2-core Xeon the 13 models took 176 s for 60 prompts
        (144-148 s since the batches hold prompts of similar length and share the prompts' common prefix; on a
        2-core AMD EPYC 238 s, and 174 s with each row's LoRA update as batched matrix products), against 48 s
        for the 8 prompts of earlier releases one model at a time (25 s in shared batches;
        ``benchmarks/bench_generation.py``). On 8 prompts the check resolved nothing (no McNemar p below 0.06).
    max_new_tokens : int, default 40
        Reply length at evaluation.
    n_pool_prompts : int or None, default 60
        Held-out prompts of the pool evaluation (five rubric-scored candidates each; bundled preference data
        only, at most 60): every adapter's expected score per criterion with paired bootstrap intervals, and each
        profile's oracle-predicted vs observed gain over the pooled one. None: no pool evaluation. The default
        is every held-out prompt the bundled data has: on 20 prompts the smallest crossover margin of the latent
        classes was at 2 SE even for the oracle; on 40 every side of every class crossover was at least 3 SE by
        design, yet class 3's side against class 1 was +0.013 [-0.003, +0.029]; on all 60 (chosen after seeing
        that) it is +0.029 [+0.014, +0.045] and every class pair passes (``docs/design.md``, "Calibrated
        mixing").
    n_calibration_prompts : int or None, default 20
        Conditioned mode with the bundled preference data: the run's mixing is calibrated on this many
        training-split prompts that no training pair comes from (five rubric-scored candidates each;
        :meth:`ConditionedAdapter.calibrate <survey_weights.modpo.ConditionedAdapter.calibrate>`), so each exported
        adapter moves the criteria the way its weights ask, at the distance the run's own mix has. Measured
        (``docs/design.md``, "Calibrated mixing"): the short run learns the criteria unevenly, and calibration
        evens that out; 40 prompts cost another 70 s and did not separate more classes. None: the run's own mix
        ``(1, w)``.

    Raises
    ------
    TypeError, ValueError
        ``training`` is not a MODPOConfig, or a budget is not an int >= 1.
    """

    training: MODPOConfig = field(default_factory=_main_training)
    pairs_per_criterion: int | None = 32
    reward_pairs_per_criterion: int | None = REWARD_PAIRS_PER_CRITERION
    n_eval_prompts: int = 60
    max_new_tokens: int = 40
    n_pool_prompts: int = 60
    n_calibration_prompts: int | None = 20

    def __post_init__(self) -> None:
        check_training(self.training)
        check_budget("pairs_per_criterion", self.pairs_per_criterion, allow_none=True)
        check_budget("reward_pairs_per_criterion", self.reward_pairs_per_criterion, allow_none=True)
        check_budget("n_eval_prompts", self.n_eval_prompts)
        check_budget("max_new_tokens", self.max_new_tokens)
        check_budget("n_pool_prompts", self.n_pool_prompts, allow_none=True)
        check_budget("n_calibration_prompts", self.n_calibration_prompts, allow_none=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``training`` as :meth:`MODPOConfig.to_dict`, then the budgets."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["training"] = self.training.to_dict()
        return d


def build_profiles(df: pd.DataFrame, *, min_cell_size: int = 10, factors: Sequence[str] = SUBGROUP_FACTORS,
                   n_classes: int | str = "auto", seed: int = 0, progress: bool = True,
                   spec: SurveySpec | None = None) -> list[Any]:
    """Pooled, subgroup and latent-class weight profiles of a survey.

    Parameters
    ----------
    df : DataFrame
        The survey (ratings of ``spec.criteria``).
    min_cell_size : int, default 10
        Subgroups and classes with fewer respondents get no profile (logged, never exported).
    factors : sequence of str, default ("age_group", "severity")
        Covariates whose levels define subgroups (:func:`~survey_weights.fit_by_group`; missing columns are
        skipped; a column that identifies respondents is refused).
    n_classes : int or "auto", default "auto"
        Latent classes of the Plackett-Luce mixture: ``"auto"`` picks 1-4 by BIC (:func:`select_n_classes`; one
        class means none are reported beyond the pooled profile); an int fixes the number (0 disables), and a
        class profile then notes when BIC preferred fewer.
    seed : int, default 0
        Seeds the mixture's EM starts.
    spec : SurveySpec, optional
        Items, scale, respondent column, sampling weights, variance type and the constraint objective.

    Returns
    -------
    list of WeightProfile
        ``pooled`` first, then ``<factor>=<level>`` and ``class <k>``.
    """
    from ..models import fit_plackett_luce
    from ..profiles.profile import derive_profile
    from ..subgroups.groups import fit_by_group
    from ..subgroups.mixture import fit_mixture, select_n_classes

    spec = spec or SurveySpec()
    if not (n_classes == "auto" or (isinstance(n_classes, int) and not isinstance(n_classes, bool)
                                    and n_classes >= 0)):
        raise ValueError(f"`n_classes` must be 'auto' or an int >= 0. Got {n_classes!r}.")
    log = Log(progress)
    rankings = survey_rankings(df, factors, log=log, spec=spec)
    fit_kw = spec.fit_options()
    profiles = [derive_profile(fit_plackett_luce(rankings, **fit_kw), name="pooled", source="pooled",
                               data_hash=rankings.data_hash(), safety=spec.safety)]
    cov = rankings.covariates
    with quiet_small_groups(log):
        for f in factors:
            if cov is None or f not in cov.columns:
                log(f"      subgroup factor {f!r}: not in the survey, skipped")
                continue
            profiles += fit_by_group(rankings, f, min_cell_size=min_cell_size, **fit_kw).profiles(safety=spec.safety)
        if n_classes == 0:
            return profiles
        if rankings.sampling_weights is not None:
            log("      latent classes: skipped under sampling weights (BIC is not defined for a pseudo-likelihood)")
            return profiles
        best, table = select_n_classes(rankings, 4, seed=seed)
        k_bic = int(best.n_classes)
        k = k_bic if n_classes == "auto" else int(n_classes)
        log(f"      latent classes: BIC prefers {k_bic}" + ("" if n_classes == "auto" else f"; {k} asked for"))
        if k <= 1:
            return profiles
        mix = best if k == k_bic else fit_mixture(rankings, k, seed=seed)
        cls = mix.profiles(min_cell_size=min_cell_size, safety=spec.safety)
        if k > k_bic:  # a fixed number the criterion did not support: say so in every class profile
            note = f"{k} classes asked for; BIC preferred {k_bic} (exploratory)"
            cls = [replace(p, model={**p.model, "note": note}) for p in cls]
        profiles += cls
    return profiles


def export_weights(profiles: Sequence[Any], out: str | os.PathLike[str], *, min_cell_size: int = 10,
                   title: str = "Weight profiles") -> dict[str, Path]:
    """``weights.json``, ``weights.csv`` (no respondent ids) and ``weights.png`` (with `title`) into ``out``."""
    from ..profiles.export import export_profiles

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = export_profiles(list(profiles), out / "weights", min_cell_size=min_cell_size, format="both")
    res = {p.suffix[1:]: p for p in paths}
    shown = [p for p in profiles if p.n_respondents is None or p.n_respondents >= min_cell_size]
    res["weights_plot"] = _plot_profiles(shown, out / "weights.png", title=title)
    return res


def _plot_profiles(profiles: Sequence[Any], path: Path, *, title: str) -> Path:
    """Every exported profile's weights with intervals, side by side (criteria as the profiles give them)."""
    from ..plotting import figure_png, new_figure, plot_profiles

    n_crit = len({c for p in profiles for c in p.weights.index})
    fig, ax = new_figure((10, 1.5 + 0.45 * n_crit * max(1.0, min(len(profiles), 12) / 3)))
    plot_profiles(list(profiles), ax=ax, title=title)
    return atomic_write_bytes(path, figure_png(fig))


# ----------------------------------------------------------------------------------------------- main job
def run_main(*, survey: str | os.PathLike[str] | None = None, preferences: str | os.PathLike[str] | None = None,
             base_model: str = DEFAULT_BASE_MODEL, out: str | os.PathLike[str] = "outputs",
             profiles_only: bool = False, seed: int = 0, max_steps: int | None = None, device: str | None = None,
             min_cell_size: int = 10, n_classes: int | str = "auto", factors: Sequence[str] = SUBGROUP_FACTORS,
             schedule: MainSchedule | None = None, reward_models: Mapping[str, Any] | None = None,
             threads: int | str | None = None, overwrite: bool | None = None,
             reward_cache: str | os.PathLike[str] | None = None, progress: bool = True,
             spec: SurveySpec | None = None, mode: str = "conditioned") -> dict[str, Any]:
    """Survey -> weight profiles -> reward models -> one adapter per profile -> evaluation, into ``out``.

    Parameters
    ----------
    survey : path, optional
        A survey export (the study's layout, Qualtrics or a generic CSV: :func:`~survey_weights.load_survey`);
        default the bundled synthetic survey.
    preferences : path, optional
        JSONL file or directory of ``<criterion>.jsonl``; default the bundled synthetic pairs.
    spec : SurveySpec, optional
        The survey's items, scale, respondent column, sampling weights, variance type and constraint objective
        (default: the study's five criteria rated 1-5, plus safety as the constraint).
    base_model : str, default "smollm2-135m-instruct"
        Name or local path (see :func:`survey_weights.modpo.load_base_model`); ``"tiny-test"`` for a smoke run.
    out : path, default "outputs"
    profiles_only : bool, default False
        Stop after ``weights.json`` / ``weights.csv`` / ``weights.png``.
    seed : int, default 0
        Seeds the mixture fit, data split and subsample, LoRA init, data order and decoding.
    max_steps : int, optional
        Overrides ``schedule.training.max_steps``.
    device : str, optional
        ``"cpu"``, ``"cuda"``...; default CUDA when available.
    min_cell_size : int, default 10
    n_classes : int or "auto", default "auto"
        Latent classes: ``"auto"`` chooses by BIC (1 = none beyond the pooled profile); an int fixes it (0: none).
    factors : sequence of str, default ("age_group", "severity")
        Survey covariates whose levels get subgroup profiles.
    schedule : MainSchedule, optional
    reward_models : mapping criterion -> reward model, optional
        Margin reward models (``.score(prompts, responses)`` + ``.fingerprint()``); default: one MiniLM
        Bradley-Terry model per criterion, trained on the pairs and cached.
    threads : int or "auto", optional
        torch CPU threads (see :func:`set_threads`); default torch's.
    overwrite : bool or None, default None
        None: reuse finished adapters, retrain when the settings or inputs changed since the last run. True:
        always retrain. False: a changed setting is an error.
    reward_cache : path, optional
        Reward-model cache (default ``out/.cache/reward_models``). Models are keyed by their pairs
        (:func:`reward_pairs`) and config, so the cache of ``train-rewards`` or ``adapters`` can be shared.
    progress : bool, default True
    mode : {"conditioned", "per-profile"}, default "conditioned"
        ``"conditioned"``: one preference-conditioned MODPO run for all profiles
        (:func:`~survey_weights.modpo.train_conditioned`, in ``out/conditioned``) of ``max_steps`` x the number of
        profiles steps - the compute of the per-profile mode spent on one longer run - and every profile exported
        from it to ``out/adapters`` (a plain PEFT LoRA each, ``profile.json`` naming the run). ``"per-profile"``:
        one adapter trained per profile (:func:`~survey_weights.modpo.train_adapters`).

    Returns
    -------
    dict
        Paths written (``weights_json``, ``weights_csv``, ..., ``evaluation``, ``report``) and timings.
    """
    log = Log(progress)
    t0 = time.perf_counter()
    mode = check_mode(mode)
    sched = schedule or MainSchedule()
    if not isinstance(sched, MainSchedule):
        raise TypeError(f"`schedule` must be a MainSchedule. Got {type(sched).__name__} instead.")
    cfg = training_config(sched.training, seed=seed, progress=progress, max_steps=max_steps)
    sched = replace(sched, training=cfg)  # what this run trains with (recorded in evaluation.json)
    out = check_output(out, what="output")  # an unwritable output fails now, not after the training
    if not profiles_only:
        check_model(base_model, device)  # a bad base model or device fails now, not after the reward models
    log("[1/5] survey -> weight profiles")
    df = load_survey_frame(survey, spec)
    profiles = build_profiles(df, min_cell_size=min_cell_size, factors=factors, n_classes=n_classes, seed=seed,
                              progress=progress, spec=spec)
    profiles = [p for p in profiles if p.n_respondents >= min_cell_size]
    paths: dict[str, Any] = {f"weights_{k}" if k in ("json", "csv") else k: v
                             for k, v in export_weights(profiles, out, min_cell_size=min_cell_size,
                                                        title="Weight profiles" + (" (synthetic survey)" if survey is None
                                                                                   else "")).items()}
    log(f"      {len(profiles)} profiles: {', '.join(p.name for p in profiles)}")
    if profiles_only:
        paths["seconds"] = time.perf_counter() - t0
        return paths

    n_thr = set_threads(threads)
    if n_thr is not None:
        log(f"      torch CPU threads: {n_thr}")
    log("[2/5] preference data")
    split = load_preference_split(preferences, seed=seed)
    train, cfg, labels = training_pairs(split.train, cfg, seed=seed, per_criterion=sched.pairs_per_criterion,
                                        log=log, reward_models=reward_models)
    sched = replace(sched, training=cfg)  # what this run used ("auto" decided)
    prompts, ids = split.test_prompts[:sched.n_eval_prompts], split.test_ids[:sched.n_eval_prompts]
    log(f"      {len(train)} training pairs ({split.source}); {len(prompts)} held-out prompts")
    specs = normalize_profiles(profiles)  # weights + provenance, unchanged from here to each profile.json
    weights = {s.name: s.weight_dict for s in specs}
    margin_crits = [c for c in ALL_CRITERIA if c in set(train["criterion"])]
    if labels is not None:
        log("[3/5] margins: the pairs' own labels on the other criteria (no reward models)")
        rms: dict[str, Any] = {}
    else:
        log("[3/5] reward models (margins)")
        # Reward models learn from more pairs than the adapters see (the adapters' short schedule uses a subsample).
        rms = dict(reward_models) if reward_models is not None else margin_reward_models(
            split.train, margin_crits, reward_cache or out / ".cache" / "reward_models", seed=seed,
            per_criterion=sched.reward_pairs_per_criterion, log=log)
    model, tok = load_model(base_model, device, log)
    steps = f"{cfg.max_steps} steps" if cfg.max_steps else f"{cfg.epochs:g} epochs"
    t = time.perf_counter()
    if mode == "conditioned":
        ccfg = replace(cfg, max_steps=cfg.max_steps * len(specs)) if cfg.max_steps else cfg
        csteps = f"{ccfg.max_steps} steps" if ccfg.max_steps else f"{ccfg.epochs:g} epochs"
        from ._pool import POOL_NORMALISE, bundled_calibration_pool

        cpool = None
        if sched.n_calibration_prompts and preferences is None:
            cpool = bundled_calibration_pool(sched.n_calibration_prompts, exclude=set(train["prompt_id"]))
        elif sched.n_calibration_prompts:
            log("      mixing: the run's own mix (calibration needs scored candidates, which only the bundled "
                "preference data have; ConditionedAdapter.calibrate takes yours)")
        log(f"[4/5] one conditioned MODPO run for {len(specs)} profiles ({csteps} x {cfg.batch_size} pairs), "
            + ("mixing calibrated, " if cpool is not None else "") + "every profile exported")
        adapters = train_conditioned_profiles(specs, train, out=out / "adapters", run_dir=out / "conditioned",
                                              model=model, tok=tok, cfg=ccfg, rms=rms, base_model=base_model,
                                              device=device, overwrite=overwrite, log=log, margin_labels=labels,
                                              calibration_pool=cpool,
                                              calibration_normalise=POOL_NORMALISE)
        log(f"      {len(adapters)} adapters exported in {time.perf_counter() - t:.1f}s")
    else:
        log(f"[4/5] one MODPO adapter per profile ({steps} x {cfg.batch_size} pairs)")
        adapters = train_profiles(specs, train, out=out / "adapters", model=model, tok=tok, cfg=cfg, rms=rms,
                                  base_model=base_model, device=device, overwrite=overwrite, log=log,
                                  margin_labels=labels).adapters
        n_new = sum(not a.skipped for a in adapters)
        log(f"      {n_new} trained, {len(adapters) - n_new} reused in {time.perf_counter() - t:.1f}s")
    log(f"[5/5] evaluation: {len(profiles) + 1} models x {len(prompts)} prompts")
    from ..evaluation.generation import ModelSpec, evaluate_models

    specs = [ModelSpec("base", "base")] + [ModelSpec(a.name, "modpo", weights[a.name], adapter=a.path,
                                                     extra={"main_objective": a.main_objective})
                                           for a in adapters]
    res = evaluate_models(specs, prompts, prompt_ids=ids, model=model, tokenizer=tok, profiles=weights,
                          pooled="pooled", max_new_tokens=sched.max_new_tokens, seed=seed,
                          cache_dir=out / ".cache" / "generations", progress=progress,
                          settings={"base_model": base_model, "seed": seed, "schedule": sched.to_dict(),
                                    "preferences": split.source, "survey": str(survey or "bundled synthetic"), "mode": mode,
                                    "reward_model_val_accuracy": reward_accuracies(rms)})
    paths.update(res.write(out, title="Main job: one MODPO adapter per weight profile"
                           + (" (exported from one conditioned run)" if mode == "conditioned" else "")))
    if sched.n_pool_prompts and preferences is None:
        from ._pool import bundled_pool, evaluate_and_write_pool

        pool = bundled_pool(sched.n_pool_prompts)
        log(f"      pool evaluation: {len(specs)} models x {pool.n_prompts} prompts x 5 candidates")
        paths.update(evaluate_and_write_pool([(a.name, a.path) for a in adapters], weights, pool, out, model=model,
                                             tokenizer=tok, seed=seed, progress=progress, lead=True))
    paths["adapters"] = out / "adapters"
    paths["seconds"] = time.perf_counter() - t0
    log(f"done in {paths['seconds']:.1f}s -> {out}")
    return paths
