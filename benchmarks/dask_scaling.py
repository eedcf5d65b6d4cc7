"""Features on Dask vs on one machine: seconds, peak memory, and a too-small cluster.

Synthesises transactions and events (the generator of ``features_speed.py``), writes
them as partitioned Parquet, then builds point-in-time features from those files in
three separate processes (clean peak-memory numbers):

* ``pandas``: ``read_parquet`` + :func:`features.build_features` in one process;
* ``dask``: :func:`features.distributed.build_features_dask` on a ``LocalCluster``
  (``--workers`` processes x ``--threads`` threads, default memory limit);
* ``dask-small``: the same with each worker's ``memory_limit`` set to
  ``--small-fraction`` of the in-memory size of the input, so no single worker could
  hold the data: does it spill to disk and still finish?

Every Dask run is checked against the single-machine result (same rows and values),
so a fast wrong answer cannot be reported. Peak memory is the client process's max
RSS plus each worker process's max RSS. CPU seconds are the client's plus every
worker's (user + system, all threads). The machine's load average is printed: on a
shared 2-core box the Dask numbers include the cost of competing for cores, and where
the kernel shares CPU by session (``/proc/sys/kernel/sched_autogroup_enabled`` = 1) a
LocalCluster started from one shell gets that session's share whatever its number of
workers, so ``cpu_vs_pandas`` is what ``time_vs_pandas`` converges to under load.

With ``--train``, it instead runs ``fidelite train`` and ``fidelite score`` with
``--engine dask`` on a LocalCluster of ``--workers`` workers (through
``benchmarks/training_speed.py``) for 1,000,000 demo customers, and also 5,000,000
with ``--large``; spilling to disk is allowed (``--worker-memory``).

Usage::

    python benchmarks/dask_scaling.py                       # 1M transactions, 2M events
    python benchmarks/dask_scaling.py --transactions 4000000 --events 8000000 \
        --customers 400000 --workers 2
    python benchmarks/dask_scaling.py --small-memory 395MiB  # a starved worker fails fast
    python benchmarks/dask_scaling.py --train [--large] [--worker-memory 6GiB]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import peak_rss_mib, print_machine, print_table, run_json_subprocess

AS_OF = "2024-12-31"


def _write_inputs(args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Partitioned Parquet inputs; returns their in-memory and on-disk sizes in MiB."""
    import dask.dataframe as dd
    from features_speed import synthesise

    transactions, events = synthesise(args.transactions, args.events, args.customers, args.seed)
    in_memory = (
        transactions.memory_usage(deep=True).sum() + events.memory_usage(deep=True).sum()
    ) / 2**20
    for name, frame in (("transactions", transactions), ("events", events)):
        dd.from_pandas(frame, npartitions=args.files, sort=False).to_parquet(out / name)
    on_disk = sum(f.stat().st_size for f in out.rglob("*.parquet")) / 2**20
    return {"input_in_memory_mib": in_memory, "input_on_disk_mib": on_disk}


def _worker_peak_rss_mib(dask_worker=None) -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def _cpu_seconds(dask_worker=None) -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker_spilled_mib(dask_worker) -> float:
    """MiB this worker has written to its spill directory so far (cumulative)."""
    metrics = getattr(dask_worker.data, "cumulative_metrics", {})
    return float(metrics.get(("disk-write", "bytes"), 0.0)) / 2**20


