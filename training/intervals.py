"""Per-customer CLV intervals: a mixture of "no purchase" and the spend given a purchase.

A customer's spend over the horizon is 0 with probability ``p0`` (the churn
probability) and otherwise follows the spend-given-purchase distribution, which is the
spend model's prediction times a multiplicative error. The error's quantiles are read
from held-out buyers (binned by predicted spend: lumpy small spenders get wider
intervals than regulars), and the interval's tail mass is then calibrated on held-out
rows (split conformal): ``[p_low, p_high]`` covers the wanted share (80%) of outcomes
the models never trained on. ``p_low > 0`` exactly where a purchase is more likely than
the lower tail (``p0 < alpha_low``).

Coverage depends on who is scored: a customer almost sure to churn is covered by any
interval that contains 0, a likely buyer only by a wide one. When the customers scored
at the as-of day are more (or less) churn-prone than the held-out window's, an interval
calibrated on the held-out rows as they are covers more (or less) than wanted (CDNOW:
0.83 at 1997-12-31 for a calibration at 0.80). So the held-out rows can be weighted to
the scored population's mix of churn probabilities (weighted split conformal, Tibshirani
et al. 2019, with the weights estimated on bins of ``p0``): the scored rows' predicted
churn is known at training time, without any outcome.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from sklearn.base import BaseEstimator

__all__ = ["MixtureIntervals", "coverage", "shift_weights"]

_GRID = np.linspace(0.005, 0.995, 199)
#: Bins of the churn probability whose shares are matched (quantiles of the held-out rows).
_SHIFT_BINS = 10
#: Largest weight of a held-out row (a handful of rows must not decide the interval).
_MAX_WEIGHT = 20.0


def coverage(
    low: np.ndarray, high: np.ndarray, actual: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Share of outcomes inside ``[low, high]`` (both ends included), optionally weighted."""
    actual = np.asarray(actual, dtype=float)
    return float(np.average((actual >= low) & (actual <= high), weights=weights))


def shift_weights(p_none: np.ndarray, target_p_none: np.ndarray | None) -> np.ndarray:
    """Weights that give the rows ``p_none`` the mix of churn probabilities of ``target_p_none``.

    Both of shape (n,) / (m,). The bins are quantiles of ``p_none`` (so every bin has
    rows to carry its weight); the outer bins are open-ended. Weights are
    ``share in target / share here`` per bin, capped at :data:`_MAX_WEIGHT`; all ones
    without a target.
    """
    p_none = np.asarray(p_none, dtype=float)
    if target_p_none is None or len(target_p_none) == 0 or len(p_none) == 0:
        return np.ones(len(p_none))
    edges = np.unique(np.quantile(p_none, np.linspace(0, 1, _SHIFT_BINS + 1)[1:-1]))
    here = np.searchsorted(edges, p_none, side="right")
    there = np.searchsorted(edges, np.asarray(target_p_none, dtype=float), side="right")
    n_bins = len(edges) + 1
    share_here = np.bincount(here, minlength=n_bins) / len(p_none)
    share_there = np.bincount(there, minlength=n_bins) / len(target_p_none)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(share_here > 0, share_there / share_here, 0.0)
    return np.minimum(ratio, _MAX_WEIGHT)[here]


