"""The single-step jobs behind ``survey-weights fit | train-rewards | adapters | evaluate | export-adapter``.

Each is a documented function of :mod:`survey_weights.pipeline`; the command line only parses arguments, calls
one of them and prints what it returns. Everything here is synthetic-data machinery by default: the numbers it
produces are **not** the study's.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .._util.io import atomic_write_text, check_output
from .._util.validation import check_option
from ..models._best_worst import BEST_WORST_MODELS
from ..profiles.training_spec import normalize_profiles
from ._steps import (
    DEFAULT_BASE_MODEL,
    Log,
    SurveySpec,
    check_budget,
    check_model,
    load_model,
    load_preference_split,
    load_survey_frame,
    margin_reward_models,
    quiet_small_groups,
    set_threads,
    survey_rankings,
    train_profiles,
    training_config,
    training_pairs,
)
from .main import MainSchedule

__all__ = ["SavedAdapter", "SurveyFit", "find_adapters", "parse_weights", "run_adapters", "run_evaluate",
           "run_export_adapter", "run_fit", "run_fit_best_worst", "run_train_rewards"]

_PROG = "survey-weights"


@dataclass(frozen=True)
class SurveyFit:
    """Result of :func:`run_fit`.

    Attributes
    ----------
    table : DataFrame
        Tidy estimates (``criterion, log_worth, se, weight, ...``; with ``by``: one block per level, with the
        level and its ``n_respondents``).
    text : str
        The summary (pooled) or the table (``by``) as ``survey-weights fit`` prints it.
    csv : Path or None
        Where ``table`` was written, when asked.
    """

    table: pd.DataFrame
    text: str
    csv: Path | None = None


def run_fit(survey: str | os.PathLike[str] | None = None, *, by: str | Sequence[str] | None = None,
            csv: str | os.PathLike[str] | None = None, progress: bool = True, spec: SurveySpec | None = None,
            min_cell_size: int = 10) -> SurveyFit:
    """Fit a ties-aware Plackett-Luce model to the survey's ratings (pooled, or per level of ``by``).

    Parameters
    ----------
    survey : path, optional
        A survey export (:func:`~survey_weights.load_survey`); default the bundled synthetic survey.
    by : str or sequence of str, optional
        Survey covariates: one grouped fit per covariate (:func:`~survey_weights.fit_by_group`, so groups under
        `min_cell_size` respondents are withheld and a column that identifies respondents is refused).
    csv : path, optional
        Also write the tidy table there (atomically; checked before anything is fitted).
    progress : bool, default True
        Log lines on stderr (among them the respondents the survey drops, and withheld groups).
    spec : SurveySpec, optional
        Items, scale, respondent column, sampling weights and variance type.
    min_cell_size : int, default 10

    Raises
    ------
    FileNotFoundError
        ``survey`` does not exist.
    ValueError
        The survey lacks the rating columns, ``by`` is not one of its columns or identifies respondents, or the
        CSV path cannot be written.
    """
    from ..models import fit_plackett_luce

    if csv:
        check_output(csv, kind="file", what="CSV")
    spec = spec or SurveySpec()
    factors = [] if not by else ([by] if isinstance(by, str) else list(by))
    log = Log(progress)
    df = load_survey_frame(survey, spec)
    unknown = [f for f in factors if f not in df.columns]
    if unknown:
        raise ValueError(f"Unknown covariate(s) {unknown} for --by. Fix: name survey columns, e.g. "
                         f"{[c for c in ('age_group', 'severity') if c in df.columns] or list(df.columns)[:3]}.")
    rankings = survey_rankings(df, factors, log=log, spec=spec)
    log(f"      {rankings.n_respondents} respondents with ranking information (of {len(df)} rows)")
    return _fit_table(rankings, factors, fit_plackett_luce, spec.fit_options(), csv, min_cell_size, log)


def _fit_table(data: Any, factors: list[str], fit: Any, options: dict[str, Any], csv: Any, min_cell_size: int,
               log: Log) -> SurveyFit:
    """The pooled fit's summary and table, or one grouped fit per factor (groups under `min_cell_size` withheld);
    the table written to `csv` when given."""
    from ..subgroups.groups import fit_by_group

    if factors:
        frames = []
        with quiet_small_groups(log):
            for f in factors:
                g = fit_by_group(data, f, model=fit, min_cell_size=min_cell_size, **options)
                frames.append(g.to_frame())  # `group` ("factor=level") and the factor's own column
        table = pd.concat(frames, ignore_index=True)
        text = table.to_string(index=False)
    else:
        res = fit(data, **options)
        text = res.summary().as_text()
        table = res.to_frame()
    if csv:
        atomic_write_text(csv, table.to_csv(index=False))
    return SurveyFit(table, text, Path(csv) if csv else None)


def run_fit_best_worst(survey: str | os.PathLike[str], *, respondent: str = "respondent_id", task: str = "task",
                       shown: str | Sequence[str] = "shown", best: str = "best", worst: str = "worst",
                       model: str = "maxdiff", items: Sequence[str] | None = None, by: str | Sequence[str] | None = None,
                       csv: str | os.PathLike[str] | None = None, progress: bool = True,
                       sampling_weights: str | None = None, vcov: str | None = None, cluster: str | None = None,
                       min_cell_size: int = 10) -> SurveyFit:
    """Fit a best-worst (MaxDiff) model (:func:`~survey_weights.fit_best_worst`) to a CSV of best-worst tasks.

    Parameters
    ----------
    survey : path
        A CSV with one row per respondent x task.
    respondent, task, best, worst : str
        Its columns: respondent id, task id, the item chosen best and the item chosen worst.
    shown : str or sequence of str, default "shown"
        The items shown: one column holding them ``;``-separated (``"a;b;c"``), or several item columns
        (``shown_1, shown_2, ...``; empty cells are skipped, so tasks may show different numbers of items).
    model : {"maxdiff", "sequential", "marginal"}, default "maxdiff"
    items : sequence of str, optional
        All item labels in the order to use (default sorted).
    by, csv, progress, min_cell_size
        As in :func:`run_fit` (grouped fits per level of the respondent covariates ``by``).
    sampling_weights, vcov, cluster : str, optional
        A sampling-weight column, the variance type and a cluster column, as in :func:`run_fit`.

    Returns
    -------
    SurveyFit
        The weights are the items' shares of preference with their intervals (no respondent-level rows).
    """
    from ..data.rankings import Rankings
    from ..models import fit_best_worst

    if csv:
        check_output(csv, kind="file", what="CSV")
    check_option(model, "model", BEST_WORST_MODELS)
    factors = [] if not by else ([by] if isinstance(by, str) else list(by))
    p = Path(survey)
    if not p.is_file():
        raise FileNotFoundError(f"Best-worst file {str(p)!r} does not exist. Fix: pass the path of a CSV export.")
    log = Log(progress)
    df = pd.read_csv(p)
    cols = [shown] if isinstance(shown, str) else list(shown)
    missing = [c for c in [respondent, task, *cols, best, worst, *factors] + ([cluster] if cluster else [])
               if c not in df.columns]
    if missing:
        raise ValueError(f"Column(s) {missing} not in {p.name} (columns: {list(df.columns)[:12]}). Fix: name them "
                         "with --respondent / --task / --shown / --best / --worst / --by.")
    if isinstance(shown, str):  # one column of ";"-separated labels
        df[shown] = [[x.strip() for x in str(v).split(";") if x.strip()] if pd.notna(v) else [] for v in df[shown]]
    kw: dict[str, Any] = {"covariates": factors + ([cluster] if cluster and cluster not in factors else []) or None}
    if sampling_weights:
        kw["sampling_weights"] = sampling_weights
    data = Rankings.from_best_worst(df, respondent=respondent, task=task, shown=shown, best=best, worst=worst,
                                    items=list(items) if items else None, **kw)
    log(f"      {data.n_respondents} respondents, {data.best_worst.n_tasks} best-worst tasks")
    options = {"vcov": vcov, "cluster": cluster}
    return _fit_table(data, factors, functools.partial(fit_best_worst, model=model), options, csv, min_cell_size,
                      log)


def run_train_rewards(preferences: str | os.PathLike[str] | None = None, *,
                      out: str | os.PathLike[str] = "outputs/reward_models", criteria: Sequence[str] | None = None,
                      seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Train (or reuse) one margin reward model per criterion into ``out``.

    The pairs are :func:`~survey_weights.pipeline.reward_pairs` of the training split - the same as ``run`` and
    ``adapters`` use - so ``out`` can serve as their ``reward_cache``.

    Parameters
    ----------
    preferences : path, optional
        JSONL file or directory of ``<criterion>.jsonl``; default the bundled synthetic pairs.
    out : path, default "outputs/reward_models"
        The cache: one ``<criterion>-<key>`` directory per model.
    criteria : sequence of str, optional
        Default: every criterion in the data.
    seed : int, default 0
    progress : bool, default True

    Returns
    -------
    dict criterion -> RewardModel
    """
    check_output(out, what="reward-model")
    split = load_preference_split(preferences, seed=seed)
    crits = list(criteria) if criteria else list(dict.fromkeys(split.train["criterion"]))
    log = (lambda m: print(m, file=sys.stderr)) if progress else None
    return margin_reward_models(split.train, crits, out, seed=seed, log=log)


