"""The churn classifier: LightGBM boosted from the BG/NBD churn log-odds.

Why boost from the baseline: trees cannot extrapolate, so a classifier trained on
windows where customers were young holds their tenure-driven risk flat as they age.
The BG/NBD churn probability extrapolates in ``T`` by construction; starting the
booster from its log-odds (``init_score``) leaves the trees to learn only corrections,
and with no useful signal the model falls back to the baseline instead of to a stale
average.
"""

from __future__ import annotations

from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.isotonic import IsotonicRegression

from fidelite.training.boosting import BoostedModel, Trees
from fidelite.training.calibration import choose_calibration
from fidelite.training.encoding import Matrix, model_column
from fidelite.training.holdout import HeldOut, held_out_rows, window_array

__all__ = ["CHURN_TREES", "PROBABILITY_FLOOR", "ChurnModel", "baseline_log_odds"]

PROBABILITY_FLOOR = 0.005

#: Small trees on large leaves: the corrections must hold for customers older than any
#: in the training windows. Chosen with data before ``as_of`` only, by training on the
#: oldest backtest window and scoring the newest (the largest age gap a history offers):
#: 15 leaves x 200 rows beat 31 x 50 there on both CDNOW (ROC-AUC 0.733 vs 0.723) and
#: the demo data (0.884 vs 0.883).
CHURN_TREES = Trees(num_leaves=15, min_child_samples=200)


def baseline_log_odds(X: Matrix, feature_names: list[str] | None = None) -> np.ndarray:
    """Churn log-odds of the BG/NBD baseline, shape (n,); 0 (p = 0.5) where it is missing.

    Reads ``baseline_churn_probability``, clipped away from 0 and 1 so the logit stays
    finite. A numpy ``X`` needs ``feature_names`` (its column order).
    """
    p = model_column(X, "baseline_churn_probability", feature_names or [])
    if p is None:
        return np.zeros(len(X))
    p = np.clip(np.nan_to_num(p, nan=0.5), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    return np.log(p / (1.0 - p))


def _sigmoid(raw: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-raw))


class ChurnModel(ClassifierMixin, BoostedModel):
    """P(no purchase within the horizon), boosted from the baseline and calibrated.

    Parameters
    ----------
    trees : Trees
        LightGBM size and learning rate (default :data:`CHURN_TREES`).
    n_jobs, random_state : int
        LightGBM threads and seed.
    boost_from_baseline : bool
        Start from :func:`baseline_log_odds` instead of the training churn rate.
    calibration : {"auto", "none"}
        "auto" fits an isotonic calibrator on the held-out window and keeps it when it
        measurably helps (:func:`~fidelite.training.calibration.choose_calibration`).

    Attributes
    ----------
    estimator_ : lightgbm.LGBMClassifier
        The shipped classifier; ``best_iteration_`` and ``feature_names_`` as for every
        :class:`~fidelite.training.boosting.BoostedModel`.
    classes_ : ndarray
        ``[0, 1]``: 1 means churned.
    calibrator_ : IsotonicRegression or None
        Applied on top of the raw probability when calibration was adopted.
    calibration_ : dict
        The calibration decision (``ece_raw``, ``ece_isotonic_crossfit``,
        ``calibrated``); empty without a held-out window.
    validation_ : HeldOut or None
        Raw churn probabilities predicted on the held-out window.
    """

    def __init__(
        self,
        trees: Trees = CHURN_TREES,
        n_jobs: int = 2,
        random_state: int = 0,
        boost_from_baseline: bool = True,
        calibration: Literal["auto", "none"] = "auto",
    ) -> None:
        super().__init__(trees, n_jobs, random_state)
        self.boost_from_baseline = boost_from_baseline
        self.calibration = calibration

    def _lightgbm(self, n_estimators: int) -> lgb.LGBMModel:
        return lgb.LGBMClassifier(objective="binary", **self._settings(n_estimators))

    def _start(self, X: Matrix) -> np.ndarray:
        if not self.boost_from_baseline:
            return np.zeros(len(X))
        names = [] if isinstance(X, pd.DataFrame) else self.feature_names_
        return baseline_log_odds(X, names)

    def fit(self, X: pd.DataFrame, y: np.ndarray, *, window: object = None) -> ChurnModel:
        """Fit on an encoded matrix and churn labels.

        Parameters
        ----------
        X : DataFrame, shape (n, n_features)
            ``FeatureEncoder.transform`` of stacked backtest windows.
        y : array-like, shape (n,)
            1 when the customer made no purchase within the horizon, else 0.
        window : array-like of dates, shape (n,), optional
            Each row's backtest cutoff. With two windows or more the newest is held
            out to choose the tree count and the calibration (``validation_``); the
            shipped model is then refitted on all rows.
        """
        self._reset()
        y = np.asarray(y).astype(int)
        self.classes_ = np.array([0, 1])
        start = self._start(X)
        held = held_out_rows(None if window is None else window_array(window, len(y)))
        self.calibrator_: IsotonicRegression | None = None
        self.calibration_: dict[str, float] = {}
        self.validation_: HeldOut | None = None
        if held is not None:
            estimator = self._fit_held_out(X, y, start, held, start[held])
            X_held = X.loc[held] if isinstance(X, pd.DataFrame) else X[held]
            proba = _sigmoid(self._raw_score(X_held, estimator) + start[held])
            cutoff = pd.Timestamp(window_array(window, len(y))[held][0])
            self.validation_ = HeldOut(_index(X, held), cutoff, y[held].astype(float), proba)
            if self.calibration == "auto":
                self.calibrator_, self.calibration_ = choose_calibration(y[held], proba)
        self._fit_shipped(X, y, start)
        return self

    def predict_raw_proba(self, X: Matrix) -> np.ndarray:
        """Uncalibrated churn probability, shape (n,).

        ``X`` is ``FeatureEncoder.transform`` (frame) or ``transform_array`` (numpy,
        in ``feature_names_`` order; the fast path for small batches).
        """
        # LightGBM never stores init_score in the model: add the starting point back.
        return _sigmoid(self._raw_score(X) + self._start(X))

    def churn_probability(self, X: Matrix) -> np.ndarray:
        """Churn probability in [0, 1], shape (n,), calibrated when a calibrator was adopted."""
        raw = self.predict_raw_proba(X)
        if self.calibrator_ is None:
            return raw
        # Isotonic steps can reach exactly 0 or 1 on a finite window; no customer is certain.
        return np.clip(self.calibrator_.predict(raw), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)

    def predict_proba(self, X: Matrix) -> np.ndarray:
        """Class probabilities ``[P(stays), P(churns)]``, shape (n, 2)."""
        p = self.churn_probability(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Matrix) -> np.ndarray:
        """1 where the churn probability is at least 0.5, else 0; shape (n,)."""
        return (self.churn_probability(X) >= 0.5).astype(int)


def _index(X: Matrix, rows: np.ndarray) -> pd.Index:
    if isinstance(X, pd.DataFrame):
        return X.index[rows]
    return pd.RangeIndex(len(X))[rows]
