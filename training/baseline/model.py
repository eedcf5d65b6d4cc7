"""The probabilistic baseline: a purchase model for when and whether, Gamma-Gamma for spend.

``BaselineModel`` fits both on the four RFM columns of a ``build_features`` frame
(``frequency``, ``recency``, ``T`` in days, ``monetary_value``) and predicts the
``baseline_*`` columns the churn and CLV boosters start from.

How ``baseline_p_alive`` relates to ``baseline_churn_probability`` (P(no purchase
in the horizon H)): a customer who left never buys again, and one still alive may
simply not buy within H, so

    churn = (1 - p_alive) + p_alive * P(no purchase in H | alive)  >=  1 - p_alive.

``p_alive`` is the model's belief that the customer has not left for good; churn
adds the chance that a customer who is still around stays quiet for H days. So a
customer can be "surely churning" with a high ``p_alive`` only if, alive, they would
almost surely not buy within H (a very slow buyer); nobody is both surely alive and
surely churning.

The default purchase model is MBG/NBD, whose customers may leave right after any
purchase including the first, so a one-time buyer's ``p_alive`` is below
``b / (a + b)`` and keeps falling with their silence (under BG/NBD it is exactly 1,
whatever the silence). It was chosen on held-out customers and later windows of
CDNOW and the demo data against BG/NBD and Pareto/NBD (BENCHMARKS.md, "Baseline
models"): best held-out log-likelihood on 3 of 5 data sets and within 0.0004 per
customer of the best on a fourth, and for one-time buyers silent for over a year it
predicts the share who buy again within about a point (BG/NBD: twice the observed).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from fidelite.errors import DataContractError
from fidelite.training.baseline.bgnbd import BetaGeoModel
from fidelite.training.baseline.gamma_gamma import GammaGammaModel
from fidelite.training.baseline.mbgnbd import ModifiedBetaGeoModel
from fidelite.training.baseline.pareto_nbd import ParetoNBDModel
from fidelite.training.baseline.purchase import PurchaseModel

logger = logging.getLogger(__name__)

__all__ = ["BASELINE_COLUMNS", "PURCHASE_MODELS", "RFM_COLUMNS", "BaselineModel"]

BASELINE_COLUMNS = (
    "baseline_p_alive",
    "baseline_expected_purchases",
    "baseline_expected_spend",
    "baseline_clv",
    "baseline_churn_probability",
)
# All the baseline reads: a distributed run only needs to gather these per customer.
RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
PURCHASE_MODELS: dict[str, type[PurchaseModel]] = {
    "bgnbd": BetaGeoModel,
    "mbgnbd": ModifiedBetaGeoModel,
    "pareto_nbd": ParetoNBDModel,
}


def _rfm(features: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The RFM columns as float and the purchaser mask (a purchase day: ``T`` known)."""
    missing = [c for c in RFM_COLUMNS if c not in features.columns]
    if missing:
        raise DataContractError(
            f"baseline: the features frame lacks column(s) {missing}; it needs {list(RFM_COLUMNS)}",
            field=missing[0],
        )
    rfm = features[list(RFM_COLUMNS)].astype(float)
    return rfm, rfm["T"].notna().to_numpy()


