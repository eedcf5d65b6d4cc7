"""Features and outcomes at many cutoffs from one encoding equal build_features at each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.features import build_features, load_inputs
from fidelite.features.demo import generate_demo_data
from fidelite.features.inputs import Inputs
from fidelite.features.params import FeatureParams
from fidelite.features.purchases import purchases_between
from fidelite.features.windows import WindowFeatures

AS_OF = "2025-12-31"
CUTOFFS = ["2024-02-15", "2024-09-30", "2025-06-30", "2025-10-02", AS_OF]


@pytest.fixture(scope="module")
def inputs():
    """Demo data plus the cases an encode-once builder could get wrong."""
    data = generate_demo_data(1500, seed=21)
    tx, ev, cu = data.transactions.copy(), data.events.copy(), data.customers.copy()
    # A channel first used late, by one customer: absent from early vocabularies.
    tx["channel"] = tx["channel"].astype(str)
    late = tx.index[tx["timestamp"] > "2025-08-01"][0]
    tx.loc[late, "channel"] = "kiosk"
    ev["channel"] = ev["channel"].astype(str)
    ev.loc[ev.index[-5], "channel"] = "whatsapp"
    # Events of a customer nobody else knows, and of an unknown type.
    ev["customer_id"] = ev["customer_id"].astype(str)
    ev.loc[ev.index[3], "customer_id"] = "ghost"
    ev["event_type"] = ev["event_type"].astype(str)
    ev.loc[ev.index[4], "event_type"] = "teleport"
    # A signup without a date, a signup after the as-of day, rows after it.
    cu.loc[cu.index[0], "signup_at"] = pd.NaT
    cu.loc[cu.index[1], "signup_at"] = pd.Timestamp("2026-02-01")
    future = tx.iloc[:3].assign(
        timestamp=pd.Timestamp("2026-01-15"), order_id=["f1", "f2", "f3"], amount=9.0
    )
    tx = pd.concat([tx, future], ignore_index=True)
    # Rows out of time order: the builder sorts by day itself.
    tx = tx.sample(frac=1.0, random_state=3).reset_index(drop=True)
    return load_inputs(tx, ev, cu, as_of=AS_OF)


@pytest.fixture(scope="module")
def windows(inputs):
    return WindowFeatures(inputs)


@pytest.mark.parametrize("cutoff", CUTOFFS)
def test_features_at_every_cutoff_equal_build_features(inputs, windows, cutoff):
    expected = build_features(inputs, as_of=cutoff)
    got = windows.features(cutoff)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-12)


def test_vocabulary_grows_with_the_cutoff(windows):
    assert "kiosk" not in windows.vocabulary("2025-06-30").order_channels
    assert "kiosk" in windows.vocabulary(AS_OF).order_channels
    assert "order_share_kiosk" in windows.features(AS_OF).columns


@pytest.mark.parametrize("cutoff", CUTOFFS[:4])
def test_outcomes_equal_purchases_between(inputs, windows, cutoff):
    start = pd.Timestamp(cutoff) + pd.Timedelta(days=1)
    customers = build_features(inputs, as_of=cutoff).index
    expected = purchases_between(
        inputs.transactions, start, start + pd.Timedelta(days=90), customers=customers
    )
    got = windows.outcomes(cutoff, 90, customers)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=False, rtol=1e-9)
    assert (got["purchase_days"] > 0).any()


def test_future_rows_change_nothing_before_the_cutoff(inputs):
    cutoff = "2025-06-30"
    cut = inputs.at(cutoff).cut()
    # The customers table is today's state (consent): kept whole on both sides.
    past_only = Inputs(cut.transactions, cutoff, cut.events, inputs.customers)
    pd.testing.assert_frame_equal(
        WindowFeatures(inputs).features(cutoff), WindowFeatures(past_only).features(cutoff)
    )


def test_outcome_windows_must_be_observed_and_cutoffs_within_the_inputs(windows):
    with pytest.raises(ValueError, match="not known yet"):
        windows.outcomes("2025-12-01", 90)
    with pytest.raises(ValueError, match="after the inputs' as-of day"):
        windows.features("2026-01-01")


def test_params_and_transactions_only(inputs):
    params = FeatureParams(windows=(7, 60))
    tx_only = load_inputs(inputs.transactions, as_of=AS_OF)
    got = WindowFeatures(tx_only, params=params).features("2025-03-31")
    expected = build_features(tx_only, as_of="2025-03-31", params=params)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-12)
    assert {"orders_7d", "spend_60d"} <= set(got.columns)
    assert np.isfinite(got["frequency"]).all()
