"""Integer-coded building blocks: customer codes, day and month numbers, grouped sums.

Hot paths at a million customers are string hashing and sorting, so customer ids are
hashed once per distinct id (Arrow dictionary encoding), and per-(customer, day) and
per-(customer, month) totals come from one sort of the orders. Purchases follow the
product's definitions (:mod:`fidelite.features.purchases`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fidelite.features.purchases import RefundLinks, link_refunds

__all__ = [
    "CustomerMonths",
    "Orders",
    "PurchaseCalendar",
    "PurchaseDays",
    "customer_codes",
    "day_numbers",
    "month_label",
    "month_numbers",
]

UNIX_DAY = np.datetime64("1970-01-01", "D")


def day_numbers(timestamps: pd.Series) -> np.ndarray:
    """Whole days since 1970-01-01, int64 of shape (n,)."""
    return timestamps.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


def month_numbers(days: np.ndarray) -> np.ndarray:
    """Calendar months since 1970-01 of day numbers, int64 of the same shape."""
    return (UNIX_DAY + days.astype("timedelta64[D]")).astype("datetime64[M]").astype(np.int64)


def month_label(month: int) -> str:
    """``2025-03`` for a month number."""
    return str(np.datetime64(int(month), "M"))


def _arrow(values: pd.Series | pd.Index) -> pa.Array | None:
    array = getattr(values.array, "_pa_array", None)
    if array is None:
        return None
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _is_text(array: pa.Array) -> bool:
    return pa.types.is_string(array.type) or pa.types.is_large_string(array.type)


def customer_codes(ids: pd.Series, universe: pd.Index) -> np.ndarray:
    """Position of each id in ``universe`` (-1 when absent), int64 of shape (len(ids),).

    Each distinct id is hashed once: categories are looked up once per category,
    Arrow-backed strings are dictionary-encoded and looked up in C++ (pandas' hash
    tables on Arrow strings are several times slower); anything else is factorised and
    only the distinct ids meet ``universe``.
    """
    if isinstance(ids.dtype, pd.CategoricalDtype):  # e.g. ids read from a Parquet dictionary
        found = customer_codes(pd.Series(ids.cat.categories), universe)
        # A missing id (code -1) points at the trailing -1.
        return np.append(found, -1)[ids.cat.codes.to_numpy()]
    array, targets = _arrow(ids), _arrow(universe)
    if array is not None and targets is not None and _is_text(array) and _is_text(targets):
        array = array.cast(targets.type)  # string and large_string: the same text
    if array is not None and targets is not None and array.type == targets.type:
        encoded = pc.dictionary_encode(array)
        found = pc.index_in(encoded.dictionary, value_set=targets).fill_null(-1)
        found = np.append(found.to_numpy(zero_copy_only=False).astype(np.int64), -1)
        # A missing id points at the trailing -1.
        raw = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
        return found[raw]
    raw, uniques = pd.factorize(ids)
    found = universe.get_indexer(pd.Index(uniques).astype(str)).astype(np.int64)
    return np.append(found, -1)[raw]  # a missing id (code -1) points at the trailing -1


@dataclass(frozen=True)
class Orders:
    """Order rows (positive amount) up to D, sorted by customer then day, with their refunds.

    A refund counts against the order it is attributed to
    (:func:`fidelite.features.purchases.link_refunds`), on the day it is dated: the
    product's definitions (:mod:`fidelite.features.purchases`) make an order a
    *purchase* on day X when its amount minus the refunds dated up to X is positive.

    Attributes
    ----------
    code, day : ndarray of int64, shape (n_orders,)
    amount : ndarray of float64, shape (n_orders,)
    refund_order, refund_day : ndarray of int64, shape (n_refunds,)
        Attributed refunds: the order (position here) and day of each.
    refund_amount : ndarray of float64, shape (n_refunds,)
        Refunded amount (positive).
    cancel_day : ndarray of float64, shape (n_orders,)
        First day on which the order is refunded in full (inf: never by D).
    """

    code: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    refund_order: np.ndarray
    refund_day: np.ndarray
    refund_amount: np.ndarray
    cancel_day: np.ndarray

    @classmethod
    def from_transactions(
        cls,
        transactions: pd.DataFrame,
        code: np.ndarray,
        day: np.ndarray,
        links: RefundLinks | None = None,
    ) -> Orders:
        """Orders of the (normalised, cut at D) transactions; ``code``/``day`` per row.

        ``links``: :func:`~fidelite.features.purchases.link_refunds` of these rows when
        already computed (``Inputs.refund_links``).
        """
        links = link_refunds(transactions) if links is None else links
        amount = transactions["amount"].to_numpy(dtype=np.float64)
        is_order = amount > 0
        span = int(day.max()) + 1 if day.size else 1
        order_rows = np.flatnonzero(is_order)
        order_rows = order_rows[
            np.argsort(code[order_rows] * span + day[order_rows], kind="stable")
        ]
        position = np.full(amount.size, -1, dtype=np.int64)
        position[order_rows] = np.arange(order_rows.size)
        refund_order = position[links.order_rows]
        refund_day = day[links.refund_rows]
        refund_amount = -amount[links.refund_rows]
        return cls(
            code=code[order_rows],
            day=day[order_rows],
            amount=amount[order_rows],
            refund_order=refund_order,
            refund_day=refund_day,
            refund_amount=refund_amount,
            cancel_day=_cancel_days(amount[order_rows], refund_order, refund_day, refund_amount),
        )

    def net_at(self, day: int) -> np.ndarray:
        """Net value of every order with the refunds dated up to ``day``, float64."""
        known = self.refund_day <= day
        refunded = np.bincount(
            self.refund_order[known], self.refund_amount[known], minlength=self.amount.size
        )
        return self.amount - refunded

    def purchase_at(self, day: int) -> np.ndarray:
        """Orders placed by ``day`` that are purchases as known on ``day``, bool."""
        return (self.day <= day) & (self.cancel_day > day)


def _cancel_days(
    amount: np.ndarray, refund_order: np.ndarray, refund_day: np.ndarray, refunded: np.ndarray
) -> np.ndarray:
    """Day each order's cumulative refunds reach its amount (inf when they never do)."""
    out = np.full(amount.size, np.inf)
    if refund_order.size == 0:
        return out
    order = np.lexsort((refund_day, refund_order))
    owner, when, value = refund_order[order], refund_day[order], refunded[order]
    first = np.concatenate([[True], owner[1:] != owner[:-1]])
    rank = np.arange(owner.size) - np.maximum.accumulate(np.where(first, np.arange(owner.size), 0))
    # Running refunds per order, summed level by level (an order has few refunds), so that
    # "amount - refunds" is computed as the product computes an order's net value.
    cumulative = value.copy()
    for level in range(1, int(rank.max()) + 1):
        at = np.flatnonzero(rank == level)
        cumulative[at] = cumulative[at - 1] + value[at]
    full = amount[owner] - cumulative <= 0
    # The first full refund of each order: reversed assignment lets the earliest win.
    hit = np.flatnonzero(full)[::-1]
    out[owner[hit]] = when[hit]
    return out