def run_adapters(weights: str | os.PathLike[str], *, preferences: str | os.PathLike[str] | None = None,
                 base_model: str = DEFAULT_BASE_MODEL, out: str | os.PathLike[str] = "outputs/adapters",
                 seed: int = 0, max_steps: int | None = None, device: str | None = None,
                 threads: int | str | None = None, overwrite: bool | None = None,
                 reward_cache: str | os.PathLike[str] | None = None, schedule: MainSchedule | None = None,
                 progress: bool = True) -> Any:
    """Train one MODPO adapter per profile of a ``weights.json`` / ``weights.csv`` (written by ``profiles``).

    The same steps as :func:`~survey_weights.pipeline.run_main`'s training: the schedule's pair subsample, the
    margins (the schedule's ``margins``: the pairs' own labels, or reward models on
    :func:`~survey_weights.pipeline.reward_pairs`), and each profile's provenance into its ``profile.json``.

    Parameters
    ----------
    weights : path
        Profiles exported by :func:`~survey_weights.profiles.export_profiles`.
    preferences, base_model, seed, device, threads, progress
        As for :func:`~survey_weights.pipeline.run_main`.
    out : path, default "outputs/adapters"
        One adapter directory per profile.
    max_steps : int, optional
        Overrides ``schedule.training.max_steps``.
    overwrite : bool or None, default None
        None: reuse finished adapters, retrain when settings or inputs changed. True: always retrain.
    reward_cache : path, optional
        Reward-model cache (default ``out/.cache/reward_models``).
    schedule : MainSchedule, optional
        Default :class:`~survey_weights.pipeline.MainSchedule` (the main job's).

    Returns
    -------
    survey_weights.modpo.TrainingRun

    Raises
    ------
    FileNotFoundError
        ``weights`` does not exist.
    ValueError, TypeError
        A bad schedule or profile, before anything is trained.
    """
    check_output(out, what="adapter")
    wpath = Path(weights)
    if not wpath.is_file():
        raise FileNotFoundError(f"Weights file {str(wpath)!r} does not exist. Fix: run `{_PROG} profiles` first.")
    from ..profiles.export import read_profiles

    sched = schedule or MainSchedule()
    cfg = training_config(sched.training, seed=seed, progress=progress, max_steps=max_steps)
    specs = normalize_profiles(read_profiles(wpath))
    check_model(base_model, device)  # before the reward models: a typo fails in a second
    log = Log(progress)
    split = load_preference_split(preferences, seed=seed)
    train, cfg, labels = training_pairs(split.train, cfg, per_criterion=sched.pairs_per_criterion, seed=seed, log=log)
    rms = {} if labels is not None else margin_reward_models(
        split.train, sorted(set(train["criterion"])), reward_cache or Path(out) / ".cache" / "reward_models",
        seed=seed, per_criterion=sched.reward_pairs_per_criterion, log=log)
    set_threads(threads)
    model, tok = load_model(base_model, device, log)
    return train_profiles(specs, train, out=Path(out), model=model, tok=tok, cfg=cfg, rms=rms, base_model=base_model,
                          device=device, overwrite=overwrite, log=log, margin_labels=labels)


