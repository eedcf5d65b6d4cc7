"""The fidelite prediction service (BentoML 1.4).

Run with ``fidelite serve`` (validates the settings, exports the MLflow champion into the
BentoML model store, then starts ``bentoml serve fidelite.serving.service:Fidelite``).
Settings come from the environment (:mod:`fidelite.serving.settings`). Every request
passes :class:`fidelite.serving.gate.Gate` first (routes, auth, limits, error shape).
Request checks for small requests run on the event loop; concurrent raw-history requests
are built in one feature build in a worker thread (:mod:`fidelite.serving.merging`),
concurrent small requests are scored together (:mod:`fidelite.serving.scoring`), and
everything large runs off the loop so health checks stay responsive: ``/predict`` bodies
of :data:`LARGE_BODY_BYTES` or more are not validated by BentoML on the loop but in a
worker thread, uniform feature rows decoded straight into columns
(:mod:`fidelite.serving.bulk_rows`), and large answers are encoded column by column
(:mod:`fidelite.serving.json_columns`).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import bentoml
import pandas as pd
import pydantic
from fastapi import FastAPI
from starlette.responses import HTMLResponse, JSONResponse, Response

from fidelite.errors import FideliteError
from fidelite.serving import bulk_scan, handlers, heap, responses
from fidelite.serving.docs import DOCS_HEADERS, SWAGGER_FILES, docs_page, openapi_document
from fidelite.serving.errors import error_json, error_payload
from fidelite.serving.gate import Gate, RouteRule
from fidelite.serving.loader import bento_model_tag, tracking_uri_from_env
from fidelite.serving.merging import Built, HistoryMerger
from fidelite.serving.models import ModelHolder, ServedModel, load_from_bento
from fidelite.serving.rows import FeatureBatch
from fidelite.serving.schemas import (
    LookupRequest,
    LookupResponse,
    ModelInfo,
    PredictRequest,
    PredictResponse,
)
from fidelite.serving.scoring import MicroBatcher
from fidelite.serving.settings import ServiceSettings
from fidelite.serving.snapshot import SnapshotStore
from fidelite.serving.timeouts import install_header_timeout
from fidelite.serving.winback_schemas import WinbackRequest, WinbackResponse

logger = logging.getLogger("fidelite.serving")
#: Read (not changed) at import: `bentoml serve` then refuses bad settings before any
#: worker starts, instead of workers crash-looping.
SETTINGS = ServiceSettings.from_env()
#: Requests with more customers than this are scored in a worker thread.
ON_LOOP_MAX_ROWS = 32
#: Raw-history requests with more rows than this are checked in a worker thread.
ON_LOOP_MAX_HISTORY_ROWS = 1_000
#: ``/predict`` bodies of at least this many bytes are validated in a worker thread
#: (about 100 feature rows; the one-customer requests of a CRM stay on the loop).
LARGE_BODY_BYTES = 256 * 1024
JSON = "application/json"
#: The report is a standalone page: revalidate on every open, never sniff its type.
REPORT_HEADERS = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}

# Read-only GET endpoints live on a FastAPI app mounted "passively" at /: BentoML binds
# its routes to the service instance and merges them into the OpenAPI document.
info_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


class _DropClientErrors(logging.Filter):
    """BentoML logs a traceback (with request values) for every invalid body; the gate
    logs one line per 4xx instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, pydantic.ValidationError | FideliteError)


@functools.lru_cache(maxsize=1024)
def _timestamp(day: dt.date) -> pd.Timestamp:
    return pd.Timestamp(day)


def error_response(exc: Exception) -> Response:
    """The one mapping from an exception to an HTTP response."""
    status, body = error_payload(exc)
    if status >= 500 and not isinstance(exc, FideliteError):
        logger.error("request failed", exc_info=exc)
    return Response(error_json(body), status_code=status, media_type=JSON)


