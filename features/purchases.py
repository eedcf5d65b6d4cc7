"""What a purchase is, defined once for features, labels, baselines and scoring.

Definitions (amounts in the transactions' currency; days are UTC calendar days):

* An **order** is a transaction row with a positive ``amount``, a **refund** a row
  with a negative one. Rows with ``amount == 0`` are neither: they make the customer
  known (they are in the features' universe) but count as nothing else.
* A refund is **attributed** to the order of the same customer with the same
  ``order_id`` (the contract: a refund repeats its order's id). A refund that links
  to no order (another id, or an order older than the data) is **unattributed**: it
  lowers the customer's total net spend (``spend_total``, ``refund_share``) but never
  cancels a purchase nor lowers the spend of any order or period.
* The **net value** of an order, as known on day D, is its amount minus the refunds
  attributed to it that are dated on or before D. A refund dated after D changes
  nothing at D (point-in-time).
* A **purchase** is an order whose net value is positive: an order refunded in full is
  not a purchase, an order refunded in part is one, for what was kept.
* A **purchase day** is a calendar day on which the customer placed at least one
  purchase; its spend is the sum of those purchases' net values (always > 0). It is the
  unit of the BG/NBD columns (``frequency``, ``recency``, ``T``, ``monetary_value``).
* A **purchaser** on day D has at least one purchase placed on or before D (with the
  refunds known by D): exactly the rows where :func:`is_purchaser` holds, i.e.
  ``orders_total > 0``, and exactly the rows whose ``T`` is known.

**Non-purchasers** (signed up only, or only refunds, zero-value orders or orders
refunded in full) get: ``frequency``, ``monetary_value``, ``orders_total`` and
``orders_{w}d`` = 0; ``spend_{w}d`` = the net value of their orders in the window (0,
or negative only if a refund exceeded its order); ``spend_total`` = net of all their
rows (<= 0); NaN for ``recency``, ``T``, ``days_since_last_purchase``,
``avg_order_value``, ``spend_trend``, ``velocity_90_vs_prior`` and the rhythm columns;
``refund_share`` = 1.0 when every order was refunded in full (NaN without orders);
``lifecycle_stage`` and ``rfm_segment`` = ``"prospect"``. Their engagement, tenure and
acquisition columns are filled as for everyone. Purchasers never get NaN in the BG/NBD
columns.

Labels use the same definitions through :func:`purchases_between`: the net value of
orders *placed* in ``[start, end)``, with only the refunds known before ``end``, so a
refund of an order placed before the window never lowers the window's spend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.features._arrays import (
    day_number,
    day_numbers,
    group_starts,
    group_sum,
    stable_key_order,
)
from fidelite.features._links import RefundLinks, link_refunds
from fidelite.features.days import parse_day

__all__ = [
    "OUTCOME_COLUMNS",
    "OrderValues",
    "PurchaseDays",
    "RefundLinks",
    "is_purchaser",
    "link_refunds",
    "order_values",
    "purchase_days",
    "purchases_between",
    "window_outcomes",
]

#: Columns of :func:`purchases_between`.
OUTCOME_COLUMNS = ("purchase_days", "net_spend")


def is_purchaser(features: pd.DataFrame) -> pd.Series:
    """Which customers of a features frame are purchasers (see the module docstring).

    Parameters
    ----------
    features : DataFrame, shape (n_customers, ...)
        A :func:`fidelite.features.build_features` frame (needs ``orders_total``).

    Returns
    -------
    Series of bool, shape (n_customers,)
        Indexed like ``features``; use it with ``features.loc[mask]`` or
        ``mask.to_numpy()``. True exactly where ``T``/``recency`` are known.
    """
    orders = pd.to_numeric(features["orders_total"], errors="coerce").fillna(0)
    return (orders > 0).rename("is_purchaser")


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class OrderValues:
    """Net value of every order row, as known by the last row's day.

    Attributes
    ----------
    is_order : ndarray of bool, shape (n_rows,)
        ``amount > 0``.
    net : ndarray of float64, shape (n_rows,)
        For orders, amount minus the attributed refunds among the rows given; 0 for
        other rows.
    is_purchase : ndarray of bool, shape (n_rows,)
        Orders with ``net > 0``.
    """

    is_order: np.ndarray
    net: np.ndarray
    is_purchase: np.ndarray


def order_values(amount: np.ndarray, refund_of: np.ndarray) -> OrderValues:
    """Net value of each order after its attributed refunds.

    Parameters
    ----------
    amount : ndarray of float64, shape (n_rows,)
    refund_of : ndarray of int64, shape (n_rows,)
        Position of the order each refund row is attributed to, -1 otherwise
        (:meth:`RefundLinks.refund_of`).
    """
    is_order = amount > 0
    net = np.where(is_order, amount, 0.0)
    linked = np.flatnonzero(refund_of >= 0)
    if linked.size:
        # Summed per refunded order (few), in row order as a bincount over all rows
        # would: the same sums, without a refund total for every row.
        orders, slot = np.unique(refund_of[linked], return_inverse=True)
        refunded = np.bincount(slot, weights=-amount[linked], minlength=orders.size)
        net[orders] = np.where(is_order[orders], amount[orders] - refunded, 0.0)
    return OrderValues(is_order, net, is_order & (net > 0))


@dataclass(frozen=True)
class PurchaseDays:
    """Purchase days, sorted by (customer code, day).

    Attributes
    ----------
    code, day : ndarray of int64, shape (n_purchase_days,)
    net : ndarray of float64, shape (n_purchase_days,)
        Net value of the purchases placed that day (> 0).
    count : ndarray of float64, shape (n_customers,)
        Purchase days per customer.
    first_day, last_day : ndarray of float64, shape (n_customers,)
        Day numbers; NaN for non-purchasers.
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
        return group_starts(self.code)


