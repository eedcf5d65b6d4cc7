"""Getting the registered MLflow model into the service.

How the model reaches the service
---------------------------------
The service never talks to the MLflow registry at request time. Instead
:func:`export_to_bento` resolves a registry URI (default ``models:/fidelite@champion``
against ``MLFLOW_TRACKING_URI`` or ``sqlite:///./mlruns/mlflow.db``) and imports that
model version into the BentoML model store with ``bentoml.mlflow.import_model``,
recording name, version, alias, run id, training window, horizon and validation
metrics as BentoML model metadata. The service declares the store entry as a class
attribute (``bentoml.models.BentoModel``), so

- ``fidelite serve`` = export the champion, then ``bentoml serve`` (same code path), and
- ``fidelite export-bento`` + ``bentoml build`` packages exactly that model version
  into the bento, which then runs without any access to the MLflow registry.

Re-exporting an already exported model version is a no-op (matched on labels).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from typing import Any

import bentoml
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from fidelite.errors import ConfigurationError, ModelNotFoundError
from fidelite.serving.settings import BENTO_MODEL_ENV, DEFAULT_MODEL_URI
from fidelite.training.registry import GATE_METRICS
from fidelite.training.tracking import resolve_tracking_uri, tracking_scope

# Name of the model in the BentoML store (and tag the service declares).
BENTO_MODEL_NAME = "fidelite"
_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
_TRAIN_HINT = (
    "train and promote one first, e.g. `fidelite train --transactions ... --as-of ... "
    "--promote` (see README)"
)


@dataclass(frozen=True)
class RegistryModel:
    """A resolved registered model version and what ``/model`` reports about it."""

    name: str
    version: str
    alias: str | None
    run_id: str | None
    source_uri: str


def tracking_uri_from_env() -> str:
    """``MLFLOW_TRACKING_URI`` or the default (``sqlite:///./mlruns/mlflow.db``, working dir)."""
    return resolve_tracking_uri(None)


def resolve_registry_model(model_uri: str, tracking_uri: str | None = None) -> RegistryModel:
    """Resolve ``models:/<name>@<alias>`` or ``models:/<name>/<version>``.

    Raises
    ------
    ConfigurationError
        ``model_uri`` is not a registry URI.
    ModelNotFoundError
        No such model/alias/version; the message says how to train one.
    """
    match = _REGISTRY_URI.match(model_uri)
    if match is None:
        raise ConfigurationError(
            f"model URI {model_uri!r} is not a registry URI: use models:/<name>@<alias> "
            "or models:/<name>/<version>",
            field="model_uri",
        )
    client = MlflowClient(tracking_uri=tracking_uri or tracking_uri_from_env())
    name, alias = match["name"], match["alias"]
    try:
        if alias is not None:
            version = client.get_model_version_by_alias(name, alias)
        else:
            version = client.get_model_version(name, match["version"])
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"no model at {model_uri} in the MLflow registry "
            f"{tracking_uri or tracking_uri_from_env()}: {_TRAIN_HINT}"
        ) from exc
    return RegistryModel(
        name=name,
        version=str(version.version),
        alias=alias,
        run_id=version.run_id,
        source_uri=model_uri,
    )


def run_details(client: MlflowClient, run_id: str | None) -> dict[str, Any]:
    """Validation metrics and params recorded on the training run."""
    if run_id is None:
        return {"metrics": {}, "params": {}}
    run = client.get_run(run_id)
    return {"metrics": dict(run.data.metrics), "params": dict(run.data.params)}


def model_metadata(
    registered: RegistryModel, python_model: Any, run: dict[str, Any]
) -> dict[str, Any]:
    """Everything ``GET /model`` reports, as BentoML-storable primitives."""
    # The model keeps its held-out metrics; the run's copies of the promotion-gate
    # metrics are the numbers the registry decision was actually made on.
    metrics = {
        key: float(value) for key, value in getattr(python_model, "validation_metrics", {}).items()
    }
    metrics.update(
        {key: float(run["metrics"][key]) for key in GATE_METRICS if key in run["metrics"]}
    )
    train_start = getattr(python_model, "train_start", None)
    train_end = getattr(python_model, "train_end", None)
    return {
        "name": registered.name,
        "version": registered.version,
        "alias": registered.alias or "",
        "run_id": registered.run_id or "",
        "model_uri": registered.source_uri,
        "train_start": "" if train_start is None else str(pd.Timestamp(train_start).date()),
        "train_end": "" if train_end is None else str(pd.Timestamp(train_end).date()),
        "horizon_days": int(getattr(python_model, "horizon_days", 0) or 0),
        "validation_metrics": metrics,
        "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def export_to_bento(
    model_uri: str = DEFAULT_MODEL_URI, tracking_uri: str | None = None
) -> bentoml.Model:
    """Import a registered MLflow model version into the BentoML model store.

    Parameters
    ----------
    model_uri : str
        ``models:/<name>@<alias>`` or ``models:/<name>/<version>``.
    tracking_uri : str, optional
        MLflow tracking URI; default from :func:`tracking_uri_from_env`.

    Returns
    -------
    bentoml.Model
        The store entry ``fidelite:<version>``; an existing entry for the same
        registered version and run is reused.
    """
    tracking_uri = tracking_uri or tracking_uri_from_env()
    registered = resolve_registry_model(model_uri, tracking_uri)
    existing = _find_exported(registered)
    if existing is not None:
        return existing
    version_uri = f"models:/{registered.name}/{registered.version}"
    with tracking_scope(tracking_uri) as client:
        python_model = mlflow.pyfunc.load_model(version_uri).unwrap_python_model()
        metadata = model_metadata(registered, python_model, run_details(client, registered.run_id))
        return bentoml.mlflow.import_model(
            BENTO_MODEL_NAME,
            version_uri,
            labels={
                "registered_model": registered.name,
                "registered_version": registered.version,
                "run_id": registered.run_id or "",
            },
            metadata=metadata,
        )


def _find_exported(registered: RegistryModel) -> bentoml.Model | None:
    try:
        exported = bentoml.models.list(BENTO_MODEL_NAME)
    except bentoml.exceptions.NotFound:
        return None
    for model in exported:
        labels = model.info.labels
        if (
            labels.get("registered_model") == registered.name
            and labels.get("registered_version") == registered.version
            and labels.get("run_id") == (registered.run_id or "")
        ):
            return model
    return None


def bento_model_tag() -> str:
    """Tag the service serves: env ``FIDELITE_BENTO_MODEL`` or ``fidelite:latest``."""
    return os.environ.get(BENTO_MODEL_ENV) or f"{BENTO_MODEL_NAME}:latest"
