"""A real fidelite server for the serving tests.

Once per session: generate small demo data, train and promote a model into a temporary
MLflow store, write a scores snapshot, then start ``fidelite serve`` (export to a
temporary BentoML home + ``bentoml serve``) on a free port and wait for ``/readyz``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

AS_OF = "2025-09-30"
HORIZON_DAYS = 90
API_KEY = "test-key-1"
OTHER_KEY = "test-key-2"
MAX_BATCH = 50
MAX_BODY_BYTES = 2_000_000
STARTUP_TIMEOUT_S = 120


@dataclass
class LiveServer:
    """Handle on the running server and the data behind it."""

    base_url: str
    snapshot_path: Path
    snapshot: pd.DataFrame
    features: pd.DataFrame
    demo: object
    log_path: Path

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server not ready after {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Demo data, a promoted champion in a temporary MLflow store and a snapshot."""
    from fidelite.features import build_features
    from fidelite.features.demo import generate_demo_data
    from fidelite.features.inputs import load_inputs
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
    snapshot_path = root / "scores.parquet"
    snapshot.to_parquet(snapshot_path, index=False)
    features = build_features(demo.inputs(AS_OF))
    return {
        "root": root,
        "tracking_uri": tracking_uri,
        "demo": demo,
        "snapshot": snapshot,
        "snapshot_path": snapshot_path,
        "features": features,
    }


@pytest.fixture(scope="session")
def live_server(trained_store: dict) -> Iterator[LiveServer]:
    root: Path = trained_store["root"]
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "MLFLOW_TRACKING_URI": trained_store["tracking_uri"],
            "BENTOML_HOME": str(root / "bentoml"),
            "FIDELITE_API_KEYS": f"{API_KEY}, {OTHER_KEY}",
            "FIDELITE_MAX_BATCH": str(MAX_BATCH),
            "FIDELITE_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "BENTOML_DO_NOT_TRACK": "true",
            # one LightGBM thread: OpenMP spinning on a shared 2-core machine hurts latency
            "OMP_NUM_THREADS": "1",
        }
    )
    log_path = root / "server.log"
    command = [
        sys.executable,
        "-m",
        "fidelite.cli",
        "serve",
        "--port",
        str(port),
        "--snapshot",
        str(trained_store["snapshot_path"]),
    ]
    with log_path.open("wb") as log:
        # own session, so teardown can stop bentoml's worker processes with the group
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, process, log_path)
        yield LiveServer(
            base_url=base_url,
            snapshot_path=trained_store["snapshot_path"],
            snapshot=trained_store["snapshot"],
            features=trained_store["features"],
            demo=trained_store["demo"],
            log_path=log_path,
        )
    finally:
        stop_server(process)


def stop_server(process: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM `fidelite serve` (it forwards to bentoml); SIGKILL its group if it hangs."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
