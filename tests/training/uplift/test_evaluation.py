"""Qini, uplift curves, incremental value and the ATE interval on known cases."""

import numpy as np
import pytest

from fidelite.training.uplift.evaluation import (
    average_treatment_effect,
    bootstrap_counts,
    incremental_value,
    qini_coefficient,
    qini_curve,
)


def _rows(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    treated = rng.random(n) < 0.5
    tau = np.where(x > 0.7, 0.4, 0.0)
    y = (rng.random(n) < 0.1 + treated * tau).astype(float)
    return x, treated, y, tau


def test_ate_interval_covers_the_truth():
    x, treated, y, tau = _rows()
    ate = average_treatment_effect(treated, y)
    assert ate.low < tau.mean() < ate.high
    assert ate.high - ate.low < 0.05


def test_good_ranking_beats_random_and_reversed():
    x, treated, y, _ = _rows()
    good = qini_coefficient(x, treated, y)
    noise = qini_coefficient(np.random.default_rng(1).random(len(x)), treated, y)
    assert good > 0.2 and abs(noise) < 0.1 and qini_coefficient(-x, treated, y) < -0.2
    curve = qini_curve(x, treated, y)
    assert curve[0] == 0 and len(curve) == len(x) + 1


def test_incremental_value_at_full_budget_is_ate_times_n_minus_costs():
    x, treated, y, _ = _rows()
    counts = bootstrap_counts(treated, 100, seed=0)
    assert (counts[:, treated].sum(axis=1) == treated.sum()).all()
    out = incremental_value(x, treated, y, (0.3, 1.0), cost=0.01, counts=counts)
    ate = average_treatment_effect(treated, y).value
    assert out[1.0].value == pytest.approx(ate * len(y) - 0.01 * len(y))
    assert out[0.3].low < out[0.3].value < out[0.3].high
    assert out[0.3].value > out[1.0].value  # the effect sits in the top 30%
