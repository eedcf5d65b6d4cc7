"""Checking the MLflow store before the service starts (cheap: no MLflow import).

A ``sqlite:///`` store must exist (it is never created here) and be a readable MLflow
database; an ``http(s)://`` tracking server must answer within seconds. Each failure is
one :class:`ConfigurationError` line naming ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from fidelite.errors import ConfigurationError


def check_tracking_store(tracking_uri: str, *, timeout_s: float = 5.0) -> None:
    """Fail fast, with one line, when the MLflow store cannot be used.

    A ``sqlite:///`` store must exist (it is never created here) and be a readable
    MLflow database; an ``http(s)://`` tracking server must answer within ``timeout_s``.

    Raises
    ------
    ConfigurationError
        Naming ``MLFLOW_TRACKING_URI`` and what is wrong.
    """
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ConfigurationError(
                f"MLflow store {path} does not exist (MLFLOW_TRACKING_URI): train a model "
                "first or point MLFLOW_TRACKING_URI at an existing store",
                field="MLFLOW_TRACKING_URI",
            )
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout_s) as db:
                tables = {row[0] for row in db.execute("select name from sqlite_master")}
        except sqlite3.Error as exc:
            raise ConfigurationError(
                f"MLflow store {path} (MLFLOW_TRACKING_URI) is not a readable SQLite database "
                f"({exc})",
                field="MLFLOW_TRACKING_URI",
            ) from None
        if "registered_models" not in tables:
            raise ConfigurationError(
                f"MLflow store {path} (MLFLOW_TRACKING_URI) is not an MLflow database "
                "(no registered_models table)",
                field="MLFLOW_TRACKING_URI",
            )
    elif tracking_uri.startswith(("http://", "https://")):
        try:
            httpx.get(tracking_uri.rstrip("/") + "/health", timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise ConfigurationError(
                f"MLflow tracking server {tracking_uri} (MLFLOW_TRACKING_URI) unreachable within "
                f"{timeout_s:g} s "
                f"({type(exc).__name__})",
                field="MLFLOW_TRACKING_URI",
            ) from None