def purchase_days(
    code: np.ndarray, day: np.ndarray, values: OrderValues, n_customers: int
) -> PurchaseDays:
    """Group purchases into (customer, day) purchase days.

    Parameters
    ----------
    code, day : ndarray of int64, shape (n_rows,)
        Customer code (0 .. n_customers - 1) and day number of each row.
    values : OrderValues
        Of the same rows.
    n_customers : int
    """
    n = n_customers
    keep = values.is_purchase
    if not keep.any():
        empty_i, empty_f, nan = np.empty(0, np.int64), np.empty(0, np.float64), np.full(n, np.nan)
        return PurchaseDays(empty_i, empty_i, empty_f, np.zeros(n), nan, nan.copy())
    # Every step below writes into arrays it owns (in place) where it can: a fresh
    # million-row array costs more in page faults than the arithmetic done in it.
    kept_day = day[keep].astype(np.int64, copy=False)
    min_day = int(kept_day.min())
    day_bits = (int(kept_day.max()) - min_day).bit_length()
    # One int64 key per (customer, day) (bit fields: no division to undo it), sorted
    # stably: by customer then day, a day's purchases summed in row order.
    key = code[keep].astype(np.int64, copy=False)
    key <<= day_bits
    if min_day:
        kept_day -= min_day
    key |= kept_day
    del kept_day
    order, keys = stable_key_order(key, overwrite=True)
    new_key = group_starts(keys)
    group = np.cumsum(new_key, dtype=np.int64)
    group -= 1
    day_net = np.bincount(group, weights=values.net[keep][order])
    del group, order
    code = keys[new_key]  # the distinct keys, decoded in place below
    day = code & ((1 << day_bits) - 1)
    if min_day:
        day += min_day
    code >>= day_bits

    count = group_sum(code, n)
    # Sorted by customer: a customer's days end where the running count does.
    buyer = np.flatnonzero(count)
    last_row = np.cumsum(count[buyer]).astype(np.int64) - 1
    first_row = last_row - count[buyer].astype(np.int64) + 1
    first_day = np.full(n, np.nan)
    last_day = np.full(n, np.nan)
    first_day[buyer] = day[first_row]
    last_day[buyer] = day[last_row]
    return PurchaseDays(code, day, day_net, count, first_day, last_day)


