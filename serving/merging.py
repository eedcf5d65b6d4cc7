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

When the service asks for it (a scoring day) and the model reads no population column,
the merged build is also scored in the same worker-thread call (:func:`merged_scores`,
one model call; requests are merged only with others of the same day and
``include_reasons``), and each request gets its own score columns instead of a feature
batch to be scored again with the others; if that call fails, each request is built
alone and scored on its own by the service.

The tests compare merged builds with builds alone, feature by feature and over HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
import pandas as pd

from fidelite.features import ChannelVocabulary
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
from fidelite.serving.merge_keys import ID_COLUMNS, MAX_MERGED_CUSTOMERS, merge_key
from fidelite.serving.queues import KeyedQueues
from fidelite.serving.rows import FeatureBatch
from fidelite.serving.scoring import model_scores

SEPARATOR = "|"
#: Within this many seconds of a merged build, a build first waits for more requests
#: in steps of GATHER_STEP_S until GATHER_PATIENCE steps bring none, at most
#: GATHER_STEPS steps.
RECENT_MERGE_S = 0.25
GATHER_STEP_S = 0.001
GATHER_STEPS = 10
GATHER_PATIENCE = 3


class MergeMismatchError(RuntimeError):
    """The merged build's channel vocabulary is not the one each request would get alone."""


def _prefixed(parts: Sequence[Columns | None]) -> Columns | None:
    """The tables of every request as one, ids prefixed with the request's position."""
    if parts[0] is None:
        return None
    merged: Columns = {name: [] for name in parts[0]}
    for k, table in enumerate(parts):
        assert table is not None and list(table) == list(merged)  # same merge key
        prefix = f"{k}{SEPARATOR}"
        for name, values in table.items():
            if name in ID_COLUMNS:
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
    # the population columns rank a request's customers among themselves, as alone
    inputs = features[list(POPULATION_INPUTS)]
    out = []
    for rows, own_ids in zip(*_owners(whole.ids, len(parts)), strict=True):
        numbers = {name: values[rows] for name, values in whole.numbers.items()}
        others = {name: values[rows] for name, values in whole.others.items()}
        if population:
            ranked = population_features(inputs.iloc[rows].copy())
            extra = frame_batch(ranked[list(POPULATION_COLUMNS)])
            numbers.update(extra.numbers)
            others.update(extra.others)
        out.append(FeatureBatch(ids=own_ids, numbers=numbers, others=others))
    return out


def merged_scores(
    parts: Sequence[PreparedHistory],
    *,
    params: FeatureParams | None,
    vocabulary: ChannelVocabulary,
    score: Callable[[FeatureBatch], Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The score columns of each request, from one build and one ``score`` call: each
    equal to ``score(frame_batch(prepared_features(part, population=False)))`` of the
    request alone, since the model scores each customer on its own row. For models
    that read no population column (their features are exactly the merged build's).

    Saves cutting every feature column per request and joining them again for one
    model call (a one-customer history has ~100 feature columns, ~20 score columns).

    Raises
    ------
    Exception
        As :func:`merged_batches`, or whatever ``score`` raises for any request: the
        caller then builds and scores each request alone.
    """
    whole = frame_batch(_customer_features(parts, params, vocabulary))
    columns = {name: np.asarray(values) for name, values in score(whole).items()}
    out = []
    for rows, own_ids in zip(*_owners(whole.ids, len(parts)), strict=True):
        part: dict[str, Any] = {name: values[rows] for name, values in columns.items()}
        part["customer_id"] = own_ids
        out.append(part)
    return out


def _owners(ids: Sequence[str], n: int) -> tuple[list[np.ndarray], list[list[str]]]:
    """Positions in a merged build of each of ``n`` requests' customers, and their own
    (unprefixed) ids, in build order."""
    owners: list[list[int]] = [[] for _ in range(n)]
    own_ids: list[list[str]] = [[] for _ in range(n)]
    for position, cid in enumerate(ids):
        k, _, own = cid.partition(SEPARATOR)
        owners[int(k)].append(position)
        own_ids[int(k)].append(own)
    return [np.asarray(rows, dtype=np.intp) for rows in owners], own_ids


#: A request's features, or its score columns when they were scored with the build.
Built = FeatureBatch | dict[str, Any]


@dataclass
class _Waiting:
    tables: PreparedHistory
    future: asyncio.Future[Built]


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
        built = await self.build(model, tables)
        assert isinstance(built, FeatureBatch)
        return built

    async def build(
        self,
        model: Any,
        tables: PreparedHistory,
        *,
        day: pd.Timestamp | None = None,
        reasons: bool = True,
    ) -> Built:
        """The request's feature batch, or its score columns when ``day`` is given, it
        was built with others and the model reads no population column (then the
        merged build is scored in the same worker-thread call: :func:`merged_scores`).
        Requests with a different ``day`` or ``reasons`` are never merged."""
        key = merge_key(tables, model.channels)
        if key is None:
            self.builds["alone"] += 1
            return await self._alone(model, tables)
        future: asyncio.Future[Built] = asyncio.get_running_loop().create_future()
        self._waiting.put(
            (id(model), key, day, reasons),
            _Waiting(tables, future),
            lambda full: self._drain(model, full),
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
                        self._merged(model, [w.tables for w in taken], full), limiter=self.limiter
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

    @staticmethod
    def _merged(
        model: Any, parts: list[PreparedHistory], full: tuple
    ) -> Callable[[], list[FeatureBatch] | list[dict[str, Any]]]:
        """The worker-thread call building (and, when asked and possible, scoring) one
        merged group (``full`` is the queue key: ``day`` and ``reasons`` last)."""
        *_, day, reasons = full
        params = getattr(model.python_model, "feature_params", None)
        if day is not None and not model.uses_population:
            score = functools.partial(model_scores, model.python_model, day=day, reasons=reasons)
            return functools.partial(
                merged_scores, parts, params=params, vocabulary=model.channels, score=score
            )
        return functools.partial(
            merged_batches,
            parts,
            params=params,
            vocabulary=model.channels,
            population=model.uses_population,
        )

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
