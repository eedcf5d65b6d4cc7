"""Outcome labels after a cutoff day: churn, net spend and purchase days over the horizon.

Time convention (ARCHITECTURE.md): for a cutoff day ``D`` and a horizon of ``H`` days,
features see rows with ``timestamp < D + 1 day`` and labels see rows with
``D + 1 day <= timestamp < D + 1 day + H days``, i.e. the calendar days ``(D, D+H]``.
Nothing outside that window influences a label; the rows on or before ``D`` are used
only to decide *which* customers get a label.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from fidelite.features.days import ONE_DAY, parse_day

logger = logging.getLogger(__name__)

__all__ = ["LABEL_COLUMNS", "check_horizon", "labels_from_outcomes", "make_labels"]

LABEL_COLUMNS = ("churned", "future_spend", "future_purchases")


def check_horizon(horizon_days: object) -> int:
    """``horizon_days`` as a positive whole number of days (ValueError otherwise)."""
    if isinstance(horizon_days, bool) or not float(horizon_days).is_integer():  # type: ignore[arg-type]
        raise ValueError(f"horizon_days must be a whole number of days, got {horizon_days!r}")
    horizon = int(horizon_days)  # type: ignore[call-overload]
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
    transactions: pd.DataFrame,
    *,
    as_of: object,
    horizon_days: int,
    customers_index: pd.Index | None = None,
) -> pd.DataFrame:
    """Churn and spend outcomes in the ``horizon_days`` days after ``as_of``.

    Parameters
    ----------
    transactions : DataFrame
        Normalised transactions (``fidelite.features.data.load_transactions``).
    as_of : day
        Cutoff day ``D`` (``fidelite.features.days.parse_day``).
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
    horizon = check_horizon(horizon_days)
    day = parse_day(as_of)
    features_end = day + ONE_DAY
    window_end = features_end + pd.Timedelta(days=horizon)

    if customers_index is None:
        customers = _known_customers(transactions, features_end)
    else:
        customers = pd.Index(customers_index).astype(str).rename("customer_id")
        if customers.has_duplicates:
            dupes = customers[customers.duplicated()].unique()[:5].tolist()
            raise ValueError(f"customers_index has duplicate customer ids, e.g. {dupes}")

    ts = transactions["timestamp"]
    in_window = (ts >= features_end) & (ts < window_end)
    window = transactions.loc[in_window & transactions["customer_id"].isin(customers)]
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


def labels_from_outcomes(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Labels from purchase outcomes (:func:`fidelite.features.purchases.purchases_between`).

    Parameters
    ----------
    outcomes : DataFrame, shape (n_customers, 2)
        ``purchase_days`` and ``net_spend`` over the horizon, indexed by ``customer_id``.

    Returns
    -------
    DataFrame, shape (n_customers, 3)
        :data:`LABEL_COLUMNS`: ``churned`` (int8, no purchase in the horizon),
        ``future_spend`` (float64, net value of the orders placed in it) and
        ``future_purchases`` (int64, purchase days).
    """
    labels = pd.DataFrame(index=outcomes.index)
    labels["churned"] = (outcomes["purchase_days"].to_numpy() == 0).astype("int8")
    labels["future_spend"] = outcomes["net_spend"].astype("float64")
    labels["future_purchases"] = outcomes["purchase_days"].astype("int64")
    return labels[list(LABEL_COLUMNS)]
