"""The numbers the report shows, checked against independent pandas computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.features import build_features
from fidelite.features.inputs import load_inputs
from fidelite.reports import ReportConfig, load_report_inputs
from fidelite.reports.base import build_customer_base, customer_months
from fidelite.reports.sections import kpis
from fidelite.reports.sections.acquisition import channel_table
from fidelite.reports.sections.cohorts import COHORT_MONTHS, cohort_table
from fidelite.reports.sections.lifecycle import stage_flows
from fidelite.reports.snapshots import STAGE_ORDER, stage_codes

from .conftest import AS_OF


def _features(transactions: pd.DataFrame, customers: pd.DataFrame, day) -> pd.DataFrame:
    """The product's features at ``day`` (the reference the report must agree with)."""
    return build_features(load_inputs(transactions, None, customers, as_of=day))


def _purchase_days(transactions: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """(customer, day) with a purchase as known before ``end``, from the raw rows.

    The product's definition: an order is a purchase when its amount minus the refunds
    of the same customer and order id (dated before ``end``) is positive.
    """
    tx = transactions.loc[transactions["timestamp"] < end]
    key = ["customer_id", "order_id"]
    refunded = tx.loc[tx["amount"] < 0].groupby(key)["amount"].sum()
    orders = tx.loc[tx["amount"] > 0].set_index(key)
    net = orders["amount"] + refunded.reindex(orders.index).fillna(0.0)
    purchases = orders.loc[(net > 0).to_numpy()].reset_index()
    days = purchases.assign(timestamp=purchases["timestamp"].dt.floor("D"))
    return days.drop_duplicates(["customer_id", "timestamp"])[["customer_id", "timestamp"]]


def test_clv_to_cac_per_channel_matches_pandas(hand_made, hand_made_base):
    transactions, customers, scores = hand_made
    end = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    known = customers.loc[customers["signup_at"] < end].set_index("customer_id")
    spend = transactions.loc[transactions["timestamp"] < end].groupby("customer_id")["amount"].sum()
    frame = known.assign(
        spend=spend.reindex(known.index).fillna(0.0),
        predicted=scores.set_index("customer_id")["predicted_clv"].reindex(known.index).fillna(0),
    )
    expected = frame.groupby("acquisition_channel").agg(
        customers=("spend", "size"),
        cac=("acquisition_cost", "mean"),
        value=("spend", "mean"),
        predicted=("predicted", "mean"),
    )
    expected["ratio"] = (expected["value"] + expected["predicted"]) / expected["cac"].where(
        expected["cac"] > 0
    )
    table = channel_table(hand_made_base, np.ones(hand_made_base.n, dtype=bool))
    got = table.reindex(expected.index)
    np.testing.assert_array_equal(got["customers"], expected["customers"])
    np.testing.assert_allclose(got["cac"], expected["cac"])
    np.testing.assert_allclose(got["value_to_date"], expected["value"])
    np.testing.assert_allclose(got["predicted_value"], expected["predicted"])
    np.testing.assert_allclose(got["clv_to_cac"], expected["ratio"])  # NaN where CAC is 0
    assert np.isnan(got.loc["organic", "clv_to_cac"])


def test_margin_scales_value_not_cost(hand_made):
    transactions, customers, scores = hand_made
    inputs = load_report_inputs(transactions, None, customers, as_of=AS_OF, scores=scores)
    full = channel_table(b := build_customer_base(inputs, ReportConfig()), np.ones(b.n, bool))
    half = channel_table(
        h := build_customer_base(inputs, ReportConfig(margin=0.5)), np.ones(h.n, bool)
    )
    np.testing.assert_allclose(half["clv_to_cac"], full["clv_to_cac"] / 2)
    np.testing.assert_allclose(half["cac"], full["cac"])


def test_cohort_retention_matches_pandas(hand_made, hand_made_base):
    transactions, _, _ = hand_made
    end = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    days = _purchase_days(transactions, end)
    days["month"] = days["timestamp"].dt.to_period("M")
    first = days.groupby("customer_id")["month"].min().rename("cohort")
    days = days.join(first, on="customer_id")
    days["k"] = (days["month"] - days["cohort"]).apply(lambda offset: offset.n)
    buyers = days.drop_duplicates(["customer_id", "k"]).groupby(["cohort", "k"]).size()
    sizes = first.value_counts()

    table = cohort_table(customer_months(hand_made_base), np.ones(hand_made_base.n, bool))
    last_full = pd.Period(AS_OF, "M")  # AS_OF is a month end
    checked = 0
    for row, month in enumerate(pd.period_range(end=last_full, periods=COHORT_MONTHS, freq="M")):
        assert table.size[row] == sizes.get(month, 0)
        for k in range(COHORT_MONTHS):
            value = table.retention[row, k]
            if month + k > last_full:
                assert np.isnan(value)
            elif sizes.get(month, 0):
                assert value == pytest.approx(buyers.get((month, k), 0) / sizes[month])
                checked += 1
    assert checked > 50


@pytest.mark.parametrize("days_back", [0, 30, 45, 200])
def test_snapshot_stages_equal_build_features(hand_made, hand_made_base, days_back):
    transactions, customers, _ = hand_made
    day = pd.Timestamp(AS_OF) - pd.Timedelta(days=days_back)
    expected = _features(transactions, customers, day)["lifecycle_stage"]
    codes = stage_codes(
        hand_made_base.calendar,
        hand_made_base.known_day,
        hand_made_base.as_of_day - days_back,
        ReportConfig().params,
    )
    got = pd.Series(
        np.array(("?", *STAGE_ORDER), dtype=object)[codes + 1], index=hand_made_base.features.index
    )
    assert (got[got != "?"].sort_index() == expected.sort_index()).all()
    assert set(got.index[got == "?"]).isdisjoint(expected.index)


def test_snapshot_stages_equal_build_features_on_demo(demo_data):
    inputs = load_report_inputs(
        demo_data.transactions, None, demo_data.customers, as_of="2025-12-31"
    )
    base = build_customer_base(inputs, ReportConfig())
    for days_back in (0, 30, 95, 365):
        day = pd.Timestamp("2025-12-31") - pd.Timedelta(days=days_back)
        expected = _features(demo_data.transactions, demo_data.customers, day)["lifecycle_stage"]
        codes = stage_codes(
            base.calendar, base.known_day, base.as_of_day - days_back, ReportConfig().params
        )
        known = codes >= 0
        got = pd.Series(np.array(STAGE_ORDER)[codes[known]], index=base.features.index[known])
        expected = expected.sort_index()
        assert got.sort_index().index.tolist() == expected.index.tolist()
        assert (got.sort_index().to_numpy() == expected.to_numpy()).all()


def test_stage_flows_match_pandas_crosstab(hand_made, hand_made_base):
    transactions, customers, _ = hand_made
    before_day = pd.Timestamp(AS_OF) - pd.Timedelta(days=30)
    now = _features(transactions, customers, AS_OF)["lifecycle_stage"]
    before = _features(transactions, customers, before_day)["lifecycle_stage"]
    frame = pd.DataFrame({"after": now, "before": before.reindex(now.index).fillna("new_to_base")})
    expected = pd.crosstab(frame["before"], frame["after"])

    params, base = ReportConfig().params, hand_made_base
    flows = stage_flows(
        stage_codes(base.calendar, base.known_day, base.as_of_day - 30, params),
        stage_codes(base.calendar, base.known_day, base.as_of_day, params),
        np.ones(base.n, bool),
    )
    labels = ("new_to_base", *STAGE_ORDER)
    for i, src in enumerate(labels):
        for j, dst in enumerate(labels):
            want = expected.at[src, dst] if src in expected.index and dst in expected else 0
            assert flows[i, j] == want, (src, dst)
    assert flows.sum() == len(now)


def test_kpis_match_pandas(hand_made, hand_made_base):
    transactions, customers, _ = hand_made
    d = pd.Timestamp(AS_OF)
    days = _purchase_days(transactions, d + pd.Timedelta(days=1))
    days_ago = (d - days["timestamp"]).dt.days
    earlier = _purchase_days(transactions, d + pd.Timedelta(days=1 - 90))
    earlier_ago = (d - earlier["timestamp"]).dt.days
    active = set(days.loc[days_ago < kpis.ACTIVE_DAYS, "customer_id"])
    per_customer = days.groupby("customer_id").size()
    tx = transactions.loc[(transactions["timestamp"] < d + pd.Timedelta(days=1))]
    key = ["customer_id", "order_id"]
    refunded = tx.loc[tx["amount"] < 0].groupby(key)["amount"].sum()
    orders = tx.loc[tx["amount"] > 0].set_index(key)
    orders = orders.assign(net=orders["amount"] + refunded.reindex(orders.index).fillna(0.0))
    orders = orders.loc[(orders["net"] > 0).to_numpy()]
    orders = orders.loc[((d - orders["timestamp"].dt.floor("D")).dt.days < kpis.ACTIVE_DAYS)]
    h = 90
    window = (earlier_ago >= h) & (earlier_ago < h + kpis.ACTIVE_DAYS)
    base_set = set(earlier.loc[window, "customer_id"])  # active buyers as known H days ago
    bought_since = set(days.loc[days_ago < h, "customer_id"])

    values = kpis.KpiSnapshot.at(hand_made_base, hand_made_base.as_of_day).values(
        np.ones(hand_made_base.n, bool)
    )
    assert values["active"] == len(active)
    assert values["repeat_rate"] == pytest.approx((per_customer > 1).mean())
    assert values["aov"] == pytest.approx(orders["net"].sum() / len(orders))
    assert values["frequency"] == pytest.approx(len(orders) / len(active))
    assert values["churn"] == pytest.approx(len(base_set - bought_since) / len(base_set))
    assert values["customers"] == len(customers.loc[customers["signup_at"] <= d])
