"""The CLV regressor, its seasonal level and its intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.training.boosting import Trees
from fidelite.training.clv import ClvModel
from fidelite.training.intervals import RatioIntervals, crossfit_interval_coverage
from fidelite.training.seasonal import SeasonalLevel

CUTOFFS = pd.to_datetime(["2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01"])


def _windows(n_per: int, seed: int, factors=(0.5, 1.0, 1.0, 2.0)):
    """Spend = baseline x the window's seasonal factor x a segment lift (active 1.6, else 0.6)."""
    rng = np.random.default_rng(seed)
    n = n_per * len(factors)
    baseline = rng.gamma(2.0, 40.0, n)
    active = rng.random(n) < 0.5
    X = pd.DataFrame(
        {"baseline_clv": baseline, "orders_total": np.where(active, 5.0, 1.0)},
        index=pd.Index([f"c{i % n_per}" for i in range(n)], name="customer_id"),
    )
    season = np.repeat(np.asarray(factors), n_per)
    mean = baseline * season * np.where(active, 1.6, 0.6)
    spend = np.where(rng.random(n) < 0.3, 0.0, rng.gamma(2.0, mean / 2.0 / 0.7))
    return X, spend, np.repeat(CUTOFFS.to_numpy()[: len(factors)], n_per)


def test_seasonal_level_is_learned_inside_fit_and_reused_by_time_of_year():
    X, spend, window = _windows(1500, 3)
    model = ClvModel(trees=Trees(n_estimators=100), n_jobs=1).fit(X, spend, window=window)
    # Each window's level is actual / baseline over its rows (season x the mean segment
    # lift 1.1); next year's Q4 reuses this year's Q4.
    assert np.exp(model.level_.predict(pd.Timestamp("2025-10-03"))) == pytest.approx(2.2, rel=0.1)
    assert np.exp(model.level_.predict(pd.Timestamp("2025-01-02"))) == pytest.approx(0.55, rel=0.1)
    q4 = model.predict(X.iloc[:1000], as_of="2025-10-03")
    q1 = model.predict(X.iloc[:1000], as_of="2025-01-02")
    np.testing.assert_allclose(
        q4 / q1,
        np.exp(model.level_.predict(pd.Timestamp("2025-10-03")))
        / np.exp(model.level_.predict(pd.Timestamp("2025-01-02"))),
    )
    # The held-out (newest) window's level came from the other windows only: its
    # validation total misses Q4's doubling.
    held = window == window.max()
    assert model.validation_.predicted.sum() < 0.8 * spend[held].sum()
    assert model.intervals_ is not None


def test_trees_are_level_neutral_on_the_target_rows():
    X, spend, window = _windows(1500, 5, factors=(1.0, 1.0, 1.0))
    older = X.assign(orders_total=np.where(np.random.default_rng(1).random(len(X)) < 0.9, 5.0, 1.0))
    model = ClvModel(trees=Trees(n_estimators=60), n_jobs=1)
    model.fit(X, spend, window=window, X_target=older, target_window="2025-01-01")
    pred = model.predict(older)
    level = np.exp(model.level_.predict(pd.Timestamp("2025-01-01")))
    assert pred.sum() == pytest.approx(level * older["baseline_clv"].sum(), rel=1e-9)
    # The trees still rank: active customers (5 orders) get more.
    assert pred[older["orders_total"] == 5].mean() > pred[older["orders_total"] == 1].mean()


def test_without_windows_the_training_total_is_kept():
    X, spend, _ = _windows(1000, 4, factors=(1.0,))
    model = ClvModel(trees=Trees(n_estimators=30, early_stopping_rounds=0), n_jobs=1)
    pred = model.fit(X, spend).predict(X)
    assert pred.sum() == pytest.approx(spend.sum(), rel=1e-6)
    assert model.level_ is None and model.validation_ is None
    low, mid, high = model.predict_interval(X.iloc[:3])
    assert np.isnan(low).all() and np.isnan(high).all()
    np.testing.assert_allclose(model.predict(X.to_numpy()), pred)


def test_ratio_intervals_bracket_prediction_and_cover():
    rng = np.random.default_rng(5)
    predicted = rng.gamma(2.0, 50.0, 6000)
    actual = np.where(rng.random(6000) < 0.3, 0.0, predicted * rng.gamma(4.0, 1 / 2.8, 6000))
    intervals = RatioIntervals().fit(predicted[:3000], actual[:3000])
    low, high = intervals.predict(predicted[3000:])
    assert (low <= predicted[3000:]).all() and (predicted[3000:] <= high).all()
    # 30% exact zeros sit at the 10% quantile (0), so [p10, p90] holds ~90% of outcomes.
    coverage = intervals.coverage(predicted[3000:], actual[3000:])
    assert coverage == pytest.approx(0.9, abs=0.03)
    assert crossfit_interval_coverage(predicted, actual) == pytest.approx(0.9, abs=0.03)
    positive = predicted * rng.gamma(4.0, 1 / 4.0, 6000)
    fitted = RatioIntervals().fit(predicted[:3000], positive[:3000])
    assert fitted.coverage(predicted[3000:], positive[3000:]) == pytest.approx(0.8, abs=0.03)


def test_seasonal_level_reuses_same_season_else_pooled():
    rows = np.repeat(CUTOFFS.to_numpy(), 10)
    baseline = np.full(40, 10.0)
    factors = np.repeat([0.5, 1.0, 1.0, 2.0], 10)
    level = SeasonalLevel(horizon_days=90).fit(rows, baseline, baseline * factors)
    np.testing.assert_allclose(level.window_offsets(rows[:1]), [np.log(0.5)])
    assert level.predict(pd.Timestamp("2025-10-03")) == pytest.approx(np.log(2.0))
    far = SeasonalLevel(horizon_days=90).fit(rows[:10], baseline[:10], baseline[:10] * 0.5)
    assert far.predict(pd.Timestamp("2025-07-01")) == pytest.approx(far.pooled_log_ratio_)