def run_mode(
    mode: str,
    data: Path,
    workers: int,
    threads: int,
    memory_limit: str | None,
    npartitions: int | None,
) -> dict[str, float | str]:
    """One measurement in this (fresh) process; the result is printed as JSON."""
    import pandas as pd

    from fidelite.features import build_features, load_inputs

    transactions, events = data / "transactions", data / "events"
    if mode == "pandas":
        start, cpu = time.perf_counter(), _cpu_seconds()
        inputs = load_inputs(str(transactions), str(events), as_of=AS_OF)
        features = build_features(inputs)
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
        features.to_parquet(data / "expected.parquet")
        return {
            "mode": mode,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "peak_mib": peak_rss_mib(),
            "customers": len(features),
        }

    from fidelite.features.distributed import build_features_dask, compute_features, dask_client

    with dask_client(
        workers=workers, threads_per_worker=threads, memory_limit=memory_limit or "auto"
    ) as client:
        cpu = _cpu_seconds() + sum(client.run(_cpu_seconds).values())
        start = time.perf_counter()
        features = compute_features(
            build_features_dask(
                str(transactions), str(events), as_of=AS_OF, npartitions=npartitions
            )
        )
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds() + sum(client.run(_cpu_seconds).values()) - cpu
        worker_peaks = client.run(_worker_peak_rss_mib)
        spilled = client.run(_worker_spilled_mib)
    expected = pd.read_parquet(data / "expected.parquet")
    pd.testing.assert_frame_equal(features, expected, check_exact=False, rtol=1e-9)
    return {
        "mode": mode,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mib": peak_rss_mib() + sum(worker_peaks.values()),
        "max_worker_peak_mib": max(worker_peaks.values()),
        "spilled_mib": sum(spilled.values()),
        "customers": len(features),
        "memory_limit": memory_limit or "auto",
        "npartitions": npartitions or "auto",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="Threads per worker.")
    parser.add_argument(
        "--small-fraction",
        type=float,
        default=0.5,
        help="dask-small worker memory limit as a fraction of the input size.",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="Seconds before a run is reported as not finished.",
    )
    parser.add_argument(
        "--files",
        type=int,
        default=8,
        help="Parquet files per table: one input partition each, so the unit "
        "a worker must be able to load and normalise in memory.",
    )
    parser.add_argument(
        "--npartitions",
        type=int,
        default=None,
        help="Customer buckets (default: 2 per worker thread). More buckets, "
        "smaller tasks: what lets workers with little memory finish.",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["pandas", "dask", "dask-small"],
        choices=["pandas", "dask", "dask-small"],
        help="Runs to make (pandas always runs: it is the reference).",
    )
    parser.add_argument(
        "--small-memory", default=None, help="dask-small worker memory limit (e.g. 395MiB)."
    )
    parser.add_argument("--large", action="store_true", help="5x the default sizes.")
    parser.add_argument(
        "--train", action="store_true", help="fidelite train/score on a LocalCluster instead."
    )
    parser.add_argument("--worker-memory", default=None, help="(--train) worker memory limit.")
    # Internal: one measurement per child process.
    parser.add_argument("--mode", choices=["pandas", "dask", "dask-small"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--memory-limit", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.mode:
        print(
            json.dumps(
                run_mode(
                    args.mode,
                    args.data,
                    args.workers,
                    args.threads,
                    args.memory_limit,
                    args.npartitions,
                )
            )
        )
        return
    if args.train:
        from training_speed import main as training_speed

        # 5M: five copies of the 1M demo with distinct ids (training_speed --replicas).
        sizes = ((1_000_000, 1), (1_000_000, 5)) if args.large else ((1_000_000, 1),)
        for n, copies in sizes:
            extra = ["--worker-memory", args.worker_memory] if args.worker_memory else []
            status = training_speed(
                [
                    *("--customers", str(n), "--replicas", str(copies)),
                    *("--engine", "dask", "--workers", str(args.workers), *extra),
                ]
            )
            if status:
                print(f"{n * copies:,} customers on Dask: failed (exit {status})")
        return
    if args.large:
        args.transactions, args.events, args.customers = (
            5 * args.transactions,
            5 * args.events,
            5 * args.customers,
        )

    print_machine()
    data = Path(tempfile.mkdtemp(prefix="fidelite-dask-bench-"))
    try:
        sizes = _write_inputs(args, data)
        small_limit = (
            args.small_memory or f"{int(args.small_fraction * sizes['input_in_memory_mib'])}MiB"
        )
        common = [
            __file__,
            "--data",
            str(data),
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
        ]
        if args.npartitions:
            common += ["--npartitions", str(args.npartitions)]
        rows = []
        runs = (("pandas", None), ("dask", None), ("dask-small", small_limit))
        for mode, limit in [r for r in runs if r[0] == "pandas" or r[0] in args.modes]:
            extra = ["--memory-limit", limit] if limit else []
            try:
                rows.append(
                    run_json_subprocess([*common, "--mode", mode, *extra], timeout=args.timeout)
                )
            except RuntimeError as exc:  # report a failed run as such, never as a number
                last_line = [line for line in str(exc).splitlines() if line.strip()][-1]
                rows.append({"mode": mode, "memory_limit": limit, "error": last_line[:200]})
            except subprocess.TimeoutExpired:
                rows.append(
                    {
                        "mode": mode,
                        "memory_limit": limit,
                        "error": f"did not finish within {args.timeout:.0f} s",
                    }
                )
    finally:
        shutil.rmtree(data, ignore_errors=True)

    reference = rows[0] if rows and "seconds" in rows[0] else None
    for row in rows:
        if reference and "seconds" in row:
            row["time_vs_pandas"] = row["seconds"] / reference["seconds"]
            row["cpu_vs_pandas"] = row["cpu_seconds"] / reference["cpu_seconds"]
    print_table(
        rows,
        [
            "mode",
            "seconds",
            "time_vs_pandas",
            "cpu_seconds",
            "cpu_vs_pandas",
            "peak_mib",
            "max_worker_peak_mib",
            "spilled_mib",
            "customers",
            "memory_limit",
            "npartitions",
            "error",
        ],
        title=(
            f"features as of {AS_OF}: {args.transactions:,} transactions, "
            f"{args.events:,} events, {args.customers:,} customers "
            f"({sizes['input_in_memory_mib']:,.0f} MiB in memory, "
            f"{sizes['input_on_disk_mib']:,.0f} MiB Parquet); "
            f"{args.files} files per table; {args.workers} workers x "
            f"{args.threads} threads"
        ),
        precision=2,
    )
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
