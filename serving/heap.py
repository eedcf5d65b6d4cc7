"""Keeping the cyclic garbage collector's passes cheap in the service's worker process.

Every request allocates thousands of short-lived objects (parsed bodies, frames,
futures, the framework's tracing spans), and some of them sit in reference cycles.
With CPython's defaults (a young collection every 700 allocations) a young collection
runs several times per request while a wave of concurrent requests is in flight: their
live objects are promoted, and each full collection then walks the whole heap, the
served model, the snapshot, BentoML, MLflow and SQLAlchemy included (~400,000 objects,
tens of milliseconds). Measured on a live worker (one-customer history requests at
concurrency 16, a loaded 2-core machine), the collector cost 0.4-0.5 ms of CPU per
request, about a seventh of the request.

Two settings fix most of it:

- :func:`settle` moves everything alive (the model, the snapshot, the libraries) into
  the collector's permanent generation (``gc.freeze``): full collections walk only what
  requests left behind. Frozen objects are still freed by reference counting; after a
  model or snapshot is replaced, :func:`settle` first unfreezes and collects, so
  whatever the replaced one left in reference cycles is reclaimed.
- :func:`tune` raises the young-generation threshold to :data:`YOUNG_THRESHOLD`
  allocations, so young collections mostly find finished requests' garbage instead of
  promoting in-flight objects.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle", "tune"]

#: Allocations between young collections (CPython's default is 700).
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Collect, then exempt everything still alive from later collections.

    Call after loading or replacing long-lived state (model, snapshot). Takes one full
    collection (tens to hundreds of milliseconds with a model loaded).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def tune() -> None:
    """Young collections every :data:`YOUNG_THRESHOLD` allocations (process-wide: call
    only in the service's own worker process)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
