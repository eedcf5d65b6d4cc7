"""Requests waiting per key, each key drained by one task at a time.

:class:`~fidelite.serving.scoring.MicroBatcher` (feature rows) and
:class:`~fidelite.serving.merging.HistoryMerger` (raw histories) both queue concurrent
requests under a key (requests that may share one call), start one drain task per key,
take as many queued requests as one call may hold, and drop a key once its queue is
empty: keys hold client values, so none is kept idle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["KeyedQueues"]

Item = TypeVar("Item")


@dataclass
class KeyedQueues(Generic[Item]):
    """FIFO queues of waiting requests by key, with at most one drain task per key."""

    _queues: dict[Hashable, list[Item]] = field(default_factory=dict)
    _running: set[Hashable] = field(default_factory=set)

    def put(
        self, key: Hashable, item: Item, drain: Callable[[Hashable], Coroutine[Any, Any, None]]
    ) -> None:
        """Queue ``item``; start ``drain(key)`` unless that key is being drained already.

        ``drain`` must call :meth:`finish` when it returns.
        """
        self._queues.setdefault(key, []).append(item)
        if key not in self._running:
            self._running.add(key)
            asyncio.get_running_loop().create_task(drain(key))

    def waiting(self, key: Hashable) -> list[Item]:
        """The queue of ``key`` (empty when nothing waits)."""
        return self._queues.get(key, [])

    def take(self, key: Hashable, size: Callable[[Item], int], cap: int) -> list[Item]:
        """The oldest waiting items whose ``size`` adds up to at most ``cap`` (at least one)."""
        queue = self._queues[key]
        taken, total = [], 0
        while queue and (not taken or total + size(queue[0]) <= cap):
            item = queue.pop(0)
            taken.append(item)
            total += size(item)
        return taken

    def finish(self, key: Hashable) -> None:
        """The drain of ``key`` has ended; forget the key if nothing waits."""
        self._running.discard(key)
        if not self._queues.get(key):
            self._queues.pop(key, None)
