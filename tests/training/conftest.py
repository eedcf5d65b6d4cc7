"""One real training run on the session's demo data, shared by the end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from fidelite.features.demo import DemoData, generate_demo_data
from fidelite.features.inputs import Inputs, load_inputs
from fidelite.training.config import TrainConfig
from fidelite.training.train import TrainResult, train

AS_OF = "2025-06-30"
HORIZON = 90


@dataclass(frozen=True)
class Trained:
    """A training run, where it was logged, and the features it scores."""

    result: TrainResult
    tracking_uri: str
    inputs: Inputs
    features: pd.DataFrame
    demo: DemoData


@pytest.fixture(scope="session")
def training_demo() -> DemoData:
    """3,000 demo customers (seed 3): enough prospects for a first-purchase model."""
    return generate_demo_data(3000, seed=3)


@pytest.fixture(scope="session")
def trained(training_demo: DemoData, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """``train`` at 2025-06-30 (H = 90, 3 windows) on the training demo, registered."""
    demo_data = training_demo
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    inputs = load_inputs(demo_data.transactions, demo_data.events, demo_data.customers, as_of=AS_OF)
    config = TrainConfig(
        horizon_days=HORIZON, n_windows=3, tracking_uri=uri, experiment="test-train", n_jobs=1
    )
    result = train(inputs, config)
    return Trained(result, uri, inputs, result.model.build_features(inputs), demo_data)
