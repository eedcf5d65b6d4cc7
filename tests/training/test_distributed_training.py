"""Training and scoring on a real Dask LocalCluster give a normal, comparable model."""

from __future__ import annotations

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest

from fidelite.features import build_features
from fidelite.features.distributed import dask_client
from fidelite.training.distributed import (
    DaskChurnModel,
    DaskClvModel,
    _spread_over_workers,
    model_classes,
    score_dask,
)
from fidelite.training.score import score
from fidelite.training.train import TrainConfig, train

AS_OF = "2025-12-31"
SCORE_COLUMNS = {
    "customer_id",
    "as_of",
    "horizon_days",
    "status",
    "churn_probability",
    "p_alive",
    "expected_purchases",
    "predicted_clv",
    "predicted_clv_p10",
    "predicted_clv_p90",
    "expected_next_purchase",
    "lifecycle_stage",
    "churn_percentile",
    "risk_band",
    "value_at_risk",
    "reasons",
    "best_channel",
    "channel_preference",
    "email_opt_in",
    "sms_opt_in",
    "push_opt_in",
}


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2, threads_per_worker=1) as client:
        yield client


@pytest.fixture(scope="module")
def runs(client, demo_data, tmp_path_factory):
    """The same training on one machine and on the cluster, in one MLflow store."""
    tracking_uri = f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"
    data = (demo_data.transactions, demo_data.events, demo_data.customers)
    common = {"as_of": AS_OF, "n_windows": 3, "tracking_uri": tracking_uri}
    single = train(*data, config=TrainConfig(**common, register=False))
    distributed = train(*data, config=TrainConfig(**common, engine="dask"))
    return {"single": single, "dask": distributed, "tracking_uri": tracking_uri}


def test_dask_churn_auc_close_to_single_machine(runs):
    single, distributed = runs["single"].metrics, runs["dask"].metrics
    assert distributed["churn_roc_auc"] > 0.75
    assert abs(distributed["churn_roc_auc"] - single["churn_roc_auc"]) < 0.02
    # The CLV model learns too (Spearman of predicted vs actual spend on validation).
    assert distributed["clv_spearman"] > 0.5 * single["clv_spearman"]
    assert 1 <= distributed["churn_best_iteration"] <= 300


def test_dask_model_loads_from_registry_and_scores_without_cluster_objects(runs, demo_data):
    run = runs["dask"]
    mlflow.set_tracking_uri(runs["tracking_uri"])
    assert mlflow.get_run(run.run_id).data.params["engine"] == "dask"
    loaded = mlflow.pyfunc.load_model(f"models:/fidelite/{run.model_version}")
    model = loaded.unwrap_python_model()
    for booster in (model.churn.booster_, model.clv.booster_):
        assert isinstance(booster, lgb.LGBMModel)
        assert not isinstance(booster, (lgb.DaskLGBMClassifier, lgb.DaskLGBMRegressor))
    features = build_features(demo_data.inputs(AS_OF))
    scores = loaded.predict(features.reset_index(), params={"as_of": AS_OF})
    assert set(scores.columns) >= SCORE_COLUMNS
    assert len(scores) == len(features)
    ok = scores["status"] == "ok"
    assert ok.sum() > 0.5 * len(scores)
    assert scores.loc[ok, "churn_probability"].between(0, 1).all()


def test_distributed_scoring_equals_local_scoring(runs, demo_data):
    run, uri = runs["dask"], runs["tracking_uri"]
    data = (demo_data.transactions, demo_data.events, demo_data.customers)
    local = score(*data, as_of=AS_OF, model_uri=run.model_uri, tracking_uri=uri)
    distributed = score_dask(
        *data, as_of=AS_OF, model_uri=run.model_uri, tracking_uri=uri, npartitions=3
    )
    pd.testing.assert_frame_equal(
        distributed, local.reset_index(drop=True), check_exact=False, rtol=1e-9
    )


def test_every_worker_receives_training_rows(client):
    frame = pd.DataFrame({"x": np.arange(10.0)})
    before = set(client.who_has())
    spread = _spread_over_workers(client, frame)
    blocks = {k: w for k, w in client.who_has().items() if k not in before}
    assert len(blocks) == 2
    assert {w for holders in blocks.values() for w in holders} == set(
        client.scheduler_info()["workers"]
    )
    pd.testing.assert_frame_equal(spread.compute(), frame)


def test_engine_switch_picks_estimators():
    assert model_classes("dask") == (DaskChurnModel, DaskClvModel)
    with pytest.raises(ValueError, match="engine must be one of"):
        model_classes("spark")
