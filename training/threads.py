"""Thread pools started on first use that survive ``os.fork``.

The compiled loops release the GIL, so several places hand work to a few threads of their
own (the trees' row blocks, the score columns beside the reasons, the second half of a
large request body). A ``ThreadPoolExecutor`` created before a fork is unusable in the
child (its threads do not exist there: a submitted job never runs), so each pool here is
forgotten in a forked child, which starts its own on first use.
"""

from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

__all__ = ["LazyPool"]


class LazyPool:
    """A ``ThreadPoolExecutor`` of ``workers`` threads named ``prefix``, started by the
    first :meth:`get` in each process."""

    def __init__(self, workers: int, prefix: str) -> None:
        self.workers = workers
        self.prefix = prefix
        self._forget()
        _POOLS.add(self)

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=self.prefix)
            return self._pool

    def _forget(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()


_POOLS: weakref.WeakSet[LazyPool] = weakref.WeakSet()


def _forget_all() -> None:
    for pool in list(_POOLS):
        pool._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all)
