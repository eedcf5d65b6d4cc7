"""Channel engagement features on hand-made event tables."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from tests.features.helpers import features_at

AS_OF = "2024-03-31"


def one_purchase_each(*customer_ids: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": list(customer_ids),
            "order_id": [f"o{i}" for i in range(len(customer_ids))],
            "timestamp": pd.Timestamp("2024-01-01"),
            "amount": 10.0,
        }
    )


def events(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """Events from (customer_id, timestamp, channel, event_type) rows."""
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "channel", "event_type"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="ISO8601")
    return frame


def test_rates_recency_share_and_best_channel():
    ev = events(
        [("a", "2024-03-01", "email", "delivered")] * 4
        + [("a", "2024-03-01", "email", "sent")] * 5
        + [("a", "2024-03-02", "email", "open")] * 2
        + [("a", "2024-03-21", "email", "click")]
        + [("a", "2024-03-30", "web", "visit")] * 4
        + [("a", "2024-03-01", "sms", "sent")] * 2
        + [("a", "2024-01-05", "sms", "click")]
    )
    row = features_at(one_purchase_each("a"), ev, as_of=AS_OF).loc["a"]
    assert row["eng_email_open_rate"] == pytest.approx(2 / 4)  # over delivered
    assert row["eng_email_click_rate"] == pytest.approx(1 / 4)
    assert row["eng_sms_click_rate"] == pytest.approx(1 / 2)  # no receipts: over sent
    assert np.isnan(row["eng_push_open_rate"])
    assert row["eng_email_days_since_last"] == 10
    assert row["eng_web_days_since_last"] == 1
    assert row["days_since_last_engagement"] == 1
    # 30d covers Mar 2..Mar 31: the two opens and the click, not the Mar 1 sends.
    assert row["eng_email_events_30d"] == 3 and row["eng_email_events_90d"] == 12
    assert row["eng_web_share"] == pytest.approx(4 / 8)
    assert row["eng_email_share"] == pytest.approx(3 / 8)
    assert row["best_channel"] == "web"
    assert row["channel_preference"] == "web,email,sms"
    assert "eng_web_open_rate" not in row.index


def test_ties_go_to_most_recent_channel_and_no_events_is_empty():
    ev = events([("a", "2024-03-01", "email", "open"), ("a", "2024-03-20", "app", "session")])
    frame = features_at(one_purchase_each("a", "b"), ev, as_of=AS_OF)
    assert frame.loc["a", "channel_preference"] == "app,email"
    assert frame.loc["b", "best_channel"] == "" and frame.loc["b", "channel_preference"] == ""
    assert np.isnan(frame.loc["b", "eng_email_share"])
    assert frame.loc["b", "eng_email_events_90d"] == 0


def test_unknown_channel_becomes_columns_and_unknown_types_are_logged(caplog):
    ev = events([("a", "2024-03-25", "TikTok", "visit"), ("a", "2024-03-25", "email", "hologram")])
    with caplog.at_level(logging.INFO, logger="fidelite.features.build"):
        frame = features_at(one_purchase_each("a"), ev, as_of=AS_OF)
    row = frame.loc["a"]
    assert row["eng_tiktok_events_30d"] == 1 and row["best_channel"] == "tiktok"
    assert {"eng_tiktok_open_rate", "eng_tiktok_share"} <= set(frame.columns)
    assert row["eng_email_events_30d"] == 0  # the unknown event type is ignored
    assert "hologram" in caplog.text


def test_unsubscribes_bounces_and_send_side_events_are_not_engagement():
    ev = events(
        [
            ("a", "2024-03-01", "email", "unsubscribe"),
            ("a", "2024-03-02", "email", "bounce"),
            ("a", "2024-03-03", "sms", "bounce"),
            ("a", "2024-03-04", "email", "complaint"),
            ("a", "2024-03-05", "email", "delivered"),
        ]
    )
    row = features_at(one_purchase_each("a"), ev, as_of=AS_OF).loc["a"]
    assert row["unsubscribes_total"] == 1 and row["bounces_total"] == 2
    assert row["best_channel"] == "" and np.isnan(row["days_since_last_engagement"])


def test_events_of_unknown_customers_and_future_events_are_ignored():
    ev = events([("ghost", "2024-03-01", "email", "open"), ("a", "2024-04-01", "email", "open")])
    frame = features_at(one_purchase_each("a"), ev, as_of=AS_OF)
    assert list(frame.index) == ["a"]
    assert frame.loc["a", "best_channel"] == ""
