"""MLflow tracking setup and run bookkeeping helpers.

The tracking URI comes from the caller, else ``MLFLOW_TRACKING_URI``, else a
SQLite store in ``<project>/mlruns/mlflow.db`` (MLflow 3.13+ refuses the plain
file store). For SQLite stores the experiment's artifacts live next to the
database in ``artifacts/`` so a tracking directory is self-contained.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

__all__ = [
    "DEFAULT_EXPERIMENT",
    "PROJECT_DIR",
    "data_fingerprint",
    "get_or_create_experiment",
    "resolve_tracking_uri",
    "use_tracking",
]

PROJECT_DIR = Path(__file__).resolve().parents[1]
DEFAULT_EXPERIMENT = "fidelite"


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """Explicit URI, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///<project>/mlruns/mlflow.db``."""
    if tracking_uri:
        return tracking_uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    store = PROJECT_DIR / "mlruns"
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def _artifact_root(tracking_uri: str) -> str | None:
    """``artifacts/`` next to a SQLite database; None (server default) otherwise."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db_path = Path(tracking_uri.removeprefix("sqlite:///"))
    root = db_path.parent / "artifacts"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve().as_uri()


def use_tracking(tracking_uri: str | None = None) -> MlflowClient:
    """Point MLflow (tracking and registry) at the resolved URI and return a client.

    MLflow's fluent API keeps the URI in process state, so this is called at the
    start of every public entry point with the caller's explicit URI.
    """
    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def get_or_create_experiment(name: str, tracking_uri: str | None = None) -> str:
    """Experiment id for ``name``, creating it with the local artifact root if needed."""
    client = use_tracking(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    uri = resolve_tracking_uri(tracking_uri)
    return client.create_experiment(name, artifact_location=_artifact_root(uri))


def _sha256_of(frame: pd.DataFrame, columns: list[str]) -> str:
    """Order-independent hash of the key columns of a table."""
    keys = frame[columns].sort_values(columns, kind="stable")
    row_hashes = pd.util.hash_pandas_object(keys, index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()


def data_fingerprint(
    transactions: pd.DataFrame,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Size, span and content hash of the (normalised) training inputs.

    Returns
    -------
    dict
        ``transactions_rows``, ``transactions_customers``, ``transactions_start``/
        ``_end`` (ISO dates), ``transactions_sha256`` (of sorted customer_id,
        order_id, timestamp, amount) and the same rows/sha256 for events and
        customers when given.
    """
    ts = transactions["timestamp"]
    out: dict[str, Any] = {
        "transactions_rows": len(transactions),
        "transactions_customers": int(transactions["customer_id"].nunique()),
        "transactions_start": ts.min().date().isoformat() if len(ts) else None,
        "transactions_end": ts.max().date().isoformat() if len(ts) else None,
        "transactions_sha256": _sha256_of(
            transactions, ["customer_id", "order_id", "timestamp", "amount"]
        ),
    }
    if events is not None:
        out["events_rows"] = len(events)
        out["events_sha256"] = _sha256_of(events, ["customer_id", "timestamp", "event_type"])
    if customers is not None:
        out["customers_rows"] = len(customers)
        out["customers_sha256"] = _sha256_of(customers, ["customer_id"])
    return out


def to_json_safe(value: Any) -> Any:
    """Recursively convert numpy/pandas scalars so ``json.dumps`` accepts them."""
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def log_json(payload: Any, artifact_file: str) -> None:
    """Log a JSON artifact in the active run."""
    mlflow.log_text(json.dumps(to_json_safe(payload), indent=2, default=str), artifact_file)
