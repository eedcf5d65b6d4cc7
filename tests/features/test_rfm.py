"""RFM (BG/NBD and ML form), rhythm and velocity features on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.features import FeatureParams
from tests.features.helpers import features_at

AS_OF = "2024-03-31"


def transactions(rows: list[tuple], channel: str = "web") -> pd.DataFrame:
    """Transactions from (customer_id, timestamp, amount[, order_id]) rows.

    Rows without an order id get their own (``o0``, ``o1``...); a refund names its
    order's id to be attributed to it.
    """
    rows = [(*row, f"o{i}") if len(row) == 3 else row for i, row in enumerate(rows)]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "order_id"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="ISO8601")
    frame["channel"] = channel
    frame["discount"] = 0.0
    return frame


def test_frequency_counts_distinct_positive_days_and_exact_recency_T():
    tx = transactions(
        [
            ("a", "2024-01-01 09:00", 10.0),
            ("a", "2024-01-01 18:00", 5.0),  # same day: one purchase day
            ("a", "2024-01-11 12:00", 30.0),
            ("a", "2024-01-21 12:00", 40.0, "r"),
            ("a", "2024-01-21 13:00", -40.0, "r"),  # its full refund: no purchase
            ("a", "2024-02-10 08:00", 50.0),
        ]
    )
    row = features_at(tx, as_of=AS_OF).loc["a"]
    assert row["frequency"] == 2  # purchase days Jan 1, Jan 11, Feb 10
    assert row["recency"] == 40  # Jan 1 -> Feb 10
    assert row["T"] == 90  # Jan 1 -> Mar 31
    assert row["monetary_value"] == pytest.approx((30.0 + 50.0) / 2)
    assert row["orders_total"] == 4  # purchases: the refunded order is not one
    assert row["spend_total"] == pytest.approx(95.0)
    assert row["refund_share"] == pytest.approx(40.0 / 135.0)
    assert row["avg_order_value"] == pytest.approx(95.0 / 4)
    assert row["days_since_last_purchase"] == 50


def test_single_purchase_has_zero_frequency_and_monetary():
    row = features_at(transactions([("a", "2024-03-01", 25.0)]), as_of=AS_OF).loc["a"]
    assert (row["frequency"], row["recency"], row["T"], row["monetary_value"]) == (0, 0, 30, 0)


def test_windows_include_as_of_day_and_exclude_older_days():
    tx = transactions(
        [
            ("a", "2024-03-31 23:59", 1.0),  # 0 days ago: inside every window
            ("a", "2024-03-02", 2.0),  # 29 days ago: inside 30d
            ("a", "2024-03-01", 4.0),  # 30 days ago: outside 30d
            ("a", "2023-04-02", 8.0),  # 364 days ago: inside 365d
            ("a", "2023-04-01", 16.0),  # 365 days ago: outside 365d
        ]
    )
    row = features_at(tx, as_of=AS_OF).loc["a"]
    assert row["orders_30d"] == 2 and row["spend_30d"] == 3.0
    assert row["orders_90d"] == 3 and row["spend_90d"] == 7.0
    assert row["orders_365d"] == 4 and row["spend_365d"] == 15.0
    assert row["tenure_days"] == 365


def test_spend_trend_and_discount_share():
    tx = transactions([("a", "2024-03-20", 30.0), ("a", "2023-12-20", 10.0)])
    tx["discount"] = [10.0, 0.0]
    row = features_at(tx, as_of=AS_OF).loc["a"]
    assert row["spend_trend"] == pytest.approx((30 - 10) / (30 + 10))
    assert row["discount_share"] == pytest.approx(10.0 / 50.0)


def test_order_share_per_transaction_channel():
    tx = pd.concat(
        [
            transactions([("a", "2024-03-01", 5.0), ("a", "2024-03-02", 5.0)], channel="app"),
            transactions([("a", "2024-03-03", 5.0)], channel="Marketplace"),
        ],
        ignore_index=True,
    )
    tx["order_id"] = ["x", "y", "z"]
    row = features_at(tx, as_of=AS_OF).loc["a"]
    assert row["order_share_app"] == pytest.approx(2 / 3)
    assert row["order_share_marketplace"] == pytest.approx(1 / 3)
    assert row["order_share_web"] == 0.0


def test_rhythm_mean_std_and_overdue():
    tx = transactions(
        [
            ("a", "2024-01-01", 1.0),
            ("a", "2024-01-11", 1.0),
            ("a", "2024-01-31", 1.0),
            ("b", "2024-03-01", 1.0),
            ("b", "2024-03-11", 1.0),
            ("c", "2024-03-01", 1.0),
        ]
    )
    frame = features_at(tx, as_of=AS_OF)
    a, b, c = frame.loc["a"], frame.loc["b"], frame.loc["c"]
    assert a["ipt_mean_days"] == 15.0
    assert a["ipt_std_days"] == pytest.approx(np.std([10, 20], ddof=1))
    assert a["overdue_ratio"] == pytest.approx(60 / 15)
    assert a["longest_gap_days"] == 20
    assert b["ipt_mean_days"] == 10 and np.isnan(b["ipt_std_days"])
    assert b["overdue_ratio"] == pytest.approx(20 / 10)
    # One purchase day: the rhythm is unknown, not zero.
    assert np.isnan(c["ipt_mean_days"]) and np.isnan(c["overdue_ratio"])


def test_velocity_rising_fading_and_unknown():
    old = [("x", f"2023-{m:02d}-15", 1.0) for m in range(1, 13)]  # monthly in 2023
    rising = [(("r",) + row[1:]) for row in old[:2]] + [
        ("r", f"2024-03-{d:02d}", 1.0) for d in (1, 5, 10, 15, 20, 25)
    ]
    fading = [(("f",) + row[1:]) for row in old]
    young = [("y", "2024-03-01", 1.0), ("y", "2024-03-20", 1.0)]
    frame = features_at(transactions(rising + fading + young), as_of=AS_OF)
    assert frame.loc["r", "velocity_90_vs_prior"] > 0.5
    assert frame.loc["f", "velocity_90_vs_prior"] == -1.0  # nothing in the last 90 days
    assert np.isnan(frame.loc["y", "velocity_90_vs_prior"])  # no earlier period


def test_velocity_exact_value():
    # First purchase Jan 1 2023; recent window Jan 2 .. Mar 31 2024 (90 days).
    tx = transactions(
        [("a", "2023-01-01", 1.0), ("a", "2023-06-01", 1.0), ("a", "2024-03-01", 1.0)]
    )
    row = features_at(tx, as_of=AS_OF).loc["a"]
    earlier_days = (pd.Timestamp("2024-01-02") - pd.Timestamp("2023-01-01")).days
    recent, earlier = 1 / 90, 2 / earlier_days
    assert row["velocity_90_vs_prior"] == pytest.approx((recent - earlier) / (recent + earlier))


def test_custom_windows_change_column_names():
    frame = features_at(
        transactions([("a", "2024-03-01", 1.0)]), as_of=AS_OF, params=FeatureParams(windows=(7, 14))
    )
    assert {"orders_7d", "spend_14d"} <= set(frame.columns)
    assert "orders_30d" not in frame.columns
