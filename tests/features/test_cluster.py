"""Memory-starved Dask workers fail fast with a message naming the setting to raise."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from fidelite.features.cluster import (
    MEMORY_SETTING,
    WorkerMemoryError,
    check_worker_headroom,
    dask_client,
    input_bytes,
    plan_buckets,
    run_watching_workers,
    wait_for,
)
from fidelite.features.distributed import partition_by_customer

pytestmark = pytest.mark.slow


def _hold_memory(mib: int, seconds: float) -> int:
    block = np.ones(mib * 2**20 // 8)
    time.sleep(seconds)
    return int(block.size)


def test_worker_without_headroom_fails_before_any_work():
    frame = pd.DataFrame(
        {"customer_id": ["a"], "order_id": ["1"], "timestamp": ["2025-01-01"], "amount": [1.0]}
    )
    with dask_client(workers=1, memory_limit="200MiB") as client:
        start = time.monotonic()
        with pytest.raises(WorkerMemoryError, match="--worker-memory") as error:
            partition_by_customer(frame, as_of="2025-01-31", client=client)
        assert time.monotonic() - start < 30
    assert "200 MiB memory limit" in str(error.value)
    assert error.value.exit_code == 2


def test_a_task_stuck_at_the_memory_limit_fails_instead_of_hanging():
    with dask_client(workers=1, memory_limit="1GiB") as client:
        check_worker_headroom(client)  # an idle worker has room
        # ~75% of the limit on top of the worker's own footprint: paused, not killed.
        future = client.submit(_hold_memory, 680, 120, pure=False)
        start = time.monotonic()
        with pytest.raises(WorkerMemoryError) as error:
            wait_for(client, [future], what="holding memory", stall_seconds=3)
        assert time.monotonic() - start < 60
    message = str(error.value)
    assert message.startswith("holding memory: ")
    assert "paused at its memory limit" in message
    assert MEMORY_SETTING in message


def test_buckets_grow_with_the_data_and_shrink_with_worker_memory(tmp_path):
    frame = pd.DataFrame({"customer_id": np.arange(200_000).astype(str), "x": 1.0})
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    assert input_bytes(path) > 1_000_000
    assert input_bytes(frame) == frame.memory_usage(deep=True).sum()
    with dask_client(workers=1, memory_limit="1GiB") as client:
        few = plan_buckets(client, [path])
        assert few == 2  # 2 per thread: the data is a sliver of a GiB
        many = plan_buckets(client, [path] * 2000)
        assert many > few
        assert plan_buckets(client, [path], at_least=7) == 7


def test_a_pinned_task_fails_fast_when_its_worker_dies():
    """LightGBM's Dask fit pins each part to a worker; a worker killed meanwhile (its
    nanny restarts it under a new address) must not leave the fit waiting forever."""
    import os
    import signal
    import threading

    with dask_client(workers=2, memory_limit="1GiB") as client:
        worker = sorted(client.scheduler_info()["workers"])[0]

        def pinned() -> None:
            task = client.submit(
                time.sleep, 120, workers=[worker], allow_other_workers=False, pure=False
            )
            task.result()

        pid = client.run(os.getpid, workers=[worker])[worker]

        def kill() -> None:
            time.sleep(2)
            os.kill(pid, signal.SIGKILL)  # as the kernel or the nanny stops a worker

        threading.Thread(target=kill, daemon=True).start()
        start = time.monotonic()
        with pytest.raises(WorkerMemoryError, match="--worker-memory") as error:
            run_watching_workers(client, pinned, what="pinned task")
        assert time.monotonic() - start < 30
    assert str(error.value).startswith("pinned task: worker tcp://")
    assert "died while it ran" in str(error.value)


def test_watched_work_returns_its_result_and_raises_its_error():
    with dask_client(workers=1, memory_limit="1GiB") as client:
        assert (
            run_watching_workers(client, lambda: client.submit(sum, [1, 2]).result(), what="x") == 3
        )
        with pytest.raises(ZeroDivisionError):
            run_watching_workers(client, lambda: 1 / 0, what="x")