class BaselineModel(BaseEstimator):
    """Purchase model (MBG/NBD by default) + Gamma-Gamma, fitted on RFM columns.

    Parameters
    ----------
    horizon_days : int, default 90
        Horizon ``H`` in days for expected purchases, CLV and P(no purchase).
    purchase_model : {"mbgnbd", "bgnbd", "pareto_nbd"}, default "mbgnbd"
        Model of the purchase process (see ``PURCHASE_MODELS``).
    penalizer : float or "auto", default "auto"
        L2 penalty of the purchase model (lifetimes' ``penalizer_coef``); "auto"
        is ``AUTO_PENALTY / n_customers`` (see ``MaximumLikelihoodModel``).
    spend_penalizer : float or "auto", default "auto"
        The same for Gamma-Gamma, ``n`` = repeat customers with positive spend.

    Attributes
    ----------
    purchase_model_ : PurchaseModel
        Fitted on (frequency, recency, T) of every customer with a purchase day.
    spend_model_ : GammaGammaModel
        Fitted on repeat customers with positive ``monetary_value``.
    """

    def __init__(
        self,
        horizon_days: int = 90,
        purchase_model: str = "mbgnbd",
        penalizer: float | str = "auto",
        spend_penalizer: float | str = "auto",
    ) -> None:
        self.horizon_days = horizon_days
        self.purchase_model = purchase_model
        self.penalizer = penalizer
        self.spend_penalizer = spend_penalizer

    def fit(self, features: pd.DataFrame) -> BaselineModel:
        """Fit on a frame of shape (n_customers, >= 4) holding ``RFM_COLUMNS``.

        Rows without a purchase day (``T`` NaN: prospects, customers whose orders
        were all refunded) are left out. Any other columns are ignored, so a
        four-column frame gathered from a cluster is enough.

        Raises
        ------
        DataContractError
            When a column of ``RFM_COLUMNS`` is missing.
        InsufficientHistoryError
            When the purchasers cannot identify the models (see the model classes).
        """
        if self.purchase_model not in PURCHASE_MODELS:
            raise ValueError(
                f"purchase_model must be one of {sorted(PURCHASE_MODELS)}, "
                f"got {self.purchase_model!r}"
            )
        rfm, buyers = _rfm(features)
        rfm = rfm.loc[buyers]
        model = PURCHASE_MODELS[self.purchase_model](penalizer=self.penalizer)
        self.purchase_model_ = model.fit(rfm["frequency"], rfm["recency"], rfm["T"])
        repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
        self.spend_model_ = GammaGammaModel(penalizer=self.spend_penalizer).fit(
            repeat["frequency"], repeat["monetary_value"]
        )
        return self

    def _expected_spend(self, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
        """Gamma-Gamma spend per purchase day, shape (n,); refund-heavy customers (mean
        repeat spend <= 0) count as having no repeat spend information."""
        monetary = np.clip(monetary, 0.0, None)
        return self.spend_model_.expected_spend(np.where(monetary > 0, frequency, 0.0), monetary)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Baseline columns, shape (n_customers, 5), NaN for customers without a purchase.

        Returns ``baseline_p_alive`` (probability the customer has not left),
        ``baseline_expected_purchases`` (repeat purchase days in the horizon),
        ``baseline_expected_spend`` (currency per purchase day), ``baseline_clv``
        (currency over the horizon) and ``baseline_churn_probability`` (P(no
        purchase in the horizon), never below ``1 - baseline_p_alive``). Every
        customer with a purchase day gets finite values.
        """
        rfm, _ = _rfm(features)
        columns = self.predict_arrays(*(rfm[c].to_numpy() for c in RFM_COLUMNS))
        return pd.DataFrame(columns, index=features.index)

    def predict_arrays(
        self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, monetary: np.ndarray
    ) -> dict[str, np.ndarray]:
        """:meth:`predict` on float arrays of shape (n,): the baseline columns as arrays.

        Customers without a purchase day (``T`` NaN) get NaN. No frame is built, which
        is what one-customer scoring needs.
        """
        n = len(T)
        columns = {name: np.full(n, np.nan) for name in BASELINE_COLUMNS}
        buyers = ~np.isnan(T)
        if buyers.any():
            every = buyers.all()
            freq, rec, age, money = (
                a if every else a[buyers] for a in (frequency, recency, T, monetary)
            )
            h = float(self.horizon_days)
            model = self.purchase_model_
            alive, purchases, p_none = model.horizon_summary(h, freq, rec, age)
            spend = self._expected_spend(freq, money)
            values = {
                "baseline_p_alive": alive,
                "baseline_expected_purchases": purchases,
                "baseline_expected_spend": spend,
                "baseline_clv": purchases * spend,
                "baseline_churn_probability": p_none,
            }
            for name, value in values.items():
                columns[name][buyers] = value
        return columns

    def report(self) -> dict[str, Any]:
        """Both fits (estimates, standard errors, 95% intervals, diagnostics) as JSON."""
        return {
            "horizon_days": int(self.horizon_days),
            "purchase": self.purchase_model_.report(),
            "spend": self.spend_model_.report(),
        }
