"""The end-to-end main job (:func:`run_main`) and the study's comparison (:func:`run_experiment`).

Main job: survey -> pooled, subgroup and latent-class weight profiles -> reward models -> one MODPO LoRA
adapter per profile -> evaluation on held-out prompts. Every step reuses finished work: adapters resume or
skip (``profile.json``), reward models and generations are cached under ``<out>/.cache`` keyed by a hash of
their inputs.

Everything here is synthetic-data machinery: the numbers it produces are **not** the study's.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import atomic_write_bytes
from .criteria import ALL_CRITERIA, SURVEY_CRITERIA

__all__ = [
    "DEFAULT_BASE_MODEL",
    "MainSchedule",
    "PreferenceSplit",
    "build_profiles",
    "export_weights",
    "load_preference_split",
    "load_survey_frame",
    "reward_models_cached",
    "run_experiment",
    "run_main",
    "set_threads",
]

DEFAULT_BASE_MODEL = "smollm2-135m-instruct"
SUBGROUP_FACTORS: tuple[str, ...] = ("age_group", "severity")


class _Log:
    """Timestamped progress lines on stderr (tqdm bars of the steps go there too)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class MainSchedule:
    """Training / evaluation sizes of the main job (defaults fit 15 minutes on a 2-core CPU).

    Parameters
    ----------
    max_steps : int
        Optimiser steps per adapter.
    batch_size : int
        Preference pairs per step.
    max_length, max_prompt_length : int
        Token limits of prompt + reply and of the prompt.
    pairs_per_criterion : int
        Training pairs kept per criterion (seeded subsample) - bounds the reference/margin precompute.
    reward_pairs_per_criterion : int
        Pairs per criterion the margin reward models learn from (seeded subsample of the training split).
    n_eval_prompts : int
        Held-out prompts answered by every model.
    max_new_tokens : int
        Reply length at evaluation.
    lr : float
        LoRA learning rate.
    """

    max_steps: int = 3
    batch_size: int = 2
    max_length: int = 160
    max_prompt_length: int = 96
    pairs_per_criterion: int = 6
    reward_pairs_per_criterion: int = 48
    n_eval_prompts: int = 8
    max_new_tokens: int = 40
    lr: float = 5e-4

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ----------------------------------------------------------------------------------------------- survey side
def load_survey_frame(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The bundled synthetic survey, or a user's CSV in the study's layout (``datasets.load_survey``)."""
    from . import datasets

    if path is None:
        return datasets.load_example_survey()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"Survey file {str(p)!r} does not exist. Fix: pass the path of a CSV export.")
    return datasets.load_survey(p)


def _rankings(df: pd.DataFrame, factors: Sequence[str]) -> Any:
    from .data import Rankings

    missing = [c for c in SURVEY_CRITERIA if c not in df.columns]
    if missing:
        raise ValueError(f"The survey lacks the importance rating column(s) {missing}. Expected the study's layout "
                         f"with columns {list(SURVEY_CRITERIA)} (see survey_weights.datasets.load_survey).")
    covs = [c for c in factors if c in df.columns]
    resp = "respondent_id" if "respondent_id" in df.columns else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # respondents with all-equal ratings are dropped (reported by the fit)
        return Rankings.from_ratings(df, list(SURVEY_CRITERIA), respondent=resp, scale=(1, 5),
                                     covariates=covs or None)


def _quiet_small_groups(log: _Log) -> Any:
    """Context: SmallGroupWarnings (withheld groups) become progress lines instead of warnings."""
    import contextlib

    from .exceptions import SmallGroupWarning

    @contextlib.contextmanager
    def ctx() -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SmallGroupWarning)
            yield
        for w in caught:
            if issubclass(w.category, SmallGroupWarning):
                log(f"      withheld: {w.message}")
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ctx()


def build_profiles(df: pd.DataFrame, *, min_cell_size: int = 10, factors: Sequence[str] = SUBGROUP_FACTORS,
                   n_classes: int = 3, seed: int = 0, progress: bool = True) -> list[Any]:
    """Pooled, subgroup and latent-class weight profiles of a survey.

    Parameters
    ----------
    df : DataFrame
        Survey in the study's layout (ratings named as ``SURVEY_CRITERIA``).
    min_cell_size : int, default 10
        Subgroups and classes with fewer respondents get no profile (logged, never exported).
    factors : sequence of str, default ("age_group", "severity")
        Covariates whose levels define subgroups (:func:`survey_weights.groups.fit_by_group`; missing columns
        are skipped).
    n_classes : int, default 3
        Latent classes of the Plackett-Luce mixture (:func:`survey_weights.mixture.fit_mixture`; 0 disables).
    seed : int, default 0
        Seeds the mixture's EM starts.

    Returns
    -------
    list of WeightProfile
        ``pooled`` first, then ``<factor>=<level>`` and ``class <k>``.
    """
    from .groups import fit_by_group
    from .mixture import fit_mixture
    from .models import fit_plackett_luce
    from .profiles import derive_profile

    log = _Log(progress)
    rankings = _rankings(df, factors)
    profiles = [derive_profile(fit_plackett_luce(rankings), name="pooled", source="pooled",
                               data_hash=rankings.data_hash())]
    cov = rankings.covariates
    with _quiet_small_groups(log):
        for f in factors:
            if cov is None or f not in cov.columns:
                log(f"      subgroup factor {f!r}: not in the survey, skipped")
                continue
            profiles += fit_by_group(rankings, f, min_group_size=min_cell_size).profiles()
        if n_classes:
            profiles += fit_mixture(rankings, n_classes, seed=seed).profiles(min_cell_size=min_cell_size)
    return profiles


def export_weights(profiles: Sequence[Any], out: str | os.PathLike[str], *, min_cell_size: int = 10
                   ) -> dict[str, Path]:
    """``weights.json``, ``weights.csv`` (no respondent ids) and ``weights.png`` into ``out``."""
    from .export import export_profiles

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = export_profiles(list(profiles), out / "weights", min_cell_size=min_cell_size, format="both")
    res = {p.suffix[1:]: p for p in paths}
    res["weights_plot"] = _plot_profiles(profiles, out / "weights.png")
    return res


def _plot_profiles(profiles: Sequence[Any], path: Path) -> Path:
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    table = pd.DataFrame({p.name: p.weights for p in profiles}).T[list(ALL_CRITERIA)]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(table) + 1.8))
    left = np.zeros(len(table))
    for j, c in enumerate(table.columns):
        ax.barh(table.index, table[c], left=left, color=f"C{j}", label=c)
        left += table[c].to_numpy()
    ax.invert_yaxis()
    ax.set_xlabel("weight (shares sum to 1)")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.set_title("Weight profiles (synthetic survey)")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------------------------- preferences
@dataclass(frozen=True)
class PreferenceSplit:
    """Training pairs and held-out prompts (prompts never seen in training)."""

    train: pd.DataFrame
    test_prompts: list[str]
    test_ids: list[str]
    source: str = "bundled"
    info: dict[str, Any] = field(default_factory=dict)


def _split_by_prompt(frame: pd.DataFrame, *, test_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = frame["prompt_id"].astype(str) if "prompt_id" in frame.columns and frame["prompt_id"].notna().all() \
        else frame["prompt"].map(lambda s: hashlib.sha256(s.encode()).hexdigest()[:12])
    uniq = np.array(sorted(ids.unique()))
    rng = np.random.default_rng(seed)
    test = set(rng.choice(uniq, size=max(1, int(round(test_fraction * len(uniq)))), replace=False))
    is_test = ids.isin(test).to_numpy()
    out = frame.assign(prompt_id=ids.to_numpy())
    return out[~is_test].reset_index(drop=True), out[is_test].reset_index(drop=True)


def load_preference_split(source: str | os.PathLike[str] | None = None, *, seed: int = 0,
                          test_fraction: float = 0.2) -> PreferenceSplit:
    """Preference pairs with a prompt-level train/test split.

    Parameters
    ----------
    source : path, optional
        A JSONL file or per-criterion directory (:func:`survey_weights.preferences.read_preferences`). Default:
        the bundled synthetic data (:func:`survey_weights.synthetic_prefs.load_preference_data`) and its own
        split. A ``split`` column (``train``/``test``) is honoured; otherwise prompts are split at random
        (seeded) by ``prompt_id``.
    """
    if source is None:
        try:
            from .synthetic_prefs import load_preference_data
        except ImportError as exc:
            raise ValueError("The bundled synthetic preference data (survey_weights.synthetic_prefs) is not "
                             "available in this build. Fix: pass --preferences DIR_OR_JSONL.") from exc
        pdata = load_preference_data()
        label = "bundled synthetic (survey_weights.synthetic_prefs)"
        train = pdata.train_pairs()
        tp = pdata.prompts[pdata.prompts["split"] == "test"]
        return PreferenceSplit(train=train, test_prompts=tp["prompt"].tolist(),
                               test_ids=tp["prompt_id"].astype(str).tolist(), source=label,
                               info={"n_train_pairs": len(train), "n_test_prompts": len(tp)})
    else:
        from .preferences import read_preferences

        p = Path(source)
        if not p.exists():
            raise FileNotFoundError(f"Preference data {str(p)!r} does not exist. Fix: pass a JSONL file or a "
                                    "directory of <criterion>.jsonl files.")
        data = read_preferences(p)
        label = str(p)
    train, test = _split_frames(data, seed=seed, test_fraction=test_fraction)
    first = test.drop_duplicates("prompt_id")
    return PreferenceSplit(train=train, test_prompts=first["prompt"].tolist(),
                           test_ids=first["prompt_id"].astype(str).tolist(), source=label,
                           info={"n_train_pairs": len(train), "n_test_prompts": len(first)})


def _split_frames(data: Any, *, seed: int, test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    if isinstance(data, tuple) and len(data) == 2:  # (train, test) frames
        return data[0].reset_index(drop=True), data[1].assign(prompt_id=data[1]["prompt_id"].astype(str))
    if isinstance(data, Mapping) and {"train", "test"} <= set(data):
        return data["train"].reset_index(drop=True), data["test"].assign(prompt_id=data["test"]["prompt_id"].astype(str))
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"Unsupported preference data of type {type(data).__name__}.")
    if "split" in data.columns:
        tr = data[data["split"] == "train"].reset_index(drop=True)
        te = data[data["split"] == "test"].reset_index(drop=True)
        if len(tr) and len(te):
            if "prompt_id" not in te.columns:
                te = te.assign(prompt_id=te["prompt"].map(lambda s: hashlib.sha256(s.encode()).hexdigest()[:12]))
            return tr, te.assign(prompt_id=te["prompt_id"].astype(str))
    return _split_by_prompt(data, test_fraction=test_fraction, seed=seed)


def subsample_pairs(train: pd.DataFrame, *, per_criterion: int | None, seed: int) -> pd.DataFrame:
    """At most ``per_criterion`` pairs per criterion (seeded, order kept)."""
    if per_criterion is None:
        return train.reset_index(drop=True)
    parts = []
    for i, (_, g) in enumerate(train.groupby("criterion", sort=False)):
        parts.append(g.sample(n=min(per_criterion, len(g)), random_state=seed + i).sort_index())
    return pd.concat(parts).reset_index(drop=True)


# ----------------------------------------------------------------------------------------------- reward models
def reward_models_cached(train: pd.DataFrame, criteria: Sequence[str], cache: str | os.PathLike[str], *,
                         seed: int = 0, log: Any = None) -> dict[str, Any]:
    """Train (or reload) one reward model per criterion, cached by a hash of the pairs and the config."""
    from .modpo import RewardModel, RewardModelConfig, train_reward_model
    from .modpo.data import as_pairs_frame, data_hash

    cfg = RewardModelConfig(seed=seed)
    frame = as_pairs_frame(train)
    out: dict[str, Any] = {}
    for c in criteria:
        sub = frame[frame["criterion"] == c]
        key = hashlib.sha256(json.dumps([data_hash(sub), cfg.to_dict()], sort_keys=True).encode()).hexdigest()[:16]
        path = Path(cache) / f"{c}-{key}"
        if (path / "reward_config.json").is_file():
            out[c] = RewardModel.load(path)
            if log:
                log(f"reward model {c}: reused {path.name} (val acc {out[c].val_accuracy})")
            continue
        out[c] = train_reward_model(frame, c, config=cfg)
        out[c].save(path)
        if log:
            log(f"reward model {c}: trained, val acc {out[c].val_accuracy}")
    return out


def reward_accuracies(reward_models: Mapping[str, Any]) -> dict[str, float | None]:
    """Held-out pairwise accuracy of each margin reward model (None when the model does not report one)."""
    out: dict[str, float | None] = {}
    for c, rm in reward_models.items():
        acc = getattr(rm, "val_accuracy", None)
        out[c] = None if acc is None else round(float(acc), 4)
    return out


def set_threads(threads: int | str | None) -> int | None:
    """Set torch's intra-op CPU threads.

    Parameters
    ----------
    threads : int, "auto" or None
        None leaves torch's default (one per core). ``"auto"``: one thread when other work already keeps the
        CPU busy (1-minute load average >= 1), else torch's default. On a CPU shared with other jobs one
        thread is often several times faster: with more threads every op waits for its slowest thread, and a
        descheduled thread stalls the whole op.

    Returns
    -------
    int or None
        The thread count set (None when left alone).
    """
    if threads is None:
        return None
    if threads == "auto":
        try:
            busy = os.getloadavg()[0] >= 1.0
        except OSError:  # pragma: no cover - platforms without getloadavg
            busy = False
        if not busy:
            return None
        threads = 1
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"`threads` must be an int >= 1, 'auto' or None. Got {threads!r}.")
    import torch

    torch.set_num_threads(threads)
    return threads


def _load_model(base_model: str, device: str | None, log: _Log) -> tuple[Any, Any]:
    from .modpo import load_base_model

    t = time.perf_counter()
    model, tok = load_base_model(base_model, device=device)
    log(f"base model {base_model!r} loaded in {time.perf_counter() - t:.1f}s")
    return model, tok


def _accelerator(device: str | None) -> Any:
    from accelerate import Accelerator

    return Accelerator(cpu=device is not None and str(device).startswith("cpu"))


def _train(profiles: Any, train: pd.DataFrame, *, out: Path, model: Any, tok: Any, cfg: Any, rms: Mapping[str, Any],
           base_model: str, device: str | None, overwrite: bool | None, log: Any = None, **kw: Any) -> Any:
    """``train_adapters`` with resume; ``overwrite=None`` retrains when the inputs changed since the last run."""
    from .modpo import train_adapters

    def call(ow: bool) -> Any:
        return train_adapters(profiles, train, output_dir=out, model=model, tokenizer=tok, config=cfg,
                              reward_models=dict(rms), base_model_id=base_model, overwrite=ow,
                              accelerator=_accelerator(device), **kw)

    try:
        return call(bool(overwrite))
    except ValueError as exc:
        if "other settings" not in str(exc):
            raise
        if overwrite is None:
            if log:
                log("      the schedule, seed, data or base model changed since the last run: retraining")
            return call(True)
        raise ValueError(f"{exc} (The schedule, seed, data or base model changed since the last run: pass "
                         "--overwrite to retrain, or choose another --out.)") from None


# ----------------------------------------------------------------------------------------------- main job
def run_main(*, survey: str | os.PathLike[str] | None = None, preferences: str | os.PathLike[str] | None = None,
             base_model: str = DEFAULT_BASE_MODEL, out: str | os.PathLike[str] = "outputs",
             profiles_only: bool = False, seed: int = 0, max_steps: int | None = None, device: str | None = None,
             min_cell_size: int = 10, n_classes: int = 3, factors: Sequence[str] = SUBGROUP_FACTORS,
             schedule: MainSchedule | None = None, reward_models: Mapping[str, Any] | None = None,
             threads: int | str | None = None, overwrite: bool | None = None, progress: bool = True
             ) -> dict[str, Any]:
    """Survey -> weight profiles -> reward models -> one adapter per profile -> evaluation, into ``out``.

    Parameters
    ----------
    survey : path, optional
        CSV in the study's layout; default the bundled synthetic survey.
    preferences : path, optional
        JSONL file or directory of ``<criterion>.jsonl``; default the bundled synthetic pairs.
    base_model : str, default "smollm2-135m-instruct"
        Name or local path (see :func:`survey_weights.modpo.load_base_model`); ``"tiny-test"`` for a smoke run.
    out : path, default "outputs"
    profiles_only : bool, default False
        Stop after ``weights.json`` / ``weights.csv`` / ``weights.png``.
    seed : int, default 0
        Seeds the mixture fit, data split and subsample, LoRA init, data order and decoding.
    max_steps : int, optional
        Overrides ``schedule.max_steps``.
    device : str, optional
        ``"cpu"``, ``"cuda"``...; default CUDA when available.
    min_cell_size : int, default 10
    n_classes : int, default 3
        Latent classes (0: none).
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
    progress : bool, default True

    Returns
    -------
    dict
        Paths written (``weights_json``, ``weights_csv``, ..., ``evaluation``, ``report``) and timings.
    """
    log = _Log(progress)
    t0 = time.perf_counter()
    sched = schedule or MainSchedule()
    if max_steps is not None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"`max_steps` must be an int >= 1. Got {max_steps!r}.")
        sched = MainSchedule(**{**sched.to_dict(), "max_steps": max_steps})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log("[1/5] survey -> weight profiles")
    df = load_survey_frame(survey)
    profiles = build_profiles(df, min_cell_size=min_cell_size, factors=factors, n_classes=n_classes, seed=seed,
                              progress=progress)
    profiles = [p for p in profiles if p.n_respondents >= min_cell_size]
    paths: dict[str, Any] = {f"weights_{k}" if k in ("json", "csv") else k: v
                             for k, v in export_weights(profiles, out, min_cell_size=min_cell_size).items()}
    log(f"      {len(profiles)} profiles: {', '.join(p.name for p in profiles)}")
    if profiles_only:
        paths["seconds"] = time.perf_counter() - t0
        return paths

    from .modpo import MODPOConfig

    n_thr = set_threads(threads)
    if n_thr is not None:
        log(f"      torch CPU threads: {n_thr}")
    log("[2/5] preference data")
    split = load_preference_split(preferences, seed=seed)
    train = subsample_pairs(split.train, per_criterion=sched.pairs_per_criterion, seed=seed)
    prompts, ids = split.test_prompts[:sched.n_eval_prompts], split.test_ids[:sched.n_eval_prompts]
    log(f"      {len(train)} training pairs ({split.source}); {len(prompts)} held-out prompts")
    log("[3/5] reward models (margins)")
    weights = {p.name: {c: float(v) for c, v in p.weights.items()} for p in profiles}
    margin_crits = [c for c in ALL_CRITERIA if c in set(train["criterion"])]
    # Reward models learn from more pairs than the adapters see (the adapters' short schedule uses a subsample).
    rms = dict(reward_models) if reward_models is not None else reward_models_cached(
        subsample_pairs(split.train, per_criterion=sched.reward_pairs_per_criterion, seed=seed), margin_crits,
        out / ".cache" / "reward_models", seed=seed, log=log)
    model, tok = _load_model(base_model, device, log)
    log(f"[4/5] one MODPO adapter per profile ({sched.max_steps} steps x {sched.batch_size} pairs)")
    cfg = MODPOConfig(max_steps=sched.max_steps, batch_size=sched.batch_size, max_length=sched.max_length,
                      max_prompt_length=sched.max_prompt_length, lr=sched.lr, seed=seed, progress=progress)
    t = time.perf_counter()
    run = _train(weights, train, out=out / "adapters", model=model, tok=tok, cfg=cfg, rms=rms,
                 base_model=base_model, device=device, overwrite=overwrite, log=log)
    n_new = sum(not a.skipped for a in run.adapters)
    log(f"      {n_new} trained, {len(run.adapters) - n_new} reused in {time.perf_counter() - t:.1f}s")
    log(f"[5/5] evaluation: {len(profiles) + 1} models x {len(prompts)} prompts")
    from ._generation import ModelSpec, evaluate_models

    specs = [ModelSpec("base", "base")] + [ModelSpec(a.name, "modpo", weights[a.name], adapter=a.path,
                                                     extra={"main_objective": a.main_objective})
                                           for a in run.adapters]
    res = evaluate_models(specs, prompts, prompt_ids=ids, model=model, tokenizer=tok, profiles=weights,
                          pooled="pooled", max_new_tokens=sched.max_new_tokens, seed=seed,
                          cache_dir=out / ".cache" / "generations", progress=progress,
                          settings={"base_model": base_model, "seed": seed, "schedule": sched.to_dict(),
                                    "preferences": split.source, "survey": str(survey or "bundled synthetic"),
                                    "reward_model_val_accuracy": reward_accuracies(rms)})
    paths.update(res.write(out, title="Main job: one MODPO adapter per weight profile"))
    paths["adapters"] = out / "adapters"
    paths["seconds"] = time.perf_counter() - t0
    log(f"done in {paths['seconds']:.1f}s -> {out}")
    return paths


def run_experiment(**kwargs: Any) -> dict[str, Any]:
    """The study's comparison on the bundled data; see :func:`survey_weights._experiment.run_experiment`."""
    from ._experiment import run_experiment as _run

    return _run(**kwargs)
