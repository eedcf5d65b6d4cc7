"""The numbered defects of the hardening issue, each checked over HTTP on the live server.

(Startup failures are in test_startup.py, the champion reload in test_reload.py, the
121 hostile requests in test_hostile_requests.py.)
"""

from __future__ import annotations

import io
import json
import re
import socket
import time
import uuid

import pandas as pd
import pytest

from fidelite.serving.snapshot import write_snapshot_atomic
from tests.serving.conftest import AS_OF, BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_BATCH, LiveServer

pytestmark = pytest.mark.slow


def wait_for(condition, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


# ------------------------------------------------------------- 1. bounded metrics


def test_1_unknown_paths_cannot_grow_metrics(live_server: LiveServer) -> None:
    tag = uuid.uuid4().hex[:8]
    with live_server.client() as client:
        for i in range(20):  # every label combination the loop below can produce exists now
            client.get(f"/warm-{tag}-{i}")
        before = len(client.get("/metrics").content)
        for i in range(400):
            assert client.get(f"/nope-{tag}-{i}").status_code == 404
        text = client.get("/metrics").text
    assert len(text) - before < 2000, (before, len(text))
    assert tag not in text and 'endpoint="other"' in text
    endpoints = set(re.findall(r'endpoint="([^"]*)"', text))
    assert endpoints <= {
        "predict",
        "lookup",
        "winback",
        "model",
        "report",
        "docs",
        "livez",
        "healthz",
        "readyz",
        "metrics",
        "other",
    }, endpoints


# -------------------------------------------------------- 2. 400 instead of 500


def test_2_recency_above_t_is_a_400(live_server: LiveServer) -> None:
    row = dict(live_server.rows(live_server.scored_ids(1))[0], recency=600.0, T=528.0)
    with live_server.client() as client:
        response = client.post("/predict", json={"as_of": AS_OF, "features": [row]})
    assert response.status_code == 400
    assert response.json()["field"] == "features.recency"


def test_2_huge_amounts_in_history_are_a_400(live_server: LiveServer) -> None:
    tx = [
        {"customer_id": "h", "order_id": f"o{i}", "timestamp": f"2025-05-0{i}", "amount": 1e308}
        for i in (1, 2)
    ]
    with live_server.client() as client:
        response = client.post("/predict", json={"as_of": AS_OF, "history": {"transactions": tx}})
    assert response.status_code == 400 and "amount" in response.json()["field"]


def test_2_and_7_bad_snapshots_keep_the_last_good_one(live_server: LiveServer) -> None:
    path = live_server.snapshot_path
    original = path.read_bytes()
    cid = live_server.scored_ids(1)[0]
    bad_files = [
        b"PAR1 this is half a parquet file",
        _parquet(live_server.snapshot.drop(columns=["churn_probability", "predicted_clv"])),
    ]
    try:
        for content in bad_files:
            path.write_bytes(content)
            with live_server.client() as client:
                assert wait_for(lambda: client.get("/model").json()["snapshot"]["error"])
                state = client.get("/model").json()["snapshot"]
                assert state["loaded"] and str(path.parent) not in state["error"]
                assert client.get("/readyz").status_code == 200
                lookup = client.post("/customers/lookup", json={"customer_ids": [cid]})
                assert lookup.status_code == 200 and lookup.json()["n_found"] == 1
                assert client.post("/winback", json={"limit": 1}).status_code == 200
    finally:
        write_snapshot_atomic(pd.read_parquet(io.BytesIO(original)), path)
    with live_server.client() as client:
        assert wait_for(lambda: client.get("/model").json()["snapshot"]["error"] is None)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


# ----------------------------------------------------------------- 3. list caps


def test_3_exclude_ids_are_capped(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.post(
            "/winback", json={"exclude_ids": [f"e{i}" for i in range(MAX_BATCH + 1)]}
        )
    assert response.status_code == 413 and response.json()["field"] == "exclude_ids"


# ---------------------------------------------------- 4. consent is per customer


def test_4_consent_does_not_depend_on_other_customers(live_server: LiveServer) -> None:
    tx = {"customer_id": "42", "order_id": "o1", "timestamp": "2025-06-02", "amount": 59.9}
    other = dict(tx, customer_id="43", order_id="o2")

    def consent(customers: list[dict], transactions: list[dict]) -> bool:
        body = {"as_of": AS_OF, "history": {"transactions": transactions, "customers": customers}}
        with live_server.client() as client:
            response = client.post("/predict", json=body)
        assert response.status_code == 200, response.text
        scores = {row["customer_id"]: row for row in response.json()["scores"]}
        return scores["42"]["email_opt_in"]

    alone = consent([{"customer_id": "42"}], [tx])
    beside = consent(
        [{"customer_id": "42"}, {"customer_id": "43", "email_opt_in": False}], [tx, other]
    )
    assert alone is True and beside is True


# ------------------------------------------------------------------ 9. strict types


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_id": True}, "customer_id"),
        ({"recency": True}, "recency"),
        ({"best_channel": 3}, "best_channel"),
        ({"frequency": "2"}, "frequency"),
    ],
)
def test_9_lax_types_are_refused(live_server: LiveServer, change: dict, field: str) -> None:
    row = dict(live_server.rows(live_server.scored_ids(1))[0], **change)
    with live_server.client() as client:
        response = client.post("/predict", json={"as_of": AS_OF, "features": [row]})
    assert response.status_code == 400 and response.json()["field"] == f"features.{field}"


