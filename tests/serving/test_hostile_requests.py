"""121 malformed or hostile requests against the live service, kept as a regression test.

Each must get a 4xx naming the problem in the service's one error shape, or a 2xx where
the input is odd but valid; never a 5xx; and the service must still be ready afterwards.
The ids follow the original hostile matrix (P: feature-row predict, H: raw-history
predict, L: lookup, W: win-back, M: methods, T: traversal, S: size).
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.serving.conftest import AS_OF, MAX_BATCH, MAX_BODY_BYTES, LiveServer
from tests.serving.hostile_cases import (
    HOSTILE_ID,
    PREDICT_CASES,
    Case,
    const_body,
    demo_row,
    features_body,
    raw_body,
    winback_body,
)

pytestmark = pytest.mark.slow
JSON = {"content-type": "application/json"}


CASES: list[Case] = [
    *PREDICT_CASES,
    Case("L01", "POST", "/customers/lookup", const_body({"customer_ids": []})),
    Case("L02", "POST", "/customers/lookup", const_body({})),
    Case("L03", "POST", "/customers/lookup", const_body({"customer_ids": "C0000001"})),
    Case("L04", "POST", "/customers/lookup", const_body({"customer_ids": [1, 2]})),
    Case(
        "L05",
        "POST",
        "/customers/lookup",
        const_body({"customer_ids": [f"i{i}" for i in range(100_000)]}),
    ),
    Case("L06", "POST", "/customers/lookup", const_body({"customer_ids": ["c" * 257]})),
    Case(
        "L07",
        "POST",
        "/customers/lookup",
        const_body({"customer_ids": [HOSTILE_ID, "../../x", "'; drop table x;--"]}),
        ok=(200,),
    ),
    Case("L08", "POST", "/customers/lookup", const_body({"customer_ids": [None]})),
    Case("L09", "POST", "/customers/lookup", const_body({"customer_ids": [True]})),
    Case(
        "L10",
        "POST",
        "/customers/lookup",
        const_body({"customer_ids": ["C0000001"] * MAX_BATCH}),
        ok=(200,),
    ),
    Case("L11", "POST", "/customers/lookup", const_body({"customer_ids": ["a"], "x": 1})),
    Case("L12", "POST", "/customers/lookup", const_body({"customer_ids": [1.5]})),
    Case(
        "L13", "POST", "/customers/lookup", raw_body('{"customer_ids": ["a"], "customer_ids": 5}')
    ),
    Case("L14", "POST", "/customers/lookup", lambda s: b'{"customer_ids": ["\xff\xfe"]}'),
    Case("L15", "POST", "/customers/lookup", raw_body("[" * 100_000 + "]" * 100_000)),
    Case(
        "L16",
        "POST",
        "/customers/lookup",
        raw_body('{"customer_ids": ["a"]}'),
        headers={"content-type": "text/plain"},
    ),
    Case(
        "L17",
        "POST",
        "/customers/lookup",
        raw_body("customer_ids=a"),
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    Case("L18", "POST", "/customers/lookup", raw_body('{"customer_ids": ["a"]}'), headers={}),
    Case("L19", "GET", "/customers/lookup"),
    Case(
        "L20",
        "POST",
        "/customers/lookup",
        raw_body(
            '--b\r\nContent-Disposition: form-data; name="customer_ids"\r\n\r\na\r\n--b--\r\n'
        ),
        headers={"content-type": "multipart/form-data; boundary=b"},
    ),
    Case("W01", "POST", "/winback", winback_body(max_contacts=-1), needle="max_contacts"),
    Case("W02", "POST", "/winback", winback_body(max_contacts=0), needle="max_contacts"),
    Case("W03", "POST", "/winback", winback_body(max_spend=-1), needle="max_spend"),
    Case("W04", "POST", "/winback", winback_body(max_spend=0), needle="max_spend"),
    Case("W05", "POST", "/winback", winback_body(offer_cost=-1), needle="offer_cost"),
    Case("W06", "POST", "/winback", winback_body(response_rate=0), needle="response_rate"),
    Case("W07", "POST", "/winback", winback_body(response_rate=1.5), needle="response_rate"),
    Case("W08", "POST", "/winback", raw_body('{"response_rate": NaN}')),
    Case("W09", "POST", "/winback", raw_body('{"offer_cost": Infinity}')),
    Case("W10", "POST", "/winback", winback_body(max_contacts=10**30), needle="max_contacts"),
    Case("W11", "POST", "/winback", winback_body(limit=-1), needle="limit"),
    Case("W12", "POST", "/winback", winback_body(exclude_ids=[f"e{i}" for i in range(100_000)])),
    Case("W13", "POST", "/winback", winback_body(batch={})),
    Case("W14", "POST", "/winback", winback_body(min_value=1e308), needle="min_value"),
    Case("W15", "POST", "/winback", winback_body(max_contacts=2.5), needle="max_contacts"),
    Case("W16", "POST", "/winback", winback_body(max_contacts="5"), needle="max_contacts"),
    Case("W17", "POST", "/winback", winback_body(offer_cost=1e308), needle="offer_cost"),
    Case("W18", "POST", "/winback", lambda s: {"batch": features_body(demo_row)(s)}, ok=(200,)),
    Case(
        "W19", "POST", "/winback", winback_body(max_spend=1e308, offer_cost=0), needle="max_spend"
    ),
    Case("W20", "POST", "/winback", winback_body(max_contacts=2**63), needle="max_contacts"),
    Case("M01", "POST", "/model", const_body({})),
    Case("M02", "GET", "/model?version=../../etc/passwd", ok=(200,)),
    Case("M03", "GET", "/predict"),
    Case("M04", "PUT", "/predict", const_body({})),
    Case("M05", "POST", "/readyz", const_body({})),
    Case("M06", "DELETE", "/livez"),
    Case("T01", "GET", "/../../etc/passwd"),
    Case("T02", "GET", "/%2e%2e/%2e%2e/etc/passwd"),
    Case("T03", "GET", "/static/..%2f..%2f..%2fetc%2fpasswd"),
    Case("T04", "GET", "/docs/..%2f..%2fetc%2fpasswd"),
    Case("T05", "GET", "//etc/passwd"),
    Case("T06", "GET", "/static_content/../../../../etc/passwd"),
    Case("T07", "GET", "/static_content/..%2f..%2f..%2f..%2fetc%2fpasswd"),
    Case("T08", "GET", "/model/..%2f..%2fmetrics"),
    Case("T09", "GET", "/admin"),
]


def _send(server: LiveServer, case: Case):
    body = case.body(server) if case.body is not None else None
    headers = dict(JSON if case.headers is None else case.headers)
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
    # the raw path is sent as written (no client-side normalisation of ../ or //)
    url = httpx.URL(server.base_url).copy_with(raw_path=case.path.encode())
    with server.client() as client:
        request = client.build_request(case.method, url, content=content, headers=headers)
        return client.send(request)


def _assert_error_shape(response) -> None:
    body = response.json()
    assert set(body) == {"error", "field", "detail"}, body
    assert isinstance(body["error"], str) and body["error"]


def test_matrix_has_121_cases_with_unique_ids() -> None:
    ids = [case.id for case in CASES] + ["S01", "S02", "S03"]
    assert len(ids) == len(set(ids)) == 121


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_request_gets_a_4xx_or_valid_2xx(live_server: LiveServer, case: Case) -> None:
    response = _send(live_server, case)
    if response.status_code in case.ok:
        return
    assert 400 <= response.status_code < 500, (case.id, response.status_code, response.text[:300])
    if case.method != "HEAD":
        _assert_error_shape(response)
    if case.needle:
        assert case.needle.lower() in response.text.lower(), (case.id, response.text[:300])
    # never echo file contents, paths or tracebacks
    assert "root:" not in response.text and "Traceback" not in response.text


def _raw_request(server: LiveServer, head: bytes, chunks: list[bytes]) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent
        return sock.recv(65536)


def test_s01_declared_oversized_body_is_refused_before_reading(live_server: LiveServer) -> None:
    size = 64 * 1024 * 1024 + 20
    head = (
        f"POST /customers/lookup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key-1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    answer = _raw_request(live_server, head, [b"{" * 1024])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_s02_chunked_oversized_body_is_cut_off(live_server: LiveServer) -> None:
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key-1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    piece = b" " * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    # stop well past the configured limit: the server answers once it is crossed
    n_chunks = MAX_BODY_BYTES // len(piece) + 8
    answer = _raw_request(live_server, head, [chunk] * n_chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_s03_5mb_as_of_string_is_refused(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.post("/predict", json={"as_of": "2" * 5_000_000, "features": [{}]})
    assert response.status_code == 413
    _assert_error_shape(response)


def test_service_stays_ready_after_the_matrix(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert client.get("/readyz").status_code == 200
        ok = client.post(
            "/predict",
            json={"as_of": AS_OF, "features": live_server.rows(live_server.scored_ids(2))},
        )
    assert ok.status_code == 200
