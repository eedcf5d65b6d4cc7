"""The promotion gate's uplift check."""

import copy

import numpy as np
import pandas as pd

from fidelite.training.uplift.gate import GateRows, later_campaign_rows, uplift_gate

from .conftest import simple_scores


def test_dropping_the_uplift_component_is_refused_adding_one_is_fine(fitted):
    assert not uplift_gate(fitted.model, None).passed
    assert "force" in uplift_gate(fitted.model, None).reason
    assert uplift_gate(None, fitted.model).passed


def test_without_later_campaigns_uplift_is_not_compared(fitted, uplift_world):
    rows = later_campaign_rows(fitted, fitted.model, simple_scores, uplift_world["build"])
    assert rows is None
    gate = uplift_gate(fitted.model, fitted.model, rows)
    assert gate.passed and "not compared" in gate.reason


def test_both_models_rank_the_campaigns_the_champion_never_saw(fitted, uplift_world):
    older = copy.copy(fitted.model)
    older.trained_until = pd.Timestamp("2025-03-01")  # before winback-2025q2 and q3
    rows = later_campaign_rows(fitted, older, simple_scores, uplift_world["build"])
    assert rows.campaigns == ("winback-2025q2", "winback-2025q3")
    assert len(rows.rows) == len(rows.champion) == len(rows.challenger)
    assert np.isfinite(rows.champion).all() and np.isfinite(rows.challenger).all()
    gate = uplift_gate(older, fitted.model, rows)
    assert "winback-2025q2, winback-2025q3" in gate.reason
    low, high = (
        gate.metrics["gate_uplift_difference_ci_low"],
        gate.metrics["gate_uplift_difference_ci_high"],
    )
    assert low <= high and gate.passed == (high >= 0)
    # The same ranking on both sides: no difference at all.
    same = uplift_gate(
        older, fitted.model, GateRows(**{**rows.__dict__, "challenger": rows.champion})
    )
    assert same.passed and same.metrics["gate_uplift_difference_ci_low"] == 0


def test_a_significantly_worse_challenger_is_refused(fitted):
    rng = np.random.default_rng(0)
    n = 6000
    value = rng.gamma(2.0, 50.0, n)
    tau = np.where(rng.random(n) < 0.3, 0.3, -0.05)
    treated = rng.random(n) < 0.8
    bought = rng.random(n) < np.clip(0.3 + treated * tau, 0, 1)
    rows = pd.DataFrame(
        {"treated": treated, "purchased": bought, "net_spend": bought * value, "offer_cost": 1.0}
    )
    gate = uplift_gate(
        fitted.model,
        fitted.model,
        GateRows(
            rows, value, None, champion=tau * value, challenger=-tau * value, campaigns=("x",)
        ),
    )
    assert not gate.passed and "significantly less" in gate.reason
    assert gate.metrics["gate_uplift_difference_ci_high"] < 0
