"""The probabilistic baseline: BG/NBD for the purchase process, Gamma-Gamma for spend.

``BaselineModel`` fits both on a ``build_features`` frame and predicts the
``baseline_*`` columns the churn and CLV boosters start from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.training.baseline.bgnbd import BetaGeoModel
from fidelite.training.baseline.gamma_gamma import GammaGammaModel

__all__ = ["BASELINE_COLUMNS", "BaselineModel"]

BASELINE_COLUMNS = (
    "baseline_p_alive",
    "baseline_expected_purchases",
    "baseline_expected_spend",
    "baseline_clv",
    "baseline_churn_probability",
)


def _purchasers(features: pd.DataFrame) -> pd.Series:
    """Boolean mask of customers with at least one purchase (BG/NBD needs one)."""
    return features["orders_total"].fillna(0).astype(float) > 0


class BaselineModel:
    """BG/NBD (purchase process) + Gamma-Gamma (spend per purchase day).

    Parameters
    ----------
    horizon_days : int
        Horizon ``H`` in days for expected purchases, CLV and P(no purchase).

    Attributes
    ----------
    bgnbd_ : BetaGeoModel
        Fitted on (frequency, recency, T) of every purchaser.
    gamma_gamma_ : GammaGammaModel
        Fitted on repeat customers with positive ``monetary_value``.
    """

    def __init__(self, horizon_days: int = 90) -> None:
        self.horizon_days = horizon_days

    def fit(self, features: pd.DataFrame) -> BaselineModel:
        """Fit on a ``build_features`` frame of shape (n_customers, n_columns)."""
        buyers = features.loc[_purchasers(features)]
        self.bgnbd_ = BetaGeoModel().fit(buyers["frequency"], buyers["recency"], buyers["T"])
        repeat = buyers[(buyers["frequency"] > 0) & (buyers["monetary_value"] > 0)]
        self.gamma_gamma_ = GammaGammaModel().fit(repeat["frequency"], repeat["monetary_value"])
        return self

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Baseline columns, shape (n_customers, 5), NaN for customers without a purchase.

        Returns ``baseline_p_alive`` (probability), ``baseline_expected_purchases``
        (repeat purchase days in the horizon), ``baseline_expected_spend``
        (currency per purchase day), ``baseline_clv`` (currency over the horizon)
        and ``baseline_churn_probability`` (P(no purchase in the horizon)).
        """
        n = len(features)
        columns = {name: np.full(n, np.nan) for name in BASELINE_COLUMNS}
        buyers = _purchasers(features).to_numpy()
        if buyers.any():
            # Whole columns at once: the per-column .loc writes of a frame cost
            # more than the models themselves for the one-customer requests.
            f = features if buyers.all() else features.loc[buyers]
            freq, rec, age = (f[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
            h = float(self.horizon_days)
            purchases = np.asarray(self.bgnbd_.expected_purchases(h, freq, rec, age), dtype=float)
            # Gamma-Gamma is only defined for non-negative spend; refund-heavy customers
            # get the population mean (frequency 0 case) instead of a negative mean.
            monetary = np.clip(f["monetary_value"].to_numpy(dtype=float), 0.0, None)
            spend_freq = np.where(monetary > 0, freq, 0.0)
            spend = np.asarray(self.gamma_gamma_.expected_spend(spend_freq, monetary), dtype=float)
            values = {
                "baseline_p_alive": self.bgnbd_.p_alive(freq, rec, age),
                "baseline_expected_purchases": purchases,
                "baseline_expected_spend": spend,
                "baseline_clv": purchases * spend,
                "baseline_churn_probability": self.bgnbd_.prob_no_purchase(h, freq, rec, age),
            }
            for name, value in values.items():
                columns[name][buyers] = np.asarray(value, dtype=float)
        return pd.DataFrame(columns, index=features.index)
