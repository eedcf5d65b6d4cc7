"""Unit tests of request validation, auth and size limits (no server process)."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pandas as pd
import pytest
from pydantic import ValidationError

from fidelite.serving.auth import ApiKeyMiddleware, api_keys_from_env, is_authorized
from fidelite.serving.limits import BodySizeLimitMiddleware
from fidelite.serving.schemas import HistoryIn, PredictRequest
from fidelite.serving.scoring import RequestError, features_frame, history_features, score_records

REQUIRED = ("orders_total", "frequency", "recency", "T", "monetary_value")


def row(customer_id: object = "c1", **overrides: object) -> dict:
    base = {
        "customer_id": customer_id,
        "orders_total": 3,
        "frequency": 2.0,
        "recency": 40.0,
        "T": 90.0,
        "monetary_value": 25.0,
        "best_channel": "email",
    }
    return {**base, **overrides}


# -------------------------------------------------------------------- feature rows


def test_features_frame_indexes_by_string_id() -> None:
    frame = features_frame([row(7), row("c2")], required_columns=REQUIRED, max_customers=10)
    assert frame.index.tolist() == ["7", "c2"]
    assert frame.index.name == "customer_id"
    assert "customer_id" not in frame.columns


@pytest.mark.parametrize(
    ("rows", "field", "status"),
    [
        ([row("a"), row("a")], "features.customer_id", 400),
        ([{k: v for k, v in row().items() if k != "customer_id"}], "features.customer_id", 400),
        ([{k: v for k, v in row().items() if k != "recency"}], "features.recency", 400),
        ([row(orders_total=-1)], "features.orders_total", 400),
        ([row(eng_email_events_30d=-2)], "features.eng_email_events_30d", 400),
        ([row("a"), row("b", frequency="many")], "features.frequency", 400),
        ([row(str(i)) for i in range(4)], "features", 413),
    ],
)
def test_features_frame_rejects_bad_rows(rows: list[dict], field: str, status: int) -> None:
    with pytest.raises(RequestError) as info:
        features_frame(rows, required_columns=REQUIRED, max_customers=3)
    assert info.value.field == field
    assert info.value.status_code == status
    assert field.split(".")[-1] in str(info.value)


def test_spend_may_be_negative_after_refunds() -> None:
    frame = features_frame([row(spend_30d=-20.0)], required_columns=REQUIRED, max_customers=3)
    assert frame.loc["c1", "spend_30d"] == -20.0


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_feature_values_are_rejected_by_name(bad: str) -> None:
    body = '{"as_of": "2025-01-31", "features": [{"customer_id": "a", "frequency": ' + bad + "}]}"
    with pytest.raises(ValidationError) as info:
        PredictRequest.model_validate_json(body)
    assert any(error["loc"][:3] == ("features", 0, "frequency") for error in info.value.errors())


def test_predict_request_needs_exactly_one_input() -> None:
    with pytest.raises(ValidationError, match="exactly one of `features` or `history`"):
        PredictRequest.model_validate({"as_of": "2025-01-31"})


# ------------------------------------------------------------------------- history


def history(**tx_overrides: object) -> HistoryIn:
    transactions = [
        {
            "customer_id": 1,
            "order_id": "o1",
            "timestamp": "2025-01-02T10:00:00+02:00",
            "amount": 30.0,
        },
        {"customer_id": 1, "order_id": "o2", "timestamp": "2025-01-20T10:00:00", "amount": 20.0},
        {
            "customer_id": "c2",
            "order_id": "o3",
            "timestamp": "2025-01-05",
            "amount": 15.0,
            **tx_overrides,
        },
    ]
    return HistoryIn.model_validate({"transactions": transactions})


def test_history_features_builds_one_row_per_customer() -> None:
    features = history_features(history(), as_of=dt.date(2025, 1, 31), max_customers=10)
    assert sorted(features.index) == ["1", "c2"]
    assert features.loc["1", "orders_total"] == 2


def test_history_rows_after_as_of_are_rejected_with_samples() -> None:
    with pytest.raises(RequestError) as info:
        history_features(
            history(timestamp="2025-02-01T00:00:00"), as_of=dt.date(2025, 1, 31), max_customers=10
        )
    assert info.value.field == "history.transactions.timestamp"
    assert "customer_id=c2" in str(info.value) and "2025-02-01" in str(info.value)


def test_last_moment_of_as_of_day_is_allowed() -> None:
    features = history_features(
        history(timestamp="2025-01-31T23:59:59"), as_of=dt.date(2025, 1, 31), max_customers=10
    )
    assert features.loc["c2", "orders_total"] == 1


def test_history_customer_limit() -> None:
    with pytest.raises(RequestError) as info:
        history_features(history(), as_of=dt.date(2025, 1, 31), max_customers=1)
    assert info.value.status_code == 413


def test_negative_discount_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        history(discount=-1.0)
    assert info.value.errors()[0]["loc"] == ("transactions", 2, "discount")


# -------------------------------------------------------------------------- output


def test_score_records_parses_json_reasons_and_missing_values() -> None:
    scores = pd.DataFrame(
        {
            "customer_id": ["a"],
            "as_of": [pd.Timestamp("2025-01-31")],
            "horizon_days": [90],
            "status": ["insufficient_history"],
            "churn_probability": [float("nan")],
            "p_alive": [float("nan")],
            "expected_purchases": [float("nan")],
            "predicted_clv": [float("nan")],
            "predicted_clv_p10": [float("nan")],
            "predicted_clv_p90": [float("nan")],
            "expected_next_purchase": [pd.NaT],
            "lifecycle_stage": ["prospect"],
            "churn_percentile": [float("nan")],
            "risk_band": [None],
            "value_at_risk": [float("nan")],
            "reasons": ['["no purchase yet"]'],
            "best_channel": ["web"],
            "channel_preference": ["web"],
            "email_opt_in": [True],
            "sms_opt_in": [False],
            "push_opt_in": [True],
        }
    )
    (record,) = score_records(scores)
    assert record.reasons == ["no purchase yet"]
    assert record.churn_probability is None and record.expected_next_purchase is None
    assert record.as_of == dt.date(2025, 1, 31)


# ----------------------------------------------------------------- auth and limits


def test_api_keys_from_env_ignores_blanks() -> None:
    assert api_keys_from_env({"FIDELITE_API_KEYS": " a, ,b ,"}) == ("a", "b")
    assert api_keys_from_env({}) == ()


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer a", True),
        ("bearer b", True),
        ("Bearer c", False),
        ("Basic a", False),
        ("Bearer ", False),
        (None, False),
        ("a", False),
    ],
)
def test_is_authorized(header: str | None, ok: bool) -> None:
    assert is_authorized(header, ("a", "b")) is ok


async def echo_app(scope, receive, send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def call(app, method: str, path: str, **kwargs) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(run())


def test_api_key_middleware_guards_all_but_health() -> None:
    app = ApiKeyMiddleware(echo_app, keys=("secret",))
    assert call(app, "POST", "/predict", content=b"x").status_code == 401
    assert call(app, "GET", "/livez").status_code == 200
    assert call(app, "GET", "/metrics").status_code == 200
    ok = call(app, "POST", "/predict", content=b"x", headers={"Authorization": "Bearer secret"})
    assert (ok.status_code, ok.content) == (200, b"x")
    assert call(ApiKeyMiddleware(echo_app, keys=()), "POST", "/predict").status_code == 200


def test_body_size_limit_checks_declared_and_streamed_bodies() -> None:
    app = BodySizeLimitMiddleware(echo_app, max_bytes=10)
    assert call(app, "POST", "/predict", content=b"x" * 10).content == b"x" * 10
    too_big = call(app, "POST", "/predict", content=b"x" * 11)
    assert too_big.status_code == 413 and "10 bytes" in too_big.json()["error"]

    async def chunks():
        for _ in range(3):
            yield b"xxxx"

    streamed = call(app, "POST", "/predict", content=chunks())
    assert streamed.status_code == 413

    async def small_chunks():
        yield b"ab"
        yield b"cd"

    assert call(app, "POST", "/predict", content=small_chunks()).content == b"abcd"