@dataclass(frozen=True)
class SavedAdapter:
    """A finished adapter found on disk (:func:`find_adapters`).

    Attributes
    ----------
    name : str
        The profile name recorded in ``profile.json`` (default: the directory name).
    kind : {"modpo", "dpo"}
        ``"modpo"`` when more than one weight is positive.
    weights : dict or None
        The profile's weights.
    path : Path
        The adapter directory.
    profile : dict
        The whole ``profile.json``.
    """

    name: str
    kind: str
    weights: dict[str, float] | None
    path: Path
    profile: dict[str, Any]


def find_adapters(adapters: str | os.PathLike[str]) -> list[SavedAdapter]:
    """The finished adapters (``<adapters>/<dir>/profile.json``) under a directory, sorted by directory.

    Raises
    ------
    FileNotFoundError
        No finished adapter there.
    ValueError
        A ``profile.json`` is not valid JSON.
    """
    adir = Path(adapters)
    found = sorted(p.parent for p in adir.glob("*/profile.json")) if adir.is_dir() else []
    if not found:
        raise FileNotFoundError(f"No adapters (<dir>/profile.json) under {str(adir)!r}. Fix: run `{_PROG} adapters`.")
    out = []
    for d in found:
        try:
            meta = json.loads((d / "profile.json").read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{str(d / 'profile.json')!r} is not valid JSON ({exc.msg}). Fix: retrain that adapter "
                             f"(`{_PROG} adapters --overwrite`) or remove its directory.") from None
        w = meta.get("weights")
        kind = "modpo" if len([v for v in (w or {}).values() if v > 0]) > 1 else "dpo"
        out.append(SavedAdapter(meta.get("name", d.name), kind, w, d, meta))
    return out


