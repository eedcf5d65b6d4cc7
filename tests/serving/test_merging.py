"""Raw-history requests built together give each request exactly what it gets alone."""

from __future__ import annotations

import asyncio
import functools
import json
from concurrent.futures import ThreadPoolExecutor

import anyio
import numpy as np
import pandas as pd
import pytest

from fidelite.serving import merging
from fidelite.serving.history import frame_batch, prepare_history, prepared_features
from fidelite.serving.merging import HistoryMerger, merge_key, merged_batches, merged_scores
from fidelite.serving.models import ServedModel
from fidelite.serving.rows import FeatureBatch
from fidelite.serving.schemas import PredictRequest
from fidelite.serving.scoring import model_scores
from tests.serving.conftest import AS_OF, LiveServer

pytestmark = pytest.mark.slow
END = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def served(trained_store: dict) -> ServedModel:
    from fidelite.training.registry import load_model

    model = load_model("models:/fidelite@champion", tracking_uri=trained_store["tracking_uri"])
    return ServedModel(python_model=model, meta={"version": "test"})


def _records(frame: pd.DataFrame) -> list[dict]:
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype.kind == "M":
            frame[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return json.loads(frame.to_json(orient="records"))


def _history(demo, ids: list[str], *, customers: bool = True) -> dict:
    """The demo history of ``ids`` up to the as-of day, with channels and consent."""
    tx = demo.transactions.loc[
        demo.transactions["customer_id"].isin(ids) & (demo.transactions["timestamp"] < END),
        ["customer_id", "order_id", "timestamp", "amount", "channel"],
    ]
    events = demo.events.loc[
        demo.events["customer_id"].isin(ids) & (demo.events["timestamp"] < END),
        ["customer_id", "timestamp", "channel", "event_type"],
    ]
    history = {"transactions": _records(tx), "events": _records(events)}
    if customers:
        rows = demo.customers.loc[
            demo.customers["customer_id"].isin(ids),
            ["customer_id", "signup_at", "email_opt_in", "sms_opt_in"],
        ]
        history["customers"] = _records(rows)
    return history


def _requests(trained_store: dict) -> list[dict]:
    """Request bodies that share one merge key, chosen to catch cross-request leaks:
    the same customer id with different histories, the same order ids, a missing
    consent flag, one customer or several."""
    demo = trained_store["demo"]
    buyers = demo.transactions.loc[demo.transactions["timestamp"] < END, "customer_id"]
    ids = buyers.value_counts()
    many = ids[ids >= 4].index.tolist()
    bodies = [_history(demo, many[0:3]), _history(demo, many[3:4]), _history(demo, many[4:9])]
    shorter = _history(demo, many[0:1])  # customer many[0] again, with less history
    shorter["transactions"] = shorter["transactions"][:2]
    shorter["customers"][0].pop("email_opt_in", None)
    bodies.append(shorter)
    renamed = _history(demo, many[9:10])  # another customer under many[0]'s id and order ids
    first = bodies[0]["transactions"]
    for k, row in enumerate(renamed["transactions"]):
        row["customer_id"] = many[0]
        row["order_id"] = first[k % len(first)]["order_id"]
    for row in renamed["events"] + renamed["customers"]:
        row["customer_id"] = many[0]
    bodies.append(renamed)
    return [{"as_of": AS_OF, "history": body} for body in bodies]


def _prepared(body: dict):
    request = PredictRequest.model_validate_json(json.dumps(body))
    return prepare_history(request.history, as_of=request.as_of, max_customers=50)


def _alone(served: ServedModel, tables, population: bool) -> FeatureBatch:
    features = prepared_features(
        tables,
        params=served.python_model.feature_params,
        vocabulary=served.channels,
        population=population,
    )
    return frame_batch(features)


def _same(got: FeatureBatch, expected: FeatureBatch) -> None:
    assert got.ids == expected.ids
    assert list(got.numbers) == list(expected.numbers)
    assert list(got.others) == list(expected.others)
    for name, values in expected.numbers.items():
        np.testing.assert_array_equal(got.numbers[name], values, err_msg=name)
    for name, values in expected.others.items():
        assert got.others[name].tolist() == values.tolist(), name


@pytest.mark.parametrize("population", [False, True])
def test_merged_build_equals_each_build_alone(
    trained_store: dict, served: ServedModel, population: bool
) -> None:
    parts = [_prepared(body) for body in _requests(trained_store)]
    keys = {merge_key(part, served.channels) for part in parts}
    assert len(keys) == 1 and None not in keys  # all merged into one build
    merged = merged_batches(
        parts,
        params=served.python_model.feature_params,
        vocabulary=served.channels,
        population=population,
    )
    for got, part in zip(merged, parts, strict=True):
        _same(got, _alone(served, part, population))
    assert ("rfm_segment" in merged[0].others) == population
    # the two requests about customer many[0] got different features
    first, renamed = merged[0], merged[-1]
    assert renamed.ids[0] in first.ids
    row = first.ids.index(renamed.ids[0])
    assert first.numbers["orders_total"][row] != renamed.numbers["orders_total"][0]


def test_requests_that_would_change_the_vocabulary_are_not_merged(
    trained_store: dict, served: ServedModel
) -> None:
    body = _requests(trained_store)[1]
    base = merge_key(_prepared(body), served.channels)
    new_event_channel = json.loads(json.dumps(body))
    new_event_channel["history"]["events"][0]["channel"] = "carrier-pigeon"
    assert merge_key(_prepared(new_event_channel), served.channels) is None
    new_order_channel = json.loads(json.dumps(body))
    new_order_channel["history"]["transactions"][0]["channel"] = "Carrier Pigeon"
    key = merge_key(_prepared(new_order_channel), served.channels)
    assert key is not None and key != base  # merged only with the same new channel
    parts = [_prepared(new_order_channel), _prepared(new_order_channel)]
    for got, part in zip(
        merged_batches(parts, params=None, vocabulary=served.channels), parts, strict=True
    ):
        assert "order_share_carrier_pigeon" in got.numbers
        _same(got, frame_batch(prepared_features(part, vocabulary=served.channels)))
    spaced = json.loads(json.dumps(body))
    for row in spaced["history"]["transactions"]:
        row["customer_id"] = f" {row['customer_id']} "
    assert merge_key(_prepared(spaced), served.channels) is None  # the loader trims ids


def _gather(merger: HistoryMerger, served: ServedModel, parts: list) -> list:
    async def run() -> list:
        return await asyncio.gather(
            *(merger.features(served, part) for part in parts), return_exceptions=True
        )

    return asyncio.run(run())


def test_merger_builds_concurrent_requests_once_and_keeps_errors_apart(
    trained_store: dict, served: ServedModel
) -> None:
    bodies = _requests(trained_store)
    blank = json.loads(json.dumps(bodies[1]))
    for row in blank["history"]["transactions"]:
        row["customer_id"] = "   "  # passes the schema, refused by the loader
    parts = [_prepared(body) for body in [*bodies, blank]]
    merger = HistoryMerger(anyio.CapacityLimiter(1))
    results = _gather(merger, served, parts)
    assert merger.builds["merged"] >= 1 and merger.builds["fallback"] == 0
    for result, part in zip(results[:-1], parts[:-1], strict=True):
        _same(result, _alone(served, part, served.uses_population))
    assert "missing identifier" in str(results[-1])


def test_merger_rebuilds_each_request_alone_when_the_merged_build_fails(
    trained_store: dict, served: ServedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = [_prepared(body) for body in _requests(trained_store)]

    def broken(*args, **kwargs):
        raise ValueError("merged build failed")

    monkeypatch.setattr(merging, "merged_batches", broken)
    merger = HistoryMerger(anyio.CapacityLimiter(1))
    results = _gather(merger, served, parts)
    assert merger.builds["fallback"] >= 2 and merger.builds["merged"] == 0
    for result, part in zip(results, parts, strict=True):
        _same(result, _alone(served, part, served.uses_population))


def _same_columns(got: dict, expected: dict) -> None:
    assert list(got["customer_id"]) == list(expected["customer_id"])
    assert set(got) == set(expected)
    for name, values in expected.items():
        a, b = np.asarray(got[name]), np.asarray(values)
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)
        else:
            assert a.tolist() == b.tolist(), name


def test_merged_scores_equal_each_request_scored_alone(
    trained_store: dict, served: ServedModel
) -> None:
    parts = [_prepared(body) for body in _requests(trained_store)]
    score = functools.partial(
        model_scores, served.python_model, day=pd.Timestamp(AS_OF), reasons=True
    )
    got = merged_scores(
        parts,
        params=served.python_model.feature_params,
        vocabulary=served.channels,
        score=score,
    )
    assert len(got) == len(parts)
    for columns, part in zip(got, parts, strict=True):
        _same_columns(columns, score(_alone(served, part, population=False)))


def test_merger_scores_merged_requests_and_falls_back_to_features(
    trained_store: dict, served: ServedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a day, merged requests come back scored; when the merged call fails, each
    request comes back as its own feature batch (then scored alone by the service)."""
    parts = [_prepared(body) for body in _requests(trained_store)]
    day = pd.Timestamp(AS_OF)

    def run(merger: HistoryMerger) -> list:
        async def all_of() -> list:
            builds = (merger.build(served, part, day=day, reasons=False) for part in parts)
            return await asyncio.gather(*builds, return_exceptions=True)

        return asyncio.run(all_of())

    merger = HistoryMerger(anyio.CapacityLimiter(1))
    results = run(merger)
    assert merger.builds["merged"] >= 1 and merger.builds["fallback"] == 0
    scored = [r for r in results if isinstance(r, dict)]
    assert scored
    for result, part in zip(results, parts, strict=True):
        if isinstance(result, dict):
            batch = _alone(served, part, population=False)
            _same_columns(result, model_scores(served.python_model, batch, day, reasons=False))
        else:
            _same(result, _alone(served, part, served.uses_population))

    def broken(*args, **kwargs):
        raise FloatingPointError("merged scoring failed")

    monkeypatch.setattr(merging, "model_scores", broken)
    merger = HistoryMerger(anyio.CapacityLimiter(1))
    results = run(merger)
    assert merger.builds["fallback"] >= 2 and merger.builds["merged"] == 0
    for result, part in zip(results, parts, strict=True):
        _same(result, _alone(served, part, served.uses_population))


# ----------------------------------------------------------------------------- HTTP


def _scores(response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["scores"]


def _same_scores(got: list[dict], expected: list[dict]) -> None:
    assert [row["customer_id"] for row in got] == [row["customer_id"] for row in expected]
    for a, b in zip(got, expected, strict=True):
        for name, value in b.items():
            if isinstance(value, float):
                assert a[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
            else:
                assert a[name] == value, name


def test_concurrent_history_requests_get_their_own_answers_and_errors(
    live_server: LiveServer, trained_store: dict
) -> None:
    bodies = _requests(trained_store)
    future = json.loads(json.dumps(bodies[2]))
    future["history"]["transactions"][3]["timestamp"] = "2025-10-05T12:00:00"
    blank = json.loads(json.dumps(bodies[1]))
    blank["history"]["transactions"][0]["customer_id"] = "   "
    bodies.append(dict(bodies[0], include_reasons=False))  # never merged with the others
    with live_server.client() as client:
        alone = [_scores(client.post("/predict", json=body)) for body in bodies]
        cases = [*bodies, future, blank] * 4
        with ThreadPoolExecutor(len(cases)) as pool:
            responses = list(pool.map(lambda body: client.post("/predict", json=body), cases))
    for response, body in zip(responses, cases, strict=True):
        if body is future:
            assert response.status_code == 400, response.text
            error = response.json()
            assert error["field"] == "history.transactions.timestamp"
            assert "(rows [3])" in error["error"]
        elif body is blank:
            assert response.status_code == 400, response.text
            assert "customer_id" in response.text and "row" in response.text
        else:
            _same_scores(_scores(response), alone[bodies.index(body)])


def test_population_columns_are_built_only_for_models_that_read_them(
    served: ServedModel,
) -> None:
    from types import SimpleNamespace

    def model(*names: str, uplift: object = None) -> ServedModel:
        encoder = SimpleNamespace(feature_names_=list(names))
        hurdle = SimpleNamespace(encoder=encoder)
        return ServedModel(SimpleNamespace(purchasers=hurdle, prospects=None, uplift=uplift), {})

    assert not served.uses_population  # fidelite's model: rfm_segment is no input
    assert not model("frequency", "recency").uses_population
    assert model("frequency", "rfm_segment").uses_population
    assert model("frequency", uplift=object()).uses_population  # frame API: keep all
