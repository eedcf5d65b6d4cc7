"""Responses in (sent_at, sent_at + window], refunds on their order; which campaigns teach."""

import logging

import pandas as pd
import pytest

from fidelite.training.uplift import campaign_responses, split_campaigns


def _tx(rows):
    return pd.DataFrame(rows, columns=["customer_id", "order_id", "timestamp", "amount"]).assign(
        timestamp=lambda f: pd.to_datetime(f["timestamp"], format="ISO8601")
    )


def _campaigns(rows):
    return pd.DataFrame(
        rows, columns=["customer_id", "campaign_id", "sent_at", "group", "channel", "offer_cost"]
    ).assign(sent_at=lambda f: pd.to_datetime(f["sent_at"], format="ISO8601"))


def test_window_days_and_refunds_attributed_to_their_order():
    campaigns = _campaigns(
        [
            ("a", "c1", "2025-03-01 10:00", "treatment", "email", 2.0),
            ("b", "c1", "2025-03-01 10:00", "control", "email", 2.0),
            ("c", "c1", "2025-03-01 10:00", "treatment", "sms", 2.0),
            ("d", "c1", "2025-03-01 10:00", "control", "sms", 2.0),
        ]
    )
    tx = _tx(
        [
            ("a", "o1", "2025-02-28 23:00", 50.0),  # the day before the send: not a response
            ("a", "o2", "2025-03-30 22:00", 40.0),  # last day of the 30-day window: counts
            ("a", "o2", "2025-03-30 23:00", -15.0),  # its refund, inside the window
            ("b", "o3", "2025-03-31 00:00:01", 30.0),  # first day after the window
            ("c", "o4", "2025-03-05", 20.0),
            ("c", "o4", "2025-03-06", -20.0),  # fully refunded: no purchase
            ("d", "o5", "2025-03-01 12:00", 10.0),  # same day, after the message: counts
            ("d", "o5", "2025-04-20", -10.0),  # refunded after the window: not known then
        ]
    )
    out = campaign_responses(campaigns, tx, window_days=30)
    assert out["purchased"].tolist() == [True, False, False, True]
    assert out["net_spend"].tolist() == pytest.approx([25.0, 0.0, 0.0, 10.0])
    assert out["window_complete"].all()
    late = campaign_responses(campaigns, tx, window_days=30, until=pd.Timestamp("2025-03-20"))
    assert not late["window_complete"].any()
    assert late["net_spend"].tolist() == pytest.approx([0.0, 0.0, 0.0, 10.0])


def test_campaigns_without_control_sent_after_as_of_or_unfinished_are_skipped(caplog):
    campaigns = _campaigns(
        [
            ("a", "ok", "2025-01-10", "treatment", "email", 1.0),
            ("b", "ok", "2025-01-10", "control", "email", 1.0),
            ("c", "blast", "2025-01-12", "treatment", "email", 1.0),
            ("d", "recent", "2025-03-10", "treatment", "email", 1.0),
            ("e", "recent", "2025-03-10", "control", "email", 1.0),
            ("f", "future", "2025-05-01", "treatment", "email", 1.0),
            ("g", "future", "2025-05-01", "control", "email", 1.0),
        ]
    )
    with caplog.at_level(logging.WARNING):
        split = split_campaigns(campaigns, as_of=pd.Timestamp("2025-03-31"), window_days=30)
    assert set(split.learnable["campaign_id"]) == {"ok"}
    assert "no control group" in split.skipped["blast"]
    assert "kept for reporting" in split.skipped["blast"]
    assert "not over" in split.skipped["recent"]
    assert "sent after as-of" in split.skipped["future"]
    assert "blast" in caplog.text and "no control group" in caplog.text
