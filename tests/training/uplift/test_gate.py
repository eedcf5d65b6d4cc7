"""The promotion gate's uplift check."""

import pandas as pd

from fidelite.features import build_features
from fidelite.training.uplift.dataset import build_uplift_rows
from fidelite.training.uplift.gate import uplift_gate

from .conftest import simple_scores


def test_dropping_the_uplift_component_is_refused_adding_one_is_fine(fitted):
    assert not uplift_gate(fitted.model, None).passed
    assert "force" in uplift_gate(fitted.model, None).reason
    assert uplift_gate(None, fitted.model).passed


def test_compared_on_a_later_campaign_or_said_not_compared(fitted, demo_data):
    assert "not compared" in uplift_gate(fitted.model, fitted.model).reason
    later = demo_data.campaigns.loc[demo_data.campaigns["campaign_id"] == "winback-2025q4"]

    history = demo_data.inputs(demo_data.transactions["timestamp"].max())

    def build(day):
        return build_features(history, as_of=day)

    rows = build_uplift_rows(
        later,
        demo_data.transactions,
        build=build,
        score=simple_scores,
        window_days=30,
        until=pd.Timestamp("2026-01-01"),
    )
    same = uplift_gate(fitted.model, fitted.model, rows)
    assert same.passed and "later campaign rows" in same.reason
    assert same.metrics["gate_uplift_difference_ci_low"] == 0
    assert (
        same.metrics["gate_uplift_value_champion"] == same.metrics["gate_uplift_value_challenger"]
    )
