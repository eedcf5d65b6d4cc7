"""Batched scoring gives every request exactly what it would get alone."""

from __future__ import annotations

import asyncio
import copy
import json

import anyio
import numpy as np
import pandas as pd
import pytest

from fidelite.serving.rows import feature_batch
from fidelite.serving.scoring import MicroBatcher, merge_batches, model_scores, split_scores

pytestmark = pytest.mark.slow
REQUIRED = ("orders_total", "frequency", "recency", "T", "monetary_value")


@pytest.fixture(scope="module")
def model(trained_store: dict):
    from fidelite.training.registry import load_model

    return load_model("models:/fidelite@champion", tracking_uri=trained_store["tracking_uri"])


def _batches(trained_store: dict) -> list:
    features = trained_store["features"]
    rows = json.loads(features.head(12).reset_index().to_json(orient="records"))
    # two requests share a customer id; one lacks a column the others have
    parts = [
        rows[0:3],
        rows[3:4],
        [dict(rows[0])],
        [{k: v for k, v in rows[5].items() if k != "best_channel"}],
        rows[6:12],
    ]
    return [feature_batch(part, required=REQUIRED, max_rows=50) for part in parts]


def _same(left: dict, right: dict) -> None:
    assert list(left["customer_id"]) == list(right["customer_id"])
    for name, values in left.items():
        a, b = pd.Series(list(values)), pd.Series(list(right[name]))
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-12)
        else:
            assert a.astype(object).where(a.notna(), None).tolist() == (
                b.astype(object).where(b.notna(), None).tolist()
            ), name


def test_merged_call_equals_separate_calls(trained_store: dict, model) -> None:
    batches = _batches(trained_store)
    day = pd.Timestamp("2025-09-30")
    merged = model_scores(model, merge_batches(batches), day, reasons=True)
    for batch, part in zip(batches, split_scores(merged, batches), strict=True):
        _same(part, model_scores(model, batch, day, reasons=True))


def test_micro_batcher_answers_concurrent_requests(trained_store: dict, model) -> None:
    batches = _batches(trained_store)
    day = pd.Timestamp("2025-09-30")

    async def run() -> list[dict]:
        batcher = MicroBatcher(anyio.CapacityLimiter(1))
        return await asyncio.gather(
            *(batcher.score(model, batch, day, reasons=True) for batch in batches)
        )

    for batch, got in zip(batches, asyncio.run(run()), strict=True):
        _same(got, model_scores(model, batch, day, reasons=True))


def _history_request(trained_store: dict, n_customers: int):
    """Raw history of a few customers (transactions, events) as a predict request, and the
    same rows as frames."""
    from fidelite.serving.schemas import PredictRequest

    demo = trained_store["demo"]
    end = pd.Timestamp("2025-09-30") + pd.Timedelta(days=1)
    tx = demo.transactions.loc[demo.transactions["timestamp"] < end]
    ids = tx["customer_id"].drop_duplicates().head(n_customers).tolist()
    tx = tx.loc[tx["customer_id"].isin(ids), ["customer_id", "order_id", "timestamp", "amount"]]
    events = demo.events.loc[
        demo.events["customer_id"].isin(ids) & (demo.events["timestamp"] < end),
        ["customer_id", "timestamp", "channel", "event_type"],
    ]

    def records(frame: pd.DataFrame) -> list[dict]:
        text = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
        return json.loads(text.to_json(orient="records"))

    body = {
        "as_of": "2025-09-30",
        "history": {"transactions": records(tx), "events": records(events)},
    }
    return PredictRequest.model_validate_json(json.dumps(body)), tx, events


