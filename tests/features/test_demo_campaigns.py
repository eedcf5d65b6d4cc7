"""Demo win-back campaigns: format, control groups, effects in the data, hidden truth."""

import numpy as np
import pandas as pd

from fidelite.features.contract import CAMPAIGNS, MESSAGING_CHANNELS
from fidelite.features.demo import generate_demo_data


def test_quarterly_campaigns_with_a_random_fifth_held_out(demo_data):
    campaigns = demo_data.campaigns
    assert list(campaigns.columns) == list(CAMPAIGNS.names)
    assert campaigns["campaign_id"].nunique() >= 6
    share = (campaigns["group"] == "control").groupby(campaigns["campaign_id"]).mean()
    assert share.between(0.1, 0.3).all() and abs(share.mean() - 0.2) < 0.03
    assert set(campaigns["channel"]) <= set(MESSAGING_CHANNELS)
    # Sent only on a channel the customer consented to.
    consent = demo_data.customers.set_index("customer_id")
    for channel in MESSAGING_CHANNELS:
        sent = campaigns.loc[campaigns["channel"] == channel, "customer_id"]
        assert consent.loc[sent, f"{channel}_opt_in"].all()
    assert campaigns["sent_at"].max() < pd.Timestamp("2025-12-01")


def test_truth_is_heterogeneous_with_persuadables_and_sleeping_dogs(demo_data):
    truth = demo_data.campaign_truth
    assert len(truth) == len(demo_data.campaigns)
    effect = truth["true_uplift_purchase"]
    assert effect.max() > 0.2 and effect.min() < -0.05
    assert (truth.loc[truth["fatigued"], "true_uplift_purchase"] <= 1e-12).mean() > 0.9
    fading = truth["fading"] > 0.5
    assert effect[fading].mean() > 3 * effect[~fading].mean()
    sure = truth["sure_thing"]
    assert truth.loc[sure, "lift"].mean() < truth.loc[~sure, "lift"].mean()


def test_effects_show_in_the_transactions_treatment_beats_control(demo_data):
    from fidelite.training.uplift import campaign_responses

    responses = campaign_responses(demo_data.campaigns, demo_data.transactions)
    treated = demo_data.campaigns["group"] == "treatment"
    conversion = responses["purchased"].groupby(treated.to_numpy()).mean()
    assert conversion[True] > conversion[False]


def test_deterministic_and_optional():
    first = generate_demo_data(300, seed=5)
    again = generate_demo_data(300, seed=5)
    pd.testing.assert_frame_equal(first.campaigns, again.campaigns)
    pd.testing.assert_frame_equal(first.transactions, again.transactions)
    plain = generate_demo_data(300, seed=5, campaigns=False)
    assert plain.campaigns is None and plain.campaign_truth is None
    pd.testing.assert_frame_equal(plain.events, first.events)
    # The campaigns only add or remove orders; the rest of the history is unchanged.
    common = plain.transactions.merge(first.transactions, how="inner")
    assert len(common) > 0.9 * len(plain.transactions)
    assert np.isfinite(first.campaign_truth["true_uplift_spend"]).all()
