"""The MLflow store is chosen explicitly and never leaks into process-wide state."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import pytest

from fidelite.training.tracking import default_tracking_uri, resolve_tracking_uri, tracking_scope


def test_default_store_is_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_tracking_uri() == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert resolve_tracking_uri() == default_tracking_uri()
    assert (tmp_path / "mlruns").is_dir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert resolve_tracking_uri() == "sqlite:///elsewhere.db"
    assert resolve_tracking_uri("http://tracking:5000") == "http://tracking:5000"


def test_tracking_scope_restores_uris_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///outer.db")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = mlflow.get_tracking_uri()
    inner = f"sqlite:///{tmp_path / 'inner.db'}"
    with tracking_scope(inner):
        assert mlflow.get_tracking_uri() == inner and mlflow.get_registry_uri() == inner
    assert mlflow.get_tracking_uri() == before
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///outer.db"
    assert "MLFLOW_REGISTRY_URI" not in os.environ


@pytest.mark.slow
def test_training_leaves_no_global_tracking_uri(trained):
    """Training logged to an explicit store; MLflow's process-wide URI is untouched."""
    from mlflow.tracking._tracking_service import utils

    assert utils._tracking_uri is None
    assert os.environ.get("MLFLOW_TRACKING_URI") != trained.tracking_uri


def test_imports_have_no_side_effects_and_scoring_loads_no_matplotlib():
    # Libraries below us set a few variables of their own (MLflow's telemetry session,
    # libomp switches); ours are the OpenMP wait policy and the MLflow store.
    code = (
        "import os, sys\n"
        "ours = ('OMP_WAIT_POLICY', 'MLFLOW_TRACKING_URI', 'MLFLOW_REGISTRY_URI')\n"
        "import fidelite.training.model, fidelite.training.registry, fidelite.training.score\n"
        "assert 'matplotlib' not in sys.modules, 'the scoring path imported matplotlib'\n"
        "import fidelite.training.train\n"
        "assert not [v for v in ours if v in os.environ], 'an import set an environment variable'\n"
        "from mlflow.tracking._tracking_service import utils\n"
        "assert utils._tracking_uri is None\n"
    )
    ours = ("OMP_WAIT_POLICY", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    env = {k: v for k, v in os.environ.items() if k not in ours}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