@pytest.mark.parametrize("n_customers", [1, 4])
def test_history_features_are_built_as_in_training(trained_store: dict, model, n_customers) -> None:
    """Raw history goes through training's feature code with the served model's params
    and channels."""
    import dataclasses

    from fidelite.features import ChannelVocabulary, build_features
    from fidelite.features.build import POPULATION_COLUMNS
    from fidelite.features.inputs import load_inputs
    from fidelite.serving.handlers import request_batch
    from fidelite.serving.history import frame_batch
    from fidelite.serving.models import ServedModel
    from fidelite.serving.settings import ServiceSettings

    request, tx, events = _history_request(trained_store, n_customers)
    settings = ServiceSettings.from_env({"FIDELITE_API_KEYS": "k"})
    for params in (
        model.feature_params,
        dataclasses.replace(model.feature_params, windows=(14, 60)),
    ):
        python_model = copy.copy(model)
        python_model.feature_params = params
        served = ServedModel(python_model=python_model, meta={})
        got = request_batch(request, settings, served)
        inputs = load_inputs(tx, events, as_of="2025-09-30")
        channels = ChannelVocabulary.from_columns(model.feature_names)
        features = build_features(inputs, params=params, vocabulary=channels)
        # population columns (rfm_segment) only for a model that reads them; none does
        assert not served.uses_population
        expected = frame_batch(features.drop(columns=list(POPULATION_COLUMNS)))
        assert got.ids == expected.ids and len(got) == n_customers
        assert list(got.numbers) == list(expected.numbers)
        for name, values in expected.numbers.items():
            np.testing.assert_array_equal(got.numbers[name], values, err_msg=name)
        assert {k: v.tolist() for k, v in got.others.items()} == {
            k: v.tolist() for k, v in expected.others.items()
        }
        assert ("orders_14d" in got.numbers) == (params.windows == (14, 60))


def test_one_customers_history_gets_the_inputs_it_has_in_the_population(
    trained_store: dict, model
) -> None:
    """Channels the customer never used count 0 as in training, never a missing column."""
    from fidelite.features.contract import model_input_features
    from fidelite.features.inputs import load_inputs
    from fidelite.serving.handlers import request_batch
    from fidelite.serving.history import frame_batch
    from fidelite.serving.models import ServedModel
    from fidelite.serving.schemas import PredictRequest
    from fidelite.serving.settings import ServiceSettings

    demo, as_of = trained_store["demo"], "2025-09-30"
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    tx = demo.transactions.loc[demo.transactions["timestamp"] < end]
    tx = tx[["customer_id", "order_id", "timestamp", "amount", "channel"]]
    events = demo.events.loc[demo.events["timestamp"] < end]
    events = events[["customer_id", "timestamp", "channel", "event_type"]]
    population = frame_batch(model.build_features(load_inputs(tx, events, as_of=as_of)))
    customer = tx["customer_id"].iloc[0]

    def records(frame: pd.DataFrame) -> list[dict]:
        own = frame.loc[frame["customer_id"] == customer]
        text = own.assign(timestamp=own["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
        return json.loads(text.to_json(orient="records"))

    body = {"as_of": as_of, "history": {"transactions": records(tx), "events": records(events)}}
    request = PredictRequest.model_validate_json(json.dumps(body))
    settings = ServiceSettings.from_env({"FIDELITE_API_KEYS": "k"})
    got = request_batch(request, settings, ServedModel(python_model=model, meta={}))
    row = population.ids.index(customer)
    inputs = model_input_features(model.feature_names)
    assert any(name.startswith("eng_social_") for name in inputs)  # a demo-only channel
    for name in inputs:
        if name in population.numbers:
            np.testing.assert_array_equal(
                got.numbers[name], population.numbers[name][row : row + 1], err_msg=name
            )
        elif name in population.others:
            assert got.others[name].tolist() == [population.others[name][row]], name


def test_large_calls_scored_in_parallel_parts_equal_one_call(
    trained_store: dict, model, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fidelite.serving import scoring

    features = trained_store["features"]
    rows = json.loads(features.head(200).reset_index().to_json(orient="records"))
    batch = feature_batch(rows, required=REQUIRED, max_rows=500)
    day = pd.Timestamp("2025-09-30")
    whole = model_scores(model, batch, day, reasons=True, threads=1)
    monkeypatch.setattr(scoring, "PARALLEL_MIN_ROWS", 8)
    calls = []
    original = scoring._scores_of
    monkeypatch.setattr(
        scoring, "_scores_of", lambda *a, **k: calls.append(len(a[1])) or original(*a, **k)
    )
    parts = model_scores(model, batch, day, reasons=True, threads=3)
    assert sorted(calls) == [66, 67, 67]
    _same(parts, whole)
    # by default one call: the model spreads a large batch over the cores itself
    calls.clear()
    _same(model_scores(model, batch, day, reasons=True), whole)
    assert calls == [200]
