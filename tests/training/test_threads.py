"""Lazily started thread pools work in a forked child (its parent's threads do not)."""

from __future__ import annotations

import os

from fidelite.training.threads import LazyPool


def test_a_forked_child_starts_its_own_threads() -> None:
    pool = LazyPool(1, "test-pool")
    assert pool.get().submit(lambda: 1).result(timeout=10) == 1  # the parent's thread
    child = os.fork()
    if child == 0:  # without the fork handler this submit would never run
        try:
            ok = pool.get().submit(lambda: 2).result(timeout=10) == 2
        except Exception:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pool.get().submit(lambda: 3).result(timeout=10) == 3  # the parent's still works
