"""An uplift fit logged to a real MLflow store: metrics, evidence, curves."""

import json

import mlflow
import pytest

from fidelite.training.uplift.tracking import log_uplift


@pytest.fixture
def tracking(tmp_path):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    yield mlflow.MlflowClient()
    mlflow.set_tracking_uri(previous)


def test_qini_ate_evidence_and_curves_are_logged(fitted, tracking, tmp_path):
    experiment = mlflow.create_experiment("uplift", artifact_location=str(tmp_path / "art"))
    with mlflow.start_run(experiment_id=experiment) as run:
        log_uplift(fitted)
    data = tracking.get_run(run.info.run_id).data
    for key in ("uplift_qini_value_at_risk", "uplift_ate_purchase", "uplift_ate_spend_ci_high"):
        assert key in data.metrics
    assert any(k.startswith("uplift_value_at_20_") and k.endswith("_ci_low") for k in data.metrics)
    assert data.params["uplift_learner"] == fitted.model.learner_name
    names = {a.path for a in tracking.list_artifacts(run.info.run_id, "uplift")}
    assert names == {
        "uplift/evidence.csv",
        "uplift/policy.json",
        "uplift/curves_purchase.png",
        "uplift/curves_spend.png",
    }
    policy = json.loads(
        (tmp_path / "art" / run.info.run_id / "artifacts" / "uplift" / "policy.json").read_text()
    )
    assert "winback-2025q4" in policy["skipped_campaigns"]
