"""``fidelite serve`` fails fast, with a hint, when there is nothing to serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli import app
from fidelite.errors import ConfigurationError, ModelNotFoundError


def _empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing MLflow store without models; the service runs without keys."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()  # creates the tables
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("FIDELITE_AUTH", "off")


@pytest.mark.parametrize("command", [["serve", "--port", "3999"], ["export-bento"]])
def test_without_champion_exits_with_training_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    _empty_store(tmp_path, monkeypatch)
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    result = CliRunner().invoke(app, command)
    assert result.exit_code == ModelNotFoundError.exit_code
    output = " ".join(result.output.split())
    assert "models:/fidelite@champion" in output
    assert "--promote" in output


def test_serve_rejects_a_non_registry_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _empty_store(tmp_path, monkeypatch)
    result = CliRunner().invoke(app, ["serve", "--model-uri", "runs:/abc/model"])
    assert result.exit_code == ConfigurationError.exit_code
    assert "models:/<name>@<alias>" in " ".join(result.output.split())
