"""The fidelite prediction service (BentoML 1.4).

Run with ``fidelite serve`` (exports the MLflow champion into the BentoML model store,
then starts ``bentoml serve serving.service:Fidelite``). Configuration, all via env:

- ``FIDELITE_BENTO_MODEL``: BentoML model tag to serve (default ``fidelite:latest``,
  see :mod:`serving.loader`);
- ``FIDELITE_SNAPSHOT``: scores parquet for lookups/win-back (``data/scores.parquet``);
- ``FIDELITE_API_KEYS``: comma-separated Bearer keys; unset = no authentication;
- ``FIDELITE_MAX_BATCH`` (customers, 10000) and ``FIDELITE_MAX_BODY_BYTES`` (64 MiB);
- ``FIDELITE_WORKERS``: server processes (default 1; each loads its own model copy).

Health (``/livez``, ``/readyz``), Prometheus ``/metrics`` and the OpenAPI document
(``/docs.json``, Swagger UI at ``/``) come from BentoML.
"""

from __future__ import annotations

import bentoml
from fastapi import FastAPI
from starlette.responses import JSONResponse, Response

from fidelite.features.data import DataContractError
from fidelite.serving import handlers
from fidelite.serving.auth import ApiKeyMiddleware, api_keys_from_env
from fidelite.serving.limits import (
    BodySizeLimitMiddleware,
    max_batch_from_env,
    max_body_bytes_from_env,
    workers_from_env,
)
from fidelite.serving.loader import bento_model_tag, load_from_bento
from fidelite.serving.schemas import (
    LookupRequest,
    LookupResponse,
    ModelInfo,
    PredictRequest,
    PredictResponse,
    WinbackRequest,
    WinbackResponse,
)
from fidelite.serving.scoring import RequestError
from fidelite.serving.snapshot import (
    SnapshotStore,
    SnapshotUnavailableError,
    snapshot_path_from_env,
)


def client_error(exc: Exception) -> JSONResponse:
    """4xx/503 JSON body for errors caused by the request or missing snapshot."""
    if isinstance(exc, RequestError):
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)
    if isinstance(exc, SnapshotUnavailableError):
        return JSONResponse({"error": str(exc), "field": "snapshot"}, status_code=503)
    # DataContractError messages name the table (history.transactions...) and column
    return JSONResponse({"error": str(exc), "field": "history"}, status_code=400)


CLIENT_ERRORS = (RequestError, DataContractError, SnapshotUnavailableError)
# BentoML APIs are POST-only; read-only GET endpoints live on a mounted FastAPI app
# whose routes BentoML binds to the service instance and merges into /docs.json
# (mounted "passively" at /: it only answers the paths it defines).
model_app = FastAPI(title="fidelite model info")


@bentoml.service(name="fidelite", workers=workers_from_env(), traffic={"timeout": 120})
@bentoml.asgi_app(model_app, path="/")
class Fidelite:
    """Churn and CLV scores, snapshot lookups and win-back targeting."""

    # A class attribute, so that `bentoml build` packages this model into the bento.
    bento_model = bentoml.models.BentoModel(bento_model_tag())

    def __init__(self) -> None:
        self.model = load_from_bento(self.bento_model)
        self.snapshot = SnapshotStore(snapshot_path_from_env())
        self.max_batch = max_batch_from_env()

    @bentoml.api(route="/predict")
    def predict(self, request: PredictRequest, /) -> PredictResponse:
        """Score customers given as feature rows or raw history."""
        try:
            # Pre-encoded body: BentoML would otherwise re-validate and serialise one
            # pydantic model per customer (seconds for a 10k batch).
            body = handlers.predict_json(self.model, request, max_batch=self.max_batch)
            return Response(body, media_type="application/json")
        except CLIENT_ERRORS as exc:
            return client_error(exc)

    @bentoml.api(route="/customers/lookup")
    def lookup(self, request: LookupRequest, /) -> LookupResponse:
        """Scores of known customers from the latest snapshot."""
        try:
            return handlers.lookup(self.snapshot, request, max_batch=self.max_batch)
        except CLIENT_ERRORS as exc:
            return client_error(exc)

    @bentoml.api(route="/winback")
    def winback(self, request: WinbackRequest, /) -> WinbackResponse:
        """Customers worth a win-back offer, best first, within a budget."""
        try:
            return handlers.winback(self.model, self.snapshot, request, max_batch=self.max_batch)
        except CLIENT_ERRORS as exc:
            return client_error(exc)

    @model_app.get("/model", response_model=ModelInfo, summary="Served model")
    def model_info(self) -> ModelInfo:
        """The served model version and the validation metrics it was promoted on."""
        return self.model.info


# Outermost first: reject unauthenticated requests before reading any body.
Fidelite.add_asgi_middleware(ApiKeyMiddleware, keys=api_keys_from_env())
Fidelite.add_asgi_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes_from_env())