def run_evaluate(adapters: str | os.PathLike[str], *, preferences: str | os.PathLike[str] | None = None,
                 base_model: str = DEFAULT_BASE_MODEL, out: str | os.PathLike[str] = "outputs", n_prompts: int = 12,
                 max_new_tokens: int = 48, seed: int = 0, device: str | None = None, threads: int | str | None = None,
                 progress: bool = True) -> dict[str, Path]:
    """Answer held-out prompts with the base model and every adapter under ``adapters``, score the replies with
    the rubric and compare each adapter with the base; write ``evaluation.json``, ``report.md``, plots to ``out``.

    Parameters
    ----------
    adapters : path
        Directory of adapter folders (:func:`find_adapters`).
    n_prompts : int, default 12
        Held-out prompts (the preference data's test split).
    max_new_tokens : int, default 48
        Reply length.
    preferences, base_model, out, seed, device, threads, progress
        As for :func:`~survey_weights.pipeline.run_main`; generations are cached under ``out/.cache``.

    Returns
    -------
    dict
        Paths written (``evaluation``, ``report``, ...).
    """
    check_output(out, what="evaluation")
    found = find_adapters(adapters)
    check_budget("n_prompts", n_prompts)
    check_budget("max_new_tokens", max_new_tokens)
    from ..evaluation.generation import ModelSpec, evaluate_models

    log = Log(progress)
    split = load_preference_split(preferences, seed=seed)
    prompts, ids = split.test_prompts[:n_prompts], split.test_ids[:n_prompts]
    specs = [ModelSpec("base", "base")] + [ModelSpec(a.name, a.kind, a.weights, adapter=a.path) for a in found]
    weights = {a.name: a.weights for a in found}
    set_threads(threads)
    model, tok = load_model(base_model, device, log)
    res = evaluate_models(specs, prompts, prompt_ids=ids, model=model, tokenizer=tok, profiles=weights,
                          pooled="pooled" if "pooled" in weights else None, max_new_tokens=max_new_tokens,
                          seed=seed, cache_dir=Path(out) / ".cache" / "generations", progress=progress,
                          settings={"base_model": base_model, "seed": seed})
    return res.write(out)


POOLS = ("bundled", "counsel-chat")
COUNSEL_NOTE = ("Real help-seekers' questions and licensed therapists' answers from counsel-chat (MIT licence, read "
                "at run time from ../shared/external/counsel_chat), with {n} synthetic template replies per question "
                "added; every candidate is scored by this package's rule-based rubric. Not the study's numbers.")


