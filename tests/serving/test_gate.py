"""The gate middleware on a stub app: routing, auth, limits and the one error shape."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from fidelite.serving.gate import Gate, RouteRule, is_authorized

GET, POST = frozenset({"GET"}), frozenset({"POST"})
ROUTES = {
    "/predict": RouteRule("predict", POST, auth=True, json_body=True),
    "/model": RouteRule("model", GET, auth=True),
    "/readyz": RouteRule("readyz", GET, auth=False),
    "/metrics": RouteRule("metrics", GET, auth=True),  # as with FIDELITE_METRICS_AUTH=on
    "/boom": RouteRule("boom", GET, auth=False),
    "/invalid": RouteRule("invalid", POST, auth=False, json_body=True),
}


async def stub(scope, receive, send) -> None:
    """Echo the body length; /boom fails like the framework does, /invalid like pydantic."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/boom":
        status, payload = 500, b'{"error": "An unexpected error has occurred"}'
    elif scope["path"] == "/invalid":
        detail = [{"loc": ["root", "as_of"], "msg": "Field required", "type": "missing"}]
        status, payload = 400, json.dumps({"error": "1 validation error", "detail": detail})
        payload = payload.encode()
    else:
        status, payload = 200, json.dumps({"received": len(body)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def call(method: str, path: str, **kwargs) -> httpx.Response:
    gate = Gate(
        stub,
        routes=ROUTES,
        api_keys=["k1"],
        max_body_bytes=100,
        body_timeout=1,
        record_metrics=False,
    )

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=gate)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


AUTH = {"Authorization": "Bearer k1"}
JSON = {**AUTH, "content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/nowhere", {}, 404),
        ("POST", "/model", {"headers": AUTH}, 405),
        ("GET", "/model", {}, 401),
        ("GET", "/model", {"headers": {"Authorization": "Bearer nope"}}, 401),
        ("GET", "/metrics", {}, 401),
        ("GET", "/readyz", {}, 200),
        (
            "POST",
            "/predict",
            {"headers": {**AUTH, "content-type": "text/plain"}, "content": b"{}"},
            415,
        ),
        ("POST", "/predict", {"headers": JSON, "content": b"x" * 101}, 413),
        ("POST", "/predict", {"headers": JSON, "content": b"{}"}, 200),
        ("GET", "/boom", {}, 500),
        ("POST", "/invalid", {"headers": JSON, "content": b"{}"}, 400),
    ],
)
def test_every_answer_has_the_right_status_and_shape(method, path, kwargs, status) -> None:
    response = call(method, path, **kwargs)
    assert response.status_code == status, response.text
    if status >= 400:
        body = response.json()
        assert set(body) == {"error", "field", "detail"} and body["error"]
        assert response.headers["x-request-id"]
    if status == 500:
        assert "unexpected" not in response.text  # framework text replaced
    if path == "/invalid":
        assert response.json()["field"] == "as_of"


def test_chunked_body_over_the_limit_is_cut_off() -> None:
    async def chunks():
        for _ in range(10):
            yield b"x" * 30

    response = call("POST", "/predict", headers=JSON, content=chunks())
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (b"Bearer k1", True),
        (b"bearer   k1 ", True),
        (b"Bearer\tk1", True),
        (b"Basic k1", False),
        (b"Bearer", False),
        (b"Bearer k2", False),
        (None, False),
    ],
)
def test_is_authorized(header: bytes | None, ok: bool) -> None:
    assert is_authorized(header, [b"k1"]) is ok
