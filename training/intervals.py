"""Per-customer CLV intervals from held-out actual/predicted ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["RatioIntervals", "crossfit_interval_coverage"]


class RatioIntervals:
    """Prediction intervals from empirical actual/predicted ratios per prediction bin.

    Customers are binned by predicted CLV (quantile edges); within each bin the
    ``lower``/``upper`` quantiles of ``actual / predicted`` are stored and scaled
    back by each new prediction, so interval width follows the bin's observed
    spread (wide for low-value, lumpy customers; tighter for regulars).

    Parameters
    ----------
    lower, upper : float
        Quantiles of the interval (0.1 and 0.9: an 80% interval).
    n_bins : int
        Prediction bins (fewer when there are under 50 rows per bin).

    Attributes
    ----------
    edges_ : ndarray of shape (n_bins - 1,)
        Interior bin edges in currency units.
    lower_ratio_, upper_ratio_ : ndarray of shape (n_bins,)
    """

    def __init__(self, lower: float = 0.1, upper: float = 0.9, n_bins: int = 10) -> None:
        self.lower = lower
        self.upper = upper
        self.n_bins = n_bins

    def fit(self, predicted: np.ndarray, actual: np.ndarray) -> RatioIntervals:
        """Learn ratio quantiles from predictions and outcomes, each shape (n,)."""
        predicted = np.maximum(np.asarray(predicted, dtype=float), 1e-9)
        actual = np.clip(np.asarray(actual, dtype=float), 0.0, None)
        n_bins = max(1, min(self.n_bins, len(predicted) // 50))
        self.edges_ = np.unique(np.quantile(predicted, np.linspace(0, 1, n_bins + 1)[1:-1]))
        bins = np.searchsorted(self.edges_, predicted, side="right")
        ratios = pd.Series(actual / predicted).groupby(bins)
        levels = np.arange(len(self.edges_) + 1)
        self.lower_ratio_ = ratios.quantile(self.lower).reindex(levels).ffill().bfill().to_numpy()
        self.upper_ratio_ = ratios.quantile(self.upper).reindex(levels).ffill().bfill().to_numpy()
        return self

    def predict(self, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(p_lower, p_upper), each shape (n,), with p_lower <= predicted <= p_upper."""
        predicted = np.asarray(predicted, dtype=float)
        bins = np.searchsorted(self.edges_, predicted, side="right")
        low = np.minimum(predicted * self.lower_ratio_[bins], predicted)
        high = np.maximum(predicted * self.upper_ratio_[bins], predicted)
        return low, high

    def coverage(self, predicted: np.ndarray, actual: np.ndarray) -> float:
        """Share of outcomes inside [p_lower, p_upper]."""
        low, high = self.predict(predicted)
        actual = np.clip(np.asarray(actual, dtype=float), 0.0, None)
        return float(np.mean((actual >= low) & (actual <= high)))


def crossfit_interval_coverage(
    predicted: np.ndarray,
    actual: np.ndarray,
    *,
    lower: float = 0.1,
    upper: float = 0.9,
    seed: int = 0,
) -> float:
    """Honest interval coverage: fit ratios on one random half, measure on the other."""
    rng = np.random.default_rng(seed)
    half = rng.random(len(predicted)) < 0.5
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    covered = []
    for fit_mask in (half, ~half):
        intervals = RatioIntervals(lower, upper).fit(predicted[fit_mask], actual[fit_mask])
        covered.append(
            intervals.coverage(predicted[~fit_mask], actual[~fit_mask]) * (~fit_mask).sum()
        )
    return float(sum(covered) / max(len(predicted), 1))