def test_9_json_content_type_is_required(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.post(
            "/customers/lookup",
            content=json.dumps({"customer_ids": ["a"]}),
            headers={"content-type": "text/plain"},
        )
    assert response.status_code == 415


# ---------------------------------------------------- 10. logs and slow clients


def test_10_one_log_line_per_4xx_without_request_values(live_server: LiveServer) -> None:
    secret = f"secret-customer-{uuid.uuid4().hex[:8]}"
    row = dict(live_server.rows(live_server.scored_ids(1))[0], customer_id=secret, recency=-4.0)
    with live_server.client() as client:
        response = client.post(
            "/predict",
            json={"as_of": AS_OF, "features": [row]},
            headers={"x-request-id": "req-4711"},
        )
    assert response.status_code == 400 and response.headers["x-request-id"] == "req-4711"
    assert wait_for(lambda: "req-4711" in live_server.log_path.read_text(), 5)
    log = live_server.log_path.read_text()
    lines = [line for line in log.splitlines() if "req-4711" in line]
    assert len(lines) == 1 and "400" in lines[0] and "features.recency" in lines[0]
    assert secret not in log and "Traceback" not in log


def test_10_incomplete_headers_are_dropped(live_server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=30) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        sock.settimeout(HEADER_TIMEOUT_S + 20)
        assert sock.recv(1024) == b""  # closed by the server
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 10


def test_10_slow_bodies_get_408(live_server: LiveServer) -> None:
    head = (
        b"POST /customers/lookup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key-1\r\n"
        b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"customer'
    )
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=30) as sock:
        sock.sendall(head)
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert time.monotonic() - started < BODY_TIMEOUT_S + 10


# ----------------------------------------------------------- 11. docs and paging


def test_11_openapi_is_integrable(live_server: LiveServer) -> None:
    with live_server.client(None) as client:
        spec = client.get("/docs.json").json()
        page = client.get("/")
    assert spec["info"]["title"] == "fidelite prediction service"
    assert spec["info"]["version"] not in ("", "None") and spec["info"]["x-model-version"]
    for path, status_codes in {
        "/predict": {"400", "401", "413", "415"},
        "/customers/lookup": {"400", "413", "415", "503"},
        "/winback": {"400", "413", "415", "503"},
    }.items():
        operation = spec["paths"][path]["post"]
        assert operation["summary"] and operation["description"]
        assert operation["requestBody"]["content"]["application/json"]["examples"]
        assert status_codes <= set(operation["responses"])
        ok = operation["responses"]["200"]["content"]["application/json"]
        assert ok["schema"] and (path == "/winback" or ok["examples"])
        for status, response in operation["responses"].items():
            if status != "200":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(spec["components"]["schemas"]["ErrorBody"]["properties"]) == {
        "error",
        "field",
        "detail",
    }
    html = page.text
    assert "googletagmanager" not in html
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)
    assert "default-src 'self'" in page.headers["content-security-policy"]
    with live_server.client(None) as client:
        for asset in re.findall(r'(?:src|href)="\./([^"]+)"', html):
            assert client.get(f"/{asset}").status_code == 200, asset


def test_11_winback_has_a_default_page_and_pages_through(live_server: LiveServer) -> None:
    with live_server.client() as client:
        first = client.post("/winback", json={}).json()
        second = client.post("/winback", json={"offset": 20}).json()
    assert first["page"]["limit"] == 20 and len(first["selected"]) == 20  # FIDELITE_WINBACK_LIMIT
    assert first["totals"]["contacts"] > 20 and first["page"]["next_offset"] == 20
    assert [r["rank"] for r in second["selected"]][:1] == [21]
    ids = {r["customer_id"] for r in first["selected"]} & {
        r["customer_id"] for r in second["selected"]
    }
    assert not ids


def test_11_readme_example_has_no_duplicated_reason(live_server: LiveServer) -> None:
    body = {
        "as_of": "2025-09-30",
        "history": {
            "transactions": [
                {"customer_id": "42", "order_id": "o1", "timestamp": "2025-06-02", "amount": 59.9},
                {"customer_id": "42", "order_id": "o2", "timestamp": "2025-08-20", "amount": 80.0},
            ]
        },
    }
    with live_server.client() as client:
        response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    reasons = response.json()["scores"][0]["reasons"]
    assert reasons and len(reasons) == len(set(reasons)), reasons
