"""`train(..., campaigns=...)`: the uplift component is versioned with churn and CLV."""

import json

import pandas as pd
import pytest

from fidelite.features.inputs import load_inputs
from fidelite.training.registry import load_model
from fidelite.training.train import train
from fidelite.training.winback import WinbackPolicy, rank_winback

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(campaign_trained):
    return campaign_trained


def test_uplift_is_fitted_logged_and_registered_with_the_model(trained):
    result, uri, inputs, _ = trained
    assert result.model.uplift is not None and result.gate.promoted
    assert {"uplift_ate_purchase", "uplift_qini_value_at_risk"} <= set(result.metrics)
    from fidelite.training.tracking import mlflow_client

    artifacts = {a.path for a in mlflow_client(uri).list_artifacts(result.run_id, "uplift")}
    assert "uplift/curves_purchase.png" in artifacts and "uplift/evidence.csv" in artifacts
    loaded = load_model(result.model_uri, tracking_uri=uri)
    assert loaded.uplift is not None and loaded.uplift.channels == result.model.uplift.channels


def test_scores_carry_uplift_and_drive_the_winback_policy(trained):
    result, _, inputs, _ = trained
    scores = result.model.predict(None, result.model.build_features(inputs))
    ok = scores["status"] == "ok"
    assert scores.loc[ok, "uplift_value"].notna().all()
    assert scores.loc[~ok, "uplift_value"].isna().all()
    assert set(json.loads(scores.loc[ok, "uplift_by_channel"].iloc[0])) == set(
        result.model.uplift.channels
    )
    plan = rank_winback(
        scores,
        WinbackPolicy(max_contacts=100, holdout_share=0.2, campaign_id="next", offer_cost=3.0),
        result.model.uplift,
    )
    assert "held-out" in plan.policy.reason
    assert len(plan.selected) <= 100 and len(plan.holdout) > 0
    if plan.policy.policy == "uplift":
        assert (plan.selected["uplift_value"] > 3.0).all()


def test_the_gate_refuses_a_challenger_that_drops_uplift(trained):
    _, _, inputs, config = trained
    plain = train(inputs, config)
    assert plain.metrics["uplift_gate_passed"] == 0
    assert not plain.gate.promoted and "uplift" in plain.gate.reason
    assert pd.notna(plain.metrics["churn_roc_auc"])


def test_a_later_challenger_is_compared_on_the_campaigns_the_champion_never_saw(trained, demo_data):
    """The champion (as-of 2025-11-14) never saw winback-2025q4; a challenger trained at
    2025-12-31 held it out: both rank it, and the gate's reason is kept with the run."""
    from fidelite.training.tracking import mlflow_client

    _, uri, _, config = trained
    later = load_inputs(
        demo_data.transactions, demo_data.events, demo_data.customers, as_of="2025-12-31"
    )
    challenger = train(later, config, campaigns=demo_data.campaigns)
    assert challenger.metrics["gate_uplift_rows"] > 0
    tags = mlflow_client(uri).get_run(challenger.run_id).data.tags
    assert "winback-2025q4" in tags["uplift_gate_reason"]
    if challenger.metrics["uplift_gate_passed"] == 0:
        assert "significantly less" in challenger.gate.reason
