"""Startup fails fast, non-zero, with one line naming what is wrong (defects 5 and 8)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fidelite.serving.launch import free_port, server_command

pytestmark = pytest.mark.slow


def _run(command: list[str], env: dict[str, str], timeout_s: float = 90) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    return done.returncode, (done.stdout + done.stderr).strip(), time.monotonic() - started


def _serve(env_changes: dict[str, str], tmp_path: Path) -> tuple[int, str, float]:
    env = dict(os.environ)
    env.update(
        {
            "FIDELITE_API_KEYS": "k",
            "BENTOML_HOME": str(tmp_path / "bentoml"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none.db'}",
        }
    )
    env.update(env_changes)
    command = [sys.executable, "-m", "fidelite.cli", "serve", "--port", str(free_port())]
    return _run(command, env)


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in output, output[-2000:]
    return lines[0]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"FIDELITE_MAX_BATCH": "abc"}, "FIDELITE_MAX_BATCH"),
        ({"FIDELITE_API_KEYS": ""}, "FIDELITE_API_KEYS"),
        ({"FIDELITE_API_KEYS": " , "}, "FIDELITE_API_KEYS"),
        ({"FIDELITE_WORKERS": "0"}, "FIDELITE_WORKERS"),
    ],
)
def test_bad_settings_exit_at_once(changes: dict, needle: str, tmp_path: Path) -> None:
    code, output, _ = _serve(changes, tmp_path)
    assert code != 0
    assert needle in _one_line(output)


def test_missing_store_is_an_error_and_never_created(tmp_path: Path) -> None:
    store = tmp_path / "nowhere" / "mlflow.db"
    code, output, _ = _serve({"MLFLOW_TRACKING_URI": f"sqlite:///{store}"}, tmp_path)
    assert code != 0 and "does not exist" in _one_line(output)
    assert not store.exists() and not store.parent.exists()


def test_corrupt_store_gets_one_line(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"this is not a database" * 100)
    code, output, _ = _serve({"MLFLOW_TRACKING_URI": f"sqlite:///{store}"}, tmp_path)
    assert code != 0 and "MLFLOW_TRACKING_URI" in _one_line(output)


def test_unreachable_tracking_server_fails_within_seconds(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    code, output, elapsed = _serve({"MLFLOW_TRACKING_URI": uri}, tmp_path)
    assert code != 0 and "unreachable" in _one_line(output)
    assert elapsed < 45  # interpreter start-up on a loaded machine included


def test_bentoml_serve_with_bad_settings_exits_instead_of_crash_looping(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        FIDELITE_API_KEYS="k",
        FIDELITE_MAX_BATCH="abc",
        BENTOML_HOME=str(tmp_path / "bentoml"),
    )
    code, output, _ = _run(server_command(port=free_port(), host="127.0.0.1"), env)
    assert code != 0 and "FIDELITE_MAX_BATCH" in output
