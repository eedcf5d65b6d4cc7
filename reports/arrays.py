"""Integer-coded building blocks: customer codes, day and month numbers, grouped sums.

Hot paths at a million customers are string hashing and sorting, so customer ids are
hashed once per distinct id (Arrow dictionary encoding), and per-(customer, day) and
per-(customer, month) totals come from one sort of the transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "CustomerMonths",
    "DayTotals",
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


def customer_codes(ids: pd.Series, universe: pd.Index) -> np.ndarray:
    """Position of each id in ``universe`` (-1 when absent), int64 of shape (len(ids),).

    Each distinct id is hashed once: Arrow-backed strings are dictionary-encoded in
    C++, anything else is factorised; only the distinct ids meet ``universe``.
    """
    array = getattr(ids.array, "_pa_array", None)
    if array is not None:
        encoded = pc.dictionary_encode(
            array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        )
        raw = encoded.indices.to_numpy(zero_copy_only=False)
        uniques = pd.Index(encoded.dictionary.to_pandas()).astype(str)
    else:
        raw, uniques = pd.factorize(ids)
        uniques = pd.Index(uniques).astype(str)
    return universe.get_indexer(uniques).astype(np.int64)[raw]


def _group_sorted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``order`` sorting ``keys`` and the ``starts`` of each run of equal keys in it."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return order, starts


@dataclass(frozen=True)
class DayTotals:
    """Net amount per (customer, day) with any transaction, sorted by customer then day.

    Attributes
    ----------
    code, day : ndarray of int64, shape (n_days,)
    net : ndarray of float64, shape (n_days,)
        Purchases minus refunds of that customer on that day.
    """

    code: np.ndarray
    day: np.ndarray
    net: np.ndarray

    @classmethod
    def from_transactions(cls, code: np.ndarray, day: np.ndarray, amount: np.ndarray) -> DayTotals:
        """Sum transaction rows per (customer, day)."""
        if code.size == 0:
            empty = np.empty(0, np.int64)
            return cls(empty, empty, np.empty(0))
        low = int(day.min())
        span = int(day.max()) - low + 1
        keys = code * span + (day - low)
        order, starts = _group_sorted(keys)
        first = keys[order][starts]
        return cls(first // span, first % span + low, np.add.reduceat(amount[order], starts))


@dataclass(frozen=True)
class CustomerMonths:
    """Net spend and purchase activity per (customer, calendar month) up to D.

    Attributes
    ----------
    code, month : ndarray of int64, shape (n_pairs,)
        Customer code and month number (months since 1970-01), sorted.
    net : ndarray of float64, shape (n_pairs,)
        Net amount in that month (refunds subtracted).
    bought : ndarray of bool, shape (n_pairs,)
        Whether the month holds a purchase day (a day with a positive net amount).
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
    def from_days(cls, days: DayTotals, n_customers: int, as_of_day: int) -> CustomerMonths:
        """Roll (customer, day) totals up to months; the days are already sorted."""
        month = month_numbers(days.day)
        change = np.ones(days.code.size, dtype=bool)
        change[1:] = (days.code[1:] != days.code[:-1]) | (month[1:] != month[:-1])
        starts = np.flatnonzero(change)
        positive = days.net > 0
        bought = (
            np.add.reduceat(positive.astype(np.int64), starts) > 0 if starts.size else positive[:0]
        )
        first_month = np.full(n_customers, -1, dtype=np.int64)
        # Reversed assignment: the earliest purchase month of each customer wins.
        first_month[days.code[positive][::-1]] = month[positive][::-1]
        as_of_month, next_month = month_numbers(np.array([as_of_day, as_of_day + 1]))
        net = np.add.reduceat(days.net, starts) if starts.size else days.net[:0]
        return cls(
            code=days.code[starts],
            month=month[starts],
            net=net,
            bought=bought,
            first_month=first_month,
            last_full_month=int(as_of_month if next_month > as_of_month else as_of_month - 1),
        )


@dataclass(frozen=True)
class PurchaseDays:
    """Net-positive purchase days (the product's unit of a purchase), sorted by customer, day.

    Attributes
    ----------
    code, day : ndarray of int64, shape (n_purchase_days,)
    net : ndarray of float64, shape (n_purchase_days,)
        The customer's net amount that day (> 0).
    start : ndarray of int64, shape (n_customers,)
        Position of each customer's first purchase day (``count`` rows follow).
    count : ndarray of int64, shape (n_customers,)
        Purchase days per customer up to D.
    """

    code: np.ndarray
    day: np.ndarray
    net: np.ndarray
    start: np.ndarray
    count: np.ndarray

    @classmethod
    def from_days(cls, days: DayTotals, n_customers: int) -> PurchaseDays:
        """Keep the days with a positive net amount."""
        positive = days.net > 0
        code = days.code[positive]
        count = np.bincount(code, minlength=n_customers).astype(np.int64)
        start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        return cls(code, days.day[positive], days.net[positive], start, count)

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
