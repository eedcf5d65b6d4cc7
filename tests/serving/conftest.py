"""A real fidelite server for the serving tests, started once per session.

Generate small demo data, train and promote a model into a temporary MLflow store, write
a scores snapshot, then start ``fidelite serve`` (export to a temporary BentoML home +
``bentoml serve``) on a free port with the server-start helper the benchmarks use too
(:func:`fidelite.serving.launch.running_server`). Short reload/check intervals and
timeouts let the tests see reloads and timeouts within seconds.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from fidelite.serving.launch import fidelite_serve_command, free_port, running_server

AS_OF = "2025-09-30"
HORIZON_DAYS = 90
API_KEY = "test-key-1"
OTHER_KEY = "test-key-2"
MAX_BATCH = 50
MAX_BODY_BYTES = 2_000_000
HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 2


@dataclass
class LiveServer:
    """Handle on the running server and the data behind it."""

    base_url: str
    tracking_uri: str
    snapshot_path: Path
    snapshot: pd.DataFrame
    features: pd.DataFrame
    demo: object
    log_path: Path
    port: int
    report_path: Path | None = None

    def refresh_report(self) -> None:
        """Make the report beside the snapshot newer than it (tests rewrite the snapshot)."""
        if self.report_path is not None:
            os.utime(self.report_path)

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)

    def rows(self, ids: list[str]) -> list[dict]:
        """Feature rows of ``ids`` as a client would send them."""
        frame = self.features.loc[ids].reset_index()
        return json.loads(frame.to_json(orient="records"))

    def scored_ids(self, n: int, status: str = "ok") -> list[str]:
        frame = self.snapshot
        return frame.loc[frame["status"] == status, "customer_id"].head(n).tolist()


def server_env(root: Path, tracking_uri: str, **overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "BENTOML_HOME": str(root / "bentoml"),
            "FIDELITE_API_KEYS": f"{API_KEY}, {OTHER_KEY}",
            "FIDELITE_MAX_BATCH": str(MAX_BATCH),
            "FIDELITE_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "FIDELITE_WORKERS": "1",
            "FIDELITE_RELOAD_SECONDS": "1",
            "FIDELITE_SNAPSHOT_CHECK_SECONDS": "0.5",
            "FIDELITE_HEADER_TIMEOUT": str(HEADER_TIMEOUT_S),
            "FIDELITE_BODY_TIMEOUT": str(BODY_TIMEOUT_S),
            "FIDELITE_WINBACK_LIMIT": "20",
            "BENTOML_DO_NOT_TRACK": "true",
            # one LightGBM thread: OpenMP spinning on a shared 2-core machine hurts latency
            "OMP_NUM_THREADS": "1",
        }
    )
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Demo data, a promoted champion in a temporary MLflow store and a snapshot."""
    from fidelite.features import build_features
    from fidelite.features.demo import generate_demo_data
    from fidelite.features.inputs import load_inputs
    from fidelite.reports.publish import report_path_for
    from fidelite.reports.report import render_report, write_report
    from fidelite.serving.snapshot import write_snapshot_atomic
    from fidelite.training.config import TrainConfig
    from fidelite.training.score import score
    from fidelite.training.train import train

    root = tmp_path_factory.mktemp("serving")
    tracking_uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    demo = generate_demo_data(1500, seed=11)
    inputs = load_inputs(demo.transactions, demo.events, demo.customers, as_of=AS_OF)
    result = train(
        inputs,
        TrainConfig(horizon_days=HORIZON_DAYS, promote=True, tracking_uri=tracking_uri),
    )
    assert result.gate is not None and result.gate.promoted, result.gate
    snapshot = score(inputs, tracking_uri=tracking_uri)
    snapshot_path = write_snapshot_atomic(snapshot, root / "scores.parquet")
    shutil.copy(snapshot_path, root / "scores.good.parquet")
    # as `fidelite score` does: the customer-base report beside the snapshot (GET /report)
    html = render_report(
        demo.transactions, demo.events, demo.customers, as_of=AS_OF, scores=snapshot
    )
    report_path = write_report(html, report_path_for(snapshot_path))
    features = build_features(demo.inputs(AS_OF))
    return {
        "root": root,
        "tracking_uri": tracking_uri,
        "demo": demo,
        "snapshot": snapshot,
        "snapshot_path": snapshot_path,
        "report_path": report_path,
        "features": features,
    }


@pytest.fixture(scope="session")
def live_server(trained_store: dict) -> Iterator[LiveServer]:
    root: Path = trained_store["root"]
    port = free_port()
    command = fidelite_serve_command(port=port, snapshot=trained_store["snapshot_path"])
    log_path = root / "server.log"
    env = server_env(root, trained_store["tracking_uri"])
    with running_server(command, env=env, port=port, log=log_path) as (url, _process):
        yield LiveServer(
            base_url=url,
            tracking_uri=trained_store["tracking_uri"],
            snapshot_path=trained_store["snapshot_path"],
            snapshot=trained_store["snapshot"],
            features=trained_store["features"],
            demo=trained_store["demo"],
            log_path=log_path,
            port=port,
            report_path=trained_store["report_path"],
        )
