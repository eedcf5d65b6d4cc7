"""Training and scoring on a real Dask LocalCluster give a normal, comparable model."""

from __future__ import annotations

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest

from fidelite.features.contract import score_column_names
from fidelite.features.distributed import dask_client
from fidelite.features.inputs import load_inputs
from fidelite.training.config import TrainConfig
from fidelite.training.distributed import (
    DaskChurnModel,
    DaskSpendModel,
    DaskTimingModel,
    _held_out_losses,
    _spread_over_workers,
    model_classes,
    score_dask,
)
from fidelite.training.score import score
from fidelite.training.tracking import mlflow_client, tracking_scope
from fidelite.training.train import train

pytestmark = pytest.mark.slow

AS_OF = "2025-06-30"  # the session training run's as-of (tests/training/conftest.py)


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2, threads_per_worker=1) as client:
        yield client


@pytest.fixture(scope="module")
def runs(client, trained, tmp_path_factory):
    """The session's single-machine training, repeated on the cluster in another store."""
    tracking_uri = f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"
    config = TrainConfig(n_windows=3, tracking_uri=tracking_uri, n_jobs=1, engine="dask")
    distributed = train(trained.inputs, config)
    return {"single": trained.result, "dask": distributed, "tracking_uri": tracking_uri}


def test_dask_churn_auc_close_to_single_machine(runs):
    single, distributed = runs["single"].metrics, runs["dask"].metrics
    assert distributed["churn_roc_auc"] > 0.75
    assert abs(distributed["churn_roc_auc"] - single["churn_roc_auc"]) < 0.02
    # The CLV model learns too (Spearman of predicted vs actual spend on validation).
    assert distributed["clv_spearman"] > 0.5 * single["clv_spearman"]
    assert 1 <= distributed["churn_best_iteration"] <= 300


def test_dask_model_loads_from_registry_and_scores_without_cluster_objects(runs, training_demo):
    run, uri = runs["dask"], runs["tracking_uri"]
    assert mlflow_client(uri).get_run(run.run_id).data.params["engine"] == "dask"
    with tracking_scope(uri):
        loaded = mlflow.pyfunc.load_model(f"models:/fidelite/{run.model_version}")
    model = loaded.unwrap_python_model()
    hurdle = model.purchasers
    for estimator in (hurdle.churn.estimator_, hurdle.spend.estimator_, hurdle.timing.estimator_):
        assert isinstance(estimator, lgb.LGBMModel)
        assert not isinstance(estimator, (lgb.DaskLGBMClassifier, lgb.DaskLGBMRegressor))
    inputs = load_inputs(
        training_demo.transactions, training_demo.events, training_demo.customers, as_of=AS_OF
    )
    features = model.build_features(inputs)
    scores = loaded.predict(features.reset_index(), params={"as_of": AS_OF})
    assert list(scores.columns) == list(score_column_names())
    assert len(scores) == len(features)
    ok = scores["status"] == "ok"
    assert ok.sum() > 0.5 * len(scores)
    assert scores.loc[ok, "churn_probability"].between(0, 1).all()


def test_distributed_scoring_equals_local_scoring(runs, training_demo):
    run, uri = runs["dask"], runs["tracking_uri"]
    data = (training_demo.transactions, training_demo.events, training_demo.customers)
    local = score(load_inputs(*data, as_of=AS_OF), model_uri=run.model_uri, tracking_uri=uri)
    distributed = score_dask(
        *data, as_of=pd.Timestamp(AS_OF), model_uri=run.model_uri, tracking_uri=uri, npartitions=3
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
    assert model_classes("dask") == {
        "churn": DaskChurnModel,
        "spend": DaskSpendModel,
        "timing": DaskTimingModel,
    }
    with pytest.raises(ValueError, match="engine must be one of"):
        TrainConfig(engine="spark")


def test_over_the_client_budget_trees_fit_on_every_row_on_the_workers(
    client, trained, tmp_path, monkeypatch
):
    """More customers than the client may hold (5M on this machine): the client gathers a
    uniform sample of about ``CLIENT_CUSTOMERS`` customers' rows per window (encoder,
    tree count, levels, held-out metrics), the baseline is fitted on every purchaser, and
    the churn and spend trees are fitted on every customer's rows on the workers."""
    # The budget setting (of 3,000 demo customers), as an operator would set it.
    monkeypatch.setenv("FIDELITE_CLIENT_CUSTOMERS", "1500")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = TrainConfig(n_windows=3, tracking_uri=uri, n_jobs=1, engine="dask", register=False)
    sampled = train(trained.inputs, config)
    full = trained.result
    keep = 1500 / len(trained.features)  # the customers known at the as-of day
    assert keep < 0.8
    for rows in ("n_validation_rows", "n_train_rows"):
        assert abs(sampled.metrics[rows] / full.metrics[rows] - keep) < 0.08
    # The trees saw every purchaser's training rows, not the sample's (logged to MLflow).
    assert sampled.metrics["churn_tree_rows"] == full.metrics["n_train_rows"]
    logged = mlflow_client(uri).get_run(sampled.run_id).data.metrics
    assert logged["churn_tree_rows"] == full.metrics["n_train_rows"]
    hurdle = sampled.model.purchasers
    assert hurdle.churn.sample_tree_rows_ == sampled.metrics["n_train_rows"]
    # Spend trees: every buyer of the training windows (more than the sample has).
    buyers = (trained.result.metrics["n_train_rows"], sampled.metrics["spend_tree_rows"])
    assert hurdle.spend.sample_tree_rows_ < buyers[1] < buyers[0]
    assert hurdle.churn.estimator_.n_estimators_ == hurdle.churn.best_iteration_
    assert sampled.metrics["churn_roc_auc"] > 0.75
    assert abs(sampled.metrics["churn_roc_auc"] - full.metrics["churn_roc_auc"]) < 0.03
    assert sampled.metrics["clv_spearman"] > 0.8 * full.metrics["clv_spearman"]
    for part in ("purchase_model_", "spend_model_"):
        a, b = (getattr(r.model.baseline, part).params_ for r in (full, sampled))
        np.testing.assert_allclose([b[k] for k in a], [a[k] for k in a], rtol=1e-6)


def test_held_out_losses_follow_the_trees():
    """The loss after each tree, from one conversion of the frame, equals the loss of
    LightGBM's own prediction with that many trees (categorical columns included)."""
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"a": rng.normal(size=600), "c": pd.Categorical(rng.choice(list("xyz"), size=600))}
    )
    y = ((X["a"] + (X["c"] == "x") + rng.normal(size=600)) > 0.5).astype(int).to_numpy()
    model = lgb.LGBMClassifier(n_estimators=15, verbose=-1).fit(X, y)
    start = rng.normal(scale=0.1, size=600)
    # Held-out levels in another order than at training: mapped through the model's.
    X = X.assign(c=X["c"].cat.reorder_categories(["z", "y", "x"]))

    def loss(target, raw):
        return log_loss(target, 1 / (1 + np.exp(-raw)), labels=[0, 1])

    expected = [
        loss(y, start + model.predict(X, raw_score=True, num_iteration=k)) for k in range(1, 16)
    ]
    np.testing.assert_allclose(_held_out_losses(model, X, start, y, loss), expected, rtol=1e-9)
