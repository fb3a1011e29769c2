"""Tests of the package's one interval recipe for a weight (survey_weights.profiles.intervals)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from survey_weights.profiles.intervals import logit_interval, softmax, weight_intervals, weight_se, z_value


def _vcov(n: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(n, n))
    c = np.eye(n) - 1.0 / n
    return 0.05 * c @ (a @ a.T / n + np.eye(n)) @ c


def test_recipe_against_a_hand_computation():
    beta = np.array([0.4, -0.1, -0.3])
    V = np.array([[0.04, -0.01, -0.03], [-0.01, 0.03, -0.02], [-0.03, -0.02, 0.05]])
    got = weight_intervals(beta, V, level=0.95)
    for k in range(3):
        e = [math.exp(b) for b in beta]
        w = e[k] / sum(e)
        # gradient of w_k in beta: w_k (1[j == k] - w_j), written out by hand
        g = [w * ((j == k) - e[j] / sum(e)) for j in range(3)]
        var = sum(g[i] * V[i][j] * g[j] for i in range(3) for j in range(3))
        se = math.sqrt(var)
        lg = math.log(w / (1 - w))
        half = 1.959963984540054 * se / (w * (1 - w))
        lo, hi = 1 / (1 + math.exp(-(lg - half))), 1 / (1 + math.exp(-(lg + half)))
        assert got["weight"][k] == pytest.approx(w, rel=1e-14)
        assert got["weight_se"][k] == pytest.approx(se, rel=1e-12)
        assert got["ci_low"][k] == pytest.approx(lo, rel=1e-12)
        assert got["ci_high"][k] == pytest.approx(hi, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_intervals_inside_unit_interval_and_contain_the_estimate(seed):
    rng = np.random.default_rng(seed)
    beta = rng.normal(scale=3.0, size=6)  # includes weights close to 0 and to 1
    V = _vcov(6, seed) * 40  # wide: a Wald interval on the weight scale would leave (0, 1)
    got = weight_intervals(beta, V, level=0.99)
    w, lo, hi = got["weight"], got["ci_low"], got["ci_high"]
    assert np.all((0 < lo) & (lo < w) & (w < hi) & (hi < 1))
    wald = w - 2.576 * got["weight_se"]
    assert np.any(wald < 0)  # the case the logit scale is there for


def test_weight_se_is_the_delta_method_of_the_softmax():
    beta, V = np.array([0.2, 0.0, -0.5, 0.3]), _vcov(4, 1)
    w, se = weight_se(beta, V)
    h = 1e-6
    J = np.column_stack([(softmax(beta + h * e) - softmax(beta - h * e)) / (2 * h) for e in np.eye(4)])
    np.testing.assert_allclose(se, np.sqrt(np.diag(J @ V @ J.T)), rtol=1e-6)
    np.testing.assert_allclose(w.sum(), 1.0)


def test_zero_se_is_a_point_and_nan_se_is_nan():
    lo, hi = logit_interval([0.2, 0.0, 0.3], [0.0, 0.0, np.nan])
    assert lo[0] == hi[0] == 0.2 and lo[1] == hi[1] == 0.0
    assert np.isnan(lo[2]) and np.isnan(hi[2])


def test_bad_arguments():
    with pytest.raises(ValueError, match="level"):
        z_value(1.5)
    with pytest.raises(ValueError, match="same shape"):
        logit_interval([0.2, 0.3], [0.1])
    with pytest.raises(ValueError, match="vcov"):
        weight_se([0.1, 0.2], np.eye(3))
