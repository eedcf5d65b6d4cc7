"""Uplift fixtures: a simple scorer and the demo campaigns fitted once per session."""

import numpy as np
import pandas as pd
import pytest

from fidelite.features import Inputs, build_features


def simple_scores(features: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    """A stand-in churn/CLV scorer (the uplift code only needs its columns)."""
    silent = features["days_since_last_purchase"].to_numpy(dtype=float)
    churn = 1.0 / (1.0 + np.exp(-(np.nan_to_num(silent, nan=365.0) / 60.0 - 2.0)))
    value = features["spend_365d"].to_numpy(dtype=float) / 4.0
    bought = features["orders_total"].to_numpy() > 0
    return pd.DataFrame(
        {
            "customer_id": features.index.to_numpy(dtype=object),
            "status": np.where(bought, "ok", "insufficient_history"),
            "churn_probability": churn,
            "predicted_clv": value * (1 - churn),
            "value_if_retained": value,
            "value_at_risk": churn * value,
            "email_opt_in": features["email_opt_in"].to_numpy(),
            "sms_opt_in": features["sms_opt_in"].to_numpy(),
            "push_opt_in": features["push_opt_in"].to_numpy(),
        }
    )


@pytest.fixture(scope="session")
def uplift_world(demo_data):
    """Demo tables cut at as-of 2025-11-14 (the last campaign comes after it)."""
    as_of = pd.Timestamp("2025-11-14")
    end = as_of + pd.Timedelta(days=1)
    tx = demo_data.transactions.loc[demo_data.transactions["timestamp"] < end]
    ev = demo_data.events.loc[demo_data.events["timestamp"] < end]
    calls = []

    history = Inputs(tx, as_of, ev, demo_data.customers)

    def build(day):
        calls.append(pd.Timestamp(day))
        return build_features(history, as_of=day)

    return {"as_of": as_of, "tx": tx, "ev": ev, "build": build, "calls": calls}


@pytest.fixture(scope="session")
def fitted(demo_data, uplift_world):
    from fidelite.training.uplift import UpliftConfig, fit_uplift

    config = UpliftConfig(n_boot=30, learner_params={"n_estimators": 40})
    return fit_uplift(
        demo_data.campaigns,
        uplift_world["tx"],
        as_of=uplift_world["as_of"],
        build=uplift_world["build"],
        score=simple_scores,
        config=config,
    )


@pytest.fixture(scope="session")
def campaign_trained(demo_data, tmp_path_factory):
    """``train(..., campaigns=...)`` at 2025-11-14 (3 windows), registered and promoted:
    (result, tracking uri, inputs, config)."""
    from fidelite.features.inputs import load_inputs
    from fidelite.training.config import TrainConfig
    from fidelite.training.train import train

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow-uplift') / 'mlflow.db'}"
    inputs = load_inputs(
        demo_data.transactions, demo_data.events, demo_data.customers, as_of="2025-11-14"
    )
    config = TrainConfig(n_windows=3, tracking_uri=uri, n_jobs=1, promote=True)
    result = train(inputs, config, campaigns=demo_data.campaigns)
    return result, uri, inputs, config
