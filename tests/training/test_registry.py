"""Promotion gate: first model promoted, weak challenger refused, --force, fair re-scoring."""

from __future__ import annotations

import math

import pytest
from mlflow.tracking import MlflowClient

from fidelite.errors import DataContractError, ModelNotFoundError
from fidelite.features.demo import generate_demo_data
from fidelite.features.inputs import load_inputs
from fidelite.training.boosting import Trees
from fidelite.training.config import TrainConfig
from fidelite.training.registry import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    compare,
    promote,
    promote_version,
)
from fidelite.training.train import train

pytestmark = pytest.mark.slow

# A single two-leaf tree: a deliberately weak challenger.
WEAK = {"trees": Trees(n_estimators=1, num_leaves=2, early_stopping_rounds=0)}


def test_compare_tolerance_and_missing_metrics():
    champion = {"churn_roc_auc": 0.80, "clv_normalized_gini": 0.60}
    passed, comparison, _ = compare(
        {"churn_roc_auc": 0.798, "clv_normalized_gini": 0.61}, champion, tolerance=0.005
    )
    assert passed and comparison["churn_roc_auc"] == (0.798, 0.80)
    passed, _, failures = compare(
        {"churn_roc_auc": 0.78, "clv_normalized_gini": 0.61}, champion, tolerance=0.005
    )
    assert not passed and "churn_roc_auc" in failures[0]
    passed, _, failures = compare({"churn_roc_auc": math.nan, "clv_normalized_gini": 0.7}, champion)
    assert not passed and "no churn_roc_auc" in failures[0]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    demo = generate_demo_data(1500, seed=21)
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def run(as_of: str = "2025-06-30", **overrides):
        inputs = load_inputs(demo.transactions, demo.events, demo.customers, as_of=as_of)
        config = TrainConfig(
            horizon_days=90,
            n_windows=3,
            tracking_uri=uri,
            experiment="test-registry",
            promote=True,
            n_jobs=1,
            **overrides,
        )
        return train(inputs, config)

    return demo, uri, client, run


def test_gate_sequence(setup):
    demo, uri, client, run = setup

    first = run()
    assert first.gate.promoted and "no champion yet" in first.gate.reason
    assert alias_version(client, "fidelite", CHAMPION) == first.model_version

    # Same as-of: both held out the same window, never trained on it: a fair comparison.
    weak = run(churn_params=WEAK, spend_params=WEAK)
    assert weak.metrics["champion_version"] == float(first.model_version)
    assert weak.metrics["champion_churn_roc_auc"] > weak.metrics["churn_roc_auc"]
    assert not weak.gate.promoted and "refused" in weak.gate.reason
    assert "both held out the window after 2025-04-01" in weak.gate.reason
    assert alias_version(client, "fidelite", CHAMPION) == first.model_version
    assert alias_version(client, "fidelite", CHALLENGER) == weak.model_version

    # A failed training run leaves versions and aliases alone.
    versions = len(client.search_model_versions("name='fidelite'"))
    bad = demo.transactions.assign(amount=demo.transactions["amount"].astype(object))
    bad.loc[3, "amount"] = "twelve"
    with pytest.raises(DataContractError, match="amount"):
        train(load_inputs(bad, as_of="2025-06-30"), TrainConfig(tracking_uri=uri, promote=True))
    assert len(client.search_model_versions("name='fidelite'")) == versions

    # An identical retrain is accepted (same window, same numbers).
    again = run()
    assert again.gate.promoted, again.gate.reason
    assert again.metrics["churn_roc_auc"] == pytest.approx(first.metrics["churn_roc_auc"], abs=1e-9)
    assert alias_version(client, "fidelite", CHAMPION) == again.model_version
    no_op = promote("fidelite", tracking_uri=uri)
    assert not no_op.promoted and "already the champion" in no_op.reason

    # Rollback to any version, with the reason recorded on it.
    back = promote_version(
        "fidelite", first.model_version, reason="bad data in May", tracking_uri=uri
    )
    assert back.promoted and alias_version(client, "fidelite", CHAMPION) == first.model_version
    tags = client.get_model_version("fidelite", first.model_version).tags
    assert "bad data in May" in tags["champion_reason"] and tags["champion_since"]
    with pytest.raises(ModelNotFoundError, match="no version 99"):
        promote_version("fidelite", "99", reason="typo", tracking_uri=uri)


def test_a_challenger_older_than_the_champion_needs_force(setup):
    _, uri, client, run = setup
    champion = alias_version(client, "fidelite", CHAMPION)
    older = run(as_of="2025-03-31")  # held out 2024-12-31.., before the champion's data ended
    assert not older.gate.promoted
    assert "no labelled window after both models' data" in older.gate.reason
    assert "--force" in older.gate.reason
    assert alias_version(client, "fidelite", CHAMPION) == champion
    forced = promote("fidelite", tracking_uri=uri, force=True)
    assert forced.promoted and forced.reason.startswith("forced")
    # Newer data than the (now older) champion: re-scored on the newer held-out window.
    newer = run(as_of="2025-06-30")
    assert "champion re-scored on the challenger's held-out window" in newer.gate.reason
    assert newer.gate.promoted or "refused" in newer.gate.reason
