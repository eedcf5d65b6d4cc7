"""End-to-end training on demo data: MLflow run contents, quality, time protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from fidelite.errors import InsufficientHistoryError
from fidelite.features.inputs import load_inputs
from fidelite.training.config import TrainConfig
from fidelite.training.labels import make_labels
from fidelite.training.registry import CHALLENGER, CHAMPION, alias_version
from fidelite.training.train import train

pytestmark = pytest.mark.slow

HORIZON = 90


def test_run_logs_params_metrics_figures_and_registers(trained):
    result, uri = trained.result, trained.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(result.run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["as_of"] == "2025-06-30" and params["horizon_days"] == "90"
    assert params["churn__num_leaves"] == "15" and params["churn__n_jobs"] == "1"
    assert params["spend__start_from_baseline"] == "True" and params["timing__bin_days"] == "7"
    assert params["features__trend_days"] == "90"
    # The held-out window (2025-04-01) follows every training window's labels.
    assert params["holdout_cutoff"] == "2025-04-01" and params["holdout_mode"] == "time"
    assert params["train_cutoffs"] == "2024-10-03,2025-01-01"
    assert params["level_cutoffs"] == "2024-04-02,2024-07-01"  # the seasons of 04-01, 06-30
    assert len(params["data__transactions_sha256"]) == 64
    assert params["data__transactions_end"] <= "2025-06-30"  # nothing after as_of was used
    # Demo customers are acquired all along, so every feature is in the windows' range.
    assert run.data.tags["unsupported_features"] == ""
    for name in (
        "churn_roc_auc",
        "baseline_churn_roc_auc",
        "clv_normalized_gini",
        "baseline_clv_normalized_gini",
        "churn_expected_calibration_error",
        "clv_total_ratio",
        "clv_interval_coverage_p10_p90",
        "next_purchase_mae_days",
        "next_purchase_mae_rhythm_days",
        "churn_level_comparable",
        "prospect_churn_roc_auc",
    ):
        assert name in metrics, name
    # The same-season level rule replayed on the known windows: only the held-out window
    # (2025-04-01) had a window of its season (2024-04-02) known at its cutoff.
    for name in ("churn", "spend"):
        levels = getattr(result.model.purchasers, name).levels_
        miss = abs(levels.offset_of("2025-04-01") - levels.offset_of("2024-04-02"))
        assert metrics[f"{name}_level_backtest_windows"] == 1.0
        assert metrics[f"{name}_level_backtest_error"] == pytest.approx(miss)
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"features.json", "data_fingerprint.json", "code_version.json", "warnings.json"} <= (
        artifacts
    )
    assert {"figures", "validation", "baseline_params.json"} <= artifacts
    figures = {a.path for a in client.list_artifacts(result.run_id, "figures")}
    assert figures == {
        f"figures/{n}.png"
        for n in ("roc", "calibration", "cumulative_gain", "clv_deciles", "feature_importance")
    }
    predictions = pd.read_parquet(
        client.download_artifacts(result.run_id, "validation/predictions.parquet")
    )
    assert {"customer_id", "churned", "churn_probability", "future_spend", "predicted_clv"} <= set(
        predictions.columns
    )
    assert len(predictions) == metrics["n_validation_rows"]
    version = json.loads(
        Path(client.download_artifacts(result.run_id, "code_version.json")).read_text()
    )
    assert version["fidelite"] == result.model.code_version["fidelite"]
    assert alias_version(client, "fidelite", CHALLENGER) == result.model_version
    assert alias_version(client, "fidelite", CHAMPION) is None  # promote not asked for


def test_validation_quality_beats_or_matches_baseline(trained):
    m = trained.result.metrics
    assert m["churn_roc_auc"] > 0.7
    assert m["churn_roc_auc"] > m["baseline_churn_roc_auc"] - 0.02
    assert m["clv_normalized_gini"] > m["baseline_clv_normalized_gini"] - 0.02
    cutoffs = trained.result.cutoffs
    assert len(cutoffs) == 5 and cutoffs[-1] == pd.Timestamp("2025-06-30") - pd.Timedelta(days=90)
    assert set(trained.result.timings) >= {"window", "features", "fit", "log", "register"}


def test_clv_aggregate_holds_on_a_later_window(trained):
    """Train at D, score at D+H, compare with actual spend in (D+H, D+2H]."""
    later = pd.Timestamp("2025-06-30") + pd.Timedelta(days=HORIZON)
    inputs = load_inputs(
        trained.demo.transactions, trained.demo.events, trained.demo.customers, as_of=later
    )
    model = trained.result.model
    scores = model.predict(None, model.build_features(inputs), params={"as_of": str(later.date())})
    ok = scores.loc[scores["status"] == "ok"].set_index("customer_id")
    actual = make_labels(
        inputs.transactions, as_of=later, horizon_days=HORIZON, customers_index=ok.index
    )["future_spend"]
    assert ok["predicted_clv"].sum() == pytest.approx(actual.sum(), rel=0.15)
    # The interval is the spend's, a mixture with an atom at 0: p90 can be below the mean
    # (a likely churner's spend is most likely 0), never p10 above it.
    assert (ok["predicted_clv_p10"] <= ok["predicted_clv"]).all()
    assert (ok["predicted_clv_p10"] <= ok["predicted_clv_p90"]).all()


def test_future_rows_do_not_change_training_inputs(trained):
    """The fingerprint covers only rows up to as_of, even though demo runs to 2025-12-31."""
    client = MlflowClient(tracking_uri=trained.tracking_uri)
    run = client.get_run(trained.result.run_id)
    transactions = trained.demo.transactions
    rows_before = int((transactions["timestamp"] < pd.Timestamp("2025-07-01")).sum())
    assert int(run.data.params["data__transactions_rows"]) == rows_before


def test_progress_is_reported_step_by_step(trained, tmp_path):
    steps = []
    config = TrainConfig(
        baseline_only=True, tracking_uri=f"sqlite:///{tmp_path / 'm.db'}", register=False
    )
    short = load_inputs(trained.demo.transactions, as_of="2024-08-15")
    train(short, config, on_step=steps.append)
    names = ["encode", "window", "features", "fit", "champion", "log"]
    assert [s.name for s in steps] == names
    assert [s.done for s in steps] == [1, 2, 3, 4, 5, 6] and steps[-1].total == 6
    assert "rows/s" in steps[0].message
    assert all(s.seconds >= 0 and s.message for s in steps)


def test_too_short_history_raises_and_logs_nothing(trained):
    client = MlflowClient(tracking_uri=trained.tracking_uri, registry_uri=trained.tracking_uri)
    versions_before = client.search_model_versions("name='fidelite'")
    inputs = load_inputs(trained.demo.transactions, as_of="2024-05-15")
    config = TrainConfig(tracking_uri=trained.tracking_uri, experiment="test-train")
    with pytest.raises(InsufficientHistoryError, match="--baseline-only"):
        train(inputs, config)
    assert len(client.search_model_versions("name='fidelite'")) == len(versions_before)


def test_baseline_only_on_short_history(trained):
    demo = trained.demo
    inputs = load_inputs(demo.transactions, demo.events, demo.customers, as_of="2024-05-15")
    config = TrainConfig(
        baseline_only=True,
        tracking_uri=trained.tracking_uri,
        experiment="test-train",
        n_jobs=1,
        register=False,  # no labelled window: nothing to validate, so not registrable
    )
    result = train(inputs, config)
    assert result.model.baseline_only and result.cutoffs == []
    features = result.model.build_features(inputs)
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


def test_windows_without_outcomes_are_refused(trained):
    """Transactions that stop early leave the label windows empty: a clear error."""
    early = trained.demo.transactions
    early = early[early["timestamp"] < "2024-09-01"]
    config = TrainConfig(tracking_uri=trained.tracking_uri, n_jobs=1, register=False)
    with pytest.raises(InsufficientHistoryError, match="every customer churned"):
        train(load_inputs(early, as_of="2025-06-30"), config)
