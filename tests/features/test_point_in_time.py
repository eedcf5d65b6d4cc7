"""Point-in-time property: nothing dated after as_of can change the features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.features.helpers import features_at

AS_OF = "2024-06-30"


def history(seed: int = 0, n_customers: int = 40) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)
    n_tx, n_ev = 400, 1500
    start = pd.Timestamp("2023-01-01")
    tx = pd.DataFrame(
        {
            "customer_id": rng.integers(0, n_customers, n_tx).astype(str),
            "order_id": [f"o{i}" for i in range(n_tx)],
            "timestamp": start + pd.to_timedelta(rng.integers(0, 546 * 24, n_tx), unit="h"),
            "amount": np.round(
                rng.gamma(2.0, 20.0, n_tx) * rng.choice([1, -1], n_tx, p=[0.9, 0.1]), 2
            ),
            "channel": rng.choice(["web", "app", "store"], n_tx),
            "discount": rng.choice([0.0, 5.0], n_tx),
        }
    )
    ev = pd.DataFrame(
        {
            "customer_id": rng.integers(0, n_customers, n_ev).astype(str),
            "timestamp": start + pd.to_timedelta(rng.integers(0, 546 * 24, n_ev), unit="h"),
            "channel": rng.choice(["email", "sms", "push", "web"], n_ev),
            "event_type": rng.choice(
                ["sent", "delivered", "open", "click", "visit", "bounce"], n_ev
            ),
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(n_customers + 5).astype(str),
            "signup_at": start
            + pd.to_timedelta(rng.integers(-100, 300, n_customers + 5), unit="D"),
            "email_opt_in": rng.choice([True, False], n_customers + 5),
        }
    )
    return tx, ev, customers


def future_rows(tx: pd.DataFrame, ev: pd.DataFrame, customers: pd.DataFrame):
    """Rows strictly after as_of: existing customers, brand-new customers, new channels."""
    first_future = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    more_tx = pd.DataFrame(
        {
            "customer_id": ["0", "1", "newbie", "3"],
            "order_id": ["f0", "f1", "f2", "f3"],
            "timestamp": [
                first_future,
                first_future + pd.Timedelta(hours=5),
                first_future + pd.Timedelta(days=3),
                first_future + pd.Timedelta(days=400),
            ],
            "amount": [100.0, -20.0, 50.0, 7.0],
            "channel": ["web", "marketplace", "app", "store"],
            "discount": 0.0,
        }
    )
    more_ev = pd.DataFrame(
        {
            "customer_id": ["0", "2", "newbie"],
            "timestamp": [first_future, first_future + pd.Timedelta(days=10), first_future],
            "channel": ["email", "tiktok", "sms"],
            "event_type": ["open", "visit", "click"],
        }
    )
    more_customers = pd.DataFrame(
        {
            "customer_id": ["newbie", "late_signup"],
            "signup_at": [first_future, first_future],
            "email_opt_in": [True, False],
        }
    )
    return (
        pd.concat([tx, more_tx], ignore_index=True),
        pd.concat([ev, more_ev], ignore_index=True),
        pd.concat([customers.iloc[:10], more_customers, customers.iloc[10:]], ignore_index=True),
    )


def test_future_rows_do_not_change_features():
    tx, ev, customers = history()
    before = features_at(tx, ev, customers, as_of=AS_OF)
    after = features_at(*future_rows(tx, ev, customers), as_of=AS_OF)
    pd.testing.assert_frame_equal(before, after)
    assert "newbie" not in after.index and "eng_tiktok_share" not in after.columns


def test_last_moment_of_as_of_day_is_seen_and_next_midnight_is_not():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a"],
            "order_id": ["1", "2"],
            "timestamp": pd.to_datetime(
                ["2024-06-30 23:59:59.999", "2024-07-01 00:00:00"], format="ISO8601"
            ),
            "amount": [10.0, 20.0],
        }
    )
    row = features_at(tx, as_of=pd.Timestamp("2024-06-30 15:00")).loc["a"]
    assert row["spend_total"] == 10.0 and row["days_since_last_purchase"] == 0


def test_as_of_before_any_history_gives_empty_frame_with_all_columns():
    tx, ev, customers = history()
    full = features_at(tx, ev, customers, as_of=AS_OF)
    empty = features_at(tx, ev, customers, as_of="2020-01-01")
    assert len(empty) == 0
    # Extra channels only appear once seen; the contract columns are always there.
    assert set(empty.columns) <= set(full.columns)
    assert {"frequency", "lifecycle_stage", "eng_email_share", "best_channel"} <= set(empty.columns)
