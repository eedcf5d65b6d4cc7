"""Inference params declared in the signature reach FideliteModel through mlflow.pyfunc."""

from __future__ import annotations

import json
import re

import mlflow
import pytest

from fidelite.features import build_features
from fidelite.features.demo import generate_demo_data
from fidelite.training.train import TrainConfig, train

pytestmark = pytest.mark.slow

AS_OF = "2025-09-30"
# A raw column name leaking into a phrase: "ipt_std_days = 3.77" or any snake_case word.
RAW_NAME = re.compile(r"_\w+ = |\w_\w")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    demo = generate_demo_data(800, seed=17)
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    config = TrainConfig(
        as_of=AS_OF,
        horizon_days=90,
        n_windows=2,
        tracking_uri=uri,
        experiment="test-pyfunc-params",
        register=False,
        n_jobs=1,
    )
    result = train(demo.transactions, demo.events, demo.customers, config=config)
    mlflow.set_tracking_uri(uri)
    features = build_features(demo.inputs(AS_OF))
    buyers = features[features["orders_total"] > 0].head(300).reset_index()
    return mlflow.pyfunc.load_model(result.model_uri), buyers


def test_signature_declares_as_of_and_reasons(loaded):
    model, _ = loaded
    params = {p.name: p for p in model.metadata.get_params_schema().params}
    assert params["as_of"].dtype.name == "string" and params["as_of"].default == ""
    assert params["reasons"].dtype.name == "boolean" and params["reasons"].default is True


def test_reasons_param_reaches_the_model(loaded):
    model, buyers = loaded
    bare = model.predict(buyers, params={"as_of": AS_OF, "reasons": False})
    assert (bare["reasons"] == "[]").all()

    full = model.predict(buyers, params={"as_of": AS_OF})
    reasons = full["reasons"].map(json.loads)
    assert reasons.map(len).gt(0).all()
    assert full["churn_probability"].tolist() == bare["churn_probability"].tolist()
    leaked = [r for rs in reasons for r in rs if RAW_NAME.search(r)]
    assert not leaked, leaked[:5]
