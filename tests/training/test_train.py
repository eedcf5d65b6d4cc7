"""End-to-end training on demo data: MLflow run contents, quality, time protocol."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from fidelite.features import build_features
from fidelite.features.demo import generate_demo_data
from fidelite.training.labels import InsufficientHistoryError, make_labels
from fidelite.training.registry import CHALLENGER, CHAMPION, alias_version
from fidelite.training.train import TrainConfig, train

pytestmark = pytest.mark.slow

AS_OF = pd.Timestamp("2025-06-30")
HORIZON = 90


@pytest.fixture(scope="module")
def demo():
    return generate_demo_data(2000, seed=11)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def trained(demo, tracking_uri):
    config = TrainConfig(
        as_of=AS_OF,
        horizon_days=HORIZON,
        n_windows=4,
        tracking_uri=tracking_uri,
        experiment="test-train",
        n_jobs=1,
    )
    return train(demo.transactions, demo.events, demo.customers, config=config)


def test_run_logs_params_metrics_figures_and_registers(trained, tracking_uri):
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    run = client.get_run(trained.run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["as_of"] == "2025-06-30" and params["horizon_days"] == "90"
    assert params["churn__num_leaves"] == "15" and "clv__tweedie_variance_power" in params
    assert len(params["data__transactions_sha256"]) == 64
    assert params["data__transactions_end"] <= "2025-06-30"  # nothing after as_of was used
    # Demo customers are acquired all along, so every feature is in the windows' range.
    assert run.data.tags["unsupported_features"] == ""
    for name in (
        "churn_roc_auc",
        "baseline_churn_roc_auc",
        "clv_normalized_gini",
        "baseline_clv_normalized_gini",
        "churn_ece_raw",
        "clv_total_ratio",
        "clv_interval_coverage_p10_p90",
    ):
        assert name in metrics, name
    artifacts = {a.path for a in client.list_artifacts(trained.run_id)}
    assert {"features.json", "data_fingerprint.json", "figures"} <= artifacts
    figures = {a.path for a in client.list_artifacts(trained.run_id, "figures")}
    assert figures == {
        f"figures/{n}.png"
        for n in ("roc", "calibration", "cumulative_gain", "clv_deciles", "feature_importance")
    }
    assert alias_version(client, "fidelite", CHALLENGER) == trained.model_version
    assert alias_version(client, "fidelite", CHAMPION) is None  # --promote not given


def test_validation_quality_beats_or_matches_baseline(trained):
    m = trained.metrics
    assert m["churn_roc_auc"] > 0.7
    assert m["churn_roc_auc"] > m["baseline_churn_roc_auc"] - 0.02
    assert m["clv_normalized_gini"] > m["baseline_clv_normalized_gini"] - 0.02
    assert len(trained.cutoffs) == 4 and trained.cutoffs[-1] == AS_OF - pd.Timedelta(days=HORIZON)


def test_clv_aggregate_holds_on_a_later_window(trained, demo):
    """Train at D, score at D+H, compare with actual spend in (D+H, D+2H]."""
    later = AS_OF + pd.Timedelta(days=HORIZON)
    features = build_features(demo.inputs(later))
    scores = trained.model.predict(None, features, params={"as_of": str(later.date())})
    ok = scores.loc[scores["status"] == "ok"].set_index("customer_id")
    actual = make_labels(
        demo.transactions, as_of=later, horizon_days=HORIZON, customers_index=ok.index
    )["future_spend"]
    assert ok["predicted_clv"].sum() == pytest.approx(actual.sum(), rel=0.15)
    assert (ok["predicted_clv_p10"] <= ok["predicted_clv"]).all()
    assert (ok["predicted_clv"] <= ok["predicted_clv_p90"]).all()


def test_future_rows_do_not_change_training_inputs(trained, demo, tracking_uri):
    """The fingerprint covers only rows up to as_of, even though demo runs to 2025-12-31."""
    run = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).get_run(trained.run_id)
    rows_before = int((demo.transactions["timestamp"] < AS_OF + pd.Timedelta(days=1)).sum())
    assert int(run.data.params["data__transactions_rows"]) == rows_before


def test_too_short_history_raises_and_logs_nothing(demo, tracking_uri):
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    versions_before = client.search_model_versions("name='fidelite'")
    config = TrainConfig(
        as_of="2024-05-15", horizon_days=HORIZON, tracking_uri=tracking_uri, experiment="test-train"
    )
    with pytest.raises(InsufficientHistoryError, match="--baseline-only"):
        train(demo.transactions, demo.events, demo.customers, config=config)
    assert len(client.search_model_versions("name='fidelite'")) == len(versions_before)


def test_baseline_only_on_short_history(demo, tracking_uri):
    config = TrainConfig(
        as_of="2024-05-15",
        horizon_days=HORIZON,
        baseline_only=True,
        tracking_uri=tracking_uri,
        experiment="test-train",
        n_jobs=1,
        model_name="fidelite-baseline",
    )
    result = train(demo.transactions, demo.events, demo.customers, config=config)
    assert result.model.baseline_only and result.cutoffs == []
    features = build_features(demo.inputs("2024-05-15"))
    scores = result.model.predict(None, features, params={"as_of": "2024-05-15"})
    ok = scores["status"] == "ok"
    assert ok.sum() == (features["orders_total"] > 0).sum()
    baseline = result.model.baseline.predict(features.loc[features["orders_total"] > 0])
    pd.testing.assert_series_equal(
        scores.loc[ok, "predicted_clv"].reset_index(drop=True),
        baseline["baseline_clv"].reset_index(drop=True),
        check_names=False,
    )
    assert scores.loc[ok, "reasons"].str.startswith('["').all()


def test_windows_without_outcomes_are_refused(demo, tracking_uri):
    """Transactions that stop early leave the label windows empty: a clear error."""
    early = demo.transactions[demo.transactions["timestamp"] < "2024-09-01"]
    config = TrainConfig(
        as_of="2025-06-30",
        horizon_days=HORIZON,
        tracking_uri=tracking_uri,
        experiment="test-train",
        n_jobs=1,
        register=False,
    )
    with pytest.raises(InsufficientHistoryError, match="every customer churned"):
        train(early, config=config)
