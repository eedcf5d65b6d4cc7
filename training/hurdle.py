"""The hurdle CLV of one population: P(purchase) x E[spend | purchase], with its timing.

Purchasers and prospects (customers without a purchase yet) each get a :class:`Hurdle`:
an encoder, a churn classifier (P(no purchase within H)), a spend regressor (spend given
a purchase: ``value_if_retained``), a hazard model for when the purchase comes, and the
mixture intervals, all fitted by :func:`fit_hurdle` on the same training rows and
checked on the same held-out rows. The purchasers' models start from the BG/NBD +
Gamma-Gamma baseline; the prospects' have none (BG/NBD needs a purchase).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fidelite.training.encoding import FeatureEncoder
from fidelite.training.holdout import RowRoles
from fidelite.training.intervals import MixtureIntervals
from fidelite.training.levels import LevelChoice
from fidelite.training.timing import TimingModel
from fidelite.training.windows import Stacked

__all__ = ["HURDLE_OUTPUTS", "Hurdle", "fit_hurdle"]

#: What :meth:`Hurdle.predict` returns per customer.
HURDLE_OUTPUTS = (
    "churn_probability",
    "value_if_retained",
    "predicted_clv",
    "predicted_clv_p10",
    "predicted_clv_p90",
    "next_purchase_days",
)


@dataclass
class Hurdle:
    """The fitted models of one population.

    Attributes
    ----------
    encoder : FeatureEncoder
    churn : ChurnModel
        P(no purchase in the H days after the as-of day).
    spend : SpendModel
        Net spend over H given at least one purchase (currency units).
    timing : TimingModel
        Hazard of the first purchase, for the median next-purchase day given a purchase
        within H.
    intervals : MixtureIntervals
        ``[p10, p90]`` of the spend over H, calibrated on held-out rows.
    purchase_days_if_buying : float
        Mean purchase days in the horizon of the training rows that bought.
    """

    encoder: FeatureEncoder
    churn: Any
    spend: Any
    timing: TimingModel
    intervals: MixtureIntervals
    purchase_days_if_buying: float = 1.0

    def predict(
        self,
        features: pd.DataFrame,
        day: pd.Timestamp,
        X: np.ndarray | None = None,
        churn_raw: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """:data:`HURDLE_OUTPUTS` for every row, each of shape (n,).

        ``X`` is ``encoder.transform_array(features)`` when already computed; ``churn_raw``
        the churn trees' raw score of ``X`` when already computed (the reasons' leaf pass).
        """
        X = self.encoder.transform_array(features) if X is None else X
        p_none = self.churn.predict_mean(X, as_of=day, raw_score=churn_raw)
        spend = self.spend.predict(X, as_of=day)
        return self._outputs(X, p_none, spend, day)

    def _outputs(
        self, X: np.ndarray, p_none: np.ndarray, spend: np.ndarray, day: pd.Timestamp
    ) -> dict[str, np.ndarray]:
        low, high = self.intervals.predict(p_none, spend)
        return {
            "churn_probability": p_none,
            "value_if_retained": spend,
            "predicted_clv": (1.0 - p_none) * spend,
            "predicted_clv_p10": low,
            "predicted_clv_p90": high,
            "next_purchase_days": self.timing.next_purchase_days(X, 1.0 - p_none),
        }


def fit_hurdle(
    rows: Stacked,
    roles: RowRoles,
    reference: pd.DataFrame,
    model_classes: Mapping[str, type],
    params: Mapping[str, Mapping[str, Any]],
    as_of: pd.Timestamp | None = None,
) -> tuple[Hurdle, pd.DataFrame]:
    """Fit a population's models; return them and their held-out predictions.

    Parameters
    ----------
    rows : Stacked
        The population's backtest rows (features, labels, cutoffs).
    roles : RowRoles
        Training, held-out and level-only rows (``training.holdout``).
    reference : DataFrame
        The population at the as-of day (unlabelled): the encoder leaves out columns it
        lies beyond, and the intervals are calibrated for its mix of churn probabilities.
    model_classes : mapping
        ``churn``, ``spend``, ``timing`` estimator classes (single machine or Dask).
    params : mapping
        Constructor keywords per model (``churn``, ``spend``, ``timing``).
    as_of : Timestamp, optional
        The as-of day ``reference`` was built at (its levels); None: the newest window's.

    Returns
    -------
    hurdle : Hurdle
    held_out : DataFrame, indexed by customer_id
        The held-out rows' outcomes (``churned``, ``future_spend``, ``days_to_purchase``)
        and predictions (:data:`HURDLE_OUTPUTS`), each made with the level of the
        held-out window's comparable window.
    """
    labels = rows.labels
    encoder = FeatureEncoder().fit(rows.features.loc[roles.train], reference=reference)
    X = encoder.transform(rows.features)
    churn = model_classes["churn"](**params["churn"])
    churn.fit(X, labels["churned"].to_numpy(), window=rows.window, roles=roles)
    bought = (labels["churned"] == 0).to_numpy()
    spend = model_classes["spend"](**params["spend"])
    spend.fit(
        X.loc[bought],
        labels["future_spend"].to_numpy()[bought],
        window=rows.window[bought],
        roles=roles.subset(bought),
    )
    held = roles.held
    p_none = churn.validation_.predicted
    spend_held = spend.predict_mean(X.loc[held], level=spend.holdout_level_)
    actual = labels["future_spend"].to_numpy()[held]
    intervals = _fit_intervals(churn, spend, X.loc[held], actual, reference, encoder, as_of)
    del X  # the frame matrix is done with: freed before the array one is built
    matrix = encoder.transform_array(rows.features)
    timing = model_classes["timing"](**params["timing"])
    timing.fit(matrix, labels["days_to_purchase"].to_numpy(), roles=roles)
    buyers_days = labels["future_purchases"].to_numpy()[roles.train & bought]
    days_if_buying = float(buyers_days.mean()) if len(buyers_days) else 1.0
    hurdle = Hurdle(encoder, churn, spend, timing, intervals, days_if_buying)
    outputs = hurdle._outputs(matrix[held], p_none, spend_held, roles.holdout_cutoff)
    held_out = labels.loc[held, ["churned", "future_spend", "days_to_purchase"]].assign(**outputs)
    return hurdle, held_out


def _calibration_level(model: Any, as_of: pd.Timestamp | None) -> LevelChoice:
    """The level the held-out rows are predicted with to calibrate the intervals.

    The intervals must carry the level error the scored rows will have. The held-out
    rows' own comparable-window level reproduces it, except when the held-out window had
    no comparable window (the level of another season) while the as-of
    day has one: that season mismatch will not happen at scoring, so the held-out
    window's own level stands in for a perfect same-season level.
    """
    choice = model.holdout_level_
    cutoff = model.validation_.cutoff
    if choice.comparable or not model.level_for(as_of).comparable:
        return choice
    if cutoff not in model.levels_.cutoffs:  # customers mode: no level of its own
        return choice
    return LevelChoice(model.levels_.offset_of(cutoff), cutoff, 0.0, True)


#: Most as-of rows whose churn probabilities set the intervals' weights (a sample
#: estimates a mix of churn probabilities as well as every row does).
_REFERENCE_SAMPLE = 100_000


def _fit_intervals(
    churn: Any,
    spend: Any,
    X_held: pd.DataFrame,
    actual: np.ndarray,
    reference: pd.DataFrame,
    encoder: FeatureEncoder,
    as_of: pd.Timestamp | None,
) -> MixtureIntervals:
    """Intervals calibrated on the held-out rows for the customers scored at ``as_of``."""
    p_none = churn.predict_mean(X_held, level=_calibration_level(churn, as_of))
    spend_held = spend.predict_mean(X_held, level=_calibration_level(spend, as_of))
    target = None
    if len(reference):
        sample = reference.iloc[:: max(1, len(reference) // _REFERENCE_SAMPLE)]
        target = churn.churn_probability(encoder.transform_array(sample), as_of=as_of)
    return MixtureIntervals().fit(p_none, spend_held, actual, target_p_none=target)
