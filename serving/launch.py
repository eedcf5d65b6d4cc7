"""Starting the service: what ``fidelite serve`` runs, and the helper tests and benchmarks
use to run a real server.

Startup fails fast and says why in one line: settings are validated before anything
starts (:class:`ServiceSettings`), the MLflow store must exist and be readable (a
missing ``sqlite`` file is never created, an unreachable tracking server fails within
seconds), and the model must exist in the registry. Only then is ``bentoml serve``
started, with the exported model, the registry alias to follow and the snapshot path.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from fidelite.serving.errors import ModelLoadError
from fidelite.serving.settings import (
    BENTO_MODEL_ENV,
    DEFAULT_MODEL_URI,
    MODEL_URI_ENV,
    SNAPSHOT_ENV,
    ServiceSettings,
)
from fidelite.serving.store import check_tracking_store

SERVICE_TARGET = "fidelite.serving.service:Fidelite"
STARTUP_TIMEOUT_S = 180.0


def server_command(*, port: int, host: str) -> list[str]:
    """argv of ``bentoml serve`` for the fidelite service."""
    bentoml_cli = Path(sys.executable).with_name("bentoml")
    launcher = [str(bentoml_cli)] if bentoml_cli.exists() else [sys.executable, "-m", "bentoml"]
    return [*launcher, "serve", SERVICE_TARGET, "--port", str(port), "--host", host]


def prepare_environment(
    *,
    model_uri: str = DEFAULT_MODEL_URI,
    snapshot: Path | None = None,
    tracking_uri: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Validate everything and export the model; the environment for ``bentoml serve``.

    Raises
    ------
    ConfigurationError
        A bad setting, or an MLflow store that is missing, corrupt or unreachable.
    ModelNotFoundError
        Nothing at ``model_uri`` (e.g. no champion promoted yet).
    ModelLoadError
        The model exists but this fidelite version cannot load it.
    """
    env = dict(os.environ if environ is None else environ)
    if snapshot is not None:
        env[SNAPSHOT_ENV] = str(Path(snapshot).resolve())
    ServiceSettings.from_env(env)
    tracking = tracking_uri or env.get("MLFLOW_TRACKING_URI")
    if not tracking:
        from fidelite.training.tracking import resolve_tracking_uri

        tracking = resolve_tracking_uri(None)
    check_tracking_store(tracking)
    from fidelite.serving.loader import export_to_bento

    bento_model = export_to_bento(model_uri, tracking)
    _check_loadable(bento_model, model_uri)
    env[BENTO_MODEL_ENV] = str(bento_model.tag)
    env["MLFLOW_TRACKING_URI"] = tracking
    env.setdefault(MODEL_URI_ENV, model_uri)
    # a registry that stops answering must not stall reload checks for minutes
    env.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    env.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    # sleeping OpenMP waiters (shared cores): LightGBM reads it when it loads
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    return env


def _check_loadable(bento_model: object, model_uri: str) -> None:
    """Load the model once here: a worker that cannot load it would restart forever."""
    from fidelite.serving.models import load_from_bento

    try:
        load_from_bento(bento_model)
    except Exception as exc:
        raise ModelLoadError(
            f"{model_uri} cannot be loaded by this fidelite version "
            f"({type(exc).__name__}: {str(exc)[:200]}): retrain and promote a model"
        ) from None


def serve(
    *,
    port: int = 3000,
    host: str = "127.0.0.1",
    model_uri: str = DEFAULT_MODEL_URI,
    snapshot: Path | None = None,
    tracking_uri: str | None = None,
) -> int:
    """Validate, export the model, then run the server in the foreground.

    Returns
    -------
    int
        Exit status of ``bentoml serve``.
    """
    env = prepare_environment(model_uri=model_uri, snapshot=snapshot, tracking_uri=tracking_uri)
    process = subprocess.Popen(server_command(port=port, host=host), env=env)

    def forward(signum: int, _frame: object) -> None:
        # stopping `fidelite serve` must stop the server and its workers, not orphan them
        process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ------------------------------------------------------- running a server (tests, bench)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Return once ``url/readyz`` answers 200; raise with the log tail if it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server not ready after {timeout_s:g} s:\n{_tail(log)}")


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


def stop_server(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM the server's process group; SIGKILL it if it has not stopped in ``grace_s``."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def running_server(
    command: list[str],
    *,
    env: Mapping[str, str],
    port: int,
    log: Path,
    cwd: Path | None = None,
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``command`` (a server on ``port``) in its own process group until the block ends.

    Yields
    ------
    (url, process)
        Base URL once ``/readyz`` is 200, and the process (group leader).
    """
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log, timeout_s)
        yield url, process
    finally:
        stop_server(process)


def fidelite_serve_command(*, port: int, snapshot: Path | None = None) -> list[str]:
    """argv of ``fidelite serve`` on 127.0.0.1:``port`` with this interpreter."""
    command = [sys.executable, "-m", "fidelite.cli", "serve", "--port", str(port)]
    return command + (["--snapshot", str(snapshot)] if snapshot is not None else [])