def run_evaluate_pool(adapters: str | os.PathLike[str], *, pool: str = "bundled", n_prompts: int | None = None,
                      base_model: str = DEFAULT_BASE_MODEL, out: str | os.PathLike[str] = "outputs", seed: int = 0,
                      device: str | None = None, threads: int | str | None = None, counsel_chat: Any = None,
                      only: Sequence[str] | None = None, progress: bool = True) -> dict[str, Path]:
    """Score the base model and every adapter under ``adapters`` on a fixed candidate pool - the primary metric of
    :func:`~survey_weights.evaluation.evaluate_pool` - and write ``pool_evaluation.json`` (``"pool"``, as in the
    main job's ``evaluation.json``), ``pool_report.md`` and ``pool_front.png`` (and ``pool_separation.png`` when
    adapters are named ``class ...``) to ``out``.

    Parameters
    ----------
    adapters : path
        Directory of adapter folders (:func:`find_adapters`), e.g. the main job's ``outputs/adapters``.
    pool : {"bundled", "counsel-chat"}, default "bundled"
        ``"bundled"``: the bundled synthetic preference data's held-out prompts, five rubric-scored candidates each.
        ``"counsel-chat"``: the real test-split questions of counsel-chat (39), each with its therapists' answers
        and 3 template replies, rubric-scored (:func:`~survey_weights.synthetic.counsel_pool.counsel_chat_pool`);
        the data are read at run time from ``../shared/external/counsel_chat`` (or ``counsel_chat``, a path).
    n_prompts : int, optional
        The pool's first prompts only; default 40 for ``"bundled"`` (as the main job), every question for
        ``"counsel-chat"``.
    base_model, out, seed, device, threads, progress
        As for :func:`~survey_weights.pipeline.run_main` (``seed``: the bootstrap and the template replies).
    counsel_chat : path, optional
        The counsel-chat CSV (default: beside the repository, ``../shared/external/counsel_chat``).
    only : sequence of str, optional
        Score only these adapters (profile names), beside the base; default every one. Counsel-chat's answers are
        long (about 2.5 minutes per model on 2 CPU cores for the 39 questions), so e.g. the pooled profile and the
        latent classes.

    Returns
    -------
    dict
        Paths written (``pool_evaluation``, ``pool_report``, ``pool_front``, ...) and ``seconds``.

    Raises
    ------
    ValueError
        An unknown ``pool``, a bad ``n_prompts`` or a name in ``only`` that is not an adapter (before the model is
        loaded).
    FileNotFoundError
        No adapter under ``adapters``, or the counsel-chat file is absent (the message says where it was looked for).
    """
    import time

    check_output(out, what="pool evaluation")
    check_option(pool, "pool", POOLS)
    if n_prompts is not None:
        check_budget("n_prompts", n_prompts)
    found = find_adapters(adapters)
    if only is not None:
        names = [a.name for a in found]
        unknown = [n for n in only if n not in names]
        if unknown or not only:
            raise ValueError(f"`only` names {unknown or 'nothing'}, not adapters under {adapters} (found {names}). "
                             "Fix: give profile names as in their profile.json.")
        found = [a for a in found if a.name in set(only)]
    from ._pool import SYNTHETIC_POOL_NOTE, bundled_pool, evaluate_and_write_pool

    if pool == "bundled":
        cpool = bundled_pool(n_prompts or MainSchedule().n_pool_prompts)
        note, title = SYNTHETIC_POOL_NOTE, "synthetic pool"
    else:
        from ..evaluation.pool import CandidatePool
        from ..synthetic.counsel_pool import counsel_chat_pool

        n_templates = 3
        cpool = counsel_chat_pool(path=counsel_chat, n_templates=n_templates, seed=seed)
        if n_prompts is not None and n_prompts < cpool.n_prompts:
            keep = set(cpool.prompt_ids[:n_prompts])
            frame = cpool.to_frame()
            cpool = CandidatePool.from_frame(frame[frame["prompt_id"].astype(str).isin(keep)],
                                             criteria=cpool.criteria, name=f"{cpool.name} (first {n_prompts})")
        note, title = COUNSEL_NOTE.format(n=n_templates), "counsel-chat questions, rubric scores"
    log = Log(progress)
    set_threads(threads)
    model, tok = load_model(base_model, device, log)
    log(f"pool evaluation: {len(found) + 1} models x {cpool.n_prompts} prompts ({cpool.name})")
    t0 = time.perf_counter()
    paths = evaluate_and_write_pool([(a.name, a.path) for a in found], {a.name: a.weights for a in found}, cpool,
                                    Path(out), model=model, tokenizer=tok, seed=seed, progress=progress,
                                    json_name="pool_evaluation.json", report_name="pool_report.md", note=note,
                                    plot_title=title)
    paths["seconds"] = time.perf_counter() - t0
    return paths


