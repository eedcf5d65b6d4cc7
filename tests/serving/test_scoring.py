"""Batched scoring gives every request exactly what it would get alone."""

from __future__ import annotations

import asyncio
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
