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

from fidelite.features._arrays import TransactionArrays, balance, group_sum, safe_divide
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
    return pd.DataFrame(
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
    days_ago = tx.days_ago
    purchase_codes = tx.code[is_purchase]
    gross = group_sum(tx.code[is_order], n, tx.amount[is_order])
    refunds = group_sum(tx.code[tx.amount < 0], n, -tx.amount[tx.amount < 0])
    purchases = group_sum(purchase_codes, n)
    discount = group_sum(tx.code[is_order], n, tx.discount[is_order])

    columns: dict[str, np.ndarray] = {
        "days_since_last_purchase": tx.as_of_day - days.last_day,
        "orders_total": purchases.astype(np.int64),
        "spend_total": group_sum(tx.code, n, tx.amount),
    }
    for window in params.windows:
        in_window = days_ago < window
        orders = in_window & is_order
        columns[f"orders_{window}d"] = group_sum(tx.code[in_window & is_purchase], n).astype(
            np.int64
        )
        columns[f"spend_{window}d"] = group_sum(tx.code[orders], n, values.net[orders])

    recent = is_purchase & (days_ago < params.trend_days)
    earlier = is_purchase & (days_ago >= params.trend_days) & (days_ago < 2 * params.trend_days)
    columns["avg_order_value"] = safe_divide(
        group_sum(purchase_codes, n, values.net[is_purchase]), purchases
    )
    columns["spend_trend"] = balance(
        group_sum(tx.code[recent], n, values.net[recent]),
        group_sum(tx.code[earlier], n, values.net[earlier]),
    )
    columns["refund_share"] = safe_divide(refunds, gross)
    columns["discount_share"] = safe_divide(discount, gross + discount)
    columns["tenure_days"] = tx.as_of_day - first_known_day
    columns["velocity_90_vs_prior"] = _velocity(tx, is_purchase, days.first_day, params)

    k = len(tx.channel_names)
    channel_key = purchase_codes * k + tx.channel[is_purchase]
    by_channel = np.bincount(channel_key, minlength=n * k).reshape(n, k)
    for position, name in enumerate(tx.channel_names):
        columns[f"order_share_{name}"] = safe_divide(by_channel[:, position], purchases)
    return pd.DataFrame(columns)


def _velocity(
    tx: TransactionArrays,
    is_purchase: np.ndarray,
    first_purchase_day: np.ndarray,
    params: FeatureParams,
) -> np.ndarray:
    """Purchase rate of the last ``velocity_days`` against the rest of the tenure.

    Both rates are purchases per day; the result is ``balance(recent, earlier)`` in
    [-1, 1] (> 0 speeding up, < 0 fading). NaN when the earlier period (first
    purchase day up to the start of the recent window) is shorter than
    ``velocity_min_prior_days``.
    """
    n = tx.n_customers
    window = params.velocity_days
    days_ago = tx.days_ago
    recent_orders = group_sum(tx.code[is_purchase & (days_ago < window)], n)
    earlier_orders = group_sum(tx.code[is_purchase & (days_ago >= window)], n)
    earlier_days = (tx.as_of_day - window + 1) - first_purchase_day
    earlier_rate = np.where(
        earlier_days >= params.velocity_min_prior_days,
        safe_divide(earlier_orders, earlier_days),
        np.nan,
    )
    return balance(recent_orders / window, earlier_rate)
