"""Calling the model, and batching concurrent small requests into one call.

The model is only ever called through its public methods: ``predict_arrays`` (columns in,
score columns out, no DataFrames) when the model has it, ``predict`` on a features frame
otherwise. Serving never re-implements model internals.

Most of the cost of scoring a few customers is fixed per call (booster calls, numpy
set-up), so :class:`MicroBatcher` scores concurrent feature-row requests together: a
request waits only while the previous call runs, then everything that arrived meanwhile
(same ``as_of`` and ``include_reasons``) is scored in one call, and each request gets
its own rows back. A call of at most :data:`INLINE_MAX_ROWS` customers (about a
millisecond per few customers with ``predict_arrays``) runs on the event loop: handing it
to a worker thread costs two thread wake-ups per request and frees nothing, since the
model holds the GIL for most of the call. Larger calls run in a worker thread as one call:
the model spreads a batch of thousands of customers over the cores itself (its compiled
trees release the GIL); :func:`model_scores` can also cut it into parts scored at the same
time (``FIDELITE_SCORING_THREADS``, for models without threads of their own). A lone
request is scored at once. Customers are scored independently of each other by the model
(percentiles use the reference distribution stored at training), so batching never
changes a result; request ids are made unique inside a batch, so two requests may carry
the same customer id.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
import pandas as pd

from fidelite.serving.queues import KeyedQueues
from fidelite.serving.responses import frame_columns
from fidelite.serving.rows import FeatureBatch
from fidelite.training.threads import LazyPool

#: Most customers scored in one batched call (bigger requests are scored alone).
MAX_BATCHED_ROWS = 256
#: Batched calls of at most this many customers are scored on the event loop.
INLINE_MAX_ROWS = 32
#: Calls with at least this many customers are scored in parallel parts.
PARALLEL_MIN_ROWS = 2_048
#: Parts a large call is cut into by default: one (the model uses the cores itself).
SCORING_THREADS = 1


def batch_frame(batch: FeatureBatch) -> pd.DataFrame:
    """The batch as a features frame indexed by ``customer_id`` (for ``predict``)."""
    data: dict[str, Any] = dict(batch.numbers)
    data.update(batch.others)
    return pd.DataFrame(data, index=pd.Index(batch.ids, name="customer_id", dtype=object))


def _scores_of(
    python_model: Any, batch: FeatureBatch, day: pd.Timestamp, *, reasons: bool
) -> dict[str, Any]:
    predict_arrays = getattr(python_model, "predict_arrays", None)
    if predict_arrays is not None:
        columns = {**batch.numbers, **batch.others, "customer_id": np.asarray(batch.ids, object)}
        return dict(predict_arrays(columns, as_of=day, reasons=reasons))
    params = {"as_of": day.date().isoformat(), "reasons": reasons}
    return frame_columns(python_model.predict(None, batch_frame(batch), params=params))


def slice_batch(batch: FeatureBatch, start: int, stop: int) -> FeatureBatch:
    """Rows ``start:stop`` of a batch (views of its arrays)."""
    return FeatureBatch(
        ids=batch.ids[start:stop],
        numbers={name: values[start:stop] for name, values in batch.numbers.items()},
        others={name: values[start:stop] for name, values in batch.others.items()},
    )


def concat_scores(parts: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Score columns of consecutive row ranges as one set of columns."""
    return {name: np.concatenate([np.asarray(part[name]) for part in parts]) for name in parts[0]}


def model_scores(
    python_model: Any,
    batch: FeatureBatch,
    day: pd.Timestamp,
    *,
    reasons: bool,
    threads: int | None = None,
) -> dict[str, Any]:
    """The scores frame of ``batch`` as columns of length ``len(batch)``.

    A batch of at least :data:`PARALLEL_MIN_ROWS` customers is cut into ``threads``
    (default :data:`SCORING_THREADS`) consecutive parts scored at the same time: the
    boosters release the GIL, customers are scored independently, so the parts' columns
    put end to end are the whole batch's.

    Raises
    ------
    FloatingPointError, OverflowError, ValueError
        From the model, for values it cannot compute with.
    """
    threads = SCORING_THREADS if threads is None else threads
    n = len(batch)
    if threads < 2 or n < PARALLEL_MIN_ROWS:
        return _scores_of(python_model, batch, day, reasons=reasons)
    bounds = np.linspace(0, n, threads + 1).astype(int)
    parts = [slice_batch(batch, a, b) for a, b in itertools.pairwise(bounds.tolist())]
    pool = _pool(threads - 1).get()
    others = [
        pool.submit(_scores_of, python_model, part, day, reasons=reasons) for part in parts[1:]
    ]
    first = _scores_of(python_model, parts[0], day, reasons=reasons)
    return concat_scores([first, *(future.result() for future in others)])