@bentoml.service(
    name="fidelite",
    workers=SETTINGS.workers,
    traffic={"timeout": 300},
    # replaced by the gate's bounded per-route metrics and one-line error log
    metrics={"enabled": False},
    # tracing off unless asked for: its middleware costs ~0.25 ms per request
    **SETTINGS.bentoml_options(),
    logging={"access": {"enabled": False}},
)
@bentoml.asgi_app(info_app, path="/")
class Fidelite:
    """Churn and CLV scores, snapshot lookups and win-back targeting."""

    # A class attribute, so that `bentoml build` packages this model into the bento.
    bento_model = bentoml.models.BentoModel(bento_model_tag())

    def __init__(self) -> None:
        self.settings = ServiceSettings.from_env()
        install_header_timeout(self.settings.header_timeout)
        logging.getLogger("bentoml").addFilter(_DropClientErrors())
        logging.getLogger("bentoml._internal.server.http_app").addFilter(_DropClientErrors())
        tracking = tracking_uri_from_env() if self.settings.model_uri else None
        self.models = ModelHolder(
            load_from_bento(self.bento_model), self.settings.model_uri, tracking
        )
        self.snapshot = SnapshotStore(self.settings.snapshot)
        self.snapshot.refresh()
        self._heavy = anyio.CapacityLimiter(1)
        self.batcher = MicroBatcher(anyio.CapacityLimiter(1), self.settings.scoring_threads)
        self.histories = HistoryMerger(self._heavy)
        self._stop = threading.Event()
        bulk_scan.warm_up()  # compiled loops loaded before the first large request
        responses.warm_up()
        heap.tune()
        heap.settle()
        threading.Thread(target=self._watch, name="fidelite-watch", daemon=True).start()
        if not self.settings.auth:
            logger.warning("authentication is OFF (FIDELITE_AUTH=off): anyone can call the API")

    def _watch(self) -> None:
        """Follow the snapshot file and the registry alias, each at its own interval."""
        snapshot_every = self.settings.snapshot_check_seconds
        model_every = self.settings.reload_seconds if self.models.follows else 0.0
        ticks = [t for t in (snapshot_every, model_every) if t > 0]
        if not ticks:
            return
        step = min(ticks)
        elapsed = 0.0
        if model_every:
            self.models.check()
            heap.settle()  # the first registry check loaded MLflow's and SQLAlchemy's state
        while not self._stop.wait(step):
            elapsed += step
            swapped = False
            if snapshot_every and elapsed % snapshot_every < step:
                swapped |= self.snapshot.refresh()
            if model_every and elapsed % model_every < step:
                swapped |= self.models.check()
            if swapped:
                heap.settle()

    @bentoml.on_startup
    def _started(self) -> None:
        heap.settle()  # BentoML built its app after __init__

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        self._stop.set()

    def __is_ready__(self) -> bool:
        return self.models.model is not None and self.snapshot.ready

    async def _answer(self, work: Callable[..., bytes], *args: Any, heavy: bool) -> Response:
        try:
            if heavy:
                body = await self._in_thread(work, *args)
            else:
                body = work(*args)
        except Exception as exc:
            return error_response(exc)
        return Response(body, media_type=JSON)

    @bentoml.api(route="/predict")
    async def predict(self, request: PredictRequest, /) -> PredictResponse:
        """Score customers given as feature rows or raw history.

        One object per customer in `features` (as written by `fidelite features`), or raw
        `history` tables from which the features are built server-side.
        """
        model = self.models.model
        batch: FeatureBatch | None = None
        body = request.unread_body
        if body is not None:  # a large body: read in a worker thread
            try:
                request, batch = await self._in_thread(
                    handlers.read_body, body, _validate_predict, self.settings
                )
            except pydantic.ValidationError:
                raise  # answered by BentoML as for every body it validates (400)
            except Exception as exc:
                return error_response(exc)
        small = request.features is not None and len(request.features) <= ON_LOOP_MAX_ROWS
        try:
            day = _timestamp(request.as_of)
            built: Built
            if batch is not None:
                built = batch
            elif request.history is not None:
                built = await self._history_input(request, model, day)
            elif small:
                built = handlers.request_batch(request, self.settings, model)
            else:
                built = await self._in_thread(handlers.request_batch, request, self.settings, model)
            if isinstance(built, FeatureBatch):
                columns = await self._scores(model, built, day, request.include_reasons)
            else:
                columns = built  # a history scored with its merged build
            n = len(columns["customer_id"])
            # a history request is small too when it holds few customers: encoding
            # them costs less than handing the work to a thread and back
            if n <= ON_LOOP_MAX_ROWS:
                body = handlers.predict_json(model, columns, n)
            else:
                body = await self._in_thread(handlers.predict_json, model, columns, n)
        except Exception as exc:
            return error_response(exc)
        return Response(body, media_type=JSON)

    async def _scores(
        self, model: ServedModel, batch: FeatureBatch, day: pd.Timestamp, reasons: bool
    ) -> dict[str, Any]:
        """Score columns of a batch, scored with concurrent small ones."""
        try:
            return await self.batcher.score(model.python_model, batch, day, reasons=reasons)
        except Exception as exc:
            raise handlers.score_error(exc) from None

    async def _history_input(
        self, request: PredictRequest, model: ServedModel, day: pd.Timestamp
    ) -> Built:
        """A raw-history request checked alone, then built (and, merged with concurrent
        ones, scored) together with them: its feature batch or its score columns."""
        if handlers.history_rows(request) <= ON_LOOP_MAX_HISTORY_ROWS:
            tables = handlers.prepared_history(request, self.settings)
        else:
            tables = await self._in_thread(handlers.prepared_history, request, self.settings)
        return await self.histories.build(model, tables, day=day, reasons=request.include_reasons)

    async def _in_thread(self, work: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: work(*args), limiter=self._heavy)

    @bentoml.api(route="/customers/lookup")
    async def lookup(self, request: LookupRequest, /) -> LookupResponse:
        """Scores of known customers from the latest snapshot; unknown ids are flagged."""
        heavy = len(request.customer_ids) > 1000
        return await self._answer(
            handlers.lookup, self.snapshot, request, self.settings, heavy=heavy
        )

    @bentoml.api(route="/winback")
    async def winback(self, request: WinbackRequest, /) -> WinbackResponse:
        """Customers worth a win-back offer, best first, within a budget, one page at a time."""
        model = self.models.model
        return await self._answer(
            handlers.winback, model, self.snapshot, request, self.settings, heavy=True
        )

    @info_app.get("/model", response_model=ModelInfo, summary="Served model and snapshot")
    def model_info(self) -> ModelInfo:
        """The model version actually served, whether it is still the champion, its
        validation metrics, and the state of the scores snapshot."""
        return ModelInfo(**self.models.info(), snapshot=self.snapshot.state())

    @info_app.get(
        "/report",
        summary="Customer-base report",
        response_class=HTMLResponse,
        responses={200: {"content": {"text/html": {}}}},
    )
    def report(self) -> Response:
        """The customer-base report (self-contained HTML, opens in a browser) that
        `fidelite score` rendered for the served scores snapshot."""
        try:
            body = handlers.report(self.snapshot)
        except Exception as exc:
            return error_response(exc)
        return HTMLResponse(body, headers=REPORT_HEADERS)

    @info_app.get("/metrics", include_in_schema=False)
    def metrics(self) -> Response:
        from bentoml._internal.configuration.containers import BentoMLContainer

        client = BentoMLContainer.metrics_client.get()
        return Response(client.generate_latest(), media_type=client.CONTENT_TYPE_LATEST)

    @info_app.get("/docs.json", include_in_schema=False)
    def docs_json(self) -> JSONResponse:
        return JSONResponse(openapi_document(Fidelite, self.models.info()))

    @info_app.get("/", include_in_schema=False)
    def docs(self) -> HTMLResponse:
        return HTMLResponse(docs_page(), headers=DOCS_HEADERS)


