"""The ASGI middleware every request passes first: routing rules, auth, limits, errors.

One class on purpose (each ASGI layer costs time on every request). In order, it

1. classifies the path against the service's own route table; an unknown path gets a 404
   here and is counted under one metrics label (``other``), so nothing a client sends
   can add metric series;
2. answers 405 to a known path with a wrong method;
3. checks the API key (``Authorization: Bearer <key>``, constant-time) where the route
   needs one;
4. for JSON endpoints: requires ``Content-Type: application/json`` (415), rejects a
   declared ``Content-Length`` over the limit before reading (413), reads the body with a
   deadline (408) and a running size cap (413, also for chunked bodies), then replays it;
5. adds ``Server-Timing: app;dur=<ms>`` (time from the complete body to the response)
   to successful responses;
6. rewrites any error response that is not already in the service's error shape
   (framework 404/405/500, pydantic validation bodies) into :class:`ErrorBody`, and logs
   one line per 4xx/5xx: status, route, field and request id, never request values.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fidelite.serving.errors import ErrorBody, error_json

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("fidelite.serving")
OTHER = "other"
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
_ERROR_KEYS = frozenset(ErrorBody.model_fields)


@dataclass(frozen=True)
class RouteRule:
    """What a path accepts.

    Attributes
    ----------
    name : str
        Metrics label and log name.
    methods : frozenset of str
        Accepted HTTP methods (HEAD is implied by GET).
    auth : bool
        Whether the API key is required.
    json_body : bool
        Whether the body must be JSON (POST endpoints).
    """

    name: str
    methods: frozenset[str]
    auth: bool
    json_body: bool = False


def is_authorized(header_value: bytes | None, keys: Iterable[bytes]) -> bool:
    """Whether an ``Authorization`` header carries one of ``keys`` as a Bearer token.

    The scheme is case-insensitive and surrounding blanks are ignored. Every key is
    compared in constant time and the loop never stops early.
    """
    if not header_value:
        return False
    parts = header_value.split(None, 1)
    if len(parts) != 2 or parts[0].lower() != b"bearer" or not parts[1].strip():
        return False
    presented = parts[1].strip()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key)
    return matched


class _Metrics:
    """Request count and duration per (route label, status); created on first use."""

    def __init__(self) -> None:
        self._ready = False

    def _setup(self) -> None:
        from bentoml._internal.configuration.containers import BentoMLContainer

        client = BentoMLContainer.metrics_client.get()
        labels = ["endpoint", "http_response_code"]
        self.total = client.Counter(
            name="fidelite_requests_total", documentation="HTTP requests", labelnames=labels
        )
        self.duration = client.Histogram(
            name="fidelite_request_duration_seconds",
            documentation="HTTP request duration in seconds",
            labelnames=labels,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self._ready = True

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        if not self._ready:
            self._setup()
        self.total.labels(endpoint, status).inc()
        self.duration.labels(endpoint, status).observe(seconds)


class Gate:
    """The service's outer middleware (see the module docstring).

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    routes : dict of str to RouteRule
        Exact paths the service answers.
    prefixes : dict of str to RouteRule
        Path prefixes served as files (e.g. ``/static_content/``), with the allowed names.
    api_keys : iterable of str
        Accepted keys; empty means authentication is off.
    max_body_bytes : int
        Largest accepted body.
    body_timeout : float
        Seconds a client may take to send the whole body.
    record_metrics : bool
        Count requests per route (off for unit tests without a BentoML container).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: dict[str, RouteRule],
        prefixes: dict[str, tuple[RouteRule, frozenset[str]]] | None = None,
        api_keys: Iterable[str] = (),
        max_body_bytes: int,
        body_timeout: float,
        record_metrics: bool = True,
    ) -> None:
        self.app = app
        self.routes = routes
        self.prefixes = prefixes or {}
        self.keys = tuple(key.encode() for key in api_keys)
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.metrics = _Metrics() if record_metrics else None

    def rule_for(self, path: str) -> RouteRule | None:
        rule = self.routes.get(path)
        if rule is not None:
            return rule
        for prefix, (prefix_rule, names) in self.prefixes.items():
            if path.startswith(prefix) and path[len(prefix) :] in names:
                return prefix_rule
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rule = self.rule_for(scope["path"])
        state = _Exchange(scope, send, rule.name if rule is not None else OTHER)
        try:
            error = self._refusal(scope, rule)
            if error is not None:
                await state.send_error(*error)
                return
            if rule is not None and rule.json_body:
                body = await self._read_body(receive, state)
                if body is None:
                    return
                receive = _replay(body, receive)
            state.app_started = time.perf_counter()
            await self.app(scope, receive, state.send)
        finally:
            if self.metrics is not None:
                self.metrics.observe(state.label, state.status, time.perf_counter() - started)

    def _refusal(self, scope: Scope, rule: RouteRule | None) -> tuple[int, str, str | None] | None:
        """(status, message, field) when the request is refused before the app sees it."""
        if rule is None:
            return 404, "no endpoint at this path: see /docs.json for the API", None
        method = scope["method"]
        if method not in rule.methods and not (method == "HEAD" and "GET" in rule.methods):
            allowed = ", ".join(sorted(rule.methods))
            return 405, f"method {method} not allowed here (allowed: {allowed})", None
        if rule.auth and self.keys:
            header = _header(scope, b"authorization")
            if not is_authorized(header, self.keys):
                reason = "missing" if header is None else "invalid"
                return 401, f"{reason} API key: send 'Authorization: Bearer <key>'", None
        if rule.json_body:
            media = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
            if media != b"application/json":
                shown = media.decode("latin-1")[:60] or "none"
                return (
                    415,
                    f"send the body as JSON (Content-Type: application/json), got {shown}",
                    None,
                )
            declared = _header(scope, b"content-length")
            if declared is not None:
                if not declared.strip().isdigit():
                    return 400, "invalid Content-Length header", None
                if int(declared) > self.max_body_bytes:
                    return 413, self._too_large(), None
        return None

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes (FIDELITE_MAX_BODY_BYTES)"

    async def _read_body(self, receive: Receive, state: _Exchange) -> list[Message] | None:
        """Every body message, or None after answering 408/413 (or on disconnect)."""
        messages: list[Message] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return None  # client went away
                    messages.append(message)
                    size += len(message.get("body", b""))
                    if size > self.max_body_bytes:
                        await state.send_error(413, self._too_large(), None)
                        return None
                    if not message.get("more_body", False):
                        return messages
        except TimeoutError:
            await state.send_error(
                408, f"request body not received within {self.body_timeout:g} s", None
            )
            return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = iter(messages)

    async def replay_receive() -> Message:
        message = next(pending, None)
        return message if message is not None else await receive()

    return replay_receive


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name or key.lower() == name:
            return value
    return None


