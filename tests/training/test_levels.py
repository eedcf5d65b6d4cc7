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
