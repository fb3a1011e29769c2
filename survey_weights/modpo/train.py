"""Train one LoRA adapter per weight profile with MODPO (Zhou et al. 2023) on transformers + peft.

Cost model: reference log-probs (the base with no adapter) and reward-model margins are computed **once** per
data set and shared by every profile, so each profile's step is one forward + backward of the policy.
The loop runs unchanged under ``accelerate launch`` (global batch split across ranks, gradients averaged).

Layout: :func:`train_adapters` reads top to bottom (checks, specs, resume, precompute, one call per profile);
the shared precompute is in :mod:`._precompute`, the step loop in :mod:`._loop`, ``profile.json`` and the
atomic save in :mod:`._resume`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from ..preferences.pairs import as_pairs_frame, data_hash
from ..profiles.training_spec import TrainingSpec, check_coverage, normalize_profiles
from ._loop import train_profile
from ._precompute import precompute, prepare_model
from ._resume import PROFILE_FILE, adapter_record, is_finished, prepare_output_dir, save_adapter
from .config import MODPOConfig, RewardModelConfig
from .logps import check_pair_tokens

__all__ = ["AdapterResult", "TrainingRun", "train_adapters", "train_dpo_adapters", "PROFILE_FILE"]

_OBJECTIVES = ("modpo", "joint_dpo")


@dataclass(frozen=True)
class AdapterResult:
    """One trained (or resumed) adapter.

    Attributes
    ----------
    name : str
        Profile name; ``path`` is ``output_dir / profile_dirname(name)``.
    criteria, weight_vector : tuple
        Objective order used in training (main objective first) and its weights.
    losses : tuple of float
        Mean training loss per step (empty when ``skipped``).
    skipped : bool
        True when a finished adapter with a matching ``profile.json`` was found and reused.
    """

    name: str
    path: Path
    main_objective: str
    criteria: tuple[str, ...]
    weight_vector: tuple[float, ...]
    losses: tuple[float, ...]
    skipped: bool
    train_seconds: float


@dataclass(frozen=True)
class TrainingRun:
    """Result of :func:`train_adapters`: adapters in profile order plus shared-precompute facts."""

    adapters: tuple[AdapterResult, ...]
    output_dir: Path
    precompute_seconds: float
    reward_accuracy: dict[str, float | None] = field(default_factory=dict)

    def __getitem__(self, name: str) -> AdapterResult:
        for a in self.adapters:
            if a.name == name:
                return a
        raise KeyError(name)


def train_adapters(
    profiles: Any,
    data: Any,
    *,
    output_dir: str | os.PathLike[str],
    model: Any = "smollm2-135m-instruct",
    tokenizer: Any = None,
    config: MODPOConfig | None = None,
    main_objective: str | Mapping[str, str] | None = None,
    reward_models: Mapping[str, Any] | None = None,
    reward_config: RewardModelConfig | None = None,
    objective: str = "modpo",
    overwrite: bool = False,
    base_model_id: str | None = None,
    accelerator: Any = None,
    margin_labels: Any = None,
) -> TrainingRun:
    """Train one LoRA adapter per weight profile and save each in PEFT format with a ``profile.json``.

    For a profile with weights ``w`` and main objective ``k``, the training pairs are ``k``'s pairs and every
    other criterion with ``w_c > 0`` enters as a margin (:func:`~survey_weights.modpo.modpo_loss` with weights
    ``(w_k, w_-k)``): from a reward model, or with ``config.margins="labels"`` from the pair's own label on ``c``
    (the ``c``-pair of the same comparison, in ``data`` or ``margin_labels``). A profile ``{c: 1}`` is plain DPO.

    Labels: a pair's soft ``label`` (P(chosen preferred), when the data carry one) is the target of the loss;
    pairs without one are trained towards ``1 - config.label_smoothing`` (default 0.1, conservative DPO), so that
    on conflicting data a profile whose margin weight outweighs its main objective's prefers the reply its main
    objective rejects (with ``label_smoothing=0`` and hard labels it never can). Reward models trained here use
    the same labels (``reward_config.label_smoothing``). Joint-loss DPO ignores labels.

    Parameters
    ----------
    profiles : WeightProfile(s), mapping name -> {criterion: weight}, TrainingSpecs, or a list of them
        Turned into one :class:`~survey_weights.profiles.training_spec.TrainingSpec` each
        (:func:`~survey_weights.profiles.training_spec.normalize_profiles`); names must stay distinct as directory
        names. A WeightProfile's provenance (survey data hash, respondents, intervals, safety rule, source,
        group) is written to ``profile.json``.
    data : DataFrame, mapping criterion -> DataFrame, or JSONL path
        Preference pairs with columns ``prompt, chosen, rejected, criterion`` (+ optional ``prompt_id`` and
        ``label``).
    output_dir : path
        Adapters go to ``output_dir / profile_dirname(name)``; reward models trained here go to
        ``output_dir / "reward_models" / criterion``.
    model : str or transformers.PreTrainedModel, default "smollm2-135m-instruct"
        A base causal LM (not a PeftModel) or a name/path for :func:`~survey_weights.modpo.load_base_model`.
        The model is modified in place while training and restored (LoRA unloaded) afterwards.
    tokenizer : tokenizer, optional
        Required when ``model`` is a model object.
    config : MODPOConfig, optional
    main_objective : str or mapping profile name -> str, optional
        Default: each profile's largest survey criterion.
    reward_models : mapping criterion -> reward model, optional
        Objects with ``.score(prompts, responses)`` or callables ``f(prompts, responses) -> scores``. Margin
        criteria without one get a :class:`~survey_weights.modpo.RewardModel` trained on ``data``.
    reward_config : RewardModelConfig, optional
    objective : {"modpo", "joint_dpo"}, default "modpo"
        ``"joint_dpo"`` is the study's joint-loss baseline (needs pairs for every weighted criterion, aligned
        by ``prompt_id``, or by prompt text when there is no ``prompt_id``).
    overwrite : bool, default False
        Retrain profiles whose finished adapter exists. Otherwise finished adapters with a matching
        ``profile.json`` are skipped (resume) and mismatching ones raise.
    base_model_id : str, optional
        Recorded in ``profile.json`` (default: the name/path passed or ``model.config.name_or_path``).
    accelerator : accelerate.Accelerator, optional
        Created when omitted (works under ``accelerate launch`` and ``torchrun``).
    margin_labels : DataFrame, mapping or JSONL path, optional
        With ``config.margins="labels"``: more labelled pairs each training pair's labels on the other criteria
        are read from (e.g. the full data when ``data`` is a subsample of it); part of the data hash.

    Returns
    -------
    TrainingRun

    Raises
    ------
    ValueError
        Bad profiles (see ``normalize_profiles``), main objective with zero weight, criteria missing from the
        data / reward models, ``batch_size`` not divisible by the number of processes.
    SettingsChangedError
        A finished adapter in ``output_dir`` was trained with other settings or data (without ``overwrite``);
        a subclass of ValueError.
    TypeError
        ``model`` is a PeftModel or no tokenizer was given with a model object.
    """
    cfg, rcfg = _check_configs(config, reward_config, objective)
    specs = normalize_profiles(profiles, main_objective=main_objective)
    frame = as_pairs_frame(data)
    labels_frame = _margin_label_frame(margin_labels, cfg)
    cfg = resolve_margins(cfg, frame, labels_frame, reward_models)
    given = _check_coverage(specs, frame, reward_models, objective, cfg.margins, labels_frame)
    acc, model, tokenizer, base_model_id = prepare_model(model, tokenizer, base_model_id, accelerator, cfg.batch_size)
    check_pair_tokens(tokenizer, frame, max_length=cfg.max_length, max_prompt_length=cfg.max_prompt_length)
    out = prepare_output_dir(output_dir, acc)
    d_hash = data_hash(frame) if labels_frame is None else combined_hash(frame, labels_frame)
    records = {s.name: adapter_record(s, objective=objective, cfg=cfg, rcfg=rcfg, data_hash=d_hash, given=given,
                                      base_model=base_model_id) for s in specs}
    results = {s.name: _result(s, out, (), True, 0.0) for s in specs
               if is_finished(records[s.name], out, overwrite=overwrite, acc=acc)}
    todo = [s for s in specs if s.name not in results]
    t0 = time.perf_counter()
    shared = precompute(todo, frame, objective=objective, acc=acc, model=model, tokenizer=tokenizer, cfg=cfg,
                        rcfg=rcfg, given=given, out=out, margin_labels=labels_frame) if todo else None
    precompute_s = time.perf_counter() - t0
    for s in todo:
        t1 = time.perf_counter()
        save = partial(save_adapter, record=records[s.name], reward_models=shared.reward_models, out=out, acc=acc)
        losses, model = train_profile(s, shared, objective=objective, acc=acc, model=model, cfg=cfg, save=save)
        results[s.name] = _result(s, out, tuple(losses), False, time.perf_counter() - t1)
    rm_acc = shared.reward_accuracy() if shared else {}
    return TrainingRun(tuple(results[s.name] for s in specs), out, precompute_s, rm_acc)


def _check_configs(config: Any, reward_config: Any, objective: str) -> tuple[MODPOConfig, RewardModelConfig]:
    cfg = config or MODPOConfig()
    if not isinstance(cfg, MODPOConfig):
        raise TypeError(f"`config` must be a MODPOConfig. Got {type(cfg).__name__} instead.")
    if objective not in _OBJECTIVES:
        raise ValueError(f"Unknown `objective` {objective!r}. Choose one of {_OBJECTIVES}.")
    return cfg, reward_config or RewardModelConfig()


def _margin_label_frame(margin_labels: Any, cfg: MODPOConfig) -> pd.DataFrame | None:
    """``margin_labels`` as a validated pairs frame (None when not given); only with ``margins`` "labels"/"auto"."""
    if margin_labels is None:
        return None
    if cfg.margins == "reward_models":
        raise ValueError("`margin_labels` is only read with MODPOConfig(margins='labels' or 'auto'). Fix: set margins "
                         "or drop `margin_labels`.")
    return as_pairs_frame(margin_labels)


def resolve_margins(cfg: MODPOConfig, frame: pd.DataFrame, labels_frame: pd.DataFrame | None,
                    reward_models: Mapping[str, Any] | None) -> MODPOConfig:
    """``cfg`` with ``margins="auto"`` decided: ``"labels"`` when no reward model is given and every pair of
    ``frame`` has a finite label of every criterion on its comparison (in ``frame`` or ``labels_frame``), else
    ``"reward_models"``. Other values are returned unchanged."""
    if cfg.margins != "auto":
        return cfg
    from ..preferences.design import labels_complete

    ok = not reward_models and labels_complete(frame, label_smoothing=cfg.label_smoothing, labels_from=labels_frame)
    return dataclasses.replace(cfg, margins="labels" if ok else "reward_models")


def combined_hash(frame: pd.DataFrame, labels_frame: pd.DataFrame) -> str:
    """The data hash of training pairs read with extra margin-label pairs: both frames' hashes, hashed."""
    return hashlib.sha256(f"{data_hash(frame)}+labels:{data_hash(labels_frame)}".encode()).hexdigest()