class _Exchange:
    """Wraps ``send``: records the status and reshapes error bodies."""

    def __init__(self, scope: Scope, send: Send, label: str) -> None:
        self.scope = scope
        self.inner_send = send
        self.label = label
        self.status = 0
        self.app_started = 0.0
        self._error_start: Message | None = None
        self._error_chunks: list[bytes] = []

    def request_id(self) -> str:
        given = _header(self.scope, b"x-request-id")
        if given is not None and _REQUEST_ID.match(given):
            return given.decode()
        return uuid.uuid4().hex[:16]

    async def send_error(self, status: int, message: str, field: str | None) -> None:
        self.status = status
        await self._send_body(status, ErrorBody(error=message, field=field), [])

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            if self.status >= 400:
                self._error_start = message
                return
            # time spent answering after the body was read (benchmarks read it)
            spent = (time.perf_counter() - self.app_started) * 1000 if self.app_started else 0.0
            message["headers"] = [
                *message.get("headers", []),
                (b"server-timing", f"app;dur={spent:.2f}".encode()),
            ]
        elif kind == "http.response.body" and self._error_start is not None:
            self._error_chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = _as_error_body(self.status, b"".join(self._error_chunks))
                await self._send_body(self.status, body, self._error_start.get("headers", []))
            return
        await self.inner_send(message)

    async def _send_body(self, status: int, body: ErrorBody, headers: list) -> None:
        request_id = self.request_id()
        logger.warning(
            "%s %s %s field=%s request_id=%s",
            status,
            self.scope["method"],
            self.label,
            body.field or "-",
            request_id,
        )
        payload = error_json(body)
        kept = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")]
        if status == 401:
            kept.append((b"www-authenticate", b"Bearer"))
        await self.inner_send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    *kept,
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await self.inner_send({"type": "http.response.body", "body": payload})


_GENERIC = {
    404: "no endpoint at this path: see /docs.json for the API",
    405: "method not allowed here",
    500: "internal error: the request could not be completed",
}


def _as_error_body(status: int, raw: bytes) -> ErrorBody:
    """An error body in the service's shape, whatever produced it."""
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if isinstance(data, dict) and set(data) == _ERROR_KEYS:
        return ErrorBody.model_validate(data)
    if status >= 500:
        return ErrorBody(
            error=_GENERIC[500] if status == 500 else f"service unavailable ({status})"
        )
    if isinstance(data, dict) and isinstance(data.get("detail"), list) and data["detail"]:
        # pydantic validation errors as the framework formats them
        problems = [p for p in data["detail"] if isinstance(p, dict)]
        if problems:
            first = problems[0]
            loc = [str(p) for p in first.get("loc", ()) if not isinstance(p, int)]
            # model names (capitalised) and pydantic's "root" wrapper are not JSON fields
            field = ".".join(p for p in loc if not p[:1].isupper() and p != "root") or None
            msg = str(first.get("msg", "invalid value"))
            others = [str(p.get("msg")) for p in problems[1:4]]
            return ErrorBody(
                error=f"{field}: {msg}" if field else msg,
                field=field,
                detail="; ".join(others) or None,
            )
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return ErrorBody(error=data["error"][:500], field=data.get("field"))
    return ErrorBody(error=_GENERIC.get(status, f"request refused ({status})"))
