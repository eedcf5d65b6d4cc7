"""Window-level (seasonal) spend levels relative to the baseline.

The baseline knows nothing about the calendar (holiday peaks, January slumps), and a
booster fitted on stacked windows would otherwise blame a window's season on whatever
customer features happened to differ. :class:`SeasonalLevel` makes the window level an
explicit offset: in training each window gets its own, so trees learn only
within-window corrections, and at prediction time the level of the window of the same
time of year is reused (seasonal naive).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SeasonalLevel", "window_midpoint_doy"]


def window_midpoint_doy(start: pd.Timestamp, horizon_days: int) -> float:
    """Day of year (0-based, fractional) at the middle of the window (start, start + H]."""
    midpoint = pd.Timestamp(start) + pd.Timedelta(days=horizon_days / 2)
    return float(midpoint.dayofyear - 1)


class SeasonalLevel:
    """Actual / baseline spend ratio per backtest window, reused by time of year.

    Parameters
    ----------
    horizon_days : int
        Window length ``H``.
    max_distance_days : float
        Largest day-of-year distance between window mid-points still treated as
        the same season; farther away the pooled ratio of all windows is used.

    Attributes
    ----------
    window_starts_ : list of Timestamp
    midpoints_ : ndarray of shape (n_windows,)
        Day of year of each window's mid-point.
    log_ratios_ : ndarray of shape (n_windows,)
        log(total actual / total baseline) per window.
    pooled_log_ratio_ : float
        The same over all windows together.
    """

    def __init__(self, horizon_days: int, max_distance_days: float = 30.0) -> None:
        self.horizon_days = horizon_days
        self.max_distance_days = max_distance_days

    def fit(
        self, window_start: np.ndarray, baseline: np.ndarray, actual: np.ndarray
    ) -> SeasonalLevel:
        """Learn per-window ratios from rows labelled with their window start, each shape (n,)."""
        frame = pd.DataFrame(
            {
                "window": pd.to_datetime(np.asarray(window_start)),
                "baseline": np.asarray(baseline, dtype=float),
                "actual": np.clip(np.asarray(actual, dtype=float), 0, None),
            }
        )
        totals = frame.groupby("window")[["baseline", "actual"]].sum()
        self.window_starts_ = list(totals.index)
        self.midpoints_ = np.array(
            [window_midpoint_doy(start, self.horizon_days) for start in totals.index]
        )
        self.log_ratios_ = np.log(
            np.maximum(totals["actual"], 1e-9) / totals["baseline"]
        ).to_numpy()
        self.pooled_log_ratio_ = float(
            np.log(max(totals["actual"].sum(), 1e-9) / totals["baseline"].sum())
        )
        return self

    def window_offsets(self, window_start: np.ndarray) -> np.ndarray:
        """In-sample offset of each row's own window, shape (n,)."""
        lookup = pd.Series(self.log_ratios_, index=pd.DatetimeIndex(self.window_starts_))
        return lookup.reindex(pd.to_datetime(np.asarray(window_start))).to_numpy(dtype=float)

    def predict(self, as_of: pd.Timestamp) -> float:
        """Log offset for the window starting at ``as_of`` (scalar)."""
        target = window_midpoint_doy(as_of, self.horizon_days)
        distance = np.abs(self.midpoints_ - target)
        distance = np.minimum(distance, 365.25 - distance)
        nearest = int(np.argmin(distance))
        if distance[nearest] <= self.max_distance_days:
            return float(self.log_ratios_[nearest])
        return self.pooled_log_ratio_
