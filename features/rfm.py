"""Recency / frequency / monetary features, in BG/NBD form and in ML form.

Purchases, purchase days and refunds follow :mod:`fidelite.features.purchases`: the
BG/NBD columns count *purchase days* (two purchases on one day are one, an order
refunded in full is none), the ``orders_*`` columns count *purchases* (orders whose
net value after their refunds is positive), and spend over a period is the net value
of the orders placed in it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.features._arrays import (
    TransactionArrays,
    balance,
    column_frame,
    group_sum,
    safe_divide,
)
from fidelite.features.params import FeatureParams
from fidelite.features.purchases import OrderValues, PurchaseDays


def bgnbd_features(days: PurchaseDays, as_of_day: int) -> pd.DataFrame:
    """BG/NBD summary in days (lifetimes conventions).

    Returns
    -------
    DataFrame, shape (n_customers, 4)
        ``frequency`` (repeat purchase days, 0 without purchases), ``recency`` (days
        first -> last purchase day), ``T`` (days first purchase day -> as_of) and
        ``monetary_value`` (mean net amount per repeat purchase day, 0 when
        frequency is 0). ``recency`` and ``T`` are NaN without a purchase.
    """
    n = days.count.size
    frequency = np.maximum(days.count - 1, 0)
    total_net = group_sum(days.code, n, days.net)
    first_net = np.zeros(n)
    starts = days.starts_customer
    first_net[days.code[starts]] = days.net[starts]
    repeat_net = total_net - first_net
    monetary = np.where(frequency > 0, safe_divide(repeat_net, frequency), 0.0)
    return column_frame(
        {
            "frequency": frequency,
            "recency": days.last_day - days.first_day,
            "T": as_of_day - days.first_day,
            "monetary_value": monetary,
        }
    )


def ml_features(
    tx: TransactionArrays,
    values: OrderValues,
    days: PurchaseDays,
    first_known_day: np.ndarray,
    params: FeatureParams,
) -> pd.DataFrame:
    """Windowed counts and amounts for tree models.

    Parameters
    ----------
    tx : TransactionArrays
    values : OrderValues
        Net value of each row of ``tx`` (:func:`fidelite.features.purchases.order_values`).
    days : PurchaseDays
    first_known_day : ndarray of float64, shape (n_customers,)
        Earliest of signup day and first transaction day (NaN when neither is known).
    params : FeatureParams

    Returns
    -------
    DataFrame, shape (n_customers, ...)
        ``days_since_last_purchase`` (NaN for non-purchasers), ``orders_total``
        (purchases), ``spend_total`` (net of every row, unattributed refunds
        included), ``orders_{w}d`` (purchases placed in the window) / ``spend_{w}d``
        (net value of the orders placed in the window) for each window,
        ``avg_order_value`` (mean net value per purchase), ``spend_trend`` (net value
        of the purchases of the last ``trend_days`` vs the ``trend_days`` before, in
        [-1, 1]), ``refund_share`` (refunded / gross ordered), ``discount_share``
        (discount / (gross + discount) on orders), ``tenure_days``,
        ``velocity_90_vs_prior`` and ``order_share_{channel}`` (share of purchases) for
        every transaction channel.
    """
    n = tx.n_customers
    is_order, is_purchase = values.is_order, values.is_purchase
    code, amount = tx.code, tx.amount
    # Row weights where a row does not count are 0.0 (adding 0.0 changes no sum), so
    # every sum is one bincount over all rows instead of a masked copy of the rows.
    gross = group_sum(code, n, np.where(is_order, amount, 0.0))
    refund = amount < 0  # a few percent of the rows: their own copies are cheaper
    refunds = group_sum(code[refund], n, -amount[refund])
    # No discounts at all (the column is optional, filled with 0): nothing to sum.
    discount = (
        group_sum(code, n, np.where(is_order, tx.discount, 0.0))
        if tx.discount.any()
        else np.zeros(n)
    )
    ages = _AgeSums(tx, values, params)
    purchases = ages.purchases.sum(axis=0)

    columns: dict[str, np.ndarray] = {
        "days_since_last_purchase": tx.as_of_day - days.last_day,
        "orders_total": purchases.astype(np.int64),
        "spend_total": group_sum(code, n, amount),
    }
    for window in params.windows:
        columns[f"orders_{window}d"] = ages.within(ages.purchases, window).astype(np.int64)
        columns[f"spend_{window}d"] = ages.within(ages.order_net, window)

    trend = params.trend_days
    recent = ages.within(ages.purchase_net, trend)
    columns["avg_order_value"] = safe_divide(ages.purchase_net.sum(axis=0), purchases)
    columns["spend_trend"] = balance(recent, ages.within(ages.purchase_net, 2 * trend, trend))
    columns["refund_share"] = safe_divide(refunds, gross)
    columns["discount_share"] = safe_divide(discount, gross + discount)
    columns["tenure_days"] = tx.as_of_day - first_known_day
    columns["velocity_90_vs_prior"] = _velocity(tx, ages, purchases, days.first_day, params)

    k = len(tx.channel_names)
    channel_key = code[is_purchase]
    channel_key *= k
    channel_key += tx.channel[is_purchase]
    by_channel = np.bincount(channel_key, minlength=n * k).reshape(n, k)
    for position, name in enumerate(tx.channel_names):
        columns[f"order_share_{name}"] = safe_divide(by_channel[:, position], purchases)
    return column_frame(columns)


class _AgeSums:
    """Per-customer sums by age band: one bincount per quantity for every window.

    The bands are cut at every window length the features use (``windows``,
    ``trend_days`` and twice it, ``velocity_days``); a window ``w`` is the sum of the
    bands younger than ``w`` days.

    Attributes
    ----------
    purchases, purchase_net, order_net : ndarray of float64, shape (n_bands, n_customers)
        Purchases, their net value, and the net value of every order, by band (band
        major: a window's sum adds whole contiguous rows).
    """

    def __init__(self, tx: TransactionArrays, values: OrderValues, params: FeatureParams):
        n = tx.n_customers
        cuts = {*params.windows, params.trend_days, 2 * params.trend_days, params.velocity_days}
        self.edges = np.array(sorted(cuts), dtype=np.int64)
        n_bands = self.edges.size + 1
        days_ago = tx.days_ago
        # Band of each row = number of edges <= its age, looked up by age (cheaper
        # than a binary search per row); the table holds band * n, the key's offset.
        if days_ago.size and int(days_ago.min()) >= 0:
            ages = np.arange(int(days_ago.max()) + 1)
            key = (np.searchsorted(self.edges, ages, "right") * n).take(days_ago)
        else:  # no rows (or rows after as_of, which callers never pass)
            key = np.searchsorted(self.edges, days_ago, side="right") * n
        del days_ago
        key += tx.code
        size = n * n_bands

        def sums(weights: np.ndarray | None) -> np.ndarray:
            return np.bincount(key, weights, minlength=size).reshape(n_bands, n)

        is_purchase = values.is_purchase
        self.purchases = sums(is_purchase.astype(np.float64))
        self.purchase_net = sums(np.where(is_purchase, values.net, 0.0))
        self.order_net = sums(values.net)  # 0 on rows that are not orders

    def within(self, by_band: np.ndarray, days: int, since: int = 0) -> np.ndarray:
        """Sum over the rows at least ``since`` and less than ``days`` days old (both
        band edges), shape (n_customers,)."""
        first = int(np.searchsorted(self.edges, since)) + 1 if since else 0
        return by_band[first : int(np.searchsorted(self.edges, days)) + 1].sum(axis=0)


def _velocity(
    tx: TransactionArrays,
    ages: _AgeSums,
    purchases: np.ndarray,
    first_purchase_day: np.ndarray,
    params: FeatureParams,
) -> np.ndarray:
    """Purchase rate of the last ``velocity_days`` against the rest of the tenure.

    Both rates are purchases per day; the result is ``balance(recent, earlier)`` in
    [-1, 1] (> 0 speeding up, < 0 fading). NaN when the earlier period (first
    purchase day up to the start of the recent window) is shorter than
    ``velocity_min_prior_days``.
    """
    window = params.velocity_days
    recent_orders = ages.within(ages.purchases, window)
    earlier_orders = purchases - recent_orders  # whole numbers: exact
    earlier_days = (tx.as_of_day - window + 1) - first_purchase_day
    earlier_rate = np.where(
        earlier_days >= params.velocity_min_prior_days,
        safe_divide(earlier_orders, earlier_days),
        np.nan,
    )
    return balance(recent_orders / window, earlier_rate)