def parse_weights(text: str) -> dict[str, float]:
    """A weight vector written ``criterion=weight,criterion=weight,...`` (as ``export-adapter --weights`` takes it).

    Raises
    ------
    ValueError
        An entry without ``=``, an empty criterion name, a weight that is not a number, or a repeated criterion.

    Examples
    --------
    >>> parse_weights("empathy=0.2, safety=0.8")
    {'empathy': 0.2, 'safety': 0.8}
    """
    out: dict[str, float] = {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        crit, sep, value = (x.strip() for x in part.partition("="))
        if not sep or not crit:
            raise ValueError(f"Cannot read weight {part!r} in {text!r}. Fix: write criterion=weight pairs separated "
                             "by commas, e.g. empathy=0.2,safety=0.8.")
        try:
            out_value = float(value)
        except ValueError:
            raise ValueError(f"The weight of {crit!r} in {text!r} is not a number ({value!r}). Fix: e.g. "
                             f"{crit}=0.2.") from None
        if crit in out:
            raise ValueError(f"Criterion {crit!r} appears twice in {text!r}. Fix: give each criterion once.")
        out[crit] = out_value
    if not out:
        raise ValueError(f"No weights in {text!r}. Fix: write criterion=weight pairs, e.g. empathy=0.2,safety=0.8.")
    return out


def run_export_adapter(run: str | os.PathLike[str], *, out: str | os.PathLike[str],
                       weights: str | Mapping[str, float] | None = None,
                       profiles: str | os.PathLike[str] | None = None, name: str | None = None,
                       calibrated: bool = True) -> dict[str, Path]:
    """Export plain PEFT LoRA adapters from a finished conditioned run, without training (per-respondent adapters).

    Give exactly one of ``weights`` (one weight vector: the adapter goes to ``out``) and ``profiles`` (a
    ``weights.json`` / ``weights.csv``: one adapter per profile under ``out``, with each profile's provenance in its
    ``profile.json``). See :meth:`survey_weights.modpo.ConditionedAdapter.export`.

    Parameters
    ----------
    run : path
        The ``output_dir`` of :func:`survey_weights.modpo.train_conditioned`.
    out : path
        The adapter directory (``weights``) or the directory of adapters (``profiles``).
    weights : str or mapping criterion -> weight, optional
        ``"empathy=0.2,safety=0.8"`` (:func:`parse_weights`) or a mapping; criteria left out weigh 0, weights not
        summing to 1 are normalised with a warning.
    profiles : path, optional
        Profiles exported by :func:`~survey_weights.profiles.export_profiles`.
    name : str, optional
        Profile name of a ``weights`` export (default: the directory name of ``out``).
    calibrated : bool, default True
        Use the run's calibrated mixing when it has one (``calibration.json``,
        :meth:`~survey_weights.modpo.ConditionedAdapter.calibrate`); False: the run's own mix.

    Returns
    -------
    dict profile name -> adapter directory

    Raises
    ------
    FileNotFoundError
        ``run`` holds no finished conditioned run, or ``profiles`` does not exist.
    ValueError
        Neither or both of ``weights`` / ``profiles``; weights naming criteria the run was not trained on, a negative
        or all-zero weight vector, unreadable ``weights`` text.
    """
    if (weights is None) == (profiles is None):
        raise ValueError("Give exactly one of `weights` (one weight vector) and `profiles` (a weights.json). Fix: "
                         "e.g. --weights empathy=0.2,safety=0.8.")
    from ..modpo import ConditionedAdapter

    cond = ConditionedAdapter.load(run, calibration=calibrated)
    if weights is not None:
        w = parse_weights(weights) if isinstance(weights, str) else dict(weights)
        spec = cond.spec(w, name=name or Path(out).name)
        return {spec.name: cond.export(spec, out)}
    ppath = Path(profiles)
    if not ppath.is_file():
        raise FileNotFoundError(f"Weights file {str(ppath)!r} does not exist. Fix: run `{_PROG} profiles` first.")
    from ..profiles.export import read_profiles

    return cond.export_all(read_profiles(ppath), out)