@dataclass(frozen=True)
class PurchaseCalendar:
    """Every (customer, day) with an order, and until when it is a purchase day.

    A purchase day on day X needs one order placed that day that is still a purchase on
    X: the (customer, day) counts on the days ``day <= X < valid_until``.

    Attributes
    ----------
    code, day : ndarray of int64, shape (n_days,), sorted by customer then day.
    valid_until : ndarray of float64, shape (n_days,)
    n_customers : int
    """

    code: np.ndarray
    day: np.ndarray
    valid_until: np.ndarray
    n_customers: int

    @classmethod
    def from_orders(cls, orders: Orders, n_customers: int) -> PurchaseCalendar:
        """Group the (sorted) orders by customer and day."""
        if orders.code.size == 0:
            empty = np.empty(0, np.int64)
            return cls(empty, empty, np.empty(0), n_customers)
        change = np.ones(orders.code.size, dtype=bool)
        change[1:] = (orders.code[1:] != orders.code[:-1]) | (orders.day[1:] != orders.day[:-1])
        starts = np.flatnonzero(change)
        valid = np.maximum.reduceat(orders.cancel_day, starts)
        return cls(orders.code[starts], orders.day[starts], valid, n_customers)

    def at(self, day: int) -> PurchaseDays:
        """The purchase days as known on ``day`` (only days up to ``day``)."""
        visible = (self.day <= day) & (self.valid_until > day)
        return PurchaseDays.from_sorted(self.code[visible], self.day[visible], self.n_customers)


