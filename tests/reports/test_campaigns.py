"""Measured campaign effects against an independent pandas/scipy computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fidelite.reports import campaign_effects
from fidelite.reports.campaigns import campaign_outcomes


@pytest.fixture(scope="module")
def campaign_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two campaigns with control groups, one without; treated customers buy more."""
    rng = np.random.default_rng(2)
    rows, tx = [], []
    sends = {
        "spring": pd.Timestamp("2025-03-01 08:00"),
        "summer": pd.Timestamp("2025-06-01 08:00"),
        "blast": pd.Timestamp("2025-06-10 08:00"),
    }
    for i in range(400):
        cid = f"C{i:04d}"
        campaign = ("spring", "summer", "blast")[i % 3]
        group = "treatment" if campaign == "blast" or rng.random() < 0.7 else "control"
        rows.append((cid, campaign, sends[campaign], group, "email", 2.0))
        rate = 0.45 if group == "treatment" else 0.25
        if rng.random() < rate:  # buys inside the window
            day = sends[campaign] + pd.Timedelta(days=float(rng.uniform(0.1, 29.5)))
            tx.append((cid, f"O{i}", day, float(rng.gamma(2.0, 25.0))))
        if rng.random() < 0.3:  # buys long after: outside the window
            tx.append((cid, f"L{i}", sends[campaign] + pd.Timedelta(days=45), 80.0))
        if rng.random() < 0.2:  # bought just before the send: not a response
            tx.append((cid, f"B{i}", sends[campaign] - pd.Timedelta(hours=2), 60.0))
    campaigns = pd.DataFrame(
        rows, columns=["customer_id", "campaign_id", "sent_at", "group", "channel", "offer_cost"]
    )
    transactions = pd.DataFrame(tx, columns=["customer_id", "order_id", "timestamp", "amount"])
    return campaigns, transactions


def test_effects_match_pandas_and_scipy(campaign_world):
    campaigns, transactions = campaign_world
    table = campaign_effects(campaigns, transactions, response_days=30, margin=0.5)

    joined = campaigns.merge(transactions, on="customer_id", how="left")
    inside = (joined["timestamp"] > joined["sent_at"]) & (
        joined["timestamp"] <= joined["sent_at"] + pd.Timedelta(days=30)
    )
    revenue = joined["amount"].where(inside, 0.0).groupby(joined["customer_id"]).sum()
    frame = campaigns.assign(revenue=campaigns["customer_id"].map(revenue))
    for campaign in ("spring", "summer"):
        rows = frame.loc[frame["campaign_id"] == campaign]
        treated = rows.loc[rows["group"] == "treatment", "revenue"]
        control = rows.loc[rows["group"] == "control", "revenue"]
        got = table.loc[campaign]
        assert got["n_treatment"] == len(treated) and got["n_control"] == len(control)
        lift = (treated > 0).mean() - (control > 0).mean()
        assert got["incremental_conversion"] == pytest.approx(lift)
        welch = stats.ttest_ind(treated, control, equal_var=False).confidence_interval(0.95)
        assert got["incremental_revenue_per_customer"] == pytest.approx(
            treated.mean() - control.mean()
        )
        assert got["incremental_revenue_per_customer_low"] == pytest.approx(welch.low)
        assert got["incremental_revenue_per_customer_high"] == pytest.approx(welch.high)
        assert got["incremental_revenue"] == pytest.approx(
            (treated.mean() - control.mean()) * len(treated)
        )
        assert got["cost"] == pytest.approx(2.0 * len(treated))
        assert got["return_on_spend"] == pytest.approx(
            got["incremental_revenue"] * 0.5 / got["cost"]
        )
        assert got["incremental_conversion_low"] < lift < got["incremental_conversion_high"]
    assert table.loc["spring", "incremental_conversion"] > 0.05  # the simulated lift shows
    blast = table.loc["blast"]
    assert blast["n_control"] == 0 and np.isnan(blast["incremental_revenue"])


def test_windows_running_past_as_of_are_flagged(campaign_world):
    campaigns, transactions = campaign_world
    outcomes = campaign_outcomes(campaigns, transactions, as_of=pd.Timestamp("2025-06-15"))
    complete = outcomes.groupby("campaign_id")["complete"].all()
    assert complete["spring"] and not complete["summer"]
    # nothing after D is read: summer's late purchases are not counted yet
    late = transactions["timestamp"] >= pd.Timestamp("2025-06-16")
    summer_ids = campaigns.loc[campaigns["campaign_id"] == "summer", "customer_id"]
    assert (
        outcomes.loc[
            outcomes["customer_id"].isin(
                transactions.loc[late & transactions["customer_id"].isin(summer_ids), "customer_id"]
            )
            & ~outcomes["customer_id"].isin(transactions.loc[~late, "customer_id"]),
            "revenue",
        ]
        .eq(0)
        .all()
    )
