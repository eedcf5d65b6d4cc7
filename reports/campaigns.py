"""Measured campaign effects: treatment against control, with confidence intervals.

One implementation for the whole product: the report's campaigns section and
``fidelite campaign-report`` both call :func:`campaign_effects`. The response of a
contacted or held-out customer is read from the transactions in the response window
``(sent_at, sent_at + response_days]``: *converted* when their net spend there is
positive, *revenue* = that net spend (refunds subtracted).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["CONFIDENCE", "campaign_effects", "campaign_outcomes", "effect_table"]

#: Confidence level of every interval.
CONFIDENCE = 0.95
TREATMENT, CONTROL = "treatment", "control"


def campaign_outcomes(
    campaigns: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    response_days: int = 30,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Each campaign row with its response.

    Parameters
    ----------
    campaigns : DataFrame
        Normalised campaigns table (``customer_id``, ``campaign_id``, ``sent_at``,
        ``group`` in {treatment, control}, optional ``channel`` and ``offer_cost``).
    transactions : DataFrame
        Normalised transactions.
    response_days : int
        Length of the response window in days.
    as_of : Timestamp, optional
        Day D: transactions after it are ignored, and windows ending after it are
        flagged ``complete = False`` (their outcomes are still coming in).

    Returns
    -------
    DataFrame, one row per campaign row
        The campaign columns plus ``revenue`` (net spend in the window, currency),
        ``converted`` (bool) and ``complete`` (bool).
    """
    rows = campaigns.reset_index(drop=True)
    window = pd.Timedelta(days=response_days)
    tx = transactions[["customer_id", "timestamp", "amount"]]
    if as_of is not None:
        tx = tx.loc[tx["timestamp"] < as_of + pd.Timedelta(days=1)]
    tx = tx.loc[tx["customer_id"].isin(rows["customer_id"].unique())]
    sends = rows[["customer_id", "sent_at"]].assign(row=np.arange(len(rows)))
    joined = sends.merge(tx, on="customer_id", how="inner")
    inside = (joined["timestamp"] > joined["sent_at"]) & (
        joined["timestamp"] <= joined["sent_at"] + window
    )
    revenue = np.bincount(
        joined["row"].to_numpy()[inside.to_numpy()],
        joined["amount"].to_numpy()[inside.to_numpy()],
        minlength=len(rows),
    )
    out = rows.assign(revenue=revenue, converted=revenue > 0)
    if as_of is None:
        out["complete"] = True
    else:
        out["complete"] = (out["sent_at"] + window < as_of + pd.Timedelta(days=1)).to_numpy()
    return out


def _diff_interval(
    mean_t: float, var_t: float, n_t: int, mean_c: float, var_c: float, n_c: int
) -> tuple[float, float, float]:
    """Difference of means with a Welch t interval: (difference, low, high)."""
    if n_t < 2 or n_c < 2:
        return mean_t - mean_c, float("nan"), float("nan")
    se_t, se_c = var_t / n_t, var_c / n_c
    se = np.sqrt(se_t + se_c)
    if se == 0:
        return mean_t - mean_c, mean_t - mean_c, mean_t - mean_c
    dof = (se_t + se_c) ** 2 / (se_t**2 / (n_t - 1) + se_c**2 / (n_c - 1))
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, dof) * se
    return mean_t - mean_c, mean_t - mean_c - half, mean_t - mean_c + half