@dataclass(frozen=True)
class CustomerMonths:
    """Net value of orders and purchase activity per (customer, calendar month) up to D.

    Attributes
    ----------
    code, month : ndarray of int64, shape (n_pairs,)
        Customer code and month number (months since 1970-01), sorted.
    net : ndarray of float64, shape (n_pairs,)
        Net value at D of the orders placed in that month (their refunds subtracted).
    bought : ndarray of bool, shape (n_pairs,)
        Whether the month holds a purchase (as known at D).
    first_month : ndarray of int64, shape (n_customers,)
        Month of the first purchase day (-1 without purchase).
    last_full_month : int
        Latest month that is complete at D.
    """

    code: np.ndarray
    month: np.ndarray
    net: np.ndarray
    bought: np.ndarray
    first_month: np.ndarray
    last_full_month: int

    @classmethod
    def from_orders(cls, orders: Orders, n_customers: int, as_of_day: int) -> CustomerMonths:
        """Roll the (sorted) orders up to months."""
        month = month_numbers(orders.day)
        change = np.ones(orders.code.size, dtype=bool)
        change[1:] = (orders.code[1:] != orders.code[:-1]) | (month[1:] != month[:-1])
        starts = np.flatnonzero(change)
        purchase = orders.purchase_at(as_of_day)
        net = orders.net_at(as_of_day)
        if starts.size:
            bought = np.add.reduceat(purchase.astype(np.int64), starts) > 0
            net_per_month = np.add.reduceat(net, starts)
        else:
            bought, net_per_month = purchase[:0], net[:0]
        first_month = np.full(n_customers, -1, dtype=np.int64)
        # Reversed assignment: the earliest purchase month of each customer wins.
        first_month[orders.code[purchase][::-1]] = month[purchase][::-1]
        as_of_month, next_month = month_numbers(np.array([as_of_day, as_of_day + 1]))
        return cls(
            code=orders.code[starts],
            month=month[starts],
            net=net_per_month,
            bought=bought,
            first_month=first_month,
            last_full_month=int(as_of_month if next_month > as_of_month else as_of_month - 1),
        )


@dataclass(frozen=True)
class PurchaseDays:
    """Purchase days as known on one day, sorted by customer then day.

    Attributes
    ----------
    code, day : ndarray of int64, shape (n_purchase_days,)
    start : ndarray of int64, shape (n_customers,)
        Position of each customer's first purchase day (``count`` rows follow).
    count : ndarray of int64, shape (n_customers,)
        Purchase days per customer.
    """

    code: np.ndarray
    day: np.ndarray
    start: np.ndarray
    count: np.ndarray

    @classmethod
    def from_sorted(cls, code: np.ndarray, day: np.ndarray, n_customers: int) -> PurchaseDays:
        """From purchase days already sorted by customer then day."""
        count = np.bincount(code, minlength=n_customers).astype(np.int64)
        start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        return cls(code, day, start, count)

    @cached_property
    def gap(self) -> np.ndarray:
        """Days since the customer's previous purchase day, float64 (NaN on the first)."""
        out = np.full(self.day.size, np.nan)
        if self.day.size > 1:
            same = self.code[1:] == self.code[:-1]
            out[1:][same] = (self.day[1:] - self.day[:-1])[same]
        return out

    def count_between(self, low: int, high: int) -> np.ndarray:
        """Purchase days per customer with ``low < day <= high``, int64 (n_customers,)."""
        rows = (self.day > low) & (self.day <= high)
        return np.bincount(self.code[rows], minlength=self.count.size)
