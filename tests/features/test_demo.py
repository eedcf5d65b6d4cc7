"""Demo data: determinism, contract form and the behaviours models must learn from."""

import numpy as np
import pandas as pd
import pytest

from fidelite.features.data import load_customers, load_events, load_transactions
from fidelite.features.demo import generate_demo_data, write_demo_data

END = pd.Timestamp("2025-12-31")
MESSAGING = ["email", "sms", "push"]


def test_same_seed_same_frames_different_seed_different(demo_data):
    again = generate_demo_data(1500, seed=3)
    other = generate_demo_data(1500, seed=4)
    for name in ("transactions", "events", "customers"):
        pd.testing.assert_frame_equal(
            getattr(demo_data, name), getattr(again, name), check_exact=True
        )
    assert not demo_data.transactions["amount"].equals(other.transactions["amount"])
    assert not demo_data.customers["signup_at"].equals(other.customers["signup_at"])


def test_tables_are_already_normalised(demo_data):
    for load, frame in (
        (load_transactions, demo_data.transactions),
        (load_events, demo_data.events),
        (load_customers, demo_data.customers),
    ):
        pd.testing.assert_frame_equal(load(frame), frame, check_exact=True)
    assert demo_data.transactions.attrs["duplicates_dropped"] == 0


def test_volumes_and_period(demo_data):
    n = len(demo_data.customers)
    assert n == 1500 and demo_data.customers["customer_id"].is_unique
    assert 2 <= len(demo_data.transactions) / n <= 8
    assert 20 <= len(demo_data.events) / n <= 60
    for frame in (demo_data.transactions, demo_data.events):
        assert frame["timestamp"].min() >= pd.Timestamp("2024-01-01")
        assert frame["timestamp"].max() < END + pd.Timedelta(days=1)
    known = set(demo_data.customers["customer_id"])
    assert set(demo_data.transactions["customer_id"]) <= known
    assert set(demo_data.events["customer_id"]) <= known


def test_refunds_discounts_and_channels(demo_data):
    tx = demo_data.transactions
    refunds = tx[tx["amount"] < 0]
    assert 0.01 < len(refunds) / len(tx) < 0.08
    # Every refund points at an earlier order of the same customer.
    orders = tx[tx["amount"] > 0].set_index("order_id")
    matched = orders.loc[refunds["order_id"]]
    assert (matched["customer_id"].to_numpy() == refunds["customer_id"].to_numpy()).all()
    assert (matched["timestamp"].to_numpy() < refunds["timestamp"].to_numpy()).all()
    assert (-refunds["amount"].to_numpy() <= matched["amount"].to_numpy() + 1e-9).all()
    assert 0.1 < (tx["discount"] > 0).mean() < 0.5
    assert set(tx["channel"].unique()) == {"web", "app", "store", "phone", "marketplace"}


def test_holiday_season_lifts_sales(demo_data):
    sales = demo_data.transactions.query("amount > 0")
    by_month = sales.groupby(sales["timestamp"].dt.month)["amount"].sum()
    assert by_month.loc[[11, 12]].mean() > 1.3 * by_month.loc[[2, 3, 4]].mean()


def test_some_customers_churn_and_some_stay(demo_data):
    sales = demo_data.transactions.query("amount > 0")
    first = sales.groupby("customer_id")["timestamp"].min()
    last = sales.groupby("customer_id")["timestamp"].max()
    early = first < pd.Timestamp("2024-07-01")
    silent_days = (END - last[early]).dt.days
    assert 0.3 < (silent_days > 180).mean() < 0.9  # many stopped long before the end
    assert (silent_days < 60).mean() > 0.1  # and a good share is still buying
    prospects = ~demo_data.customers["customer_id"].isin(sales["customer_id"])
    assert 0.05 < prospects.mean() < 0.3


def test_messages_only_to_opted_in_customers(demo_data):
    events = demo_data.events
    customers = demo_data.customers.set_index("customer_id")
    for channel in MESSAGING:
        sent_to = events.loc[
            (events["channel"] == channel) & (events["event_type"] == "sent"), "customer_id"
        ].unique()
        assert len(sent_to) > 50
        assert customers.loc[sent_to, f"{channel}_opt_in"].all()
        assert customers[f"{channel}_opt_in"].mean() < 0.95


def test_no_messages_after_unsubscribing(demo_data):
    events = demo_data.events
    email = events[events["channel"] == "email"]
    unsubscribed = (
        email[email["event_type"] == "unsubscribe"].groupby("customer_id")["timestamp"].min()
    )
    assert len(unsubscribed) > 0
    sends = email[email["event_type"] == "sent"]
    later = sends["timestamp"].to_numpy() > sends["customer_id"].map(unsubscribed).to_numpy()
    assert not later.any()


def test_unknown_names_are_present(demo_data):
    assert "social" in set(demo_data.events["channel"].astype(str))
    assert "share" in set(demo_data.events["event_type"].astype(str))


def test_engagement_falls_before_lapse(demo_data):
    """Lapsed buyers engage less in the 60 days before their last purchase than before."""
    sales = demo_data.transactions.query("amount > 0")
    first = sales.groupby("customer_id")["timestamp"].min()
    last = sales.groupby("customer_id")["timestamp"].max()
    lapsed = last[(END - last > pd.Timedelta(days=180)) & (last - first > pd.Timedelta(days=150))]
    assert len(lapsed) >= 30
    # Customer-driven engagement only: marketing sends do not depend on the customer.
    active = demo_data.events[~demo_data.events["event_type"].isin(["sent", "delivered", "bounce"])]
    active = active[active["customer_id"].isin(lapsed.index)]
    t = active["timestamp"]
    last_t = active["customer_id"].map(lapsed)
    first_t = active["customer_id"].map(first)
    # Exclude the day of the last purchase: its own checkout session is not a signal.
    recent = (t >= last_t - pd.Timedelta(days=60)) & (t < last_t - pd.Timedelta(days=1))
    earlier = (t >= first_t) & (t < last_t - pd.Timedelta(days=60))
    recent_rate = recent.sum() / (59 * len(lapsed))
    earlier_days = ((lapsed - first[lapsed.index]).dt.days - 60).sum()
    earlier_rate = earlier.sum() / earlier_days
    assert recent_rate < 0.8 * earlier_rate


def test_write_demo_data_round_trips(demo_data, tmp_path):
    paths = write_demo_data(demo_data, tmp_path / "demo")
    assert {p.name for p in paths.values()} == {
        "transactions.parquet",
        "events.parquet",
        "customers.parquet",
        "campaigns.parquet",
        "campaign_truth.parquet",
    }
    for name, load in (
        ("transactions", load_transactions),
        ("events", load_events),
        ("customers", load_customers),
    ):
        pd.testing.assert_frame_equal(load(paths[name]), getattr(demo_data, name), check_exact=True)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_customers"):
        generate_demo_data(0)
    with pytest.raises(ValueError, match="after start"):
        generate_demo_data(10, start="2025-01-01", end="2024-01-01")


def test_customer_ids_are_not_shuffled_per_seed_only_by_count():
    small = generate_demo_data(50, seed=1)
    assert small.customers["customer_id"].tolist()[:2] == ["C0000001", "C0000002"]
    assert np.isfinite(small.customers["acquisition_cost"]).all()
