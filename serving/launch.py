"""Starting the service: what ``fidelite serve`` and ``fidelite export-bento`` run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from fidelite.serving.loader import BENTO_MODEL_ENV, DEFAULT_MODEL_URI, export_to_bento
from fidelite.serving.snapshot import SNAPSHOT_ENV

SERVICE_TARGET = "fidelite.serving.service:Fidelite"


def server_command(*, port: int, host: str) -> list[str]:
    """argv of ``bentoml serve`` for the fidelite service."""
    bentoml_cli = Path(sys.executable).with_name("bentoml")
    launcher = [str(bentoml_cli)] if bentoml_cli.exists() else [sys.executable, "-m", "bentoml"]
    return [*launcher, "serve", SERVICE_TARGET, "--port", str(port), "--host", host]


def server_env(*, bento_tag: str, snapshot: Path | None) -> dict[str, str]:
    """Environment for the server process: the exported model tag and snapshot path."""
    env = dict(os.environ)
    env[BENTO_MODEL_ENV] = bento_tag
    if snapshot is not None:
        env[SNAPSHOT_ENV] = str(snapshot.resolve())
    return env


def serve(
    *,
    port: int = 3000,
    host: str = "127.0.0.1",
    model_uri: str = DEFAULT_MODEL_URI,
    snapshot: Path | None = None,
    tracking_uri: str | None = None,
) -> int:
    """Export ``model_uri`` to the BentoML store, then run the server in the foreground.

    Returns
    -------
    int
        Exit status of ``bentoml serve``.

    Raises
    ------
    serving.loader.ModelNotFoundError
        No model at ``model_uri`` (e.g. nothing promoted to champion yet); raised
        before any server process starts.
    """
    bento_model = export_to_bento(model_uri, tracking_uri)
    command = server_command(port=port, host=host)
    env = server_env(bento_tag=str(bento_model.tag), snapshot=snapshot)
    process = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: object) -> None:
        # stopping `fidelite serve` must stop the server and its workers, not orphan them
        process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
