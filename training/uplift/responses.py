"""Campaign responses: did each contacted or held-out customer buy, and for how much?

The response of a campaign row is read from the transactions: the orders the customer
placed in ``(sent_at, sent_at + window]``, each counted at its net value (its refunds,
whenever they come before the data's end, are attributed to it). A row *purchased*
when at least one of those orders has a positive net value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_RESPONSE_DAYS",
    "CampaignSplit",
    "campaign_responses",
    "split_campaigns",
]

logger = logging.getLogger(__name__)

#: Days after a send in which a purchase counts as the response.
DEFAULT_RESPONSE_DAYS = 30


def _orders(transactions: pd.DataFrame, until: pd.Timestamp | None) -> pd.DataFrame:
    """One row per order: customer, day it was placed (first positive row), net value."""
    tx = transactions
    if until is not None:
        tx = tx.loc[(tx["timestamp"] < until).to_numpy()]
    positive = tx.loc[(tx["amount"] > 0).to_numpy()]
    placed = positive.groupby("order_id", sort=False)["timestamp"].min()
    net = tx.groupby("order_id", sort=False)["amount"].sum()
    customer = positive.groupby("order_id", sort=False)["customer_id"].first()
    return pd.DataFrame(
        {
            "customer_id": customer.astype(object),
            "placed": placed,
            "net": net.reindex(placed.index).to_numpy(),
        }
    ).reset_index(drop=True)


def campaign_responses(
    campaigns: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    window_days: int = DEFAULT_RESPONSE_DAYS,
    until: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Purchase and net spend of each campaign row in its response window.

    Parameters
    ----------
    campaigns : DataFrame, shape (n_rows, ...)
        Normalised campaigns table (``customer_id``, ``sent_at``...).
    transactions : DataFrame
        Normalised transactions.
    window_days : int
        Response window length in days.
    until : Timestamp, optional
        Exclusive end of the data that may be read (training: as-of + 1 day). Rows
        whose window does not end before it are marked incomplete.

    Returns
    -------
    DataFrame, shape (n_rows, 3), same index as ``campaigns``
        ``purchased`` (bool), ``net_spend`` (float, currency) and ``window_complete``
        (bool: the whole window lies before ``until``).
    """
    if window_days <= 0:
        raise ValueError(f"window_days must be > 0, got {window_days}")
    window = pd.Timedelta(days=window_days)
    rows = pd.DataFrame(
        {
            "row": np.arange(len(campaigns)),
            "customer_id": campaigns["customer_id"].astype(object).to_numpy(),
            "sent_at": campaigns["sent_at"].to_numpy(),
        }
    )
    orders = _orders(transactions, until)
    joined = rows.merge(orders, on="customer_id", how="inner")
    inside = (joined["placed"] > joined["sent_at"]) & (
        joined["placed"] <= joined["sent_at"] + window
    )
    joined = joined.loc[inside.to_numpy()]
    spend = np.zeros(len(rows))
    np.add.at(spend, joined["row"].to_numpy(), joined["net"].to_numpy(dtype=float))
    bought = np.zeros(len(rows), dtype=bool)
    bought[joined.loc[(joined["net"] > 0).to_numpy(), "row"].to_numpy()] = True
    ends = campaigns["sent_at"].to_numpy() + window.to_timedelta64()
    complete = (
        np.ones(len(rows), dtype=bool)
        if until is None
        else ends < np.datetime64(until.to_datetime64())
    )
    return pd.DataFrame(
        {"purchased": bought, "net_spend": spend, "window_complete": complete},
        index=campaigns.index,
    )


@dataclass(frozen=True)
class CampaignSplit:
    """Which campaigns can teach uplift at a given day, and why the others cannot.

    Attributes
    ----------
    learnable : DataFrame
        Rows of campaigns with both groups and complete response windows.
    skipped : dict of str to str
        ``campaign_id`` -> reason it is not used for learning.
    """

    learnable: pd.DataFrame
    skipped: dict[str, str]


def split_campaigns(
    campaigns: pd.DataFrame, *, as_of: pd.Timestamp, window_days: int
) -> CampaignSplit:
    """Keep the campaigns uplift can be learnt from at ``as_of``; log the others.

    A campaign is skipped (and the log says so) when it was sent after ``as_of``, when
    its response window is not over by ``as_of``, or when it has no control (or no
    treatment) rows: without a control group nothing tells its effect apart from what
    would have happened anyway. Skipped campaigns stay in the table for reporting.
    """
    end = as_of + pd.Timedelta(days=1)
    window = pd.Timedelta(days=window_days)
    skipped: dict[str, str] = {}
    keep = np.zeros(len(campaigns), dtype=bool)
    for campaign_id, rows in campaigns.groupby("campaign_id", sort=True).groups.items():
        part = campaigns.loc[rows]
        groups = set(part["group"].astype(str))
        if part["sent_at"].min() >= end:
            skipped[campaign_id] = f"sent after as-of {as_of.date()}"
        elif part["sent_at"].max() + window >= end:
            skipped[campaign_id] = (
                f"response window ({window_days} days) not over by as-of {as_of.date()}"
            )
        elif "control" not in groups:
            skipped[campaign_id] = "no control group: kept for reporting, not used to learn uplift"
        elif "treatment" not in groups:
            skipped[campaign_id] = "no treatment group: nobody was contacted"
        else:
            keep[campaigns.index.get_indexer(rows)] = True
    for campaign_id, reason in skipped.items():
        logger.warning("campaign %s not used to learn uplift: %s", campaign_id, reason)
    return CampaignSplit(campaigns.loc[keep], skipped)
