"""API-key authentication as an ASGI middleware.

When API keys are configured (env ``FIDELITE_API_KEYS``, comma-separated), every
request must carry ``Authorization: Bearer <key>``, except the health and metrics
endpoints that orchestrators scrape without credentials.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_KEYS_ENV = "FIDELITE_API_KEYS"
OPEN_PATHS: frozenset[str] = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})


def api_keys_from_env(environ: MutableMapping[str, str] | None = None) -> tuple[str, ...]:
    """Configured API keys; empty when authentication is off.

    Parameters
    ----------
    environ : mapping, optional
        Environment to read (default ``os.environ``).

    Returns
    -------
    tuple of str
        Non-empty, stripped keys from ``FIDELITE_API_KEYS``.
    """
    raw = (environ if environ is not None else os.environ).get(API_KEYS_ENV, "")
    return tuple(key.strip() for key in raw.split(",") if key.strip())


def is_authorized(header_value: str | None, keys: Iterable[str]) -> bool:
    """Whether an ``Authorization`` header carries one of ``keys`` as a Bearer token.

    Every key is compared in constant time (``hmac.compare_digest``) and the loop does
    not stop early, so timing reveals neither the key nor which key matched.
    """
    if not header_value:
        return False
    scheme, _, token = header_value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    presented = token.strip().encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key.encode())
    return matched


async def send_json_error(send: Send, status: int, message: str, **headers: str) -> None:
    """Answer an HTTP request with ``{"error": message}`` without calling the app."""
    body = json.dumps({"error": message}).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.encode(), value.encode()) for name, value in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class ApiKeyMiddleware:
    """Reject requests without a valid ``Authorization: Bearer <key>`` header (401).

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    keys : iterable of str
        Accepted keys; when empty every request passes (authentication off).
    open_paths : iterable of str
        Paths served without a key (health checks, Prometheus metrics).
    """

    def __init__(
        self, app: ASGIApp, keys: Iterable[str] = (), open_paths: Iterable[str] = OPEN_PATHS
    ) -> None:
        self.app = app
        self.keys = tuple(keys)
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        header = request_header(scope, b"authorization")
        if not is_authorized(header, self.keys):
            reason = "missing" if header is None else "invalid"
            await send_json_error(
                send,
                401,
                f"{reason} API key: send 'Authorization: Bearer <key>'",
                **{"www-authenticate": "Bearer"},
            )
            return
        await self.app(scope, receive, send)


def request_header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
