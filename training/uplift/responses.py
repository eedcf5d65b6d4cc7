"""Campaign responses: did each contacted or held-out customer buy, and for how much?

The response of a campaign row is read from the transactions with the one definition
of a purchase (:mod:`fidelite.features.purchases`): the orders the customer placed in
the response window, each at its net value (refunds attributed to their order). A row
*purchased* when at least one of those orders is a purchase (positive net value).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.features.purchases import link_refunds, purchases_between

__all__ = [
    "DEFAULT_RESPONSE_DAYS",
    "CampaignSplit",
    "campaign_responses",
    "split_campaigns",
]

logger = logging.getLogger(__name__)

#: Days after a send in which a purchase counts as the response.
DEFAULT_RESPONSE_DAYS = 30


def campaign_responses(
    campaigns: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    window_days: int = DEFAULT_RESPONSE_DAYS,
    until: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Purchase and net spend of each campaign row in its response window.

    The window is the calendar days ``[send day, send day + window_days)``: a
    purchase the same day after the message counts (many do), which at day
    granularity also admits an order placed earlier that morning, alike in both
    groups. Purchases and net spend follow :func:`fidelite.features.purchases.
    purchases_between` (refunds count against their own order when known by the
    window's end).

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
        whose window does not end by it are marked incomplete.

    Returns
    -------
    DataFrame, shape (n_rows, 3), same index as ``campaigns``
        ``purchased`` (bool), ``net_spend`` (float, currency) and ``window_complete``
        (bool: the whole window lies before ``until``).
    """
    if window_days <= 0:
        raise ValueError(f"window_days must be > 0, got {window_days}")
    window = pd.Timedelta(days=window_days)
    if until is not None:
        transactions = transactions.loc[(transactions["timestamp"] < until).to_numpy()]
    links = link_refunds(transactions)
    out = pd.DataFrame(
        {"purchased": False, "net_spend": 0.0, "window_complete": True}, index=campaigns.index
    )
    send_day = campaigns["sent_at"].dt.floor("D")
    ids = campaigns["customer_id"].astype(str)
    for day, rows in campaigns.groupby(send_day, sort=True).groups.items():
        who = ids.loc[rows]
        found = purchases_between(
            transactions, day, day + window, customers=pd.Index(who.unique()), links=links
        )
        out.loc[rows, "purchased"] = (found.loc[who, "purchase_days"] > 0).to_numpy()
        out.loc[rows, "net_spend"] = found.loc[who, "net_spend"].to_numpy(dtype=float)
        out.loc[rows, "window_complete"] = until is None or day + window <= until
    return out


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
        elif part["sent_at"].max().floor("D") + window > end:
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
