"""Measured campaign results: treatment against control, with confidence intervals.

One function, :func:`campaign_effects`, used by ``fidelite campaign-report`` and by the
customer-base report, so there is a single definition of what a campaign achieved:

* conversion: share of the group that purchased in the response window;
* revenue: net spend per customer in the window (refunds attributed to their order);
* incremental conversion and revenue: treatment minus control, per contacted customer
  and in total (x the number contacted), with Welch normal intervals;
* cost: offer cost x contacts; return on spend: incremental revenue / cost.

A campaign without control rows is reported with its raw numbers and no effect (there
is nothing to compare with); a campaign whose window is not over in the data says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.training.uplift.evaluation import average_treatment_effect
from fidelite.training.uplift.responses import DEFAULT_RESPONSE_DAYS, campaign_responses

__all__ = ["EFFECT_COLUMNS", "campaign_effects", "effects_from_responses"]

#: Columns of :func:`campaign_effects`, in order.
EFFECT_COLUMNS: tuple[str, ...] = (
    "campaign_id",
    "first_sent",
    "last_sent",
    "channels",
    "n_treatment",
    "n_control",
    "conversion_treatment",
    "conversion_control",
    "incremental_conversion",
    "incremental_conversion_ci_low",
    "incremental_conversion_ci_high",
    "revenue_per_treated",
    "revenue_per_control",
    "incremental_revenue",
    "incremental_revenue_ci_low",
    "incremental_revenue_ci_high",
    "cost",
    "return_on_spend",
    "return_on_spend_ci_low",
    "return_on_spend_ci_high",
    "window_complete",
    "note",
)


def campaign_effects(
    campaigns: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    window_days: int = DEFAULT_RESPONSE_DAYS,
    confidence: float = 0.95,
    until: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Measured effect of each campaign, treatment against control.

    Parameters
    ----------
    campaigns : DataFrame
        Normalised campaigns table (``customer_id``, ``campaign_id``, ``sent_at``,
        ``group``, optional ``channel``, ``offer_cost``).
    transactions : DataFrame
        Normalised transactions.
    window_days : int
        Response window after each send, days.
    confidence : float
        Level of the intervals.
    until : Timestamp, optional
        Exclusive end of the data; default: the day after the last transaction.

    Returns
    -------
    DataFrame, one row per campaign (columns :data:`EFFECT_COLUMNS`, by first send)
        Conversions are shares (0-1); revenue, cost and incremental revenue are in
        the transactions' currency; ``incremental_revenue`` is the total over the
        contacted customers; ``return_on_spend`` is NaN without a cost.
    """
    if until is None:
        until = transactions["timestamp"].max().floor("D") + pd.Timedelta(days=1)
    responses = campaign_responses(campaigns, transactions, window_days=window_days, until=until)
    return effects_from_responses(campaigns, responses, confidence=confidence)


def effects_from_responses(
    campaigns: pd.DataFrame, responses: pd.DataFrame, *, confidence: float = 0.95
) -> pd.DataFrame:
    """:func:`campaign_effects` from responses already computed.

    Lets a caller read the responses once and summarise any subset of the rows (the
    customer-base report does so for each customer filter).

    Parameters
    ----------
    campaigns : DataFrame
        Normalised campaigns rows.
    responses : DataFrame
        :func:`~fidelite.training.uplift.responses.campaign_responses` of those rows
        (same index).
    """
    frame = campaigns.assign(
        purchased=responses["purchased"].to_numpy(dtype=float),
        net_spend=responses["net_spend"].to_numpy(),
        complete=responses["window_complete"].to_numpy(),
        treated=(campaigns["group"] == "treatment").to_numpy(),
    )
    rows = [
        _effect(campaign_id, part, confidence)
        for campaign_id, part in frame.groupby("campaign_id", sort=False)
    ]
    out = pd.DataFrame(rows, columns=list(EFFECT_COLUMNS))
    return out.sort_values(["first_sent", "campaign_id"], kind="stable", ignore_index=True)


def _effect(campaign_id: str, part: pd.DataFrame, confidence: float) -> dict[str, object]:
    treated = part["treated"].to_numpy()
    n_t, n_c = int(treated.sum()), int((~treated).sum())
    # unique() first: a campaign has a handful of channels over up to millions of rows
    channels = sorted(
        {str(c) for c in part.get("channel", pd.Series(dtype=object)).dropna().unique()}
    )
    costs = part["offer_cost"] if "offer_cost" in part else pd.Series(0.0, index=part.index)
    cost = float(costs.fillna(0.0)[treated].sum())
    conversion = average_treatment_effect(treated, part["purchased"].to_numpy(), confidence)
    revenue = average_treatment_effect(treated, part["net_spend"].to_numpy(), confidence)
    total = [v * n_t for v in (revenue.value, revenue.low, revenue.high)]
    roi = [v / cost if cost > 0 else np.nan for v in total]
    notes = []
    if n_c == 0:
        notes.append("no control group: the effect cannot be measured")
    elif n_c < 30 or n_t < 30:
        notes.append("fewer than 30 customers in a group: wide intervals")
    complete = bool(part["complete"].all())
    if not complete:
        notes.append("response window not over in the data: partial results")

    def mean(values: pd.Series) -> float:
        return float(values.mean()) if len(values) else np.nan

    return {
        "campaign_id": campaign_id,
        "first_sent": part["sent_at"].min(),
        "last_sent": part["sent_at"].max(),
        "channels": ",".join(channels),
        "n_treatment": n_t,
        "n_control": n_c,
        "conversion_treatment": mean(part.loc[treated, "purchased"]),
        "conversion_control": mean(part.loc[~treated, "purchased"]),
        "incremental_conversion": conversion.value,
        "incremental_conversion_ci_low": conversion.low,
        "incremental_conversion_ci_high": conversion.high,
        "revenue_per_treated": mean(part.loc[treated, "net_spend"]),
        "revenue_per_control": mean(part.loc[~treated, "net_spend"]),
        "incremental_revenue": total[0],
        "incremental_revenue_ci_low": total[1],
        "incremental_revenue_ci_high": total[2],
        "cost": cost,
        "return_on_spend": roi[0],
        "return_on_spend_ci_low": roi[1],
        "return_on_spend_ci_high": roi[2],
        "window_complete": complete,
        "note": "; ".join(notes),
    }
