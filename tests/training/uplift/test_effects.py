"""Measured campaign effects: treatment against control, by hand."""

import pandas as pd
import pytest

from fidelite.training.uplift.effects import EFFECT_COLUMNS, campaign_effects


def test_effects_match_a_hand_computation_and_flag_missing_control():
    campaigns = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f"],
            "campaign_id": ["x", "x", "x", "x", "blast", "blast"],
            "sent_at": pd.Timestamp("2025-03-01"),
            "group": ["treatment", "treatment", "control", "control", "treatment", "treatment"],
            "channel": "email",
            "offer_cost": 2.0,
        }
    )
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "c", "e"],
            "order_id": ["1", "2", "3"],
            "timestamp": pd.to_datetime(["2025-03-05", "2025-03-07", "2025-03-02"]),
            "amount": [100.0, 40.0, 10.0],
        }
    )
    out = campaign_effects(campaigns, tx, until=pd.Timestamp("2025-06-01")).set_index("campaign_id")
    assert list(out.reset_index().columns) == list(EFFECT_COLUMNS)
    x = out.loc["x"]
    assert x["conversion_treatment"] == 0.5 and x["conversion_control"] == 0.5
    assert x["incremental_conversion"] == 0
    assert x["incremental_revenue"] == pytest.approx((50 - 20) * 2)
    assert x["cost"] == 4 and x["return_on_spend"] == pytest.approx(15)
    assert x["incremental_revenue_ci_low"] < 60 < x["incremental_revenue_ci_high"]
    blast = out.loc["blast"]
    assert blast["n_control"] == 0 and pd.isna(blast["incremental_revenue"])
    assert "no control group" in blast["note"]


def test_demo_campaigns_show_positive_measured_effects(demo_data):
    out = campaign_effects(demo_data.campaigns, demo_data.transactions)
    assert len(out) == demo_data.campaigns["campaign_id"].nunique()
    assert out["window_complete"].all()
    assert (out["incremental_conversion"] > 0).mean() >= 0.5
