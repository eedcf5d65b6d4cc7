"""Window levels: intercepts, and the comparable (same season) window a new one reuses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.training.levels import WindowLevels, log_ratio, logit_shift, season_distance


def test_logit_shift_and_log_ratio_match_the_observed_means():
    z = np.log(np.array([0.1, 0.5, 0.8]) / (1 - np.array([0.1, 0.5, 0.8])))
    a = logit_shift(z, 0.7)
    assert np.mean(1 / (1 + np.exp(-(z + a)))) == pytest.approx(0.7, abs=1e-9)
    b = log_ratio(np.log([10.0, 30.0]), np.array([20.0, 60.0]))
    assert b == pytest.approx(np.log(2.0))
    assert np.isfinite(logit_shift(z, 1.0)) and np.isfinite(logit_shift(z, 0.0))


def test_season_distance_ignores_the_year():
    assert season_distance(pd.Timestamp("2025-10-01"), pd.Timestamp("2024-10-03")) < 3
    assert season_distance(pd.Timestamp("2025-01-01"), pd.Timestamp("2024-07-01")) > 170


def test_a_new_window_reuses_its_season_else_the_newest_and_says_so():
    cutoffs = list(pd.to_datetime(["2024-01-03", "2024-04-02", "2024-07-01", "2024-09-29"]))
    levels = WindowLevels(cutoffs, [0.1, 0.2, 0.3, 0.4])
    q4 = levels.choose(pd.Timestamp("2025-09-30"))
    assert q4.comparable and q4.source == cutoffs[3] and q4.offset == 0.4
    assert levels.choose(pd.Timestamp("2025-01-01")).offset == 0.1
    # Leaving the Q1 window out, nothing is within 45 days of January: the newest is used.
    fallback = levels.choose(pd.Timestamp("2025-01-01"), exclude=cutoffs[0])
    assert not fallback.comparable and fallback.source == cutoffs[3]
    with pytest.raises(ValueError, match="one offset per cutoff"):
        WindowLevels(cutoffs, [0.1])


def _quarterly(offsets: list[float], start: str = "2024-01-03") -> WindowLevels:
    """Windows 91 days apart from ``start`` with the given levels."""
    cutoffs = list(pd.date_range(start, periods=len(offsets), freq="91D"))
    return WindowLevels(cutoffs, offsets)


def test_backtest_replays_the_same_season_rule_on_windows_with_an_earlier_season():
    # 2024-01-03, 04-03, 07-03, 10-02, 2025-01-01, 04-02: only the last two had a window
    # of their season (a year earlier) among the windows known at their cutoff.
    levels = _quarterly([0.0, 0.2, 0.4, 0.6, 0.1, 0.5])
    result = levels.backtest(pd.Timestamp("2025-07-01"), horizon_days=90)
    assert result.comparable and result.targets == 2
    assert result.rule_error == pytest.approx((abs(0.0 - 0.1) + abs(0.2 - 0.5)) / 2)
    assert result.newest_error == pytest.approx((abs(0.6 - 0.1) + abs(0.1 - 0.5)) / 2)
    assert result.mean_error == pytest.approx((abs(0.3 - 0.1) + abs(0.26 - 0.5)) / 2)
    metrics = result.metrics("spend")
    assert metrics["spend_level_backtest_windows"] == 2.0
    assert metrics["spend_level_backtest_error"] == pytest.approx(0.2)
    note = result.note("spend", pd.Timestamp("2025-07-01"))
    assert note is not None and "missed the levels of 2 earlier window(s) by 0.200" in note
    # The same history with levels that repeat every year: checked, and nothing to say.
    steady = _quarterly([0.0, 0.2, 0.4, 0.6, 0.05, 0.25])
    day = pd.Timestamp("2025-07-01")
    quiet = steady.backtest(day, horizon_days=90)
    assert quiet.rule_error == pytest.approx(0.05) and quiet.note("spend", day) is None


def test_backtest_of_a_first_year_history_is_untested_and_says_so():
    levels = _quarterly([0.0, 0.2, 0.4, 0.6])  # 2024-01-03 .. 2024-10-02
    day = pd.Timestamp("2025-01-02")  # its season is the 2024-01-03 window's
    assert levels.choose(day).comparable
    result = levels.backtest(day, horizon_days=90)
    assert result.targets == 0 and np.isnan(result.rule_error)
    assert result.metrics("churn") == {"churn_level_backtest_windows": 0.0}
    assert "error is unknown" in result.note("churn", day)


def test_backtest_of_the_newest_window_fallback_uses_only_windows_known_at_each_cutoff():
    # No window of the season of 2024-12-30: the rule falls back to the newest window, and
    # is replayed on the windows where it fell back too.
    levels = _quarterly([0.2, 0.4, 0.6], start="2024-04-03")
    day = pd.Timestamp("2024-12-30")
    result = levels.backtest(day, horizon_days=90)
    assert not result.comparable and result.targets == 2
    assert result.rule_error == pytest.approx(0.2) and result.newest_error == pytest.approx(0.2)
    assert "(newest window)" in result.note("churn", day)
    # Windows 28 days apart with a 182-day horizon: no window's outcomes were known at
    # another's cutoff, so nothing can be replayed.
    overlapping = WindowLevels(list(pd.date_range("1997-04-09", periods=4, freq="28D")), [0.1] * 4)
    assert overlapping.backtest(pd.Timestamp("1997-12-31"), horizon_days=182).targets == 0
