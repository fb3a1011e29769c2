"""The training configurations, re-exported: they live torch-free in
:mod:`survey_weights.profiles.training_config` so that job schedules can hold them without importing torch."""

from __future__ import annotations

from ..profiles.training_config import MODPOConfig, RewardModelConfig

__all__ = ["MODPOConfig", "RewardModelConfig"]
