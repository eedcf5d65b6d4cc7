"""CLV intervals: the no-purchase atom mixed with the spend given a purchase, calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from fidelite.training.intervals import MixtureIntervals, coverage, shift_weights


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


def test_weighted_to_the_scored_mix_the_coverage_holds_where_churners_dominate():
    """Calibrated on a mixed window, given to a churn-prone base: weights keep it at 80%."""
    p_none, spend, actual = _world(30000, 13)
    rng = np.random.default_rng(14)
    n = 30000
    p_later = np.clip(rng.beta(6.0, 1.5, n), 0.0, 0.9)  # mostly likely churners
    spend_later = rng.gamma(3.0, 40.0, n)
    buys = rng.random(n) >= p_later
    actual_later = np.where(buys, spend_later * rng.lognormal(-0.1, 0.45, n), 0.0)
    plain = MixtureIntervals().fit(p_none, spend, actual)
    weighted = MixtureIntervals().fit(p_none, spend, actual, target_p_none=p_later)
    plain_cover = coverage(*plain.predict(p_later, spend_later), actual_later)
    weighted_cover = coverage(*weighted.predict(p_later, spend_later), actual_later)
    assert plain_cover > 0.83  # the churners' zeros are covered by any interval
    assert weighted_cover == pytest.approx(0.8, abs=0.02)
    assert weighted.crossfit_coverage_ == pytest.approx(0.8, abs=0.02)


def test_shift_weights_are_ones_without_a_target_and_match_the_target_shares():
    p_none = np.linspace(0.0, 0.9, 1000)
    assert (shift_weights(p_none, None) == 1).all()
    weights = shift_weights(p_none, np.full(500, 0.85))
    assert weights[p_none < 0.8].sum() == 0
    assert weights.sum() == pytest.approx(len(p_none), rel=0.01)


def test_a_half_without_any_buyer_does_not_break_the_fit():
    """Two buyers among 400 held-out rows (a small prospect window): some random half of a
    half holds no buyer; the fit completes and a buyer's interval sits at its prediction."""
    p_none = np.full(400, 0.99)
    spend = np.full(400, 50.0)
    actual = np.zeros(400)
    actual[[3, 250]] = 40.0
    intervals = MixtureIntervals().fit(p_none, spend, actual)
    low, high = intervals.predict(np.array([0.99, 0.01]), np.array([50.0, 50.0]))
    assert np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low <= high)
    assert 0.0 <= intervals.crossfit_coverage_ <= 1.0
