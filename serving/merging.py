"""One feature build for concurrent raw-history requests.

Building one customer's features from raw history costs ~9 ms of CPU, almost all of it
fixed pandas overhead in the loaders and :func:`fidelite.features.build_features`; 16
customers cost ~12 ms. So, as :class:`~fidelite.serving.scoring.MicroBatcher` does for
the model, :class:`HistoryMerger` builds the requests that arrived while the previous
build ran in one call, and hands each request its own rows.

A merged build must give every request exactly what it would get alone:

- each request is checked on its own first (:func:`~fidelite.serving.history.prepare_history`:
  row dates, customer cap), so its errors name its own rows;
- customer and order ids get a per-request prefix (``"<k>|"``): two requests may send
  the same ids for different customers, and repeated order ids are dropped by the
  loader. Ids are prefixed only when already in the loader's normal form (trimmed, not
  empty), so the loader leaves them as they are;
- features that depend on other customers are computed per request:
  :func:`~fidelite.features.build.customer_features` runs on the merged tables (a row
  depends only on its customer's rows and the channel vocabulary), then
  :func:`~fidelite.features.build.population_features` on each request's rows;
- the vocabulary (the served model's channels plus those seen) must be each request's
  own: only requests whose event channels are all the model's and whose transaction
  channels outside the model's are the same set are merged (the merge key), and the
  merged build's columns are checked against it;
- if the merged build fails for any reason, every request is built alone, so one bad
  request never fails the others and gets its own error.

The tests compare merged builds with builds alone, feature by feature and over HTTP.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fidelite.features import ChannelVocabulary
from fidelite.features._arrays import safe_name
from fidelite.features.build import (
    POPULATION_COLUMNS,
    POPULATION_INPUTS,
    customer_features,
    population_features,
)
from fidelite.features.params import FeatureParams
from fidelite.serving.history import (
    Columns,
    PreparedHistory,
    computable,
    frame_batch,
    load_prepared,
    prepared_features,
)
from fidelite.serving.queues import KeyedQueues
from fidelite.serving.rows import FeatureBatch

#: Most customers built in one merged call (larger requests are built alone).
MAX_MERGED_CUSTOMERS = 256
#: Requests with more history rows than this are built alone (their build is not
#: dominated by fixed costs).
MAX_MERGED_ROWS = 5_000
SEPARATOR = "|"
#: Within this many seconds of a merged build, a build first waits for more requests
#: in steps of GATHER_STEP_S until GATHER_PATIENCE steps bring none, at most
#: GATHER_STEPS steps.
RECENT_MERGE_S = 0.25
GATHER_STEP_S = 0.001
GATHER_STEPS = 10
GATHER_PATIENCE = 3
_ID_COLUMNS = ("customer_id", "order_id")


class MergeMismatchError(RuntimeError):
    """The merged build's channel vocabulary is not the one each request would get alone."""


def _printable_ends(value: str) -> bool:
    # no definition of whitespace (Python's, Arrow's) includes printable ASCII
    return bool(value) and " " < value[0] < "\x7f" and " " < value[-1] < "\x7f"


def _normal_ids(values: Sequence[str]) -> bool:
    """Whether ids are already what the loader makes of them (trimmed, not empty).

    Ids that start and end with printable ASCII (nearly all) are decided in Python;
    anything else goes through Arrow's trim, the loader's own.
    """
    if all(map(_printable_ends, values)):
        return True
    text = pa.array(values, type=pa.large_string())
    trimmed = pc.utf8_trim_whitespace(text)
    return bool(pc.all(pc.equal(text, trimmed)).as_py()) and bool(
        pc.min(pc.utf8_length(trimmed)).as_py()
    )


def _rows(tables: PreparedHistory) -> int:
    return sum(
        len(next(iter(table.values())))
        for table in (tables.transactions, tables.events, tables.customers)
        if table
    )


