"""Server limits from the environment: body bytes (ASGI middleware), batch size, workers."""

from __future__ import annotations

import os

from fidelite.serving.auth import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    request_header,
    send_json_error,
)

MAX_BATCH_ENV = "FIDELITE_MAX_BATCH"
MAX_BODY_BYTES_ENV = "FIDELITE_MAX_BODY_BYTES"
WORKERS_ENV = "FIDELITE_WORKERS"
DEFAULT_MAX_BATCH = 10_000
# 10k feature rows of ~100 columns are ~25 MB of JSON; leave headroom for raw history.
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


def _positive_int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"environment variable {name} must be > 0, got {value}")
    return value


def max_batch_from_env() -> int:
    """Maximum customers per request (env ``FIDELITE_MAX_BATCH``, default 10000)."""
    return _positive_int_env(MAX_BATCH_ENV, DEFAULT_MAX_BATCH)


def max_body_bytes_from_env() -> int:
    """Maximum request body in bytes (env ``FIDELITE_MAX_BODY_BYTES``, default 64 MiB)."""
    return _positive_int_env(MAX_BODY_BYTES_ENV, DEFAULT_MAX_BODY_BYTES)


def workers_from_env() -> int:
    """Server worker processes (env ``FIDELITE_WORKERS``, default 1)."""
    return _positive_int_env(WORKERS_ENV, 1)


class BodySizeLimitMiddleware:
    """Answer 413 to request bodies larger than ``max_bytes``.

    A declared ``Content-Length`` is checked before anything is read. Bodies sent
    without one (chunked) are buffered up to the limit and replayed to the app, so an
    oversized body is rejected before the app parses any of it.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    max_bytes : int
        Largest accepted body, in bytes.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = request_header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await send_json_error(send, 400, "invalid Content-Length header")
                return
            if int(declared) > self.max_bytes:
                await self._reject(send)
                return
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._reject(send)
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replay_receive() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replay_receive, send)

    async def _reject(self, send: Send) -> None:
        await send_json_error(
            send, 413, f"request body larger than {self.max_bytes} bytes ({MAX_BODY_BYTES_ENV})"
        )
