"""MODPO engine: one LoRA adapter per weight profile (Zhou et al. 2023), with DPO / merging baselines, and one
conditioned run for every weight vector (:func:`train_conditioned`) that exports a plain LoRA per profile.

This subpackage is the only part of :mod:`survey_weights` that imports torch, transformers and peft
(install the ``modpo`` extra).
"""

from __future__ import annotations

from ..preferences.pairs import as_pairs_frame
from ..profiles.training_spec import normalize_profiles, profile_dirname
from .base_models import check_base_model, load_base_model, make_tiny_llama, train_byte_tokenizer
from .calibration import MixingCalibration, fit_mixing
from .conditioned import ConditionedAdapter, ProfileSampler, train_conditioned
from .config import MODPOConfig, RewardModelConfig
from .distance import (
    adapter_distances,
    balanced_step_budgets,
    distance_ratio,
    rebalance,
    scale_adapter,
    scale_to_comparable_distance,
    train_at_comparable_distance,
)
from .generate import generate, generate_adapters
from .logps import format_prompt
from .losses import dpo_loss, joint_dpo_loss, modpo_loss
from .merge import load_adapters, lora_deltas, merge_adapters
from .reward import RewardModel, train_reward_model, train_reward_models
from .runtime import make_accelerator, set_torch_threads, torch_threads
from .train import AdapterResult, TrainingRun, train_adapters, train_dpo_adapters

__all__ = [
    "AdapterResult",
    "ConditionedAdapter",
    "MODPOConfig",
    "MixingCalibration",
    "RewardModel",
    "RewardModelConfig",
    "TrainingRun",
    "adapter_distances",
    "as_pairs_frame",
    "balanced_step_budgets",
    "check_base_model",
    "distance_ratio",
    "rebalance",
    "scale_adapter",
    "scale_to_comparable_distance",
    "dpo_loss",
    "fit_mixing",
    "format_prompt",
    "generate",
    "generate_adapters",
    "joint_dpo_loss",
    "load_adapters",
    "load_base_model",
    "lora_deltas",
    "make_accelerator",
    "make_tiny_llama",
    "merge_adapters",
    "modpo_loss",
    "normalize_profiles",
    "ProfileSampler",
    "profile_dirname",
    "set_torch_threads",
    "torch_threads",
    "train_adapters",
    "train_at_comparable_distance",
    "train_byte_tokenizer",
    "train_conditioned",
    "train_dpo_adapters",
    "train_reward_model",
    "train_reward_models",
]