def merge_key(tables: PreparedHistory, channels: ChannelVocabulary) -> Hashable | None:
    """Requests with equal keys can share one build; None: this one is built alone.

    The key holds the day, the columns each table has, and the transaction channels the
    model has no column for (cleaned as the loaders clean them).
    """
    if tables.n_customers > MAX_MERGED_CUSTOMERS or _rows(tables) > MAX_MERGED_ROWS:
        return None
    shape = []
    for table in (tables.transactions, tables.events, tables.customers):
        if table is None:
            shape.append(None)
            continue
        shape.append(tuple(table))
        if not all(_normal_ids(table[name]) for name in _ID_COLUMNS if name in table):
            return None
    # each distinct label cleaned once (a history repeats a few channels many times)
    if tables.events is not None and not {
        safe_name(v) for v in set(tables.events["channel"])
    } <= set(channels.event_channels):
        return None
    raw = tables.transactions.get("channel", [None])
    extra = frozenset(safe_name(v) for v in set(raw)) - set(channels.order_channels)
    return tables.as_of, tuple(shape), extra


def _prefixed(parts: Sequence[Columns | None]) -> Columns | None:
    """The tables of every request as one, ids prefixed with the request's position."""
    if parts[0] is None:
        return None
    merged: Columns = {name: [] for name in parts[0]}
    for k, table in enumerate(parts):
        assert table is not None and list(table) == list(merged)  # same merge key
        prefix = f"{k}{SEPARATOR}"
        for name, values in table.items():
            if name in _ID_COLUMNS:
                merged[name].extend(prefix + value for value in values)
            else:
                merged[name].extend(values)
    return merged


def _customer_features(
    parts: Sequence[PreparedHistory], params: FeatureParams | None, vocabulary: ChannelVocabulary
) -> pd.DataFrame:
    """:func:`customer_features` of every request's customers (ids prefixed), checked to
    have been built with the vocabulary each request would get alone."""
    merged = PreparedHistory(
        parts[0].as_of,
        _prefixed([p.transactions for p in parts]),  # type: ignore[arg-type]
        _prefixed([p.events for p in parts]),
        _prefixed([p.customers for p in parts]),
        sum(p.n_customers for p in parts),
    )
    inputs = load_prepared(merged)
    features = computable(lambda: customer_features(inputs, params=params, vocabulary=vocabulary))
    key = merge_key(parts[0], vocabulary)
    extra = key[2] if isinstance(key, tuple) else frozenset()
    built = ChannelVocabulary.from_columns(features.columns)
    if built != vocabulary.union(ChannelVocabulary.from_seen(extra, ())):
        raise MergeMismatchError(f"merged build has channels {built}")
    return features


def merged_batches(
    parts: Sequence[PreparedHistory],
    *,
    params: FeatureParams | None,
    vocabulary: ChannelVocabulary,
    population: bool = True,
) -> list[FeatureBatch]:
    """The feature batch of each request, from one build: each equal to
    ``frame_batch(prepared_features(part, population=population))`` of the request alone.

    Parameters
    ----------
    parts : sequence of PreparedHistory
        Requests with the same :func:`merge_key` (not None).
    params : FeatureParams, optional
        The served model's.
    vocabulary : ChannelVocabulary
        The served model's channels.
    population : bool
        Whether to add the population columns, ranked among each request's customers.

    Raises
    ------
    Exception
        Whatever the loaders or the feature code raise for any request, or
        :class:`MergeMismatchError`: the caller then builds each request alone.
    """
    features = _customer_features(parts, params, vocabulary)
    whole = frame_batch(features)
    owners: list[list[int]] = [[] for _ in parts]
    ids: list[list[str]] = [[] for _ in parts]
    for position, cid in enumerate(whole.ids):
        k, _, own = cid.partition(SEPARATOR)
        owners[int(k)].append(position)
        ids[int(k)].append(own)
    # the population columns rank a request's customers among themselves, as alone
    inputs = features[list(POPULATION_INPUTS)]
    out = []
    for positions, own_ids in zip(owners, ids, strict=True):
        rows = np.asarray(positions, dtype=np.intp)
        numbers = {name: values[rows] for name, values in whole.numbers.items()}
        others = {name: values[rows] for name, values in whole.others.items()}
        if population:
            ranked = population_features(inputs.iloc[rows].copy())
            extra = frame_batch(ranked[list(POPULATION_COLUMNS)])
            numbers.update(extra.numbers)
            others.update(extra.others)
        out.append(FeatureBatch(ids=own_ids, numbers=numbers, others=others))
    return out


@dataclass
class _Waiting:
    tables: PreparedHistory
    future: asyncio.Future[FeatureBatch]


