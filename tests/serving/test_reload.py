"""Promoting a new champion while the service runs: it switches without a restart and
without a failed request (defect 6)."""

from __future__ import annotations

import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from fidelite.training.tracking import tracking_scope
from tests.serving.conftest import AS_OF, LiveServer

pytestmark = pytest.mark.slow


def test_new_champion_is_served_without_restart_or_failed_request(
    live_server: LiveServer,
) -> None:
    with live_server.client() as client:
        deadline = time.monotonic() + 30
        before = client.get("/model").json()
        while before["checked_at"] is None and time.monotonic() < deadline:
            time.sleep(0.3)  # the first registry check runs right after startup
            before = client.get("/model").json()
    assert before["is_champion"] is True, str(before)
    registry = MlflowClient(tracking_uri=live_server.tracking_uri)
    current = registry.get_model_version_by_alias("fidelite", "champion")
    payload = {"as_of": AS_OF, "features": live_server.rows(live_server.scored_ids(2))}
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def traffic() -> None:
        with live_server.client() as client:
            while not stop.is_set():
                response = client.post("/predict", json=payload)
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.add(response.json()["model"]["version"])

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        time.sleep(1.0)
        # the same artifacts registered again: a new version for the registry
        # (MLflow resolves the logged model through its process-wide URI: scope it)
        with tracking_scope(live_server.tracking_uri) as scoped:
            promoted = scoped.create_model_version(
                "fidelite", current.source, run_id=current.run_id
            )
            scoped.set_registered_model_alias("fidelite", "champion", promoted.version)
        deadline = time.monotonic() + 60
        info = before
        with live_server.client() as client:
            while time.monotonic() < deadline:
                info = client.get("/model").json()
                if info["version"] == str(promoted.version):
                    break
                time.sleep(0.3)
        time.sleep(1.0)  # traffic continues on the new version
    finally:
        stop.set()
        sender.join(timeout=60)
    assert info["version"] == str(promoted.version), info
    assert info["is_champion"] is True and info["alias"] == "champion"
    assert info["alias_version"] == str(promoted.version)
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    assert {str(current.version), str(promoted.version)} <= versions
