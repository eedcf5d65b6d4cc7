"""The logged pyfunc model: scores-frame contract, schema leniency, fresh-process load."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from fidelite.errors import DataContractError
from fidelite.features.contract import SCORE_COLUMNS, score_column_names
from fidelite.training.scoreframe import RISK_BAND_EDGES
from fidelite.training.tracking import tracking_scope

pytestmark = pytest.mark.slow

AS_OF = "2025-06-30"


def test_scores_frame_is_the_contract(trained):
    features = trained.features
    scores = trained.result.model.predict(None, features, params={"as_of": AS_OF})
    # The scores frame and the contract (which serving's response schema derives from)
    # must never drift apart.
    assert list(scores.columns) == list(score_column_names())
    nullable = {c.name for c in SCORE_COLUMNS if c.nullable}
    assert not scores[[c for c in scores.columns if c not in nullable]].isna().any().any()
    assert len(scores) == len(features) and scores["customer_id"].is_unique
    assert (scores["as_of"] == pd.Timestamp(AS_OF)).all() and (scores["horizon_days"] == 90).all()

    prospects = scores["customer_id"].isin(features.index[features["orders_total"] == 0])
    assert prospects.any()
    assert (scores.loc[prospects, "status"] == "prospect").all()
    assert scores.loc[prospects, ["churn_probability", "predicted_clv"]].notna().all().all()
    assert scores.loc[prospects, "p_alive"].isna().all()  # BG/NBD needs a purchase

    ok = scores.loc[~prospects]
    assert (ok["status"] == "ok").all()
    assert ok["churn_probability"].between(0, 1).all() and ok["p_alive"].between(0, 1).all()
    assert (ok["predicted_clv_p10"] <= ok["predicted_clv"]).all()
    assert (ok["predicted_clv_p10"] <= ok["predicted_clv_p90"]).all()
    assert ok["churn_percentile"].between(0, 100).all()
    np.testing.assert_allclose(
        ok["value_at_risk"], ok["churn_probability"] * ok["value_if_retained"]
    )
    expected_band = np.array(["low", "medium", "high", "critical"])[
        np.searchsorted(RISK_BAND_EDGES, ok["churn_probability"], side="right")
    ]
    assert (ok["risk_band"].to_numpy() == expected_band).all()
    next_purchase = ok["expected_next_purchase"].dropna()
    assert (next_purchase > pd.Timestamp(AS_OF)).all()
    assert (next_purchase <= pd.Timestamp(AS_OF) + pd.Timedelta(days=90)).all()
    reasons = ok["reasons"].map(json.loads)
    assert reasons.map(len).between(0, 3).all() and reasons.map(len).gt(0).mean() > 0.9
    assert all(isinstance(r, str) and r for rs in reasons for r in rs)


def test_model_carries_what_built_its_features(trained):
    model = trained.result.model
    assert model.feature_params == trained.result.model.feature_params
    assert model.code_version["fidelite"]
    pd.testing.assert_frame_equal(model.build_features(trained.inputs), trained.features)


def test_percentile_does_not_depend_on_the_batch(trained):
    buyers = trained.features.loc[trained.features["orders_total"] > 0]
    model = trained.result.model
    full = model.predict(None, buyers, params={"as_of": AS_OF}).set_index("customer_id")
    single = model.predict(None, buyers.head(1), params={"as_of": AS_OF})
    assert single["churn_percentile"].iloc[0] == full.loc[buyers.index[0], "churn_percentile"]


def test_pyfunc_accepts_missing_optional_columns_and_rejects_missing_required(trained):
    with tracking_scope(trained.tracking_uri):
        loaded = mlflow.pyfunc.load_model(trained.result.model_uri)
    slim = trained.features.reset_index()
    slim = slim.drop(
        columns=[c for c in slim.columns if c.startswith("eng_")]
        + ["lifecycle_stage", "best_channel", "email_opt_in"]
    ).head(50)
    scores = loaded.predict(slim, params={"as_of": AS_OF})
    assert len(scores) == 50
    assert scores.loc[scores["status"] == "ok", "churn_probability"].notna().all()
    assert scores["email_opt_in"].all()  # absent consent column means opted in

    with pytest.raises(DataContractError, match="frequency"):
        trained.result.model.predict(
            None, trained.features.drop(columns=["frequency"]), params={"as_of": AS_OF}
        )


def test_pyfunc_pins_fidelite_and_declares_its_params(trained):
    with tracking_scope(trained.tracking_uri):
        loaded = mlflow.pyfunc.load_model(trained.result.model_uri)
        requirements = mlflow.pyfunc.get_model_dependencies(trained.result.model_uri)
    pinned = Path(requirements).read_text().split()
    assert f"fidelite=={trained.result.model.code_version['fidelite']}" in pinned
    params = {p.name: p for p in loaded.metadata.get_params_schema().params}
    assert params["as_of"].dtype.name == "string" and params["as_of"].default == ""
    assert params["reasons"].dtype.name == "boolean" and params["reasons"].default is True


def test_logged_model_scores_in_a_fresh_process(trained, tmp_path):
    sample = trained.features.head(200)
    sample.reset_index().to_parquet(tmp_path / "features.parquet")
    code = (
        "import sys, mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "frame = pd.read_parquet(sys.argv[2])\n"
        f"out = model.predict(frame, params={{'as_of': '{AS_OF}'}})\n"
        "inner = model.unwrap_python_model()\n"
        "assert type(inner).__name__ == 'FideliteModel'\n"
        "assert 'matplotlib' not in sys.modules, 'scoring loaded matplotlib'\n"
        "out.to_parquet(sys.argv[3])\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained.tracking_uri}
    subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            trained.result.model_uri,
            str(tmp_path / "features.parquet"),
            str(tmp_path / "scores.parquet"),
        ],
        check=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    fresh = pd.read_parquet(tmp_path / "scores.parquet")
    here = trained.result.model.predict(None, sample, params={"as_of": AS_OF})
    np.testing.assert_allclose(fresh["churn_probability"], here["churn_probability"])
    np.testing.assert_allclose(fresh["predicted_clv"], here["predicted_clv"])
    assert fresh["reasons"].tolist() == here["reasons"].tolist()


def test_reasons_can_be_skipped_and_match_explain(trained):
    model = trained.result.model
    buyers = trained.features.loc[trained.features["orders_total"] > 0].head(100)
    full = model.predict(None, buyers, params={"as_of": AS_OF})
    bare = model.predict(None, buyers, params={"as_of": AS_OF, "reasons": "false"})
    assert (bare["reasons"] == "[]").all()
    numeric = ["churn_probability", "predicted_clv", "churn_percentile"]
    pd.testing.assert_frame_equal(full[numeric], bare[numeric])
    assert full["reasons"].map(json.loads).tolist() == model.explain(buyers)
    # Contributions plus the bias reproduce the churn model's raw log-odds.
    hurdle = model.purchasers
    X = hurdle.encoder.transform(model._augment(buyers))
    attribution = model.attribution("purchasers")
    raw = hurdle.churn.estimator_.predict(
        X, raw_score=True, num_iteration=hurdle.churn.best_iteration_
    )
    np.testing.assert_allclose(
        attribution.contributions(X).sum(axis=1) + attribution.expected_value_, raw
    )


RAW_NAME = re.compile(r"_\w+ = |\w_\w")  # "ipt_std_days = 3.77" or any snake_case name


def test_reasons_param_reaches_the_model_through_pyfunc(trained):
    with tracking_scope(trained.tracking_uri):
        loaded = mlflow.pyfunc.load_model(trained.result.model_uri)
    buyers = trained.features[trained.features["orders_total"] > 0].head(300).reset_index()
    bare = loaded.predict(buyers, params={"as_of": AS_OF, "reasons": False})
    assert (bare["reasons"] == "[]").all()
    full = loaded.predict(buyers, params={"as_of": AS_OF})
    reasons = full["reasons"].map(json.loads)
    assert reasons.map(len).gt(0).all()
    assert full["churn_probability"].tolist() == bare["churn_probability"].tolist()
    leaked = [r for rs in reasons for r in rs if RAW_NAME.search(r)]
    assert not leaked, leaked[:5]
