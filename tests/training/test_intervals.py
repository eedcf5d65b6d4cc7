"""CLV intervals: the no-purchase atom mixed with the spend given a purchase, calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from fidelite.training.intervals import MixtureIntervals, coverage


def _world(n: int, seed: int):
    rng = np.random.default_rng(seed)
    p_none = rng.uniform(0.0, 0.9, n)
    spend = rng.gamma(3.0, 40.0, n)
    buys = rng.random(n) >= p_none
    actual = np.where(buys, spend * rng.lognormal(-0.1, 0.45, n), 0.0)
    return p_none, spend, actual


def test_calibrated_coverage_holds_on_new_rows():
    p_none, spend, actual = _world(40000, 11)
    intervals = MixtureIntervals().fit(p_none[:20000], spend[:20000], actual[:20000])
    low, high = intervals.predict(p_none[20000:], spend[20000:])
    assert coverage(low, high, actual[20000:]) == pytest.approx(0.8, abs=0.015)
    assert intervals.crossfit_coverage_ == pytest.approx(0.8, abs=0.02)
    assert (low <= high).all() and (low >= 0).all()


def test_p10_is_positive_where_a_purchase_is_likely_and_zero_where_not():
    p_none, spend, actual = _world(6000, 12)
    intervals = MixtureIntervals().fit(p_none, spend, actual)
    low, high = intervals.predict(np.array([0.01, 0.03, 0.6]), np.array([100.0, 100.0, 100.0]))
    assert low[0] > 0 and low[1] > 0 and low[2] == 0
    assert high[2] > 0  # 40% chance of a purchase: the upper end is a spend
