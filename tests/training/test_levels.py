"""Window levels: intercepts, and the comparable (same season) window a new one reuses."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from fidelite.features.inputs import load_inputs
from fidelite.training.config import TrainConfig
from fidelite.training.levels import WindowLevels, log_ratio, logit_shift, season_distance
from fidelite.training.train import train


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


def test_a_new_window_reuses_its_season_else_the_nearest_in_season_and_says_so():
    cutoffs = list(pd.to_datetime(["2024-01-03", "2024-04-02", "2024-07-01", "2024-09-29"]))
    levels = WindowLevels(cutoffs, [0.1, 0.2, 0.3, 0.4])
    q4 = levels.choose(pd.Timestamp("2025-09-30"))
    assert q4.comparable and q4.source == cutoffs[3] and q4.offset == 0.4
    assert levels.choose(pd.Timestamp("2025-01-01")).offset == 0.1
    # Leaving the Q1 window out, nothing is within 45 days of January: the window nearest
    # in time of year (April, 91 days away) is used, not the newest (September, 94 days).
    fallback = levels.choose(pd.Timestamp("2025-01-01"), exclude=cutoffs[0])
    assert not fallback.comparable and fallback.source == cutoffs[1] and fallback.offset == 0.2
    assert fallback.distance_days == pytest.approx(91.25)
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


def test_no_same_season_window_takes_the_nearest_season_and_recovers_a_seasonal_level():
    """CDNOW's windows (28 days apart, H = 182) at 1997-12-31, levels from a known season.

    Each window's level is a known function of its time of year; with no window within
    45 days of December the window nearest in time of year (April, 99 days away) lends
    the level closest to the true one, where the newest (July, 182 days away) lends the
    furthest.
    """

    def season(day: pd.Timestamp) -> float:
        return 0.5 * np.cos(2 * np.pi * day.dayofyear / 365.25)

    cutoffs = list(pd.date_range("1997-04-09", periods=4, freq="28D"))
    levels = WindowLevels(cutoffs, [season(c) for c in cutoffs])
    day = pd.Timestamp("1997-12-31")
    choice = levels.choose(day)
    assert not choice.comparable and choice.source == cutoffs[0]
    assert choice.distance_days == pytest.approx(season_distance(day, cutoffs[0]))
    errors = [abs(offset - season(day)) for offset in levels.offsets]
    assert abs(choice.offset - season(day)) == min(errors) < errors[-1]


def test_levels_pickled_before_the_nearest_season_rule_keep_the_newest_window():
    """A model saved by earlier code scores as it was validated: the newest window."""
    cutoffs = list(pd.date_range("1997-04-09", periods=4, freq="28D"))
    old = WindowLevels(cutoffs, [0.1, 0.2, 0.3, 0.4])
    del old.__dict__["fallback"]  # the state an earlier WindowLevels pickled
    loaded = pickle.loads(pickle.dumps(old))
    choice = loaded.choose(pd.Timestamp("1997-12-31"))
    assert choice.source == cutoffs[-1] and choice.offset == 0.4 and not choice.comparable
    assert choice.distance_days == pytest.approx(
        season_distance(cutoffs[-1], pd.Timestamp("1997-12-31"))
    )
    assert (
        WindowLevels(cutoffs, [0.1] * 4, fallback="newest")
        .choose(pd.Timestamp("1997-12-31"))
        .source
        == cutoffs[-1]
    )
    with pytest.raises(ValueError, match="fallback"):
        WindowLevels(cutoffs, [0.1] * 4, fallback="mean")


def test_backtest_of_the_nearest_season_fallback_uses_only_windows_known_at_each_cutoff():
    # No window of the season of 2024-12-30: the rule falls back to the window nearest in
    # season, and is replayed on the windows where it fell back too.
    levels = _quarterly([0.2, 0.4, 0.6], start="2024-04-03")
    day = pd.Timestamp("2024-12-30")
    result = levels.backtest(day, horizon_days=90)
    assert not result.comparable and result.targets == 2
    assert result.rule_error == pytest.approx(0.2) and result.newest_error == pytest.approx(0.2)
    assert "(nearest window in season)" in result.note("churn", day)
    # Windows 28 days apart with a 182-day horizon: no window's outcomes were known at
    # another's cutoff, so nothing can be replayed.
    overlapping = WindowLevels(list(pd.date_range("1997-04-09", periods=4, freq="28D")), [0.1] * 4)
    assert overlapping.backtest(pd.Timestamp("1997-12-31"), horizon_days=182).targets == 0


@pytest.mark.slow
def test_the_level_at_the_as_of_day_never_reads_outcomes_after_it(training_demo, tmp_path):
    """Point in time: the post-as-of transactions changed, the level used at D is the same.

    CDNOW's protocol on the demo's first year (H = 182, windows 28 days apart, nothing of
    December's season): the level comes from the window nearest in time of year.
    """
    day = "2024-12-31"
    config = TrainConfig(
        horizon_days=182,
        n_windows=4,
        step_days=28,
        min_history_days=91,
        tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
        register=False,
        n_jobs=1,
    )
    tx = training_demo.transactions
    after = (tx["timestamp"] >= pd.Timestamp(day) + pd.Timedelta(days=1)).to_numpy()
    assert after.sum() > 1000
    changed = pd.concat([tx.loc[~after], tx.loc[after].iloc[::3]], ignore_index=True)
    changed.loc[len(tx.loc[~after]) :, "amount"] *= 5.0
    chosen = []
    for transactions in (tx, changed):
        inputs = load_inputs(transactions, training_demo.events, training_demo.customers, as_of=day)
        result = train(inputs, config)
        hurdle = result.model.purchasers
        chosen.append([hurdle.churn.level_for(day), hurdle.spend.level_for(day)])
        assert result.metrics["churn_level_comparable"] == 0.0
        assert (
            result.metrics["churn_level_source_days_before"]
            == (pd.Timestamp(day) - pd.Timestamp("2024-04-09")).days
        )
    assert chosen[0] == chosen[1]
    assert chosen[0][0].source == pd.Timestamp("2024-04-09") and not chosen[0][0].comparable
