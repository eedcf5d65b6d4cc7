"""Where MLflow runs and models are stored, and the run bookkeeping helpers.

The tracking (and registry) URI is resolved once per entry point and passed explicitly:
the caller's URI, else ``MLFLOW_TRACKING_URI``, else a SQLite store at
``./mlruns/mlflow.db`` **relative to the current working directory** (MLflow 3.13+
refuses the plain file store). Run ``fidelite`` from the project folder, set
``MLFLOW_TRACKING_URI`` or pass ``--tracking-uri`` to choose another store. For SQLite
stores the artifacts live next to the database in ``artifacts/`` so a store is
self-contained.

Nothing here sets MLflow's process-wide URI for good. :class:`MlflowClient` objects take
the URI explicitly; the few MLflow calls that only read the process-wide setting
(``mlflow.start_run``, ``log_model``, ``mlflow.pyfunc.load_model`` of ``models:/`` URIs)
run inside :func:`tracking_scope`, which restores the previous setting afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from fidelite.features.inputs import Inputs

__all__ = [
    "DEFAULT_EXPERIMENT",
    "data_fingerprint",
    "default_tracking_uri",
    "experiment_id",
    "log_json",
    "mlflow_client",
    "resolve_tracking_uri",
    "to_json_safe",
    "tracking_scope",
]

DEFAULT_EXPERIMENT = "fidelite"
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def default_tracking_uri() -> str:
    """``sqlite:///<working directory>/mlruns/mlflow.db``."""
    return f"sqlite:///{Path.cwd() / 'mlruns' / 'mlflow.db'}"


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The explicit URI, else ``MLFLOW_TRACKING_URI``, else :func:`default_tracking_uri`.

    A SQLite store's folder is created when missing.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def mlflow_client(tracking_uri: str) -> MlflowClient:
    """A client for tracking and registry at ``tracking_uri`` (one store for both)."""
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@contextmanager
def tracking_scope(tracking_uri: str) -> Iterator[MlflowClient]:
    """Point MLflow's process-wide tracking and registry URIs at ``tracking_uri`` for a block.

    For the MLflow calls that cannot take a URI. The previous URIs and the
    ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI`` variables (which ``set_tracking_uri``
    also writes) are restored on exit. Yields a client for the same store.
    """
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {name: os.environ.get(name) for name in _URI_VARIABLES}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    try:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        yield mlflow_client(tracking_uri)
    finally:
        mlflow.set_tracking_uri(saved[0])
        registry_utils._registry_uri = saved[1]
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _artifact_root(tracking_uri: str) -> str | None:
    """``artifacts/`` next to a SQLite database; None (server default) otherwise."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    root = Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve().as_uri()


def experiment_id(name: str, tracking_uri: str) -> str:
    """Id of experiment ``name``, created with the store's artifact root if needed."""
    client = mlflow_client(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=_artifact_root(tracking_uri))


#: The key columns hashed per table (content, not order, defines the fingerprint).
_FINGERPRINT_COLUMNS = {
    "transactions": ["customer_id", "order_id", "timestamp", "amount"],
    "events": ["customer_id", "timestamp", "event_type"],
    "customers": ["customer_id"],
}


def _row_digest(frame: pd.DataFrame, columns: list[str]) -> list[int]:
    """``[rows, sum, xor]`` of the rows' 64-bit hashes: order-independent and additive.

    Adding two parts' sums (mod 2**64) and xor-ing their xors gives the whole table's,
    so a table split into customer buckets (Dask) gets the same digest; categorical and
    text ids hash alike.
    """
    # A few million rows at a time: the same digest (sums and xors add up), without a
    # 64-bit hash per column and a text copy of every id of 50M events at once (+2.8 GiB,
    # the peak of a 1M-customer training run).
    total, xor = 0, 0
    for start in range(0, len(frame), _DIGEST_ROWS):
        keys = frame.iloc[start : start + _DIGEST_ROWS][columns]
        keys = keys.astype({c: "str" for c in columns if c == "customer_id"})
        hashes = pd.util.hash_pandas_object(keys, index=False).to_numpy()
        total += int(hashes.sum(dtype=np.uint64))
        xor ^= int(np.bitwise_xor.reduce(hashes))
    return [len(frame), total & ((1 << 64) - 1), xor]


#: Rows hashed at a time by :func:`_row_digest`.
_DIGEST_ROWS = 4_000_000


def fingerprint_parts(inputs: Inputs) -> dict[str, Any]:
    """The additive parts of :func:`data_fingerprint` (rows, customers, span, digests)."""
    tables = {"transactions": inputs.transactions, "events": inputs.events}
    tables["customers"] = inputs.customers
    ts = inputs.transactions["timestamp"]
    parts: dict[str, Any] = {
        "buyers": int(inputs.transactions["customer_id"].nunique()),
        "start": ts.min() if len(ts) else None,
        "end": ts.max() if len(ts) else None,
    }
    for name, frame in tables.items():
        if frame is not None:
            parts[name] = _row_digest(frame, _FINGERPRINT_COLUMNS[name])
    return parts


def combine_fingerprints(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`data_fingerprint` of tables split by customer, from each split's parts."""
    mask = (1 << 64) - 1
    starts = [p["start"] for p in parts if p["start"] is not None]
    ends = [p["end"] for p in parts if p["end"] is not None]
    whole: dict[str, Any] = {
        "buyers": sum(p["buyers"] for p in parts),
        "start": min(starts) if starts else None,
        "end": max(ends) if ends else None,
    }
    for name in _FINGERPRINT_COLUMNS:
        digests = [p[name] for p in parts if name in p]
        if digests:
            rows = sum(d[0] for d in digests)
            total = sum(d[1] for d in digests) & mask
            xor = 0
            for digest in digests:
                xor ^= digest[2]
            whole[name] = [rows, total, xor]
    return _finish_fingerprint(whole)


def _finish_fingerprint(parts: dict[str, Any]) -> dict[str, Any]:
    def sha(digest: list[int]) -> str:
        return hashlib.sha256(":".join(map(str, digest)).encode()).hexdigest()

    out: dict[str, Any] = {
        "transactions_rows": parts["transactions"][0],
        "transactions_customers": parts["buyers"],
        "transactions_start": parts["start"].date().isoformat() if parts["start"] else None,
        "transactions_end": parts["end"].date().isoformat() if parts["end"] else None,
        "transactions_sha256": sha(parts["transactions"]),
    }
    for name in ("events", "customers"):
        if name in parts:
            out[f"{name}_rows"] = parts[name][0]
            out[f"{name}_sha256"] = sha(parts[name])
    return out


def data_fingerprint(inputs: Inputs) -> dict[str, Any]:
    """Size, span and content hash of the (normalised) training inputs.

    Returns
    -------
    dict
        ``transactions_rows``, ``transactions_customers``, ``transactions_start``/
        ``_end`` (ISO dates), ``transactions_sha256`` (of the rows' customer_id,
        order_id, timestamp and amount, whatever their order) and the same rows/sha256
        for events and customers when given. Equal on every engine
        (:func:`combine_fingerprints`).
    """
    return _finish_fingerprint(fingerprint_parts(inputs))


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


def log_json(client: MlflowClient, run_id: str, payload: Any, artifact_file: str) -> None:
    """Log a JSON artifact in run ``run_id``."""
    text = json.dumps(to_json_safe(payload), indent=2, default=str)
    client.log_text(run_id, text, artifact_file)