@dataclass
class HistoryMerger:
    """Build concurrent raw-history requests together (see the module docstring).

    Parameters
    ----------
    limiter : anyio.CapacityLimiter
        Bounds the worker threads running feature builds.

    Attributes
    ----------
    builds : dict of str to int
        Count of ``merged`` builds, requests built ``alone`` and ``fallback`` rebuilds.
    """

    limiter: anyio.CapacityLimiter
    builds: dict[str, int] = field(default_factory=lambda: {"merged": 0, "alone": 0, "fallback": 0})
    _waiting: KeyedQueues[_Waiting] = field(default_factory=KeyedQueues)
    _last_merged: float = -math.inf

    async def features(self, model: Any, tables: PreparedHistory) -> FeatureBatch:
        """The feature batch of one prepared request, built with the served model's
        params and channels (``model`` is a :class:`~fidelite.serving.models.ServedModel`)."""
        key = merge_key(tables, model.channels)
        if key is None:
            self.builds["alone"] += 1
            return await self._alone(model, tables)
        future: asyncio.Future[FeatureBatch] = asyncio.get_running_loop().create_future()
        self._waiting.put(
            (id(model), key), _Waiting(tables, future), lambda full: self._drain(model, full)
        )
        return await future

    async def _alone(self, model: Any, tables: PreparedHistory) -> FeatureBatch:
        params = getattr(model.python_model, "feature_params", None)
        return await anyio.to_thread.run_sync(
            lambda: frame_batch(
                prepared_features(
                    tables,
                    params=params,
                    vocabulary=model.channels,
                    population=model.uses_population,
                )
            ),
            limiter=self.limiter,
        )

    async def _drain(self, model: Any, full: Hashable) -> None:
        params = getattr(model.python_model, "feature_params", None)
        loop = asyncio.get_running_loop()
        # requests came in waves lately: the first of a new wave waits for the others
        merged = loop.time() - self._last_merged < RECENT_MERGE_S
        try:
            while self._waiting.waiting(full):
                if merged:
                    await self._gather(full)
                taken = self._waiting.take(
                    full, lambda w: w.tables.n_customers, MAX_MERGED_CUSTOMERS
                )
                merged = len(taken) > 1
                if merged:
                    self._last_merged = loop.time()
                if len(taken) == 1:
                    self.builds["alone"] += 1
                    await self._settle_alone(model, taken[0])
                    continue
                try:
                    batches = await anyio.to_thread.run_sync(
                        lambda taken=taken: merged_batches(
                            [w.tables for w in taken],
                            params=params,
                            vocabulary=model.channels,
                            population=model.uses_population,
                        ),
                        limiter=self.limiter,
                    )
                except Exception:
                    self.builds["fallback"] += len(taken)
                    for waiting in taken:
                        await self._settle_alone(model, waiting)
                    continue
                self.builds["merged"] += 1
                for waiting, batch in zip(taken, batches, strict=True):
                    if not waiting.future.done():
                        waiting.future.set_result(batch)
        finally:
            self._waiting.finish(full)

    async def _gather(self, full: Hashable) -> None:
        """Let requests already being read join the next build.

        Under concurrency requests come in waves (a closed-loop client answers a batch,
        then sends again) and the build thread holds the GIL most of the time, so the
        rest of a wave is still being read when its first request is queued. While the
        queue keeps growing (until :data:`GATHER_PATIENCE` steps of :data:`GATHER_STEP_S`
        without a new request, at most :data:`GATHER_STEPS` steps), wait: a millisecond
        here saves a ~9 ms build per request that joins. Only done within :data:`RECENT_MERGE_S` of
        a merged build: a lone request never waits.
        """
        queue = self._waiting.waiting(full)
        still = 0
        for _ in range(GATHER_STEPS):
            before = len(queue)
            await asyncio.sleep(GATHER_STEP_S)
            still = still + 1 if len(queue) == before else 0
            if (
                still == GATHER_PATIENCE
                or sum(w.tables.n_customers for w in queue) >= MAX_MERGED_CUSTOMERS
            ):
                return

    async def _settle_alone(self, model: Any, waiting: _Waiting) -> None:
        if waiting.future.done():  # the client went away
            return
        try:
            batch = await self._alone(model, waiting.tables)
        except Exception as exc:
            if not waiting.future.done():
                waiting.future.set_exception(exc)
        else:
            if not waiting.future.done():
                waiting.future.set_result(batch)