class MixtureIntervals(BaseEstimator):
    """``[p_low, p_high]`` of the spend over the horizon, calibrated on held-out rows.

    Parameters
    ----------
    target : float
        Wanted coverage of ``[p_low, p_high]`` (0.8: the ``predicted_clv_p10``/``_p90``
        pair of the scores).
    n_bins : int
        Bins of predicted spend for the error quantiles (fewer with under 200 buyers each).
    seed : int
        Seed of the random halves of the cross-fitted coverage.

    Attributes
    ----------
    edges_ : ndarray of shape (n_bins - 1,)
        Interior bin edges of predicted spend (currency units).
    quantiles_ : ndarray of shape (n_bins, 199)
        Log error quantiles per bin at the levels 0.005, 0.010, ..., 0.995.
    tail_ : float
        Calibrated probability outside the interval (split evenly between the tails).
    crossfit_coverage_ : float
        Coverage measured on one random half of the held-out rows with the interval
        calibrated on the other (and vice versa): the honest estimate (weighted to the
        scored population when ``fit`` was given one).
    """

    def __init__(self, target: float = 0.8, n_bins: int = 10, seed: int = 0) -> None:
        self.target = target
        self.n_bins = n_bins
        self.seed = seed

    def fit(
        self,
        p_none: np.ndarray,
        spend_if_buying: np.ndarray,
        actual: np.ndarray,
        target_p_none: np.ndarray | None = None,
    ) -> MixtureIntervals:
        """Fit on held-out rows, each array of shape (n,).

        Parameters
        ----------
        p_none : ndarray
            Predicted probability of no purchase (the churn probability).
        spend_if_buying : ndarray
            Predicted spend given a purchase (currency units, > 0).
        actual : ndarray
            Observed net spend over the horizon (0 without a purchase).
        target_p_none : ndarray of shape (m,), optional
            The churn probabilities of the customers the intervals will be given to (no
            outcomes needed): the held-out rows are weighted to their mix
            (:func:`shift_weights`). None: the held-out rows as they are.
        """
        p_none, spend, actual = (
            np.asarray(a, dtype=float) for a in (p_none, spend_if_buying, actual)
        )
        weights = shift_weights(p_none, target_p_none)
        rng = np.random.default_rng(self.seed)
        half = rng.random(len(actual)) < 0.5
        inside = 0.0
        for part in (half, ~half):
            self._fit_split(p_none[part], spend[part], actual[part], weights[part], rng)
            low, high = self.predict(p_none[~part], spend[~part])
            inside += coverage(low, high, actual[~part], weights[~part]) * weights[~part].sum()
        self.crossfit_coverage_ = float(inside / max(weights.sum(), 1e-12))
        self._fit_split(p_none, spend, actual, weights, rng)
        return self

    def _fit_split(
        self,
        p_none: np.ndarray,
        spend: np.ndarray,
        actual: np.ndarray,
        weights: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """Split conformal: error quantiles from one random half, the tail from the other."""
        errors = rng.random(len(actual)) < 0.5
        self._fit_errors(spend[errors], actual[errors])
        rest = ~errors
        self.tail_ = self._calibrated_tail(p_none[rest], spend[rest], actual[rest], weights[rest])

    def _fit_errors(self, spend: np.ndarray, actual: np.ndarray) -> None:
        bought = actual > 0
        if not bought.any():
            # No buyer in this half (a few held-out buyers, e.g. prospects): no error to
            # learn, so the interval of a purchase is the predicted spend itself.
            self.edges_ = np.array([])
            self.quantiles_ = np.zeros((1, len(_GRID)))
            return
        predicted = np.maximum(spend[bought], 1e-9)
        errors = np.log(actual[bought] / predicted)
        n_bins = max(1, min(self.n_bins, len(errors) // 200))
        self.edges_ = np.unique(np.quantile(predicted, np.linspace(0, 1, n_bins + 1)[1:-1]))
        bins = np.searchsorted(self.edges_, predicted, side="right")
        table = pd.Series(errors).groupby(bins).quantile(_GRID).unstack()
        levels = np.arange(len(self.edges_) + 1)
        self.quantiles_ = table.reindex(levels).ffill().bfill().to_numpy()

    def _calibrated_tail(
        self, p_none: np.ndarray, spend: np.ndarray, actual: np.ndarray, weights: np.ndarray
    ) -> float:
        """The tail mass whose interval covers ``target`` of these (weighted) rows (bisection)."""
        if weights.sum() <= 0:
            weights = np.ones(len(actual))

        def gap(tail: float) -> float:
            low, high = self._interval(p_none, spend, tail)
            return coverage(low, high, actual, weights) - self.target

        nominal = 1.0 - self.target
        if gap(0.01) < 0:
            return 0.01
        if gap(0.99) > 0:
            return 0.99
        return float(brentq(gap, 0.01, 0.99, xtol=1e-4)) if gap(nominal) != 0 else nominal

    def _quantile(self, p_none: np.ndarray, spend: np.ndarray, level: float) -> np.ndarray:
        """The mixture's ``level`` quantile per row."""
        with np.errstate(divide="ignore", invalid="ignore"):
            conditional = np.clip((level - p_none) / (1.0 - p_none), _GRID[0], _GRID[-1])
        bins = np.searchsorted(self.edges_, spend, side="right")
        # Linear interpolation on the shared, evenly spaced grid of levels.
        position = (conditional - _GRID[0]) / (_GRID[1] - _GRID[0])
        below = np.clip(np.floor(position).astype(np.int64), 0, len(_GRID) - 2)
        weight = position - below
        table = self.quantiles_
        error = table[bins, below] * (1.0 - weight) + table[bins, below + 1] * weight
        return np.where(level <= p_none, 0.0, spend * np.exp(error))

    def _interval(
        self, p_none: np.ndarray, spend: np.ndarray, tail: float
    ) -> tuple[np.ndarray, np.ndarray]:
        return (
            self._quantile(p_none, spend, tail / 2),
            self._quantile(p_none, spend, 1.0 - tail / 2),
        )

    def predict(
        self, p_none: np.ndarray, spend_if_buying: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(p_low, p_high), each of shape (n,), in currency units."""
        p_none = np.asarray(p_none, dtype=float)
        spend = np.asarray(spend_if_buying, dtype=float)
        return self._interval(p_none, spend, self.tail_)
