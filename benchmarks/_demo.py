"""Demo data sets of any size for the scale benchmarks, generated in chunks and cached.

``fidelite demo-data`` holds a whole customer base in memory (about 7 GB at 1,000,000
customers), so larger bases are generated in chunks of at most ``CHUNK`` customers, each
in its own process with its own seed, and written as one Parquet file per chunk and
table (``transactions/part-000.parquet``...). Ids get a chunk prefix (``k1-C0000001``)
so chunks never collide. Every loader and the Dask readers take such directories.

The data is cached under ``--data-root`` (default ``$FIDELITE_BENCH_DATA`` or
``/tmp/fidelite-bench-data``) by size and seed: generating 5,000,000 customers takes
tens of minutes on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

CHUNK = 1_000_000
TABLES = ("transactions", "events", "customers")
DEFAULT_ROOT = Path(os.environ.get("FIDELITE_BENCH_DATA", "/tmp/fidelite-bench-data"))


def demo_tables(n_customers: int, *, seed: int = 7, root: Path = DEFAULT_ROOT) -> dict[str, Path]:
    """Paths of the demo tables (Parquet directories), generating them when missing.

    Returns
    -------
    dict of str to Path
        ``transactions``, ``events``, ``customers``: directories of Parquet files.
    """
    out = Path(root) / f"demo-{n_customers}-seed-{seed}"
    paths = {name: out / name for name in TABLES}
    if (out / "DONE").exists():
        return paths
    chunks = list(range(0, n_customers, CHUNK))
    for k, start in enumerate(chunks):
        size = min(CHUNK, n_customers - start)
        target = out / "transactions" / f"part-{k:03d}.parquet"
        if target.exists():
            continue
        began = time.perf_counter()
        prefix = f"k{k}-" if len(chunks) > 1 else ""
        subprocess.run(
            [sys.executable, __file__, str(out), str(k), str(size), str(seed * 1000 + k), prefix],
            check=True,
        )
        print(
            f"demo chunk {k + 1}/{len(chunks)}: {size:,} customers in "
            f"{time.perf_counter() - began:.0f} s",
            flush=True,
        )
    (out / "DONE").touch()
    return paths


def _write_chunk(out: Path, k: int, size: int, seed: int, prefix: str) -> None:
    """Generate one chunk and write its tables (run in a child process)."""
    from fidelite.features.demo import generate_demo_data

    data = generate_demo_data(size, seed=seed, campaigns=False)
    for name in ("events", "customers", "transactions"):
        frame = getattr(data, name)
        if prefix:
            frame = frame.assign(
                **{
                    column: _prefixed(frame[column], prefix)
                    for column in ("customer_id", "order_id")
                    if column in frame.columns
                }
            )
        (out / name).mkdir(parents=True, exist_ok=True)
        # Tables first, the transactions file last: its presence marks the chunk done.
        path = out / name / f"part-{k:03d}.parquet"
        if name == "transactions":
            path = out / name / f".part-{k:03d}.tmp"
        frame.to_parquet(path, index=False, row_group_size=1_000_000)
        if name == "transactions":
            path.rename(out / name / f"part-{k:03d}.parquet")


def _prefixed(values, prefix: str):
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.rename_categories(prefix + values.cat.categories.astype(str))
    return prefix + values.astype(str)


if __name__ == "__main__":
    _write_chunk(
        Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    )
