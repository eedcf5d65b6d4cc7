"""Recency / frequency / monetary features, in BG/NBD form and in ML form.

A *purchase day* is a calendar day on which the customer's net amount (purchases
minus refunds that day) is positive; it is the unit of the BG/NBD columns, so two
orders on the same day are one purchase and a same-day full refund cancels it.
An *order* is a transaction row with a positive amount; it is the unit of the
``orders_*`` columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.features._arrays import TransactionArrays, balance, group_sum, safe_divide
from fidelite.features.params import FeatureParams


@dataclass(frozen=True)
class PurchaseDays:
    """Net-positive purchase days, sorted by (customer code, day).

    Attributes
    ----------
    code, day : ndarray of int64, shape (n_purchase_days,)
    net : ndarray of float64, shape (n_purchase_days,)
        Net amount of that customer on that day (> 0).
    count : ndarray of float64, shape (n_customers,)
        Purchase days per customer.
    first_day, last_day : ndarray of float64, shape (n_customers,)
        Day numbers; NaN for customers without a purchase day.
    """

    code: np.ndarray
    day: np.ndarray
    net: np.ndarray
    count: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray

    @property
    def starts_customer(self) -> np.ndarray:
        """True where a row is the customer's first purchase day, shape (n_purchase_days,)."""
        starts = np.ones(self.code.shape, dtype=bool)
        starts[1:] = self.code[1:] != self.code[:-1]
        return starts


def purchase_days(tx: TransactionArrays) -> PurchaseDays:
    """Aggregate transactions to net-positive (customer, day) purchase days."""
    n = tx.n_customers
    if tx.code.size == 0:
        empty_i, empty_f = np.empty(0, np.int64), np.empty(0, np.float64)
        nan = np.full(n, np.nan)
        return PurchaseDays(empty_i, empty_i, empty_f, np.zeros(n), nan, nan.copy())
    min_day = int(tx.day.min())
    span = int(tx.day.max()) - min_day + 1
    # One int64 key per (customer, day); np.unique sorts by customer then day.
    keys = tx.code * span + (tx.day - min_day)
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    net = np.bincount(inverse, weights=tx.amount, minlength=unique_keys.size)
    positive = net > 0
    code = unique_keys[positive] // span
    day = unique_keys[positive] % span + min_day
    net = net[positive]

    count = group_sum(code, n)
    first_day = np.full(n, np.nan)
    last_day = np.full(n, np.nan)
    starts = np.ones(code.shape, dtype=bool)
    starts[1:] = code[1:] != code[:-1]
    ends = np.ones(code.shape, dtype=bool)
    ends[:-1] = code[1:] != code[:-1]
    first_day[code[starts]] = day[starts]
    last_day[code[ends]] = day[ends]
    return PurchaseDays(code, day, net, count, first_day, last_day)


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
    days: PurchaseDays,
    first_known_day: np.ndarray,
    params: FeatureParams,
) -> pd.DataFrame:
    """Windowed counts and amounts for tree models.

    Parameters
    ----------
    tx : TransactionArrays
    days : PurchaseDays
    first_known_day : ndarray of float64, shape (n_customers,)
        Earliest of signup day and first transaction day (NaN when neither is known).
    params : FeatureParams

    Returns
    -------
    DataFrame, shape (n_customers, ...)
        ``days_since_last_purchase`` (NaN without purchase), ``orders_total``,
        ``spend_total`` (net), ``orders_{w}d`` / ``spend_{w}d`` for each window,
        ``avg_order_value`` (gross spend / orders), ``spend_trend`` (gross spend of
        the last ``trend_days`` vs the ``trend_days`` before, in [-1, 1]),
        ``refund_share`` (refunded / gross), ``discount_share`` (discount /
        (gross + discount) on orders), ``tenure_days``, and ``order_share_{channel}``
        for every transaction channel.
    """
    n = tx.n_customers
    is_order = tx.amount > 0
    days_ago = tx.days_ago
    order_codes = tx.code[is_order]
    gross = group_sum(order_codes, n, tx.amount[is_order])
    refunds = group_sum(tx.code[~is_order], n, -tx.amount[~is_order])
    orders_total = group_sum(order_codes, n)
    discount = group_sum(order_codes, n, tx.discount[is_order])

    columns: dict[str, np.ndarray] = {
        "days_since_last_purchase": tx.as_of_day - days.last_day,
        "orders_total": orders_total.astype(np.int64),
        "spend_total": group_sum(tx.code, n, tx.amount),
    }
    for window in params.windows:
        in_window = days_ago < window
        columns[f"orders_{window}d"] = group_sum(tx.code[in_window & is_order], n).astype(np.int64)
        columns[f"spend_{window}d"] = group_sum(tx.code[in_window], n, tx.amount[in_window])

    recent = is_order & (days_ago < params.trend_days)
    earlier = is_order & (days_ago >= params.trend_days) & (days_ago < 2 * params.trend_days)
    columns["avg_order_value"] = safe_divide(gross, orders_total)
    columns["spend_trend"] = balance(
        group_sum(tx.code[recent], n, tx.amount[recent]),
        group_sum(tx.code[earlier], n, tx.amount[earlier]),
    )
    columns["refund_share"] = safe_divide(refunds, gross)
    columns["discount_share"] = safe_divide(discount, gross + discount)
    columns["tenure_days"] = tx.as_of_day - first_known_day
    columns["velocity_90_vs_prior"] = _velocity(tx, is_order, days.first_day, params)

    channel_key = order_codes * len(tx.channel_names) + tx.channel[is_order]
    k = len(tx.channel_names)
    by_channel = np.bincount(channel_key, minlength=n * k).reshape(n, k)
    for position, name in enumerate(tx.channel_names):
        columns[f"order_share_{name}"] = safe_divide(by_channel[:, position], orders_total)
    return pd.DataFrame(columns)


def _velocity(
    tx: TransactionArrays,
    is_order: np.ndarray,
    first_purchase_day: np.ndarray,
    params: FeatureParams,
) -> np.ndarray:
    """Order rate of the last ``velocity_days`` against the rest of the tenure.

    Both rates are orders per day; the result is ``balance(recent, earlier)`` in
    [-1, 1] (> 0 speeding up, < 0 fading). NaN when the earlier period (first
    purchase day up to the start of the recent window) is shorter than
    ``velocity_min_prior_days``.
    """
    n = tx.n_customers
    window = params.velocity_days
    days_ago = tx.days_ago
    recent_orders = group_sum(tx.code[is_order & (days_ago < window)], n)
    earlier_orders = group_sum(tx.code[is_order & (days_ago >= window)], n)
    earlier_days = (tx.as_of_day - window + 1) - first_purchase_day
    earlier_rate = np.where(
        earlier_days >= params.velocity_min_prior_days,
        safe_divide(earlier_orders, earlier_days),
        np.nan,
    )
    return balance(recent_orders / window, earlier_rate)