@functools.cache
def _pool(workers: int) -> LazyPool:
    return LazyPool(workers, "fidelite-score")


def merge_batches(batches: list[FeatureBatch]) -> FeatureBatch:
    """One batch holding every row; ids prefixed with the request's position (unique)."""
    ids = [f"{k}\x1f{cid}" for k, batch in enumerate(batches) for cid in batch.ids]
    numbers: dict[str, np.ndarray] = {}
    others: dict[str, np.ndarray] = {}
    for name in {name for batch in batches for name in batch.numbers}:
        numbers[name] = np.concatenate(
            [b.numbers.get(name, np.full(len(b), np.nan)) for b in batches]
        )
    for name in {name for batch in batches for name in batch.others}:
        others[name] = np.concatenate(
            [b.others.get(name, np.full(len(b), None, dtype=object)) for b in batches]
        )
    return FeatureBatch(ids=ids, numbers=numbers, others=others)


def split_scores(columns: Mapping[str, Any], batches: list[FeatureBatch]) -> list[dict[str, Any]]:
    """Each request's rows of a merged batch's scores, with its own customer ids back."""
    parts = []
    start = 0
    for batch in batches:
        stop = start + len(batch)
        part = {name: values[start:stop] for name, values in columns.items()}
        part["customer_id"] = batch.ids
        parts.append(part)
        start = stop
    return parts


@dataclass
class _Pending:
    batch: FeatureBatch
    future: asyncio.Future[dict[str, Any]]


@dataclass
class MicroBatcher:
    """Score concurrent small feature batches together (see the module docstring).

    Parameters
    ----------
    limiter : anyio.CapacityLimiter
        Bounds the worker threads running the model.
    threads : int, optional
        Threads scoring a large call (:func:`model_scores`; default
        :data:`SCORING_THREADS`).
    """

    limiter: anyio.CapacityLimiter
    threads: int | None = None
    _waiting: KeyedQueues[_Pending] = field(default_factory=KeyedQueues)

    async def score(
        self, python_model: Any, batch: FeatureBatch, day: pd.Timestamp, *, reasons: bool
    ) -> dict[str, Any]:
        if len(batch) > MAX_BATCHED_ROWS:
            return await anyio.to_thread.run_sync(
                lambda: model_scores(
                    python_model, batch, day, reasons=reasons, threads=self.threads
                ),
                limiter=self.limiter,
            )
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.put(
            (day, reasons), _Pending(batch, future), lambda key: self._drain(python_model, key)
        )
        return await future

    async def _drain(self, python_model: Any, key: tuple[pd.Timestamp, bool]) -> None:
        day, reasons = key
        try:
            while self._waiting.waiting(key):
                pending = self._waiting.take(key, lambda p: len(p.batch), MAX_BATCHED_ROWS)
                batches = [p.batch for p in pending]
                try:
                    merged = merge_batches(batches) if len(batches) > 1 else batches[0]
                    if len(merged) <= INLINE_MAX_ROWS:
                        columns = model_scores(python_model, merged, day, reasons=reasons)
                    else:
                        columns = await anyio.to_thread.run_sync(
                            lambda merged=merged: model_scores(
                                python_model, merged, day, reasons=reasons
                            ),
                            limiter=self.limiter,
                        )
                except Exception as exc:
                    await self._one_by_one(python_model, pending, day, reasons, exc)
                    continue
                parts = split_scores(columns, batches) if len(batches) > 1 else [columns]
                for p, part in zip(pending, parts, strict=True):
                    if not p.future.done():
                        p.future.set_result(part)
        finally:
            self._waiting.finish(key)

    async def _one_by_one(
        self,
        python_model: Any,
        pending: list[_Pending],
        day: pd.Timestamp,
        reasons: bool,
        error: Exception,
    ) -> None:
        """After a failed batched call: score each request alone, so that one request's
        values never fail another's."""
        for p in pending:
            if p.future.done():
                continue
            if len(pending) == 1:
                p.future.set_exception(error)
                continue
            try:
                part = await anyio.to_thread.run_sync(
                    lambda b=p.batch: model_scores(python_model, b, day, reasons=reasons),
                    limiter=self.limiter,
                )
            except Exception as exc:
                p.future.set_exception(exc)
            else:
                p.future.set_result(part)
