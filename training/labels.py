"""Outcome labels after a cutoff day: churn, net spend and purchase days over the horizon.

Time convention (ARCHITECTURE.md): for a cutoff day ``D`` and a horizon of ``H`` days,
features see rows with ``timestamp < D + 1 day`` and labels the orders *placed* in the
calendar days ``(D, D+H]``, valued with the refunds known by the end of ``D+H``
(:func:`fidelite.features.purchases.purchases_between`: one definition of a purchase
everywhere; a refund of an order placed before ``D`` never lowers a label). The rows on
or before ``D`` are used only to decide *which* customers get a label.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from fidelite.features.days import ONE_DAY, parse_day
from fidelite.features.purchases import (
    RefundLinks,
    link_refunds,
    order_values,
    purchases_between,
)

logger = logging.getLogger(__name__)

__all__ = ["LABEL_COLUMNS", "check_horizon", "labels_from_outcomes", "make_labels"]

LABEL_COLUMNS = ("churned", "future_spend", "future_purchases", "days_to_purchase")


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


def _first_purchase_day(
    transactions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, links: RefundLinks
) -> pd.Series:
    """Day of each customer's first purchase placed in ``[start, end)`` (refunds known by end)."""
    known = (transactions["timestamp"] < end).to_numpy()
    rows = transactions.loc[known]
    values = order_values(rows["amount"].to_numpy(dtype=float), links.refund_of(known))
    placed = values.is_purchase & (rows["timestamp"] >= start).to_numpy()
    first = rows.loc[placed].groupby("customer_id", observed=True)["timestamp"].min()
    return first.dt.floor("D")


def make_labels(
    transactions: pd.DataFrame,
    *,
    as_of: object,
    horizon_days: int,
    customers_index: pd.Index | None = None,
    links: RefundLinks | None = None,
) -> pd.DataFrame:
    """Churn, spend and time-to-purchase outcomes in the ``horizon_days`` days after ``as_of``.

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
    links : RefundLinks, optional
        ``link_refunds(transactions)`` when already known (``Inputs.refund_links``).

    Returns
    -------
    DataFrame, shape (n_customers, 4)
        Indexed by ``customer_id`` (str) with ``churned`` (int8, 1 when the customer
        placed no purchase in the window), ``future_spend`` (float64, net value of the
        orders placed in the window, currency units), ``future_purchases`` (int64,
        distinct purchase days) and ``days_to_purchase`` (float64, days from ``D`` to the
        first purchase day, 1..H; NaN without a purchase).
    """
    horizon = check_horizon(horizon_days)
    day = parse_day(as_of)
    start = day + ONE_DAY
    end = start + pd.Timedelta(days=horizon)
    if customers_index is None:
        customers = _known_customers(transactions, start)
    else:
        customers = pd.Index(customers_index).astype(str).rename("customer_id")
        if customers.has_duplicates:
            dupes = customers[customers.duplicated()].unique()[:5].tolist()
            raise ValueError(f"customers_index has duplicate customer ids, e.g. {dupes}")
    links = link_refunds(transactions) if links is None else links
    outcomes = purchases_between(transactions, start, end, customers=customers, links=links)
    first = _first_purchase_day(transactions, start, end, links).reindex(customers)
    labels = pd.DataFrame(index=customers)
    labels["future_spend"] = outcomes["net_spend"].astype("float64")
    labels["future_purchases"] = outcomes["purchase_days"].astype("int64")
    labels["churned"] = (labels["future_purchases"] == 0).astype("int8")
    labels["days_to_purchase"] = ((first - day).dt.days).astype("float64").to_numpy()
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
    outcomes : DataFrame, shape (n_customers, 3)
        ``purchase_days``, ``net_spend`` and ``days_to_purchase`` (days from the cutoff to
        the first purchase day, NaN without one) over the horizon, indexed by
        ``customer_id`` (``fidelite.features.windows.WindowFeatures.outcomes``).

    Returns
    -------
    DataFrame, shape (n_customers, 4)
        :data:`LABEL_COLUMNS`: ``churned`` (int8, no purchase in the horizon),
        ``future_spend`` (float64, net value of the orders placed in it),
        ``future_purchases`` (int64, purchase days) and ``days_to_purchase`` (float64).
    """
    labels = pd.DataFrame(index=outcomes.index)
    labels["churned"] = (outcomes["purchase_days"].to_numpy() == 0).astype("int8")
    labels["future_spend"] = outcomes["net_spend"].astype("float64")
    labels["future_purchases"] = outcomes["purchase_days"].astype("int64")
    labels["days_to_purchase"] = outcomes["days_to_purchase"].astype("float64")
    return labels[list(LABEL_COLUMNS)]
