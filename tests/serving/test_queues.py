"""The per-key request queues shared by the micro-batcher and the history merger."""

from __future__ import annotations

import asyncio

from fidelite.serving.queues import KeyedQueues


def test_one_drain_per_key_takes_up_to_the_cap_and_forgets_idle_keys() -> None:
    queues: KeyedQueues[int] = KeyedQueues()
    calls: list[list[int]] = []
    drains: list[str] = []

    async def drain(key: object) -> None:
        drains.append(str(key))
        await asyncio.sleep(0)  # let the whole burst queue up first
        try:
            while queues.waiting(key):
                calls.append(queues.take(key, size=lambda n: n, cap=5))
        finally:
            queues.finish(key)

    async def burst() -> None:
        for item in (2, 2, 2, 7, 1):
            queues.put("a", item, drain)
        queues.put("b", 3, drain)
        await asyncio.sleep(0.01)

    asyncio.run(burst())
    assert drains == ["a", "b"]  # one drain task per key however many requests
    # sizes add up to at most the cap; an item over the cap still goes, alone
    assert calls == [[2, 2], [2], [7], [1], [3]]
    assert queues.waiting("a") == [] and not queues._queues and not queues._running
