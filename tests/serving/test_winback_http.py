"""``POST /winback`` over HTTP: policies and why, control groups, channels, uplift fields.

Two real servers: serving's session server (a model trained without campaigns: the
value-at-risk fallback) and one started here with a model trained with the demo's past
campaigns (``train --campaigns``), whose snapshot carries the uplift columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fidelite.serving.launch import fidelite_serve_command, free_port, running_server
from tests.serving.conftest import AS_OF, HORIZON_DAYS, MAX_BATCH, LiveServer, server_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def uplift_server(
    trained_store: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The session's demo data, a champion trained with campaigns, its snapshot, a server."""
    from fidelite.features.inputs import load_inputs
    from fidelite.serving.snapshot import write_snapshot_atomic
    from fidelite.training.config import TrainConfig
    from fidelite.training.score import score
    from fidelite.training.train import train

    root: Path = tmp_path_factory.mktemp("winback")
    tracking_uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    demo = trained_store["demo"]
    inputs = load_inputs(demo.transactions, demo.events, demo.customers, as_of=AS_OF)
    config = TrainConfig(horizon_days=HORIZON_DAYS, promote=True, tracking_uri=tracking_uri)
    result = train(inputs, config, campaigns=demo.campaigns)
    assert result.model.uplift is not None and result.gate.promoted
    snapshot = score(inputs, tracking_uri=tracking_uri)
    snapshot_path = write_snapshot_atomic(snapshot, root / "scores.parquet")
    port = free_port()
    command = fidelite_serve_command(port=port, snapshot=snapshot_path)
    env = server_env(root, tracking_uri)
    with running_server(command, env=env, port=port, log=root / "server.log") as (url, _):
        yield LiveServer(
            base_url=url,
            tracking_uri=tracking_uri,
            snapshot_path=snapshot_path,
            snapshot=snapshot,
            features=trained_store["features"],
            demo=demo,
            log_path=root / "server.log",
            port=port,
        )


def _post(server: LiveServer, status: int = 200, **params) -> dict:
    with server.client() as client:
        response = client.post("/winback", json=params)
    assert response.status_code == status, response.text
    return response.json()


def _all_pages(server: LiveServer, **params) -> tuple[list[dict], list[dict], dict]:
    """Every page of one selection: contacts, control group, last body."""
    selected, holdout, offset = [], [], 0
    while offset is not None:
        body = _post(server, **params, offset=offset, limit=MAX_BATCH)
        selected += body["selected"]
        holdout += body["holdout"]
        offset = body["page"]["next_offset"]
    return selected, holdout, body


def test_without_uplift_model_auto_falls_back_and_uplift_is_422(live_server: LiveServer) -> None:
    body = _post(live_server, max_contacts=30)
    assert body["policy"]["policy"] == "value_at_risk"
    assert "no uplift model" in body["policy"]["reason"]
    assert all(row["uplift_purchase"] is None for row in body["selected"])
    refused = _post(live_server, 422, policy="uplift")
    assert "uplift" in refused["error"] and "--campaigns" in refused["error"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"channels": ["fax"]}, "channels"),
        ({"channels": []}, "channels"),
        ({"holdout_share": 0.95}, "holdout_share"),
        ({"holdout_share": -0.1}, "holdout_share"),
        ({"policy": "random"}, "policy"),
        ({"campaign_id": ""}, "campaign_id"),
    ],
)
def test_new_fields_are_validated(live_server: LiveServer, params: dict, field: str) -> None:
    body = _post(live_server, 400, **params)
    assert field in (body.get("field") or "") + body["error"]


def test_auto_policy_says_which_and_why_with_the_held_out_evidence(uplift_server) -> None:
    body = _post(uplift_server, max_contacts=40, offer_cost=1.0)
    policy = body["policy"]
    assert policy["policy"] in ("uplift", "value_at_risk", "churn_probability")
    assert "held-out" in policy["reason"] and "95% CI" in policy["reason"]
    assert 0 < policy["budget_share"] <= 1
    assert body["campaign_id"] == "winback-2025-10-01"  # the day after the snapshot's as_of
    assert set(body["excluded"]) >= {"negative_uplift", "prospect", "no_consent"}


