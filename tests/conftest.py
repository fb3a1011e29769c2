"""Shared pytest fixtures: seeded rng, location of the external R-reference fixtures, headless matplotlib."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")


def _external_path() -> Path:
    env = os.environ.get("SURVEY_WEIGHTS_EXTERNAL")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "external"


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy Generator (seed 20261127)."""
    return np.random.default_rng(20261127)


@pytest.fixture(scope="session")
def external_dir() -> Path:
    """Folder with the R-package data and reference outputs; skips when absent."""
    p = _external_path()
    if not (p / "reference_outputs").is_dir():
        pytest.skip(f"external R reference fixtures not found at {p} (set SURVEY_WEIGHTS_EXTERNAL to the "
                    f"shared/external folder to run the parity tests)")
    return p