def _check_coverage(specs: Sequence[TrainingSpec], frame: pd.DataFrame, reward_models: Mapping[str, Any] | None,
                    objective: str, margins: str = "reward_models", labels_frame: pd.DataFrame | None = None
                    ) -> dict[str, Any]:
    """Check that the pairs (and reward models) cover every profile; return the given reward models in use
    (none with ``margins="labels"``: every margin then comes from the pairs' own labels)."""
    present = set(frame["criterion"])
    if objective != "modpo":
        check_coverage({s.name: s.criteria for s in specs}, present, what="the preference data",
                       fix="Fix: joint-loss DPO needs pairs for every criterion with a positive weight.")
        return {}
    check_coverage({s.name: [s.main_objective] for s in specs}, present, what="the preference data",
                   fix="Fix: add pairs for the main objective or choose another `main_objective`.")
    if margins == "labels":
        labelled = present | (set() if labels_frame is None else set(labels_frame["criterion"]))
        check_coverage({s.name: s.criteria[1:] for s in specs}, labelled, what="the preference data",
                       fix="Fix: margins='labels' reads every margin from the pairs' labels on the same comparisons: "
                           "add pairs for them, or use margins='reward_models' with `reward_models`.")
        return {}
    given = dict(reward_models or {})
    check_coverage({s.name: s.criteria[1:] for s in specs}, set(given) | present,
                   what="the preference data and `reward_models`",
                   fix="Fix: add pairs for them (a reward model is then trained) or pass `reward_models`.")
    return given


def _result(spec: TrainingSpec, out: Path, losses: tuple[float, ...], skipped: bool, seconds: float
            ) -> AdapterResult:
    return AdapterResult(spec.name, out / spec.dirname, spec.main_objective, spec.criteria, spec.weight_vector,
                         losses, skipped, seconds)


def train_dpo_adapters(
    data: Any, *, criteria: Sequence[str] | None = None, prefix: str = "dpo_", **kwargs: Any
) -> TrainingRun:
    """Single-objective DPO baseline: one adapter per criterion (= MODPO with ``w = (1,)``).

    Parameters
    ----------
    data : preference pairs (see :func:`train_adapters`)
    criteria : sequence of str, optional
        Default: every criterion in ``data``.
    prefix : str, default "dpo_"
        Adapter names are ``prefix + criterion``.
    **kwargs
        Passed to :func:`train_adapters` (``output_dir``, ``model``, ``tokenizer``, ``config``, ...).
    """
    frame = as_pairs_frame(data)
    crits = list(dict.fromkeys(frame["criterion"])) if criteria is None else list(criteria)
    return train_adapters(
        {f"{prefix}{c}": {c: 1.0} for c in crits}, frame, main_objective=None, **kwargs
    )