def effect_table(outcomes: pd.DataFrame, *, margin: float = 1.0) -> pd.DataFrame:
    """Per campaign: groups, conversion and revenue, incremental effects with intervals.

    Parameters
    ----------
    outcomes : DataFrame
        :func:`campaign_outcomes` rows (any subset of customers).
    margin : float
        Share of net spend kept as profit, for the return on spend.

    Returns
    -------
    DataFrame indexed by ``campaign_id`` (sorted by first send)
        ``first_sent``, ``last_sent``, ``channel``, ``complete``, ``n_treatment``,
        ``n_control``, ``conversion_treatment``, ``conversion_control``,
        ``incremental_conversion`` (difference of rates) with ``_low``/``_high``,
        ``revenue_per_treated`` and ``revenue_per_control`` (mean net spend),
        ``incremental_revenue_per_customer`` with ``_low``/``_high``,
        ``incremental_revenue`` (x treated customers) with ``_low``/``_high``, ``cost``
        (offer cost of the treated rows; NaN when unknown), ``return_on_spend``
        (incremental revenue x margin / cost) and ``net_return`` (incremental revenue x
        margin - cost). Effects are NaN for a campaign without control rows.
    """
    records = []
    for campaign, rows in outcomes.groupby("campaign_id", sort=False, observed=True):
        treated = rows.loc[rows["group"] == TREATMENT]
        control = rows.loc[rows["group"] == CONTROL]
        n_t, n_c = len(treated), len(control)
        conv = _diff_interval(*_moments(treated["converted"]), *_moments(control["converted"]))
        rev = _diff_interval(*_moments(treated["revenue"]), *_moments(control["revenue"]))
        if n_c == 0 or n_t == 0:
            conv = rev = (float("nan"),) * 3
        cost = _cost(treated)
        incremental = [v * n_t for v in rev]
        records.append(
            {
                "campaign_id": campaign,
                "first_sent": rows["sent_at"].min(),
                "last_sent": rows["sent_at"].max(),
                "channel": _channels(rows),
                "complete": bool(rows["complete"].all()),
                "n_treatment": n_t,
                "n_control": n_c,
                "conversion_treatment": treated["converted"].mean() if n_t else np.nan,
                "conversion_control": control["converted"].mean() if n_c else np.nan,
                "incremental_conversion": conv[0],
                "incremental_conversion_low": conv[1],
                "incremental_conversion_high": conv[2],
                "revenue_per_treated": treated["revenue"].mean() if n_t else np.nan,
                "revenue_per_control": control["revenue"].mean() if n_c else np.nan,
                "incremental_revenue_per_customer": rev[0],
                "incremental_revenue_per_customer_low": rev[1],
                "incremental_revenue_per_customer_high": rev[2],
                "incremental_revenue": incremental[0],
                "incremental_revenue_low": incremental[1],
                "incremental_revenue_high": incremental[2],
                "cost": cost,
                "return_on_spend": incremental[0] * margin / cost if cost > 0 else np.nan,
                "net_return": incremental[0] * margin - cost if np.isfinite(cost) else np.nan,
            }
        )
    if not records:
        return pd.DataFrame(columns=["campaign_id"]).set_index("campaign_id")
    return pd.DataFrame.from_records(records, index="campaign_id").sort_values("first_sent")


def _moments(values: pd.Series) -> tuple[float, float, int]:
    array = values.to_numpy(dtype=np.float64)
    if array.size == 0:
        return float("nan"), float("nan"), 0
    return float(array.mean()), float(array.var(ddof=1)) if array.size > 1 else 0.0, array.size


def _cost(treated: pd.DataFrame) -> float:
    if "offer_cost" not in treated.columns or treated["offer_cost"].isna().all():
        return float("nan")
    return float(treated["offer_cost"].fillna(0).sum())


def _channels(rows: pd.DataFrame) -> str:
    if "channel" not in rows.columns:
        return ""
    return ", ".join(sorted(rows["channel"].dropna().astype(str).unique()))


def campaign_effects(
    campaigns: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    response_days: int = 30,
    as_of: pd.Timestamp | None = None,
    margin: float = 1.0,
) -> pd.DataFrame:
    """Measured incremental conversion and revenue per campaign, treatment vs control.

    See :func:`campaign_outcomes` (responses) and :func:`effect_table` (columns).
    """
    outcomes = campaign_outcomes(campaigns, transactions, response_days=response_days, as_of=as_of)
    return effect_table(outcomes, margin=margin)
