"""One definition of a purchase: refunds, non-purchasers and the label primitive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.features import FeatureParams
from fidelite.features.data import load_transactions
from fidelite.features.purchases import is_purchaser, link_refunds, purchases_between
from tests.features.helpers import features_at

AS_OF = "2024-03-31"
BGNBD = ["frequency", "recency", "T", "monetary_value"]


def transactions(rows: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    """Normalised transactions from (customer_id, timestamp, amount, order_id) rows."""
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "order_id"])
    return load_transactions(frame)


# A steady customer everyone else is compared with.
STEADY = [
    ("steady", "2024-01-05", 20.0, "s1"),
    ("steady", "2024-02-05", 30.0, "s2"),
    ("steady", "2024-03-05", 40.0, "s3"),
]


def test_same_day_full_refund_makes_a_non_purchaser_without_nan_for_others():
    tx = transactions(
        [
            *STEADY,
            ("gone", "2024-03-10 10:00", 50.0, "g1"),
            ("gone", "2024-03-10 11:00", -50.0, "g1"),
        ]
    )
    frame = features_at(tx, as_of=AS_OF)
    gone = frame.loc["gone"]
    assert not is_purchaser(frame)["gone"] and is_purchaser(frame)["steady"]
    assert gone["orders_total"] == 0 and gone["frequency"] == 0 and gone["monetary_value"] == 0
    assert np.isnan(gone["T"]) and np.isnan(gone["recency"])
    assert gone["spend_total"] == 0 and gone["refund_share"] == 1.0
    assert gone["lifecycle_stage"] == "prospect" and gone["rfm_segment"] == "prospect"
    assert frame.loc[is_purchaser(frame), BGNBD].notna().all().all()


def test_refund_only_and_zero_value_customers_are_non_purchasers():
    tx = transactions(
        [
            *STEADY,
            ("refund_only", "2024-02-01", -15.0, "before-the-data"),
            ("zero", "2024-02-01", 0.0, "z1"),
        ]
    )
    frame = features_at(tx, as_of=AS_OF)
    assert list(is_purchaser(frame)) == [False, True, False]  # refund_only, steady, zero
    refund_only, zero = frame.loc["refund_only"], frame.loc["zero"]
    assert refund_only["spend_total"] == -15.0 and np.isnan(refund_only["refund_share"])
    assert zero["spend_total"] == 0 and zero["tenure_days"] == 59
    for row in (refund_only, zero):
        assert row["orders_total"] == 0 and row["frequency"] == 0
        assert row["spend_90d"] == 0 and np.isnan(row["avg_order_value"])
        assert row["lifecycle_stage"] == "prospect"


def test_partial_refund_keeps_the_purchase_for_what_was_kept():
    tx = transactions(
        [
            ("a", "2024-01-10", 100.0, "a1"),
            ("a", "2024-03-02", 60.0, "a2"),
            ("a", "2024-03-20", -30.0, "a2"),  # 30 of the March order comes back
        ]
    )
    row = features_at(tx, as_of=AS_OF).loc["a"]
    assert row["orders_total"] == 2 and row["frequency"] == 1
    assert row["monetary_value"] == pytest.approx(30.0)  # the repeat day kept 30
    assert row["spend_30d"] == pytest.approx(30.0)  # order placed Mar 2, net 30
    assert row["avg_order_value"] == pytest.approx(65.0)
    assert row["refund_share"] == pytest.approx(30.0 / 160.0)


def test_refund_of_an_older_order_does_not_lower_a_recent_window_or_cancel_its_day():
    tx = transactions(
        [
            ("a", "2023-12-01", 80.0, "old"),
            ("a", "2024-03-25", 20.0, "new"),
            ("a", "2024-03-25", -80.0, "old"),  # the old order is returned the same day
        ]
    )
    row = features_at(tx, as_of=AS_OF).loc["a"]
    # Before, the day's net (-60) cancelled the March purchase and kept December's.
    assert row["orders_total"] == 1 and row["days_since_last_purchase"] == 6
    assert row["T"] == 6 and row["spend_30d"] == 20.0 and row["spend_total"] == 20.0


def test_unattributed_refund_lowers_totals_only():
    tx = transactions([("a", "2024-03-01", 40.0, "a1"), ("a", "2024-03-01", -40.0, "r-77")])
    row = features_at(tx, as_of=AS_OF).loc["a"]
    assert row["orders_total"] == 1 and row["T"] == 30
    assert row["spend_total"] == 0 and row["spend_90d"] == 40.0


def test_refund_after_as_of_changes_nothing_at_as_of():
    rows = [*STEADY, ("a", "2024-03-30", 70.0, "a1")]
    later = [("a", "2024-04-02", -70.0, "a1"), ("steady", "2024-04-01", -40.0, "s3")]
    before = features_at(transactions(rows), as_of=AS_OF)
    after = features_at(transactions(rows + later), as_of=AS_OF)
    pd.testing.assert_frame_equal(before, after)
    # Read after the refund, the order is gone.
    assert features_at(transactions(rows + later), as_of="2024-04-02").loc["a", "orders_total"] == 0


def test_label_counts_orders_placed_in_the_window_with_their_known_refunds():
    tx = transactions(
        [
            ("a", "2024-03-20", 100.0, "pre"),  # placed before the window
            ("a", "2024-04-05", -100.0, "pre"),  # its refund falls in the window
            ("a", "2024-04-10", 50.0, "in1"),
            ("a", "2024-04-10", 10.0, "in2"),  # same day: one purchase day
            ("a", "2024-04-20", 30.0, "in3"),
            ("a", "2024-04-21", -10.0, "in3"),  # partial refund in the window
            ("b", "2024-04-15", 25.0, "b1"),
            ("b", "2024-05-03", -25.0, "b1"),  # refunded after the window: not known
            ("c", "2024-04-12", 40.0, "c1"),
            ("c", "2024-04-12", -40.0, "c1"),  # refunded in full: no purchase
        ]
    )
    out = purchases_between(tx, "2024-04-01", "2024-05-01")
    assert list(out.index) == ["a", "b", "c"]
    assert out.loc["a"].tolist() == [2, 80.0]  # not 80 - 100
    assert out.loc["b"].tolist() == [1, 25.0]
    assert out.loc["c"].tolist() == [0, 0.0]
    assert out["purchase_days"].dtype == np.int64 and out["net_spend"].dtype == np.float64
    wanted = purchases_between(tx, "2024-04-01", "2024-05-01", customers=pd.Index(["z", "b"]))
    assert wanted.index.tolist() == ["z", "b"] and wanted.loc["z"].tolist() == [0, 0.0]
    with pytest.raises(ValueError, match="must be after"):
        purchases_between(tx, "2024-05-01", "2024-05-01")


def test_links_need_the_same_customer():
    tx = transactions([("a", "2024-01-01", 10.0, "x"), ("b", "2024-01-02", -10.0, "x")])
    links = link_refunds(tx)
    assert links.refund_rows.size == 0
    assert features_at(tx, as_of=AS_OF).loc["a", "orders_total"] == 1


def test_demo_purchasers_are_consistent_and_labels_match_the_window_feature(demo_data):
    as_of, horizon = pd.Timestamp("2025-03-31"), 90
    tx = load_transactions(demo_data.transactions)
    frame = features_at(tx, as_of=as_of)
    buyers = is_purchaser(frame)
    assert buyers.any() and not buyers.all()
    for column in ("T", "recency", "days_since_last_purchase"):
        assert (frame[column].notna() == buyers).all(), column
    assert frame.loc[buyers, BGNBD].notna().all().all()
    assert (frame.loc[buyers, "monetary_value"] >= 0).all()

    # The label over (D, D + H] is the spend_{H}d feature read on day D + H.
    later = as_of + pd.Timedelta(days=horizon)
    window = features_at(tx, as_of=later, params=FeatureParams(windows=(horizon,)))
    start = as_of + pd.Timedelta(days=1)
    labels = purchases_between(tx, start, later + pd.Timedelta(days=1), customers=frame.index)
    expected = window[f"spend_{horizon}d"].reindex(frame.index).fillna(0.0)
    np.testing.assert_allclose(labels["net_spend"], expected, atol=1e-9)
    assert (labels["purchase_days"] > 0).mean() > 0.2