def _get_routes(routes: list[Any]) -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of the mounted app's routes (FastAPI nests included routers)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _get_routes(nested.routes)
        elif getattr(route, "path", None) is not None and getattr(route, "methods", None):
            yield route.path, set(route.methods)


def _route_table(settings: ServiceSettings) -> dict[str, RouteRule]:
    """Every path the service answers, and how (derived from the service definition)."""
    routes = {
        api.route: RouteRule(name, frozenset({"POST"}), auth=True, json_body=True)
        for name, api in Fidelite.apis.items()
    }
    for path, methods in _get_routes(info_app.routes):
        routes[path] = RouteRule(path.strip("/") or "docs", frozenset(methods), auth=True)
    open_get = frozenset({"GET"})
    for path in ("/", "/docs.json"):
        routes[path] = RouteRule("docs", open_get, auth=False)
    for path in ("/livez", "/healthz", "/readyz"):
        routes[path] = RouteRule(path.strip("/"), open_get, auth=False)
    routes["/metrics"] = RouteRule("metrics", open_get, auth=settings.metrics_auth)
    return routes


def _read_large_bodies_later(spec: type[PredictRequest]) -> Callable[[bytes], PredictRequest]:
    """Make BentoML leave ``/predict`` bodies of :data:`LARGE_BODY_BYTES` or more unread.

    BentoML validates a body with its input type's ``model_validate_json`` on the event
    loop, before calling the endpoint: for a 25 MB body that blocked the loop for a
    couple of hundred milliseconds and built a dict per row. Large bodies now reach
    :meth:`Fidelite.predict` as :meth:`PredictRequest.unread` placeholders and are read
    in a worker thread (:func:`handlers.read_body`), with the schema's own validation
    (returned here) for anything the fast path does not take.
    """
    validate = spec.model_validate_json

    def model_validate_json(json_data: Any, **kwargs: Any) -> PredictRequest:
        if kwargs or len(json_data) < LARGE_BODY_BYTES:
            return validate(json_data, **kwargs)
        return spec.unread(bytes(json_data))

    spec.model_validate_json = staticmethod(model_validate_json)  # type: ignore[method-assign,assignment]
    return validate


_validate_predict = _read_large_bodies_later(Fidelite.apis["predict"].input_spec)

Fidelite.add_asgi_middleware(
    Gate,
    routes=_route_table(SETTINGS),
    prefixes={"/static_content/": (RouteRule("docs", frozenset({"GET"}), False), SWAGGER_FILES)},
    api_keys=SETTINGS.api_keys,
    max_body_bytes=SETTINGS.max_body_bytes,
    body_timeout=SETTINGS.body_timeout,
)