# --------------------------------------------------------------------------- labels
def window_outcomes(
    code: np.ndarray,
    day: np.ndarray,
    amount: np.ndarray,
    refund_of: np.ndarray,
    start_day: int,
    end_day: int,
    n_customers: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Array form of :func:`purchases_between`: outcomes of the days ``[start_day, end_day)``.

    Parameters
    ----------
    code, day : ndarray of int64, shape (n_rows,)
        Customer code (0 .. n_customers - 1; only read on the orders placed in the
        range) and day number of every transaction row.
    amount : ndarray of float64, shape (n_rows,)
    refund_of : ndarray of int64, shape (n_rows,)
        Row of the order each refund is attributed to, -1 otherwise, over these same
        rows (``RefundLinks.refund_of(np.ones(n_rows, bool))``).
    start_day, end_day : int
        Day numbers of the first day in and the first day after the range.
    n_customers : int

    Returns
    -------
    purchase_days : ndarray of int64, shape (n_customers,)
    net_spend : ndarray of float64, shape (n_customers,)
    first_day : ndarray of float64, shape (n_customers,)
        Day number of the first purchase day in the range; NaN without one.
    """
    known = day < end_day
    linked = known & (refund_of >= 0)
    refunded = np.bincount(refund_of[linked], weights=-amount[linked], minlength=amount.size)
    placed = known & (day >= start_day) & (amount > 0)
    net = amount[placed] - refunded[placed]
    placed_code = code[placed]
    values = OrderValues(np.ones(net.size, dtype=bool), net, net > 0)
    days = purchase_days(placed_code, day[placed], values, n_customers)
    return days.count.astype(np.int64), group_sum(placed_code, n_customers, net), days.first_day


def purchases_between(
    transactions: pd.DataFrame,
    start: object,
    end: object,
    *,
    customers: pd.Index | None = None,
    links: RefundLinks | None = None,
) -> pd.DataFrame:
    """Purchase days and net spend of the orders placed in the days ``[start, end)``.

    Refunds count against their own order, and only those dated before ``end``: a
    refund of an order placed before ``start`` does not lower the spend, a refund made
    after ``end`` is not known yet. This is the outcome a label over the days
    ``(D, D + H]`` measures, with ``start = D + 1 day`` and ``end = D + 1 + H days``.

    Parameters
    ----------
    transactions : DataFrame
        Normalised transactions (:func:`fidelite.features.data.load_transactions`).
    start, end : day
        First day in and first day after the range (parsed by
        :func:`fidelite.features.days.parse_day`: whole days, ``start < end``).
    customers : Index, optional
        Customers to report, in this order, with zeros where they placed nothing;
        default: every customer who placed an order in the range, sorted.
    links : RefundLinks, optional
        :func:`link_refunds` of ``transactions``, when already computed.

    Returns
    -------
    DataFrame, shape (n_customers, 2)
        Indexed by ``customer_id`` (str): ``purchase_days`` (int64, distinct days with a
        purchase placed in the range) and ``net_spend`` (float64, currency: net value of
        every order placed in the range; negative only if a refund exceeded its order).
    """
    first, stop = parse_day(start, name="start"), parse_day(end, name="end")
    if stop <= first:
        raise ValueError(f"end ({stop.date()}) must be after start ({first.date()})")
    links = link_refunds(transactions) if links is None else links
    stamps = transactions["timestamp"]
    known = (stamps < stop).to_numpy()
    amount = transactions["amount"].to_numpy(dtype=np.float64)[known]
    day = day_numbers(stamps[known])
    start_day, end_day = day_number(first), day_number(stop)
    placed = (day >= start_day) & (amount > 0)
    # Only the orders placed in the range need a customer code.
    ids = transactions["customer_id"][known][placed].to_numpy(dtype=object)
    placed_code, uniques = pd.factorize(ids)
    code = np.zeros(day.size, dtype=np.int64)
    code[placed] = placed_code
    n = len(uniques)
    counts, spend, _ = window_outcomes(
        code, day, amount, links.refund_of(known), start_day, end_day, n
    )
    outcomes = pd.DataFrame(
        {"purchase_days": counts, "net_spend": spend},
        index=pd.Index(uniques, name="customer_id").astype(str),
    )
    if customers is None:
        return outcomes.sort_index()
    wanted = pd.Index(customers).astype(str).rename("customer_id")
    outcomes = outcomes.reindex(wanted)
    return outcomes.fillna({"purchase_days": 0, "net_spend": 0.0}).astype(
        {"purchase_days": np.int64, "net_spend": np.float64}
    )
