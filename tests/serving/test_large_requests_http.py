"""Large ``/predict`` bodies over HTTP: read in a worker thread, uniform feature rows
decoded straight into columns, answers encoded column by column -- and the same bytes as
the general path, for good and bad requests alike."""

from __future__ import annotations

import json

import pytest

from tests.serving.conftest import AS_OF, LiveServer

pytestmark = pytest.mark.slow
N_ROWS = 40  # the test server's FIDELITE_MAX_BATCH is 50


def _rows(live_server: LiveServer) -> list[dict]:
    rows = live_server.rows(live_server.features.index[:N_ROWS].tolist())
    rows[3]["best_channel"] = "carrier-pigeon"  # a channel the model has never seen
    rows[4]["email_opt_in"] = False
    rows[5]["email_opt_in"] = None
    rows[6]["customer_id"] = 'ç, "6" \\ x'
    return rows


def _body(rows: list[dict], *, reasons: bool, between: int = 0, before: int = 0) -> bytes:
    """The request with ``between`` blanks after each row and ``before`` blanks before
    the first (JSON whitespace: the same request)."""
    features = ("," + " " * between).join(json.dumps(row) for row in rows)
    flag = "true" if reasons else "false"
    text = f'{{"as_of": "{AS_OF}", "include_reasons": {flag}, "features": [{" " * before}'
    return (text + features + "]}").encode()


def _post(live_server: LiveServer, body: bytes):
    with live_server.client() as client:
        return client.post("/predict", content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("reasons", [True, False])
def test_large_bodies_get_the_bytes_of_the_general_path(
    live_server: LiveServer, reasons: bool
) -> None:
    rows = _rows(live_server)
    small = _body(rows, reasons=reasons)  # validated on the event loop, as always
    fast = _body(rows, reasons=reasons, between=8_000)  # decoded straight into columns
    general = _body(rows, reasons=reasons, before=300_000)  # first row out of the probe
    assert len(small) < 256 * 1024 <= min(len(fast), len(general))
    answers = [_post(live_server, body) for body in (small, fast, general)]
    for answer in answers:
        assert answer.status_code == 200, answer.text[:300]
        assert "app;dur=" in answer.headers["server-timing"]
    assert answers[0].content == answers[1].content == answers[2].content
    scores = answers[1].json()["scores"]
    assert [s["customer_id"] for s in scores] == [r["customer_id"] for r in rows]
    assert scores[4]["email_opt_in"] is False and scores[5]["email_opt_in"] is True  # null: in
    assert all(bool(s["reasons"]) == reasons for s in scores if s["status"] == "ok")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"spend_total": True}, "features.spend_total"),
        ({"spend_total": "59.9"}, "features.spend_total"),
        ({"recency": 600.0, "T": 528.0}, "features.recency"),
        ({"customer_id": None}, "features.customer_id"),
        ({"colour": "red"}, "features.colour"),
    ],
)
def test_bad_large_bodies_get_the_400_of_the_general_path(
    live_server: LiveServer, change: dict, field: str
) -> None:
    rows = _rows(live_server)
    rows[30].update(change)
    small = _post(live_server, _body(rows, reasons=True))
    large = _post(live_server, _body(rows, reasons=True, between=8_000))
    assert small.status_code == large.status_code == 400
    assert small.json() == large.json()
    assert large.json()["field"] == field


def test_bad_large_envelope_gets_the_schema_400(live_server: LiveServer) -> None:
    body = _body(_rows(live_server), reasons=True, between=8_000)
    small = _post(
        live_server, _body(_rows(live_server), reasons=True).replace(AS_OF.encode(), b"9999-12-31")
    )
    large = _post(live_server, body.replace(AS_OF.encode(), b"9999-12-31"))
    assert small.status_code == large.status_code == 400
    assert small.json() == large.json() and large.json()["field"] == "as_of"
