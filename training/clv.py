"""The CLV regressor: LightGBM Tweedie boosted from the baseline CLV and a seasonal level.

Why boost on the baseline: a plain regressor on spend learns the level of the training
windows, so when the scored population ages beyond what it saw (longer tenure, larger
``T``) its aggregate drifts. The probabilistic baseline
(:class:`fidelite.training.baseline.BaselineModel`) extrapolates in ``T`` by
construction; the Tweedie booster (log link) starts from ``log(baseline_clv)`` plus the
window's seasonal level (:class:`~fidelite.training.seasonal.SeasonalLevel`) and only
learns multiplicative corrections. Tweedie (compound Poisson-gamma) handles the mass of
exact zeros.

The trees are kept level-neutral on the rows they score: they move value between
customers, while the total comes from the baseline times the seasonal level.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin

from fidelite.training.boosting import BoostedModel, Trees
from fidelite.training.encoding import Matrix, model_column
from fidelite.training.holdout import HeldOut, held_out_rows, window_array
from fidelite.training.intervals import RatioIntervals
from fidelite.training.seasonal import SeasonalLevel

__all__ = ["CLV_TREES", "ClvModel"]

#: Default size of the CLV trees.
CLV_TREES = Trees(num_leaves=31, min_child_samples=50)


def _level_balance(raw: np.ndarray, log_start: np.ndarray) -> float:
    """Log constant making ``sum(exp(raw + log_start + c)) == sum(exp(log_start))``."""
    tree_total = np.exp(raw + log_start).sum()
    level_total = np.exp(log_start).sum()
    return float(np.log(max(level_total, 1e-9) / max(tree_total, 1e-9)))


class ClvModel(RegressorMixin, BoostedModel):
    """Expected net spend over the horizon, boosted from the baseline CLV.

    Parameters
    ----------
    trees, n_jobs, random_state
        LightGBM settings as for :class:`~fidelite.training.boosting.BoostedModel`
        (default trees :data:`CLV_TREES`).
    tweedie_variance_power : float
        Between 1 (Poisson) and 2 (gamma); ~1.5 suits spend with many zeros.
    min_baseline : float
        Floor (currency units) on the baseline CLV before taking its log as the
        starting score, so one-time buyers with a near-zero baseline can still be
        lifted by the booster.
    horizon_days : int
        Horizon ``H`` of the labels, which sets each window's season.

    Attributes
    ----------
    estimator_ : lightgbm.LGBMRegressor
        The shipped regressor (fitted like ``ChurnModel.estimator_``).
    level_ : SeasonalLevel or None
        Window-level log offsets of every training window (None without windows).
    balance_ : float
        Log constant that keeps the trees level-neutral on the target rows (or that
        matches the training total without target rows).
    target_window_ : Timestamp or None
        Window start of the target rows: the default for ``predict``'s ``as_of``.
    intervals_ : RatioIntervals or None
        Ratio table fitted on the held-out window's predictions and outcomes.
    validation_ : HeldOut or None
        Predicted spend on the held-out window (level from the other windows only).
    """

    def __init__(
        self,
        trees: Trees = CLV_TREES,
        n_jobs: int = 2,
        random_state: int = 0,
        tweedie_variance_power: float = 1.5,
        min_baseline: float = 1.0,
        horizon_days: int = 90,
    ) -> None:
        super().__init__(trees, n_jobs, random_state)
        self.tweedie_variance_power = tweedie_variance_power
        self.min_baseline = min_baseline
        self.horizon_days = horizon_days

    def _lightgbm(self, n_estimators: int) -> lgb.LGBMModel:
        return lgb.LGBMRegressor(
            objective="tweedie",
            tweedie_variance_power=self.tweedie_variance_power,
            **self._settings(n_estimators),
        )

    def _log_baseline(self, X: Matrix) -> np.ndarray:
        names = [] if isinstance(X, pd.DataFrame) else self.feature_names_
        baseline = model_column(X, "baseline_clv", names)
        if baseline is None:
            raise KeyError("baseline_clv: the CLV model boosts from it, but X lacks it")
        floored = np.clip(np.nan_to_num(baseline, nan=self.min_baseline), self.min_baseline, None)
        return np.log(floored)

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        *,
        window: object = None,
        X_target: pd.DataFrame | None = None,
        target_window: object = None,
    ) -> ClvModel:
        """Fit on an encoded matrix holding ``baseline_clv`` and the spend over the horizon.

        Parameters
        ----------
        X : DataFrame, shape (n, n_features)
            ``FeatureEncoder.transform`` of stacked backtest windows.
        y : array-like, shape (n,)
            Net spend in currency units. Tweedie needs y >= 0, so it is clipped at 0
            (a refund-only customer is worth nothing, not less).
        window : array-like of dates, shape (n,), optional
            Each row's backtest cutoff: it sets the seasonal level, and with two
            windows or more the newest is held out to choose the tree count and fit
            ``intervals_`` (``validation_``).
        X_target : DataFrame, shape (m, n_features), optional
            The (unlabelled) rows the model will score; the trees are made
            level-neutral on them. Point-in-time safe: no labels are read.
        target_window : date, optional
            Their window start (the as-of day), which picks the seasonal level.
        """
        self._reset()
        spend = np.asarray(y, dtype=float)
        target = np.clip(spend, 0, None)
        log_base = self._log_baseline(X)
        windows = None if window is None else window_array(window, len(spend))
        held = held_out_rows(windows)
        self.intervals_: RatioIntervals | None = None
        self.validation_: HeldOut | None = None
        if held is not None:
            self._fit_held_out_window(X, spend, log_base, windows, held)
        self.level_: SeasonalLevel | None = None
        offsets = np.zeros(len(spend))
        if windows is not None:
            self.level_ = SeasonalLevel(self.horizon_days).fit(windows, np.exp(log_base), target)
            offsets = self.level_.window_offsets(windows)
        self._fit_shipped(X, target, log_base + offsets)
        self.target_window_ = None if target_window is None else pd.Timestamp(target_window)
        if X_target is None:
            fitted = np.exp(self._raw_score(X) + log_base + offsets)
            self.balance_ = float(np.log(max(target.sum(), 1e-9) / max(fitted.sum(), 1e-9)))
        else:
            start = self._log_baseline(X_target) + self._offset(self.target_window_)
            self.balance_ = _level_balance(self._raw_score(X_target), start)
        return self

    def _fit_held_out_window(
        self,
        X: pd.DataFrame,
        spend: np.ndarray,
        log_base: np.ndarray,
        windows: np.ndarray,
        held: np.ndarray,
    ) -> None:
        """Tree count, ``intervals_`` and ``validation_`` from the newest window.

        The held-out window's level comes from the other windows only, and the trees
        are made level-neutral on its rows, exactly as the shipped model will be on
        the rows it scores.
        """
        train = ~held
        target = np.clip(spend, 0, None)
        level = SeasonalLevel(self.horizon_days).fit(
            windows[train], np.exp(log_base[train]), target[train]
        )
        cutoff = pd.Timestamp(windows[held][0])
        start = log_base.copy()
        start[train] += level.window_offsets(windows[train])
        start[held] += level.predict(cutoff)
        estimator = self._fit_held_out(X, target, start, held, start[held])
        raw = self._raw_score(X.loc[held], estimator)
        predicted = np.exp(raw + start[held] + _level_balance(raw, start[held]))
        self.intervals_ = RatioIntervals().fit(predicted, spend[held])
        self.validation_ = HeldOut(X.index[held], cutoff, spend[held], predicted)

    def _offset(self, as_of: object) -> float:
        if self.level_ is None or as_of is None:
            return 0.0
        return self.level_.predict(pd.Timestamp(as_of))

    def predict(self, X: Matrix, *, as_of: object = None) -> np.ndarray:
        """Expected spend over the horizon (currency units, >= 0), shape (n,).

        ``X`` is ``FeatureEncoder.transform`` (frame) or ``transform_array`` (numpy, in
        ``feature_names_`` order; the fast path for small batches). ``as_of`` (the
        scoring day) picks the seasonal level; default ``target_window_``.
        """
        day = self.target_window_ if as_of is None else as_of
        raw = self._raw_score(X)
        return np.exp(raw + self._log_baseline(X) + self._offset(day) + self.balance_)

    def predict_interval(
        self, X: Matrix, *, as_of: object = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p10, prediction, p90), each shape (n,); the bounds are NaN without intervals."""
        predicted = self.predict(X, as_of=as_of)
        if self.intervals_ is None:
            nan = np.full(len(predicted), np.nan)
            return nan, predicted, nan.copy()
        low, high = self.intervals_.predict(predicted)
        return low, predicted, high
