"""Window levels: each backtest window's intercept, and which one a new window reuses.

Purchase rates and basket sizes move with the calendar (holiday peaks, January slumps)
and the baseline knows nothing about the calendar. A boosted model fitted on stacked
windows would blame a window's season on whatever customer features happened to
differ, so every window gets its own intercept (on the model's link scale: log-odds for
churn, log for spend), the trees learn only within-window structure, and a window
whose outcomes are not known yet reuses the intercept of the **comparable window**: the
known window of the same season, ideally one year (52 weeks) earlier.

When no known window lies within ``max_distance_days`` of the same time of year, the
most recent known window is used and :attr:`LevelChoice.comparable` is False: the
training run logs that as a warning (nothing falls back silently).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq

__all__ = [
    "SEASON_DAYS",
    "LevelChoice",
    "WindowLevels",
    "log_ratio",
    "logit_shift",
    "season_distance",
]

#: A year in whole weeks: the comparable window keeps the weekdays of the target's.
SEASON_DAYS = 364


def logit_shift(log_odds: np.ndarray, rate: float) -> float:
    """The constant ``a`` with ``mean(sigmoid(log_odds + a)) == rate``.

    ``rate`` is clipped to (1e-6, 1 - 1e-6): a window where nobody (or everybody)
    churned gets a large but finite intercept.
    """
    z = np.asarray(log_odds, dtype=float)
    target = float(np.clip(rate, 1e-6, 1.0 - 1e-6))

    def gap(a: float) -> float:
        return float(np.mean(1.0 / (1.0 + np.exp(-(z + a))))) - target

    return float(brentq(gap, -60.0, 60.0, xtol=1e-10))


def log_ratio(log_mean: np.ndarray, actual: np.ndarray) -> float:
    """The constant ``b`` with ``sum(exp(log_mean + b)) == sum(actual)`` (actual >= 0)."""
    total = float(np.clip(np.asarray(actual, dtype=float), 0, None).sum())
    predicted = float(np.exp(np.asarray(log_mean, dtype=float)).sum())
    return float(np.log(max(total, 1e-9) / max(predicted, 1e-9)))


def season_distance(a: pd.Timestamp, b: pd.Timestamp) -> float:
    """Days between two days' positions in the year (0-182.6), ignoring the year."""
    gap = abs((a - b).days) % 365.25
    return float(min(gap, 365.25 - gap))


@dataclass(frozen=True)
class LevelChoice:
    """The intercept a window reuses, and where it comes from.

    Attributes
    ----------
    offset : float
        Intercept on the link scale.
    source : Timestamp
        Cutoff of the known window it comes from.
    distance_days : float
        Time-of-year distance between the target and the source (0 = same season).
    comparable : bool
        Whether the source lies within ``max_distance_days`` of the target's season.
    """

    offset: float
    source: pd.Timestamp
    distance_days: float
    comparable: bool


class WindowLevels:
    """Intercepts of known windows, looked up by season for new ones.

    Parameters
    ----------
    cutoffs : sequence of Timestamp
        Cutoff day of each known window.
    offsets : sequence of float
        Their intercepts (link scale).
    max_distance_days : float
        Largest time-of-year distance still treated as the same season.
    """

    def __init__(
        self, cutoffs: list[pd.Timestamp], offsets: list[float], max_distance_days: float = 45.0
    ) -> None:
        if len(cutoffs) != len(offsets) or not cutoffs:
            raise ValueError("WindowLevels needs one offset per cutoff, and at least one")
        order = np.argsort(pd.DatetimeIndex(cutoffs).asi8)
        self.cutoffs = [pd.Timestamp(cutoffs[i]) for i in order]
        self.offsets = [float(offsets[i]) for i in order]
        self.max_distance_days = max_distance_days

    def offset_of(self, cutoff: pd.Timestamp) -> float:
        """The intercept of the known window at ``cutoff`` (KeyError when unknown)."""
        return self.offsets[self.cutoffs.index(pd.Timestamp(cutoff))]

    def choose(self, target: pd.Timestamp, *, exclude: pd.Timestamp | None = None) -> LevelChoice:
        """The intercept for a window starting at ``target`` whose outcomes are unknown.

        The known window closest in time of year wins, the most recent one on ties;
        ``exclude`` leaves one known window out (a held-out window choosing its level).
        Without a window within ``max_distance_days`` of the season, the most recent
        known window is returned with ``comparable=False``.
        """
        target = pd.Timestamp(target)
        known = [
            (cutoff, offset)
            for cutoff, offset in zip(self.cutoffs, self.offsets, strict=True)
            if exclude is None or cutoff != pd.Timestamp(exclude)
        ]
        if not known:
            raise ValueError(f"no known window left to choose a level for {target.date()}")
        distances = [season_distance(target, cutoff) for cutoff, _ in known]
        best = min(range(len(known)), key=lambda i: (distances[i], -known[i][0].value))
        if distances[best] <= self.max_distance_days:
            return LevelChoice(known[best][1], known[best][0], distances[best], True)
        cutoff, offset = known[-1]
        return LevelChoice(offset, cutoff, season_distance(target, cutoff), False)
