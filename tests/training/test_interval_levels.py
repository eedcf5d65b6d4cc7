"""Which level the held-out rows are predicted with when the intervals are calibrated."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from fidelite.training.hurdle import _calibration_level
from fidelite.training.levels import LevelChoice, WindowLevels

HELD_OUT = pd.Timestamp("2024-12-31")


def _model(held_out_comparable: bool) -> SimpleNamespace:
    """A fitted model's levels: windows of April, October and the held-out one (January)."""
    levels = WindowLevels(
        [pd.Timestamp("2024-04-01"), pd.Timestamp("2024-10-01"), HELD_OUT], [0.1, 0.4, -0.2]
    )
    source = HELD_OUT - pd.Timedelta(days=364 if held_out_comparable else 91)
    held = LevelChoice(0.4, source, 0.0 if held_out_comparable else 91.0, held_out_comparable)
    return SimpleNamespace(
        holdout_level_=held,
        validation_=SimpleNamespace(cutoff=HELD_OUT),
        levels_=levels,
        level_for=lambda day: levels.choose(pd.Timestamp(day)),
    )


def test_a_season_mismatch_the_scored_rows_will_not_have_is_left_out():
    # the held-out window borrowed October's level; the as-of day has April's own season
    choice = _calibration_level(_model(held_out_comparable=False), pd.Timestamp("2025-03-31"))
    assert choice.offset == -0.2 and choice.source == HELD_OUT and choice.comparable


def test_the_held_out_level_is_kept_when_it_is_as_good_as_the_scored_rows_level():
    same_season = _calibration_level(_model(held_out_comparable=True), pd.Timestamp("2025-03-31"))
    assert same_season.offset == 0.4
    # no window of the as-of day's season either: the mismatch is representative
    summer = _calibration_level(_model(held_out_comparable=False), pd.Timestamp("2025-07-15"))
    assert summer.offset == 0.4 and not summer.comparable
