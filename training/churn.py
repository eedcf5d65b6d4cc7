"""The churn classifier: P(no purchase within H), boosted from the BG/NBD log-odds.

Why boost from the baseline: trees cannot extrapolate, so a classifier trained on
windows where customers were young holds their tenure-driven risk flat as they age.
The BG/NBD churn probability extrapolates in ``T`` by construction; starting the
booster from its log-odds (``init_score``) leaves the trees to learn only corrections,
and with no useful signal the model falls back to the baseline instead of to a stale
average. Each window's churn level is its own intercept (:mod:`~fidelite.training.levels`),
so the probabilities are calibrated for the season of the window scored.

Without a baseline (``boost_from_baseline=False``) the same classifier scores prospects:
P(no first purchase within H).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin

from fidelite.training.boosting import BoostedModel, Trees
from fidelite.training.encoding import Matrix, model_column
from fidelite.training.holdout import RowRoles
from fidelite.training.levels import logit_shift

__all__ = ["CHURN_TREES", "ChurnModel", "baseline_log_odds"]

#: The baseline probability is kept this far from 0 and 1 so its logit stays finite.
_BASELINE_FLOOR = 1e-4

#: Small trees on large leaves: the corrections must hold for customers older than any
#: in the training windows. Chosen with data before ``as_of`` only, by training on the
#: oldest backtest window and scoring the newest (the largest age gap a history offers):
#: 15 leaves x 200 rows beat 31 x 50 there on both CDNOW (ROC-AUC 0.733 vs 0.723) and
#: the demo data (0.884 vs 0.883).
CHURN_TREES = Trees(num_leaves=15, min_child_samples=200)


def baseline_log_odds(X: Matrix, feature_names: list[str] | None = None) -> np.ndarray:
    """Churn log-odds of the BG/NBD baseline, shape (n,); 0 (p = 0.5) where it is missing.

    Reads ``baseline_churn_probability``; a numpy ``X`` needs ``feature_names`` (its
    column order).
    """
    p = model_column(X, "baseline_churn_probability", feature_names or [])
    if p is None:
        return np.zeros(len(X))
    p = np.clip(np.nan_to_num(p, nan=0.5), _BASELINE_FLOOR, 1.0 - _BASELINE_FLOOR)
    return np.log(p / (1.0 - p))


class ChurnModel(ClassifierMixin, BoostedModel):
    """P(no purchase within the horizon), with a level per window.

    Parameters
    ----------
    trees : Trees
        LightGBM size and learning rate (default :data:`CHURN_TREES`).
    n_jobs, random_state : int
        LightGBM threads and seed.
    boost_from_baseline : bool
        Start from :func:`baseline_log_odds` (purchasers); False starts every row from
        its window's churn rate (prospects, who have no baseline).

    Attributes
    ----------
    estimator_ : lightgbm.LGBMClassifier
        The shipped classifier; ``best_iteration_``, ``feature_names_``, ``levels_``,
        ``holdout_level_`` and ``validation_`` as for every
        :class:`~fidelite.training.boosting.BoostedModel`.
    classes_ : ndarray
        ``[0, 1]``: 1 means churned.
    """

    def __init__(
        self,
        trees: Trees = CHURN_TREES,
        n_jobs: int = 2,
        random_state: int = 0,
        boost_from_baseline: bool = True,
    ) -> None:
        super().__init__(trees, n_jobs, random_state)
        self.boost_from_baseline = boost_from_baseline

    def _lightgbm(self, n_estimators: int) -> lgb.LGBMModel:
        return lgb.LGBMClassifier(objective="binary", **self._settings(n_estimators))

    def _start(self, X: Matrix) -> np.ndarray:
        if self.boost_from_baseline:
            return baseline_log_odds(X, self._names(X))
        return np.zeros(len(X))

    def _window_level(self, score: np.ndarray, y: np.ndarray) -> float:
        return logit_shift(score, float(np.mean(y)))

    def _inverse_link(self, score: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-score))

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, *, window: object, roles: RowRoles | None = None
    ) -> ChurnModel:
        """Fit on an encoded matrix and churn labels.

        Parameters
        ----------
        X : DataFrame, shape (n, n_features)
            ``FeatureEncoder.transform`` of stacked backtest windows.
        y : array-like, shape (n,)
            1 when the customer made no purchase within the horizon, else 0.
        window : array-like of dates, shape (n,)
            Each row's backtest cutoff (its window gets its own level).
        roles : RowRoles, optional
            Which rows train, are held out or only set levels; default: all train.
        """
        self._fit_windows(X, np.asarray(y).astype(int), window, roles)
        self.classes_ = np.array([0, 1])
        return self

    def churn_probability(self, X: Matrix, *, as_of: object = None) -> np.ndarray:
        """P(no purchase in the ``H`` days after ``as_of``), shape (n,).

        ``X`` is ``FeatureEncoder.transform`` (frame) or ``transform_array`` (numpy, in
        ``feature_names_`` order; the fast path for small batches). ``as_of`` picks the
        level (the comparable window's); default: the newest known window's.
        """
        return self.predict_mean(X, as_of=as_of)

    def predict_proba(self, X: Matrix) -> np.ndarray:
        """Class probabilities ``[P(stays), P(churns)]``, shape (n, 2)."""
        p = self.churn_probability(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Matrix) -> np.ndarray:
        """1 where the churn probability is at least 0.5, else 0; shape (n,)."""
        return (self.churn_probability(X) >= 0.5).astype(int)
