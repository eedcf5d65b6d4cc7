"""Outcome labels after a cutoff day and the backtest cutoffs to compute them at.

Time convention (ARCHITECTURE.md): for a cutoff day ``D`` and a horizon of ``H``
days, features see rows with ``timestamp < D + 1 day`` and labels see rows with
``D + 1 day <= timestamp < D + 1 day + H days``, i.e. the calendar days
``(D, D+H]``. Nothing outside that window influences a label; the rows on or
before ``D`` are used only to decide *which* customers get a label.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from fidelite.errors import InsufficientHistoryError
from fidelite.features.data import as_of_bounds, load_transactions

logger = logging.getLogger(__name__)

__all__ = [
    "LABEL_COLUMNS",
    "InsufficientHistoryError",
    "backtest_cutoffs",
    "make_labels",
]

LABEL_COLUMNS = ("churned", "future_spend", "future_purchases")


def _check_horizon(horizon_days: Any) -> int:
    if isinstance(horizon_days, bool) or not float(horizon_days).is_integer():
        raise ValueError(f"horizon_days must be a whole number of days, got {horizon_days!r}")
    horizon = int(horizon_days)
    if horizon <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon}")
    return horizon


def _known_customers(transactions: pd.DataFrame, features_end: pd.Timestamp) -> pd.Index:
    """Customers with at least one transaction row on or before the cutoff day."""
    seen = transactions.loc[transactions["timestamp"] < features_end, "customer_id"]
    return pd.Index(np.sort(seen.unique()), name="customer_id", dtype=object)


def _window_outcomes(window: pd.DataFrame) -> pd.DataFrame:
    """Net spend and distinct positive-purchase days per customer within the window."""
    spend = window.groupby("customer_id")["amount"].sum()
    purchases = window[window["amount"] > 0]
    purchase_days = (
        purchases.assign(day=purchases["timestamp"].dt.floor("D"))
        .groupby("customer_id")["day"]
        .nunique()
    )
    return pd.DataFrame({"future_spend": spend, "future_purchases": purchase_days})


def make_labels(
    transactions: pd.DataFrame | str,
    *,
    as_of: Any,
    horizon_days: int,
    customers_index: pd.Index | None = None,
) -> pd.DataFrame:
    """Churn and spend outcomes in the ``horizon_days`` days after ``as_of``.

    Parameters
    ----------
    transactions : DataFrame or path
        Raw or normalised transactions (validated with
        ``features.data.load_transactions``).
    as_of : date-like
        Cutoff day ``D``; a time of day is floored to the day.
    horizon_days : int
        Label horizon ``H`` in days; the window is the days ``(D, D+H]``.
    customers_index : Index, optional
        Customers to label, typically the index of the features frame built at
        ``as_of``. When omitted, every customer with a transaction on or before
        ``D`` is labelled (signup-only customers need ``customers_index``).

    Returns
    -------
    DataFrame, shape (n_customers, 3)
        Indexed by ``customer_id`` (str) with ``churned`` (int8, 1 when the
        customer made no positive-amount purchase in the window),
        ``future_spend`` (float64, net spend in currency units including refunds,
        may be negative) and ``future_purchases`` (int64, distinct days with a
        positive-amount purchase).
    """
    horizon = _check_horizon(horizon_days)
    tx = load_transactions(transactions)
    day, features_end = as_of_bounds(as_of)
    window_end = features_end + pd.Timedelta(days=horizon)

    if customers_index is None:
        customers = _known_customers(tx, features_end)
    else:
        customers = pd.Index(customers_index).astype(str).rename("customer_id")
        if customers.has_duplicates:
            dupes = customers[customers.duplicated()].unique()[:5].tolist()
            raise ValueError(f"customers_index has duplicate customer ids, e.g. {dupes}")

    in_window = (tx["timestamp"] >= features_end) & (tx["timestamp"] < window_end)
    window = tx.loc[in_window & tx["customer_id"].isin(customers)]
    outcomes = _window_outcomes(window).reindex(customers)

    labels = pd.DataFrame(index=customers)
    labels["future_spend"] = outcomes["future_spend"].fillna(0.0).astype("float64")
    labels["future_purchases"] = outcomes["future_purchases"].fillna(0).astype("int64")
    labels["churned"] = (labels["future_purchases"] == 0).astype("int8")
    logger.debug(
        "labels at %s, horizon %d days: %d customers, churn rate %.3f",
        day.date(),
        horizon,
        len(labels),
        labels["churned"].mean() if len(labels) else np.nan,
    )
    return labels[list(LABEL_COLUMNS)]


def backtest_cutoffs(
    first_timestamp: Any,
    as_of: Any,
    *,
    horizon_days: int,
    n_windows: int = 3,
    step_days: int | None = None,
    min_history_days: int | None = None,
) -> list[pd.Timestamp]:
    """Cutoff days for rolling-origin backtests that end by ``as_of``.

    The newest cutoff is ``D - H`` so its label window ``(D-H, D]`` ends exactly
    on ``D``; older ones step back ``step_days`` at a time. A cutoff is kept only
    when the data holds at least ``min_history_days`` days before it
    (``cutoff - first day >= min_history_days``).

    Parameters
    ----------
    first_timestamp : date-like
        Earliest timestamp in the data; floored to its day.
    as_of : date-like
        Latest day with observed outcomes ``D``; floored to the day.
    horizon_days : int
        Label horizon ``H`` in days.
    n_windows : int, default 3
        Number of cutoffs wanted.
    step_days : int, optional
        Days between consecutive cutoffs; defaults to ``horizon_days`` so the
        label windows tile without overlap.
    min_history_days : int, optional
        Days of history required before each cutoff; defaults to
        ``max(horizon_days, 90)``.

    Returns
    -------
    list of Timestamp
        Between 1 and ``n_windows`` cutoff days, oldest first.

    Raises
    ------
    InsufficientHistoryError
        When not even the newest cutoff has enough history before it.
    """
    horizon = _check_horizon(horizon_days)
    if n_windows < 1:
        raise ValueError(f"n_windows must be at least 1, got {n_windows}")
    step = horizon if step_days is None else int(step_days)
    if step <= 0:
        raise ValueError(f"step_days must be positive, got {step}")
    min_history = max(horizon, 90) if min_history_days is None else int(min_history_days)
    if min_history < 0:
        raise ValueError(f"min_history_days must be non-negative, got {min_history}")

    first_day = pd.Timestamp(first_timestamp).floor("D")
    day, _ = as_of_bounds(as_of)
    earliest_cutoff = first_day + pd.Timedelta(days=min_history)
    wanted = [day - pd.Timedelta(days=horizon + k * step) for k in range(n_windows)]
    cutoffs = [cutoff for cutoff in wanted if cutoff >= earliest_cutoff]

    if not cutoffs:
        needed_days = horizon + min_history
        latest_start = day - pd.Timedelta(days=needed_days)
        available = (day - first_day).days
        raise InsufficientHistoryError(
            f"not enough history for a {horizon}-day backtest ending {day.date()}: "
            f"need at least {needed_days} days ({min_history} days of history before the "
            f"cutoff + {horizon} days of labels), i.e. data starting on or before "
            f"{latest_start.date()}, but the data starts {first_day.date()} "
            f"({available} days before {day.date()})"
        )
    if len(cutoffs) < n_windows:
        logger.info(
            "only %d of %d backtest windows fit: data starts %s and each cutoff needs "
            "%d days of history before it",
            len(cutoffs),
            n_windows,
            first_day.date(),
            min_history,
        )
    return sorted(cutoffs)
