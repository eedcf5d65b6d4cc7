"""The customer base at D as integer-coded arrays, computed once per report.

Every section aggregates these arrays (``np.bincount`` over a view's customers), so a
report over a million customers costs one feature build plus a few passes over the
purchase days, and each extra view costs only the aggregation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from fidelite.features.build import build_features
from fidelite.reports.arrays import (
    UNIX_DAY,
    CustomerMonths,
    Orders,
    PurchaseCalendar,
    PurchaseDays,
    customer_codes,
    day_numbers,
    month_label,
    month_numbers,
)
from fidelite.reports.inputs import ReportConfig, ReportInputs
from fidelite.reports.layout import ALL_VIEW, View

__all__ = [
    "CustomerBase",
    "CustomerMonths",
    "PurchaseDays",
    "build_customer_base",
    "customer_months",
    "day_numbers",
    "month_label",
    "month_numbers",
]


@dataclass
class CustomerBase:
    """Everything the sections aggregate, one entry per customer known at D.

    Attributes
    ----------
    as_of_day, horizon : int
        Day number of D and H in days.
    features : DataFrame, shape (n_customers, n_features)
        ``build_features`` at D, indexed by ``customer_id``.
    known_day : ndarray of float64, shape (n_customers,)
        First day the customer is known (signup or first transaction).
    acquisition : ndarray of object, shape (n_customers,)
        Acquisition channel ("unknown" without a customers table).
    orders : Orders
        Order rows with their attributed refunds (the product's purchase definitions).
    calendar : PurchaseCalendar
        Purchase days and until when each stays one (a later full refund cancels it).
    purchases : PurchaseDays
        Purchase days as known at D.
    scores : DataFrame or None
        The scores frame aligned on ``features.index`` (missing customers are NaN).
    views : dict of str -> (View, mask)
        Customer subsets the page can filter on; mask of shape (n_customers,).
    """

    inputs: ReportInputs
    config: ReportConfig
    as_of_day: int
    horizon: int
    features: pd.DataFrame
    known_day: np.ndarray
    acquisition: np.ndarray
    orders: Orders
    calendar: PurchaseCalendar
    purchases: PurchaseDays
    scores: pd.DataFrame | None
    views: dict[str, tuple[View, np.ndarray]]
    cache: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        """Customers known at D."""
        return len(self.features)

    @property
    def as_of(self) -> pd.Timestamp:
        """Day D."""
        return self.inputs.as_of

    def day_label(self, day: int) -> str:
        """ISO date of a day number."""
        return str(UNIX_DAY + np.timedelta64(int(day), "D"))

    def purchases_at(self, day: int) -> PurchaseDays:
        """Purchase days as known on ``day`` (<= D), computed once per day."""
        key = f"purchases:{day}"
        if key not in self.cache:
            self.cache[key] = self.calendar.at(day)
        return self.cache[key]  # type: ignore[return-value]

    def score(self, column: str) -> np.ndarray | None:
        """A score column as float64 aligned on the customers, or None when absent."""
        if self.scores is None or column not in self.scores.columns:
            return None
        return pd.to_numeric(self.scores[column], errors="coerce").to_numpy(dtype=np.float64)


def _views(features: pd.DataFrame) -> dict[str, tuple[View, np.ndarray]]:
    n = len(features)
    views = {ALL_VIEW: (View(ALL_VIEW, "All customers"), np.ones(n, dtype=bool))}
    acquisition = features["acquisition_channel"].astype(str).to_numpy()
    channels = sorted(set(acquisition) - {"unknown"})
    if len(channels) > 1:
        for channel in channels:
            view = View(f"acq:{channel}", channel.replace("_", " "), "Acquisition channel")
            views[view.key] = (view, acquisition == channel)
    segments = features["rfm_segment"].astype(str).to_numpy()
    from fidelite.features.segments import RFM_SEGMENTS

    for segment in RFM_SEGMENTS:
        mask = segments == segment
        if mask.any():
            view = View(f"rfm:{segment}", segment.replace("_", " "), "RFM segment at D")
            views[view.key] = (view, mask)
    return views


def build_customer_base(inputs: ReportInputs, config: ReportConfig) -> CustomerBase:
    """Features at D and the coded arrays every section aggregates.

    Parameters
    ----------
    inputs : ReportInputs
        Tables already cut at D.
    config : ReportConfig
    """
    data = inputs.inputs
    # Without events: the sections read engagement from the recent events themselves, and
    # nothing else the report uses (lifecycle, RFM, rhythm, velocity) depends on events.
    features = build_features(replace(data, events=None), params=config.params)
    ids = features.index
    as_of_day = int(day_numbers(pd.Series([data.as_of]))[0])
    tx = data.transactions
    code = customer_codes(tx["customer_id"], ids)
    known = code >= 0
    day = day_numbers(tx["timestamp"])
    if not known.all():  # cannot happen for tables cut at D: every buyer is known
        raise ValueError("transactions of customers unknown to the features at D")
    orders = Orders.from_transactions(tx, code, day, data.refund_links)
    calendar = PurchaseCalendar.from_orders(orders, len(ids))
    tenure = features["tenure_days"].to_numpy(dtype=np.float64)
    scores = None
    if inputs.scores is not None:
        scores = inputs.scores.reindex(ids)
    return CustomerBase(
        inputs=inputs,
        config=config,
        as_of_day=as_of_day,
        horizon=inputs.horizon(config),
        features=features,
        known_day=as_of_day - tenure,
        acquisition=features["acquisition_channel"].astype(str).to_numpy(dtype=object),
        orders=orders,
        calendar=calendar,
        purchases=calendar.at(as_of_day),
        scores=scores,
        views=_views(features),
    )


def customer_months(base: CustomerBase) -> CustomerMonths:
    """Transactions and purchase days aggregated to (customer, month) pairs (computed once)."""
    cached = base.cache.get("customer_months")
    if cached is None:
        cached = CustomerMonths.from_orders(base.orders, base.n, base.as_of_day)
        base.cache["customer_months"] = cached
    return cached  # type: ignore[return-value]
