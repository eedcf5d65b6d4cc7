"""The logged pyfunc model: scores-frame contract, schema leniency, fresh-process load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest

from fidelite.features import build_features
from fidelite.features.data import DataContractError
from fidelite.features.demo import generate_demo_data
from fidelite.training.model import RISK_BAND_EDGES, SCORE_COLUMNS
from fidelite.training.train import TrainConfig, train

pytestmark = pytest.mark.slow

AS_OF = "2025-09-30"


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    demo = generate_demo_data(1200, seed=31)
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    config = TrainConfig(
        as_of=AS_OF,
        horizon_days=90,
        n_windows=2,
        tracking_uri=uri,
        experiment="test-roundtrip",
        register=False,
        n_jobs=1,
    )
    result = train(demo.transactions, demo.events, demo.customers, config=config)
    features = build_features(demo.inputs(AS_OF))
    return result, uri, features


def test_scores_frame_contract(logged):
    result, _, features = logged
    scores = result.model.predict(None, features, params={"as_of": AS_OF})
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert len(scores) == len(features) and scores["customer_id"].is_unique
    assert (scores["as_of"] == pd.Timestamp(AS_OF)).all() and (scores["horizon_days"] == 90).all()

    prospects = scores["customer_id"].isin(features.index[features["orders_total"] == 0])
    assert prospects.any()
    assert (scores.loc[prospects, "status"] == "insufficient_history").all()
    assert scores.loc[prospects, ["churn_probability", "predicted_clv"]].isna().all().all()

    ok = scores.loc[~prospects]
    assert (ok["status"] == "ok").all()
    assert ok["churn_probability"].between(0, 1).all() and ok["p_alive"].between(0, 1).all()
    assert (ok["predicted_clv_p10"] <= ok["predicted_clv"]).all()
    assert (ok["predicted_clv"] <= ok["predicted_clv_p90"]).all()
    assert ok["churn_percentile"].between(0, 100).all()
    np.testing.assert_allclose(ok["value_at_risk"], ok["churn_probability"] * ok["predicted_clv"])
    expected_band = np.array(["low", "medium", "high", "critical"])[
        np.searchsorted(RISK_BAND_EDGES, ok["churn_probability"], side="right")
    ]
    assert (ok["risk_band"].to_numpy() == expected_band).all()
    next_purchase = ok["expected_next_purchase"].dropna()
    assert (next_purchase > pd.Timestamp(AS_OF)).all()
    assert (next_purchase <= pd.Timestamp(AS_OF) + pd.Timedelta(days=270)).all()
    reasons = ok["reasons"].map(json.loads)
    assert reasons.map(len).between(0, 3).all() and reasons.map(len).gt(0).mean() > 0.9
    assert all(isinstance(r, str) and r for rs in reasons for r in rs)


def test_percentile_does_not_depend_on_the_batch(logged):
    result, _, features = logged
    buyers = features.loc[features["orders_total"] > 0]
    full = result.model.predict(None, buyers, params={"as_of": AS_OF}).set_index("customer_id")
    single = result.model.predict(None, buyers.head(1), params={"as_of": AS_OF})
    assert single["churn_percentile"].iloc[0] == full.loc[buyers.index[0], "churn_percentile"]


def test_pyfunc_accepts_missing_optional_columns_and_rejects_missing_required(logged):
    result, uri, features = logged
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    slim = features.reset_index()
    slim = slim.drop(
        columns=[c for c in slim.columns if c.startswith("eng_")]
        + ["lifecycle_stage", "best_channel", "email_opt_in"]
    ).head(50)
    scores = loaded.predict(slim, params={"as_of": AS_OF})
    assert (
        len(scores) == 50
        and scores.loc[scores["status"] == "ok", "churn_probability"].notna().all()
    )
    assert scores["email_opt_in"].all()  # absent consent column means opted in

    with pytest.raises(DataContractError, match="frequency"):
        result.model.predict(None, features.drop(columns=["frequency"]), params={"as_of": AS_OF})


def test_logged_model_scores_in_a_fresh_process(logged, tmp_path):
    result, uri, features = logged
    sample = features.head(200)
    sample.reset_index().to_parquet(tmp_path / "features.parquet")
    code = (
        "import sys, mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "frame = pd.read_parquet(sys.argv[2])\n"
        f"out = model.predict(frame, params={{'as_of': '{AS_OF}'}})\n"
        "inner = model.unwrap_python_model()\n"
        "assert type(inner).__name__ == 'FideliteModel'\n"
        "out.to_parquet(sys.argv[3])\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            result.model_uri,
            str(tmp_path / "features.parquet"),
            str(tmp_path / "scores.parquet"),
        ],
        check=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    fresh = pd.read_parquet(tmp_path / "scores.parquet")
    here = result.model.predict(None, sample, params={"as_of": AS_OF})
    np.testing.assert_allclose(fresh["churn_probability"], here["churn_probability"])
    np.testing.assert_allclose(fresh["predicted_clv"], here["predicted_clv"])
    assert fresh["reasons"].tolist() == here["reasons"].tolist()


def test_reasons_can_be_skipped_and_match_explain(logged):
    result, _, features = logged
    buyers = features.loc[features["orders_total"] > 0].head(100)
    full = result.model.predict(None, buyers, params={"as_of": AS_OF})
    bare = result.model.predict(None, buyers, params={"as_of": AS_OF, "reasons": False})
    assert (bare["reasons"] == "[]").all()
    numeric = ["churn_probability", "predicted_clv", "churn_percentile"]
    pd.testing.assert_frame_equal(full[numeric], bare[numeric])
    assert full["reasons"].map(json.loads).tolist() == result.model.explain(buyers)
    # Contributions plus the bias reproduce the churn model's raw log-odds.
    contributions = result.model.contributions(buyers)
    X = result.model.encoder.transform(result.model._augment(buyers))
    raw = result.model.churn.booster_.predict(
        X, raw_score=True, num_iteration=result.model.churn.best_iteration_
    )
    np.testing.assert_allclose(
        contributions.sum(axis=1) + result.model.attribution.expected_value_, raw
    )
