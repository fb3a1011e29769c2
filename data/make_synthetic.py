"""Regenerate the bundled synthetic survey and its truth file.

Usage (from the repository root)::

    .venv/bin/python data/make_synthetic.py

Writes ``data/survey_synthetic_335.csv`` = ``simulate_survey(335, seed=DEFAULT_SEED)`` and
``data/survey_synthetic_335_truth.json`` = ``survey_truth().to_dict()``, atomically, and prints the
calibration check against the published marginals.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from survey_weights._util.io import atomic_write_text
from survey_weights.criteria import SURVEY_CRITERIA
from survey_weights.simulate import DEFAULT_SEED, simulate_survey

HERE = Path(__file__).resolve().parent
PUBLISHED = np.array([62.7, 20.9, 5.1, 5.4, 6.0])

if __name__ == "__main__":
    df, truth = simulate_survey(335, seed=DEFAULT_SEED, return_truth=True)
    atomic_write_text(HERE / "survey_synthetic_335.csv", lambda: df.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(HERE / "survey_synthetic_335_truth.json", json.dumps(truth.to_dict(), indent=2) + "\n")
    r = df[list(SURVEY_CRITERIA)].to_numpy()
    shares = np.bincount((r == r.max(axis=1, keepdims=True)).argmax(axis=1), minlength=5) / len(df) * 100
    print("means ", dict(zip(SURVEY_CRITERIA, r.mean(axis=0).round(3))))
    print("shares", dict(zip(SURVEY_CRITERIA, shares.round(1))), "published", PUBLISHED)
    print("all-equal respondents", int((r == r[:, :1]).all(axis=1).sum()))
    print("class counts", truth.classes.value_counts().to_dict())
