"""Dask clusters for fidelite: start or connect, size the work to the workers' memory,
and wait for results without ever hanging on a worker that ran out of memory.

A Dask worker that reaches 80% of its ``memory_limit`` pauses until memory is freed;
when its memory is held by a running task rather than by stored results (which it can
spill to disk) nothing frees it and the computation waits forever. :func:`wait_for`
watches for that (every worker paused, no progress) and for workers killed by their
nanny at 95%, and raises :class:`WorkerMemoryError` naming the setting to raise
(:data:`MEMORY_SETTING`, i.e. ``--worker-memory`` on the command line).
:func:`plan_buckets` chooses enough customer buckets that each task's share of the data
fits comfortably in a worker, so the stored data spills instead.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fidelite.errors import ConfigurationError

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = [
    "MEMORY_SETTING",
    "WorkerMemoryError",
    "check_worker_headroom",
    "dask_client",
    "plan_buckets",
    "run_watching_workers",
    "wait_for",
    "worker_memory_limits",
]

logger = logging.getLogger(__name__)

#: How users raise a worker's memory: the CLI option and the Python argument.
MEMORY_SETTING = "--worker-memory (dask_client(memory_limit=...))"
#: A task may need several times its input in memory while it runs (copies, group-bys,
#: the result): one bucket's input is kept below this share of a worker's limit.
BUCKET_SHARE_OF_WORKER = 0.08
#: Dask pauses a worker at this fraction of its limit (``distributed.worker.memory.pause``).
_PAUSE_FRACTION = 0.8
_MiB = 2**20
_T = TypeVar("_T")


class WorkerMemoryError(ConfigurationError):
    """A Dask worker has too little memory for its share of the data."""


def dask_client(
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    threads_per_worker: int = 1,
    memory_limit: str | float = "auto",
) -> Client:
    """Connect to a Dask scheduler, or start a local cluster of worker processes.

    Parameters
    ----------
    scheduler : str, optional
        Scheduler address (``tcp://host:8786``). When given, ``workers`` and the sizing
        arguments are ignored: the cluster is sized by whoever runs it.
    workers : int, optional
        Worker processes of the local cluster (default: one per CPU core, at most 4).
    threads_per_worker : int, default 1
        The feature code is numpy on whole columns: one thread per process avoids
        fighting over the GIL; use processes for parallelism.
    memory_limit : str or float, default "auto"
        Per-worker memory limit of the local cluster (``"2GiB"``; "auto" shares the
        machine's memory between the workers). Workers spill stored results to disk
        above 70% of it and pause at 80%.

    Returns
    -------
    distributed.Client
        Closing it also shuts down a local cluster it started.
    """
    from distributed import Client

    if scheduler:
        return Client(scheduler)
    import dask

    n_workers = workers or max(1, min(4, os.cpu_count() or 1))
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=64KiB so freed memory goes back to
    # the OS at once. Setting it switches off glibc's adaptive mmap threshold: every
    # array over 128 KiB is then a fresh mmap, faulted in page by page (4M transactions:
    # 2.5M page faults, 12% of the workers' CPU). Stored buckets spill through Dask's
    # own accounting, so the workers keep glibc's default.
    environ = dask.config.get("distributed.nanny.pre-spawn-environ", {})
    environ = {k: v for k, v in environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    # One thread per task: polars (id hashing) would otherwise start a pool per core in
    # every worker, as Dask already stops OpenMP/BLAS (and with them Arrow) doing.
    environ.setdefault("POLARS_MAX_THREADS", threads_per_worker)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        client = Client(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=":0",  # any free port: several clusters may share a machine
        )
    # Import the feature code once while the cluster starts (~0.5 CPU s per worker),
    # as a single-machine process has before its first job; not on workers too small
    # for it: the import would get them killed before check_worker_headroom can name
    # the setting to raise.
    if not _starved_workers(client, minimum_free_mib=_IMPORT_HEADROOM_MIB):
        client.run(_import_feature_code)
    return client


def _import_feature_code() -> None:
    import importlib

    for module in _WORKER_MODULES:
        importlib.import_module(module)


#: Modules every Dask task of the feature path needs (imported when a worker starts).
_WORKER_MODULES = (
    "fidelite.features.distributed",
    "fidelite.features.windows",
    "polars",
    "pyarrow.parquet",
)


def worker_memory_limits(client: Client) -> dict[str, int]:
    """Memory limit in bytes of each worker (0 = unlimited)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return {address: int(info.get("memory_limit") or 0) for address, info in workers.items()}


def _worker_memory(client: Client) -> dict[str, tuple[int, int, str]]:
    """(process memory, limit, status) of each worker, in bytes."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return {
        address: (
            int(info.get("metrics", {}).get("memory", 0)),
            int(info.get("memory_limit") or 0),
            str(info.get("status", "running")),
        )
        for address, info in workers.items()
    }


def check_worker_headroom(client: Client, *, minimum_free_mib: float = 128) -> None:
    """Fail before any work when a worker's limit leaves no room above its own footprint.

    A worker that starts at 290 MiB under a 395 MiB limit pauses (80% = 316 MiB) as
    soon as a task loads anything, and would wait forever.

    Raises
    ------
    WorkerMemoryError
        Naming the worker, its footprint, its limit and :data:`MEMORY_SETTING`.
    """
    for address, used, limit in _starved_workers(client, minimum_free_mib=minimum_free_mib):
        suggested = math.ceil((used + 4 * minimum_free_mib * _MiB) / _PAUSE_FRACTION / 2**30)
        raise WorkerMemoryError(
            f"Dask worker {address} already uses {used / _MiB:,.0f} MiB of its "
            f"{limit / _MiB:,.0f} MiB memory limit before any work (it pauses at "
            f"{_PAUSE_FRACTION:.0%}); raise {MEMORY_SETTING} to at least {suggested} GiB"
        )


#: Room the feature code's imports need on a worker (pandas, pyarrow, polars: ~200 MiB).
_IMPORT_HEADROOM_MIB = 512


def _starved_workers(client: Client, *, minimum_free_mib: float) -> list[tuple[str, float, float]]:
    """(address, bytes used, limit) of the workers with less room than that below pause."""
    starved = []
    for address, (used, limit, _) in _worker_memory(client).items():
        if limit and _PAUSE_FRACTION * limit - used < minimum_free_mib * _MiB:
            starved.append((address, used, limit))
    return starved


def input_bytes(source: object) -> int | None:
    """In-memory size estimate of a table source in bytes (None when unknown).

    Parquet: the uncompressed size recorded in the file footers; CSV: 2x the file
    size; a pandas DataFrame: its deep memory usage. Remote URLs are not inspected.
    """
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return int(source.memory_usage(deep=True).sum())
    if not isinstance(source, (str, Path)) or "://" in str(source):
        return None
    path = Path(source)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    total = 0
    for file in files:
        if not file.exists():
            return None
        if file.name.lower().endswith((".csv", ".csv.gz")):
            total += 2 * file.stat().st_size * (4 if file.name.lower().endswith(".gz") else 1)
            continue
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(file).metadata
        total += sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    return total


def plan_buckets(client: Client, sources: Sequence[object], *, at_least: int = 1) -> int:
    """Customer buckets so that one bucket's data is a small share of a worker's memory.

    Parameters
    ----------
    client : distributed.Client
    sources : sequence
        The input tables (paths or frames; unknown sizes count as 0).
    at_least : int
        Lower bound (e.g. the number of input partitions).

    Returns
    -------
    int
        ``max(at_least, 2 x worker threads, total size / (BUCKET_SHARE_OF_WORKER x
        smallest worker limit))``.
    """
    threads = sum(client.nthreads().values()) or 1
    limits = [limit for limit in worker_memory_limits(client).values() if limit]
    total = sum(size for size in (input_bytes(s) for s in sources) if size)
    by_memory = math.ceil(total / (BUCKET_SHARE_OF_WORKER * min(limits))) if limits else 1
    return max(at_least, 2 * threads, by_memory)


def _memory_error(client: Client, what: str, cause: str) -> WorkerMemoryError:
    limits = worker_memory_limits(client)
    smallest = min((v for v in limits.values() if v), default=0)
    limit_text = f"{smallest / _MiB:,.0f} MiB per worker" if smallest else "no limit"
    return WorkerMemoryError(
        f"{what}: {cause} (memory limit {limit_text}); raise {MEMORY_SETTING}, add workers, "
        "or use more customer buckets (--partitions)"
    )


def wait_for(
    client: Client,
    futures: Sequence[Future],
    *,
    what: str,
    gather: bool = True,
    stall_seconds: float = 60.0,
    poll_seconds: float = 1.0,
) -> list[Any]:
    """Wait for (and gather) ``futures``, failing fast instead of hanging on starved workers.

    Parameters
    ----------
    client : distributed.Client
    futures : sequence of Future
    what : str
        Named in errors ("features at 2025-06-30").
    gather : bool, default True
        Return the results; False leaves them on the workers and returns ``[]``.
    stall_seconds : float
        How long every worker may stay paused with no task finishing.

    Raises
    ------
    WorkerMemoryError
        When a task killed its worker (out of memory) or every worker stayed paused.
    """
    from distributed import wait
    from distributed.scheduler import KilledWorker

    pending = list(futures)
    paused_since: dict[str, float] = {}
    while True:
        with contextlib.suppress(TimeoutError):  # a timeout is just the next poll
            wait(pending, timeout=poll_seconds)
        not_done = [f for f in pending if f.status not in ("finished", "error", "cancelled")]
        failed = [f for f in pending if f.status in ("error", "cancelled")]
        if failed:
            client.cancel(not_done)
            if failed[0].status == "cancelled":
                raise RuntimeError(f"{what}: the computation was cancelled")
            error = failed[0].exception()
            if isinstance(error, KilledWorker):
                raise _memory_error(
                    client, what, "a task was killed with its worker, typically out of memory"
                ) from error
            raise error
        if not not_done:
            return client.gather(list(futures)) if gather else []
        if len(not_done) < len(pending):
            paused_since.clear()  # results are arriving: memory is being released
        pending = list(not_done)
        now = time.monotonic()
        for address, (_, _, status) in _worker_memory(client).items():
            if status != "paused":
                paused_since.pop(address, None)
            elif now - paused_since.setdefault(address, now) > stall_seconds:
                client.cancel(pending)
                raise _memory_error(
                    client,
                    what,
                    f"worker {address} has been paused at its memory limit for "
                    f"{stall_seconds:.0f} s without spilling enough to resume",
                )


def run_watching_workers(
    client: Client, work: Callable[[], _T], *, what: str, poll_seconds: float = 1.0
) -> _T:
    """``work()``, failing fast when one of the cluster's workers dies while it runs.

    For blocking calls whose tasks are pinned to today's workers, such as a
    ``lightgbm.dask`` fit (each worker's part runs there, ``allow_other_workers=False``):
    when a worker is killed (its nanny stops it at 95% of its memory limit) and restarted
    under a new address, such a task waits forever. ``work`` runs in a daemon thread;
    this thread polls the scheduler's workers and raises :class:`WorkerMemoryError`
    (naming :data:`MEMORY_SETTING`) as soon as one that was there at the start is gone.
    """
    import threading

    workers = set(client.scheduler_info()["workers"])
    done: list[_T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(work())
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name=f"fidelite: {what}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(poll_seconds)
        gone = workers - set(client.scheduler_info()["workers"])
        if thread.is_alive() and gone:
            cause = f"worker {sorted(gone)[0]} died while it ran, typically out of memory"
            raise _memory_error(client, what, cause)
    if failed:
        raise failed[0]
    return done[0]
