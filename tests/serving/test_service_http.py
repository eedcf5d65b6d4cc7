"""End-to-end tests against a real ``fidelite serve`` process (see conftest.py)."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pandas as pd
import pytest

from fidelite.serving.snapshot import write_snapshot_atomic
from tests.serving.conftest import API_KEY, AS_OF, MAX_BATCH, MAX_BODY_BYTES, OTHER_KEY, LiveServer

pytestmark = pytest.mark.slow

ENDPOINTS = ("/predict", "/customers/lookup", "/winback", "/model", "/report")


def feature_rows(server: LiveServer, ids: list[str]) -> list[dict]:
    frame = server.features.loc[ids].reset_index()
    return json.loads(frame.to_json(orient="records"))


def scored_ids(server: LiveServer, n: int, status: str = "ok") -> list[str]:
    snapshot = server.snapshot
    return snapshot.loc[snapshot["status"] == status, "customer_id"].head(n).tolist()


def history_payload(server: LiveServer, ids: list[str]) -> dict:
    tx = server.demo.transactions
    end_exclusive = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    tx = tx[tx["customer_id"].isin(ids) & (tx["timestamp"] < end_exclusive)]
    records = json.loads(tx.assign(timestamp=tx["timestamp"].astype(str)).to_json(orient="records"))
    return {"transactions": records}


# ---------------------------------------------------------------------- docs, auth


def test_openapi_documents_every_endpoint(live_server: LiveServer) -> None:
    with live_server.client() as client:
        spec = client.get("/docs.json").json()
    for path in ENDPOINTS:
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert "as_of" in schemas["PredictRequest"]["properties"]
    assert schemas["PredictRequest"]["properties"]["as_of"]["description"]
    assert "get" in spec["paths"]["/model"] and "get" in spec["paths"]["/report"]


@pytest.mark.parametrize("key", [None, "wrong-key"])
@pytest.mark.parametrize("path", ENDPOINTS)
def test_requests_without_valid_key_get_401_and_no_data(
    live_server: LiveServer, key: str | None, path: str
) -> None:
    with live_server.client(key) as client:
        if path in ("/model", "/report"):
            response = client.get(path)
        else:
            response = client.post(path, json={"customer_ids": ["C0000001"]})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"error", "field", "detail"}
    assert "API key" in response.json()["error"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_health_metrics_and_docs_stay_open(live_server: LiveServer) -> None:
    with live_server.client(None) as client:
        for path in ("/livez", "/healthz", "/readyz", "/metrics", "/docs.json", "/"):
            assert client.get(path).status_code == 200, path


@pytest.mark.parametrize(
    "header", ["bearer test-key-1", "BEARER   test-key-1", "Bearer\ttest-key-1"]
)
def test_bearer_scheme_is_case_insensitive(live_server: LiveServer, header: str) -> None:
    with live_server.client(None) as client:
        response = client.get("/model", headers={"Authorization": header})
    assert response.status_code == 200


def test_every_configured_key_is_accepted(live_server: LiveServer) -> None:
    for key in (API_KEY, OTHER_KEY):
        with live_server.client(key) as client:
            assert client.get("/model").status_code == 200


# ---------------------------------------------------------------------------- /model


def test_model_reports_champion_and_promotion_metrics(live_server: LiveServer) -> None:
    with live_server.client() as client:
        info = client.get("/model").json()
    assert info["name"] == "fidelite"
    assert info["alias"] == "champion"
    assert info["fidelite_version"] and info["loaded_at"]
    assert info["snapshot"]["loaded"] and info["snapshot"]["as_of"] == AS_OF
    assert info["run_id"]
    assert info["horizon_days"] == 90
    assert info["train_end"] == AS_OF
    assert info["train_start"] < info["train_end"]
    assert 0.5 < info["validation_metrics"]["churn_roc_auc"] <= 1.0
    assert "clv_normalized_gini" in info["validation_metrics"]


# -------------------------------------------------------------------------- /predict


def test_predict_feature_rows_matches_snapshot(live_server: LiveServer) -> None:
    ids = scored_ids(live_server, 5) + scored_ids(live_server, 2, "insufficient_history")
    with live_server.client() as client:
        response = client.post(
            "/predict", json={"as_of": AS_OF, "features": feature_rows(live_server, ids)}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "fidelite" and body["model"]["alias"] == "champion"
    assert body["n_customers"] == 7 and body["n_insufficient_history"] == 2
    scores = {row["customer_id"]: row for row in body["scores"]}
    assert list(scores) == ids
    expected = live_server.snapshot.set_index("customer_id").loc[ids]
    for cid in ids[:5]:
        row = scores[cid]
        assert row["status"] == "ok"
        assert row["horizon_days"] == 90
        assert row["churn_probability"] == pytest.approx(expected.loc[cid, "churn_probability"])
        assert row["predicted_clv"] == pytest.approx(expected.loc[cid, "predicted_clv"])
        assert row["predicted_clv_p10"] <= min(row["predicted_clv"], row["predicted_clv_p90"])
        assert 0 <= row["p_alive"] <= 1 and 0 <= row["churn_percentile"] <= 100
        assert row["risk_band"] in {"low", "medium", "high", "critical"}
        assert row["reasons"] and all(isinstance(r, str) for r in row["reasons"])
    for cid in ids[5:]:
        row = scores[cid]
        assert row["status"] == "insufficient_history"
        assert row["churn_probability"] is None and row["predicted_clv"] is None


def test_predict_can_skip_reasons(live_server: LiveServer) -> None:
    ids = scored_ids(live_server, 3)
    payload = {"as_of": AS_OF, "features": feature_rows(live_server, ids)}
    with live_server.client() as client:
        full = client.post("/predict", json=payload)
        bare = client.post("/predict", json={**payload, "include_reasons": False})
        invalid = client.post("/predict", json={**payload, "include_reasons": "no"})
    assert full.status_code == bare.status_code == 200, bare.text
    assert invalid.status_code == 400 and "include_reasons" in invalid.text
    assert all(row["reasons"] for row in full.json()["scores"])
    assert [row["reasons"] for row in bare.json()["scores"]] == [[], [], []]
    assert [row["churn_probability"] for row in bare.json()["scores"]] == [
        row["churn_probability"] for row in full.json()["scores"]
    ]


def test_predict_raw_history_builds_features_server_side(live_server: LiveServer) -> None:
    ids = scored_ids(live_server, 3)
    history = history_payload(live_server, ids)
    history["customers"] = [{"customer_id": "brand-new", "signup_at": "2025-09-01T10:00:00Z"}]
    with live_server.client() as client:
        response = client.post("/predict", json={"as_of": AS_OF, "history": history})
    assert response.status_code == 200, response.text
    scores = {row["customer_id"]: row for row in response.json()["scores"]}
    assert set(scores) == set(ids) | {"brand-new"}
    assert scores["brand-new"]["status"] == "insufficient_history"
    assert all(scores[cid]["status"] == "ok" for cid in ids)
    assert all(0 <= scores[cid]["churn_probability"] <= 1 for cid in ids)


# ------------------------------------------------------------------------ bad input


def _valid_features(server: LiveServer) -> list[dict]:
    return feature_rows(server, scored_ids(server, 2))


def _bad_requests(server: LiveServer) -> list[tuple[str, object, int, str]]:
    """(name, body, expected status, text the error must contain)."""
    rows = _valid_features(server)
    negative = [dict(rows[0], orders_total=-3), rows[1]]
    history = history_payload(server, scored_ids(server, 1))
    future = json.loads(json.dumps(history))
    future["transactions"][0]["timestamp"] = "2025-10-05T12:00:00"
    negative_discount = json.loads(json.dumps(history))
    negative_discount["transactions"][0]["discount"] = -5
    # json.dumps writes the non-standard NaN/Infinity literals some clients send
    nan_body = json.dumps({"as_of": AS_OF, "features": [dict(rows[0], frequency=float("nan"))]})
    inf_history = json.loads(json.dumps(history))
    inf_history["transactions"][0]["amount"] = float("inf")
    inf_body = json.dumps({"as_of": AS_OF, "history": inf_history})
    too_many = [dict(rows[0], customer_id=f"x{i}") for i in range(MAX_BATCH + 1)]
    return [
        ("malformed JSON", b'{"as_of": "2025-09-30", "features": [', 400, "json"),
        ("missing as_of", {"features": rows}, 400, "as_of"),
        ("mistyped as_of", {"as_of": "yesterday-ish", "features": rows}, 400, "as_of"),
        ("mistyped features", {"as_of": AS_OF, "features": "all of them"}, 400, "features"),
        ("neither input", {"as_of": AS_OF}, 400, "features"),
        ("NaN feature", nan_body.encode(), 400, "frequency"),
        ("inf amount", inf_body.encode(), 400, "amount"),
        ("negative count", {"as_of": AS_OF, "features": negative}, 400, "orders_total"),
        ("negative discount", {"as_of": AS_OF, "history": negative_discount}, 400, "discount"),
        ("transaction after as_of", {"as_of": AS_OF, "history": future}, 400, "timestamp"),
        ("too many customers", {"as_of": AS_OF, "features": too_many}, 413, "FIDELITE_MAX_BATCH"),
        ("body too large", b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}", 413, "request body"),
        ("unknown field", {"as_of": AS_OF, "features": rows, "colour": "red"}, 400, "colour"),
    ]


def test_bad_requests_get_4xx_naming_the_field_and_server_keeps_serving(
    live_server: LiveServer,
) -> None:
    cases = _bad_requests(live_server)
    with live_server.client() as client:
        for name, body, status, needle in cases:
            if isinstance(body, bytes):
                response = client.post(
                    "/predict", content=body, headers={"content-type": "application/json"}
                )
            else:
                response = client.post("/predict", json=body)
            assert response.status_code == status, (name, response.status_code, response.text)
            assert needle.lower() in response.text.lower(), (name, response.text)
        assert client.get("/readyz").status_code == 200
        valid = {"as_of": AS_OF, "features": _valid_features(live_server)}
        assert client.post("/predict", json=valid).status_code == 200


def test_winback_validates_its_parameters(live_server: LiveServer) -> None:
    with live_server.client() as client:
        for field, value in [("response_rate", 1.5), ("offer_cost", -1), ("max_contacts", -2)]:
            response = client.post("/winback", json={field: value})
            assert response.status_code == 400
            assert field in response.text


# --------------------------------------------------------------------------- lookup


def test_lookup_reports_unknown_ids_per_id(live_server: LiveServer) -> None:
    known = scored_ids(live_server, 2)
    with live_server.client() as client:
        response = client.post(
            "/customers/lookup", json={"customer_ids": [known[0], "no-such-customer", known[1]]}
        )
    assert response.status_code == 200, response.text
    # BentoML's tracing middleware is skipped (FIDELITE_TRACING off): it sets this header
    assert "x-bentoml-request-id" not in response.headers
    body = response.json()
    assert body["snapshot_as_of"] == AS_OF
    assert (body["n_found"], body["n_missing"]) == (2, 1)
    found = [result["found"] for result in body["results"]]
    assert found == [True, False, True]
    assert body["results"][1]["score"] is None
    with live_server.client() as client:
        too_many = client.post(
            "/customers/lookup", json={"customer_ids": [f"c{i}" for i in range(MAX_BATCH + 1)]}
        )
    assert too_many.status_code == 413 and "customer_ids" in too_many.text
    expected = live_server.snapshot.set_index("customer_id").loc[known[0], "churn_probability"]
    assert body["results"][0]["score"]["churn_probability"] == pytest.approx(expected)


def test_lookup_reloads_a_rewritten_snapshot(live_server: LiveServer) -> None:
    snapshot = live_server.snapshot
    dropped = scored_ids(live_server, 1)[0]
    original = live_server.snapshot_path.read_bytes()
    try:
        write_snapshot_atomic(
            snapshot[snapshot["customer_id"] != dropped], live_server.snapshot_path
        )
        assert wait_for(lambda: not _found(live_server, dropped))
    finally:
        write_snapshot_atomic(pd.read_parquet(io.BytesIO(original)), live_server.snapshot_path)
    assert wait_for(lambda: _found(live_server, dropped))


def _found(server: LiveServer, cid: str) -> bool:
    with server.client() as client:
        body = client.post("/customers/lookup", json={"customer_ids": [cid]}).json()
    return body["results"][0]["found"]


def wait_for(condition, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


# -------------------------------------------------------------------------- winback


def _winback(live_server: LiveServer, **params) -> dict:
    with live_server.client() as client:
        response = client.post("/winback", json=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_winback_ranks_by_value_at_risk_within_contact_budget(live_server: LiveServer) -> None:
    body = _winback(live_server, offer_cost=1.0, response_rate=0.3, max_contacts=7)
    selected = body["selected"]
    assert body["source"] == "snapshot"
    assert len(selected) == body["totals"]["contacts"] == 7
    values = [row["value_at_risk"] for row in selected]
    assert values == sorted(values, reverse=True)
    assert [row["rank"] for row in selected] == list(range(1, 8))
    for row in selected:
        assert row["expected_net_value"] == pytest.approx(0.3 * row["value_at_risk"] - 1.0)
        assert row["expected_net_value"] > 0
    assert body["excluded"]["over_budget"] > 0
    held = body["totals"]["holdout"]
    assert sum(body["excluded"].values()) + len(selected) + held == body["n_candidates"]


def test_winback_respects_money_budget(live_server: LiveServer) -> None:
    body = _winback(live_server, offer_cost=2.5, response_rate=0.5, max_spend=10.0)
    assert body["totals"]["contacts"] == 4
    assert body["totals"]["cost"] == pytest.approx(10.0)


def test_winback_channels_respect_consent(live_server: LiveServer) -> None:
    """Messaging channels need consent; owned channels (web, app, store) only when listed."""
    snapshot = live_server.snapshot.set_index("customer_id")
    for channels in (None, ["web", "email", "sms", "push"]):
        params = {"offer_cost": 0.5, "response_rate": 0.2, "limit": MAX_BATCH}
        body = _winback(live_server, **params, **({"channels": channels} if channels else {}))
        allowed = channels or ["email", "sms", "push"]
        assert body["selected"], "demo data should have customers worth contacting"
        for row in body["selected"] + body["holdout"]:
            customer = snapshot.loc[row["customer_id"]]
            preference = [c for c in customer["channel_preference"].split(",") if c in allowed]
            assert row["channel"] in allowed
            if row["channel"] in ("email", "sms", "push"):
                assert bool(customer[f"{row['channel']}_opt_in"])
            if row["channel"] in preference:  # every allowed channel preferred before it
                for channel in preference[: preference.index(row["channel"])]:
                    assert channel in ("email", "sms", "push")
                    assert not customer[f"{channel}_opt_in"]
    unscored = (live_server.snapshot["status"] != "ok").sum()
    assert body["excluded"]["insufficient_history"] + body["excluded"]["prospect"] == unscored


def test_winback_exclusions_and_min_value(live_server: LiveServer) -> None:
    top = _winback(live_server, max_contacts=3)["selected"]
    excluded = [row["customer_id"] for row in top[:2]]
    body = _winback(live_server, max_contacts=3, exclude_ids=excluded, min_value=1.0)
    ids = [row["customer_id"] for row in body["selected"]]
    assert not set(ids) & set(excluded)
    assert body["excluded"]["excluded_id"] == 2
    assert all(row["value_at_risk"] >= 1.0 for row in body["selected"])
    assert body["excluded"]["below_min_value"] >= 0


def test_winback_on_a_supplied_batch(live_server: LiveServer) -> None:
    ids = scored_ids(live_server, 10)
    body = _winback(
        live_server,
        batch={"as_of": AS_OF, "features": feature_rows(live_server, ids)},
        response_rate=0.5,
    )
    assert body["source"] == "batch"
    assert body["n_candidates"] == 10
    assert {row["customer_id"] for row in body["selected"]} <= set(ids)
    assert not np.isnan(body["totals"]["expected_net_value"])