def test_uplift_policy_ranks_by_incremental_value_and_excludes_negative_uplift(
    uplift_server,
) -> None:
    selected, holdout, body = _all_pages(uplift_server, policy="uplift", offer_cost=0.5)
    assert body["policy"] == {
        "policy": "uplift",
        "reason": "requested by the caller",
        "budget_share": None,
    }
    assert selected and body["totals"]["contacts"] == len(selected)
    net = [row["expected_net_value"] for row in selected]
    assert net == sorted(net, reverse=True) and min(net) > 0
    for row in selected:
        assert row["expected_net_value"] == pytest.approx(row["uplift_value"] - 0.5)
        assert row["uplift_purchase"] > 0 and row["contact"] and row["group"] == "treatment"
    snapshot = uplift_server.snapshot.set_index("customer_id")
    negative = snapshot["uplift_value"] < 0
    assert body["excluded"]["negative_uplift"] > 0
    assert not {r["customer_id"] for r in selected + holdout} & set(snapshot.index[negative])
    # The channel is the consented one with the highest estimated uplift.
    for row in selected[:20]:
        customer = snapshot.loc[row["customer_id"]]
        estimates = json.loads(customer["uplift_by_channel"])
        usable = [c for c in estimates if c in ("email", "sms", "push") and customer[f"{c}_opt_in"]]
        assert row["channel"] == max(usable, key=estimates.get)


def test_control_group_is_separate_reproducible_and_not_to_contact(uplift_server) -> None:
    params = {"policy": "value_at_risk", "max_contacts": 90, "holdout_share": 0.25}
    first_sel, first_hold, body = _all_pages(uplift_server, **params, campaign_id="spring")
    again_sel, again_hold, _ = _all_pages(uplift_server, **params, campaign_id="spring")
    _, other_hold, _ = _all_pages(uplift_server, **params, campaign_id="autumn")
    ids = [r["customer_id"] for r in first_hold]
    assert ids == [r["customer_id"] for r in again_hold]
    assert first_sel == again_sel and set(ids) != {r["customer_id"] for r in other_hold}
    assert len(first_sel) == body["totals"]["contacts"] == 90  # the budget counts contacts
    assert len(first_hold) == body["totals"]["holdout"] == round(120 * 0.25)
    assert all(r["group"] == "control" and r["contact"] is False for r in first_hold)
    assert not set(ids) & {r["customer_id"] for r in first_sel}
    assert body["campaign_id"] == "spring"


def test_channels_limit_where_customers_are_reached(uplift_server) -> None:
    snapshot = uplift_server.snapshot.set_index("customer_id")
    email = _post(uplift_server, channels=["email"], policy="uplift", limit=MAX_BATCH)
    rows = email["selected"] + email["holdout"]
    assert rows and {r["channel"] for r in rows} == {"email"}
    assert snapshot.loc[[r["customer_id"] for r in rows], "email_opt_in"].all()
    owned = _post(uplift_server, channels=["app"], policy="value_at_risk", max_contacts=10)
    assert {r["channel"] for r in owned["selected"]} == {"app"}
    assert owned["excluded"]["no_consent"] == 0


def test_a_supplied_batch_is_scored_with_the_uplift_component(uplift_server) -> None:
    snapshot = uplift_server.snapshot
    ids = snapshot.loc[snapshot["status"] == "ok", "customer_id"].head(30).tolist()
    rows = json.loads(uplift_server.features.loc[ids].reset_index().to_json(orient="records"))
    body = _post(
        uplift_server, batch={"as_of": AS_OF, "features": rows}, policy="uplift", holdout_share=0
    )
    assert body["source"] == "batch" and body["n_candidates"] == 30
    expected = snapshot.set_index("customer_id").loc[ids, "uplift_value"]
    for row in body["selected"]:
        # JSON round trip of float32 features: equal to about 6 significant digits of the
        # two purchase probabilities, whose difference can be near zero (hence abs=1e-3).
        assert row["uplift_value"] == pytest.approx(
            expected[row["customer_id"]], rel=1e-4, abs=1e-3
        )
