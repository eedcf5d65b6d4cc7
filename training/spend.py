"""The spend regressor: E[net spend over H | at least one purchase], boosted from the baseline.

This is the second half of the hurdle CLV: ``predicted_clv = P(purchase) x
E[spend | purchase]`` (``value_if_retained``). It is fitted on the rows that bought in
their window only, with a gamma objective (positive, right-skewed amounts, log link),
starting from the baseline's spend given a purchase (``baseline_clv`` over the baseline
P(purchase)) and its window's level (basket sizes move with the season too).

Without a baseline (``start_from_baseline=False``) it estimates prospects' first spend.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin

from fidelite.training.boosting import BoostedModel, Trees
from fidelite.training.encoding import Matrix, model_column
from fidelite.training.holdout import RowRoles
from fidelite.training.levels import log_ratio

__all__ = ["SPEND_TREES", "SpendModel", "baseline_spend_if_buying"]

#: Default size of the spend trees (they see only the buyers: larger leaves).
SPEND_TREES = Trees(num_leaves=15, min_child_samples=100)


def baseline_spend_if_buying(X: Matrix, feature_names: list[str], floor: float) -> np.ndarray:
    """The baseline's spend given a purchase, ``baseline_clv / P(purchase)``, shape (n,).

    Missing or tiny values become ``floor`` (currency units), so the log stays finite and
    one-time buyers with a near-zero baseline can still be lifted by the trees.
    """
    clv = model_column(X, "baseline_clv", feature_names)
    p_none = model_column(X, "baseline_churn_probability", feature_names)
    if clv is None or p_none is None:
        raise KeyError("baseline_clv/baseline_churn_probability: the spend model starts from them")
    with np.errstate(divide="ignore", invalid="ignore"):
        value = clv / (1.0 - p_none)
    return np.clip(np.nan_to_num(value, nan=floor, posinf=floor), floor, None)


class SpendModel(RegressorMixin, BoostedModel):
    """Expected net spend over the horizon of a customer who buys in it (currency units).

    Parameters
    ----------
    trees, n_jobs, random_state
        LightGBM settings as for :class:`~fidelite.training.boosting.BoostedModel`
        (default trees :data:`SPEND_TREES`).
    start_from_baseline : bool
        Start from :func:`baseline_spend_if_buying` (purchasers); False starts every row
        from its window's mean spend (prospects).
    min_baseline : float
        Floor on the baseline spend (currency units).

    Attributes
    ----------
    estimator_ : lightgbm.LGBMRegressor
        The shipped regressor (gamma objective); the other fitted attributes are those of
        every :class:`~fidelite.training.boosting.BoostedModel`.
    """

    def __init__(
        self,
        trees: Trees = SPEND_TREES,
        n_jobs: int = 2,
        random_state: int = 0,
        start_from_baseline: bool = True,
        min_baseline: float = 1.0,
    ) -> None:
        super().__init__(trees, n_jobs, random_state)
        self.start_from_baseline = start_from_baseline
        self.min_baseline = min_baseline

    def _lightgbm(self, n_estimators: int) -> lgb.LGBMModel:
        return lgb.LGBMRegressor(objective="gamma", **self._settings(n_estimators))

    def _start(self, X: Matrix) -> np.ndarray:
        if self.start_from_baseline:
            return np.log(baseline_spend_if_buying(X, self._names(X), self.min_baseline))
        return np.zeros(len(X))

    def _window_level(self, score: np.ndarray, y: np.ndarray) -> float:
        return log_ratio(score, y)

    def _inverse_link(self, score: np.ndarray) -> np.ndarray:
        return np.exp(score)

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, *, window: object, roles: RowRoles | None = None
    ) -> SpendModel:
        """Fit on the rows that bought: ``y`` is their net spend over the window (currency).

        ``X``, ``window`` and ``roles`` are as for
        :meth:`fidelite.training.churn.ChurnModel.fit`, restricted to those rows. Spend below
        one cent is raised to it (the gamma objective needs positive targets).
        """
        spend = np.clip(np.asarray(y, dtype=float), 0.01, None)
        self._fit_windows(X, spend, window, roles)
        return self

    def predict(self, X: Matrix, *, as_of: object = None) -> np.ndarray:
        """Expected spend given a purchase in the window starting at ``as_of``, shape (n,)."""
        return self.predict_mean(X, as_of=as_of)
