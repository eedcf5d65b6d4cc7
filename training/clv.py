"""Customer-lifetime-value model: LightGBM Tweedie boosted on top of the probabilistic
baseline (``fidelite.training.baseline.BaselineModel``: BG/NBD + Gamma-Gamma).

Why boost on the baseline: a plain regressor on spend learns the level of the
training windows, so when the scored population ages beyond what it saw (longer
tenure, larger ``T``) its aggregate drifts. The probabilistic baseline
extrapolates in ``T`` by construction; the Tweedie booster (log link) starts from
``log(baseline_clv)`` as ``init_score`` and only learns multiplicative corrections,
so with no useful signal it falls back to the baseline rather than to a stale
average. Tweedie (compound Poisson-gamma) handles the mass of exact zeros.
"""

from __future__ import annotations

import os
from typing import Any

# Sleeping OpenMP waiters; see training.churn (must precede loading LightGBM).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb
import numpy as np
import pandas as pd

from fidelite.training.churn import (
    Matrix,
    booster_predict,
    eval_set_kwargs,
    fitted_feature_names,
    model_column,
)

__all__ = [
    "ClvModel",
    "RatioIntervals",
    "SeasonalLevel",
    "crossfit_interval_coverage",
]


class RatioIntervals:
    """Prediction intervals from empirical actual/predicted ratios per prediction bin.

    Customers are binned by predicted CLV (quantile edges); within each bin the
    ``lower``/``upper`` quantiles of ``actual / predicted`` are stored and scaled
    back by each new prediction, so interval width follows the bin's observed
    spread (wide for low-value, lumpy customers; tighter for regulars).

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


class ClvModel:
    """LightGBM Tweedie regressor on horizon spend, boosted from the baseline CLV.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM params
    tweedie_variance_power : float
        Between 1 (Poisson) and 2 (gamma); ~1.5 suits spend with many zeros.
    min_baseline : float
        Floor (currency units) on the baseline CLV before taking its log as the
        starting score, so one-time buyers with a near-zero baseline can still be
        lifted by the booster.
    early_stopping_rounds : int
        Patience when a validation window is given.

    Attributes
    ----------
    booster_ : lightgbm.LGBMRegressor
    best_iteration_ : int
    feature_names_ : list of str
        Columns of the training matrix, i.e. the column order of a numpy ``X``.
    balance_ : float
        Log-scale constant making summed fitted spend equal summed actual spend
        on the training rows, or, after ``keep_level_on``, making the trees
        total-neutral on the rows to be scored.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        tweedie_variance_power: float = 1.5,
        min_baseline: float = 1.0,
        early_stopping_rounds: int = 30,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.tweedie_variance_power = tweedie_variance_power
        self.min_baseline = min_baseline
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (for logging)."""
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "tweedie_variance_power": self.tweedie_variance_power,
            "min_baseline": self.min_baseline,
            "early_stopping_rounds": self.early_stopping_rounds,
        }

    def _log_baseline(self, X: Matrix) -> np.ndarray:
        names = [] if isinstance(X, pd.DataFrame) else fitted_feature_names(self)
        baseline = model_column(X, "baseline_clv", names)
        if baseline is None:
            raise KeyError("baseline_clv: the CLV model boosts from it, but X lacks it")
        return np.log(
            np.clip(np.nan_to_num(baseline, nan=self.min_baseline), self.min_baseline, None)
        )

    def baseline_level(self, X: Matrix) -> np.ndarray:
        """The floored baseline CLV the booster starts from, shape (n,), currency units."""
        return np.exp(self._log_baseline(X))

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        X_val: pd.DataFrame | None = None,
        y_val: np.ndarray | None = None,
        *,
        offset: np.ndarray | float = 0.0,
        offset_val: np.ndarray | float = 0.0,
    ) -> ClvModel:
        """Fit on an encoded matrix X (n, n_features) holding ``baseline_clv`` and spend y (n,).

        The booster starts from ``log(baseline_clv) + offset``; ``offset`` (log
        scale, scalar or shape (n,)) carries window-level effects such as
        ``SeasonalLevel`` so the trees only learn customer-level corrections.
        Net spend can be negative (refunds); Tweedie needs y >= 0, so it is
        clipped at 0 (a refund-only customer is worth nothing, not less).
        """
        target = np.clip(np.asarray(y, dtype=float), 0, None)
        self.feature_names_ = list(X.columns)
        self.booster_ = lgb.LGBMRegressor(
            objective="tweedie",
            tweedie_variance_power=self.tweedie_variance_power,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            verbose=-1,
        )
        fit_kwargs: dict[str, Any] = {}
        if X_val is not None and y_val is not None and self.early_stopping_rounds:
            fit_kwargs.update(
                eval_set_kwargs(X_val, np.clip(np.asarray(y_val, dtype=float), 0, None))
            )
            fit_kwargs["eval_init_score"] = [self._log_baseline(X_val) + offset_val]
            fit_kwargs["callbacks"] = [
                lgb.early_stopping(self.early_stopping_rounds, verbose=False)
            ]
        best = self._fit_booster(X, target, init_score=self._log_baseline(X) + offset, **fit_kwargs)
        self.best_iteration_ = int(best) if best else self.n_estimators
        # Tweedie boosting (p > 1) from an init_score has no intercept and so no
        # balance property: summed predictions drift from summed spend even on the
        # training rows. One log-scale constant restores the training total.
        self.balance_ = 0.0
        fitted_total = self.predict(X, offset=offset).sum()
        self.balance_ = float(np.log(max(target.sum(), 1e-9) / max(fitted_total, 1e-9)))
        return self

    def keep_level_on(self, X: Matrix, offset: np.ndarray | float = 0.0) -> ClvModel:
        """Reset ``balance_`` so the trees leave the total on X where the level puts it.

        ``sum(predict(X, offset)) == sum(baseline_level(X) * exp(offset))``: on
        the (unlabelled) rows to be scored, the trees only redistribute value
        between customers and the aggregate comes from the baseline and the
        window-level offset. Corrections learnt on younger windows otherwise
        shift the total of an older cohort they extrapolate to.
        """
        self.balance_ = 0.0
        tree_total = self.predict(X, offset=offset).sum()
        level_total = (self.baseline_level(X) * np.exp(offset)).sum()
        self.balance_ = float(np.log(max(level_total, 1e-9) / max(tree_total, 1e-9)))
        return self

    def _fit_booster(
        self, X: pd.DataFrame, y: np.ndarray, init_score: np.ndarray, **fit_kwargs: Any
    ) -> int | None:
        """Fit ``booster_`` in-process; return the early-stopping tree count (None without).

        The one seam ``training.distributed.DaskClvModel`` overrides to fit on Dask.
        """
        self.booster_.fit(X, y, init_score=init_score, **fit_kwargs)
        return self.booster_.best_iteration_ if fit_kwargs else None

    def predict(self, X: Matrix, offset: np.ndarray | float = 0.0) -> np.ndarray:
        """Expected spend over the horizon (currency units, >= 0), shape (n,).

        ``X`` is ``FeatureEncoder.transform`` (frame) or ``transform_array`` (numpy,
        in ``feature_names_`` order; the fast path for small batches).
        """
        raw = booster_predict(self.booster_, X, raw_score=True, num_iteration=self.best_iteration_)
        return np.exp(raw + self._log_baseline(X) + offset + self.balance_)


def _window_midpoint_doy(start: pd.Timestamp, horizon_days: int) -> float:
    """Day of year (0-based, fractional) at the middle of the window (start, start + H]."""
    midpoint = pd.Timestamp(start) + pd.Timedelta(days=horizon_days / 2)
    return float(midpoint.dayofyear - 1)


class SeasonalLevel:
    """Actual / baseline spend ratio per backtest window, reused by time of year.

    The baseline knows nothing about the calendar (holiday peaks, January
    slumps), and a booster fitted on stacked windows would otherwise blame a
    window's season on whatever customer features happened to differ. Here the
    window-level log ratio is an explicit offset: in training each window gets
    its own (so trees learn only within-window corrections), and at prediction
    time the window of the same time of year is reused (seasonal naive), or the
    pooled ratio when no training window lies within ``max_distance_days``.

    Parameters
    ----------
    horizon_days : int
        Window length ``H``.
    max_distance_days : float
        Largest day-of-year distance between window mid-points still treated as
        the same season.

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
            [_window_midpoint_doy(start, self.horizon_days) for start in totals.index]
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
        target = _window_midpoint_doy(as_of, self.horizon_days)
        distance = np.abs(self.midpoints_ - target)
        distance = np.minimum(distance, 365.25 - distance)
        nearest = int(np.argmin(distance))
        if distance[nearest] <= self.max_distance_days:
            return float(self.log_ratios_[nearest])
        return self.pooled_log_ratio_
