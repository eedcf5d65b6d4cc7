"""Loading + features: fidelite vs ``lifetimes``' RFM summary, integer and string ids.

Both tools start from the same Parquet file of synthetic transactions (1M rows by
default, 5M with ``--large``) and the same ``as_of``, once with string ids
(``"c123"``/``"o456"``) and once with integer ids. What is timed, per tool:

* **fidelite**: ``load_inputs(path)`` (column-selective read, validation and
  normalisation) and ``build_features`` (the full table: RFM plus windows, rhythm,
  velocity, segments...);
* **lifetimes**: ``pd.read_parquet`` of the three columns it needs, the positive-amount
  filter (lifetimes has no refunds) and ``summary_data_from_transaction_data``, which
  computes only frequency/recency/T/monetary_value.

So the comparison is deliberately unfavourable to fidelite: more checks and more work
per customer. Times come from one fresh process per id type that runs both tools
alternately ``--repeats`` times (same process, same cache state; the median is
reported, wall and CPU seconds), and peak RSS from one more fresh process per tool (a
high-water mark can only be attributed to a process that ran one workload).

Usage::

    python benchmarks/features_vs_lifetimes.py            # 1M transactions
    python benchmarks/features_vs_lifetimes.py --large    # 5M transactions
    python benchmarks/features_vs_lifetimes.py --rows 200000 --ids integer
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    Stopwatch,
    markdown_table,
    peak_rss_mib,
    print_machine,
    print_table,
    run_json_subprocess,
)

AS_OF = "2025-12-31"
HISTORY_START = "2024-01-01"
ROWS_DEFAULT = 1_000_000
ROWS_LARGE = 5_000_000
MEAN_ORDERS_PER_CUSTOMER = 10
TOOLS = ("fidelite", "lifetimes")
ID_KINDS = ("integer", "string")


def synthetic_transactions(n_rows: int, *, seed: int = 0, ids: str = "string") -> pd.DataFrame:
    """Transactions in the fidelite data contract, vectorised.

    Customers get a gamma-distributed purchase propensity so order counts are skewed
    like real retail (many one-timers, a long tail of heavy buyers); 3% of rows are
    refunds. About 5% of rows fall after ``AS_OF`` so that the point-in-time cut-off is
    exercised by both tools.

    Parameters
    ----------
    ids : {"string", "integer"}
        ``"c123"``/``"o456"`` text ids, or int64 ids.

    Returns
    -------
    DataFrame, shape (n_rows, 6)
        customer_id, order_id (str or int64), timestamp (datetime64[ns]), amount
        (float64, currency units), channel (str), items (float64).
    """
    rng = np.random.default_rng(seed)
    n_customers = max(1, n_rows // MEAN_ORDERS_PER_CUSTOMER)
    propensity = rng.gamma(shape=0.6, scale=1.0, size=n_customers)
    customer_idx = rng.choice(n_customers, size=n_rows, p=propensity / propensity.sum())
    start = pd.Timestamp(HISTORY_START).value
    span = (pd.Timestamp(AS_OF) + pd.Timedelta(days=40)).value - start
    timestamps = np.sort(start + rng.integers(0, span, size=n_rows, dtype=np.int64))
    amount = np.round(rng.lognormal(mean=3.5, sigma=0.8, size=n_rows), 2)
    amount[rng.random(n_rows) < 0.03] *= -1
    customer_id = pd.Series(customer_idx.astype(np.int64))
    order_id = pd.Series(np.arange(n_rows, dtype=np.int64))
    if ids == "string":
        customer_id = customer_id.astype(str).radd("c")
        order_id = order_id.astype(str).radd("o")
    return pd.DataFrame(
        {
            "customer_id": customer_id,
            "order_id": order_id,
            "timestamp": pd.to_datetime(timestamps).astype("datetime64[ns]"),
            "amount": amount,
            "channel": rng.choice(np.array(["web", "app", "store"]), size=n_rows),
            "items": rng.integers(1, 6, size=n_rows).astype(np.float64),
        }
    )


def _run_fidelite(path: Path) -> int:
    from fidelite.features import build_features
    from fidelite.features.inputs import load_inputs

    inputs = load_inputs(path, as_of=AS_OF)
    return len(build_features(inputs))


def _run_lifetimes(path: Path) -> int:
    from lifetimes.utils import summary_data_from_transaction_data

    transactions = pd.read_parquet(path, columns=["customer_id", "timestamp", "amount"])
    # lifetimes has no refund notion and would count a refund day as a purchase day;
    # the positive-amount rows are the closest like-for-like input.
    purchases = transactions[transactions["amount"] > 0]
    summary = summary_data_from_transaction_data(
        purchases,
        customer_id_col="customer_id",
        datetime_col="timestamp",
        monetary_value_col="amount",
        observation_period_end=AS_OF,
        freq="D",
    )
    return len(summary)


RUNNERS = {"fidelite": _run_fidelite, "lifetimes": _run_lifetimes}


def worker(tools: list[str], data_path: Path, repeats: int) -> dict:
    """Run ``tools`` alternately ``repeats`` times in this process; median seconds each."""
    import lifetimes.utils  # noqa: F401  (imports are not what is timed)

    import fidelite.features.build
    import fidelite.features.inputs  # noqa: F401

    seconds: dict[str, list[float]] = {tool: [] for tool in tools}
    cpu: dict[str, list[float]] = {tool: [] for tool in tools}
    customers: dict[str, int] = {}
    for _ in range(repeats):
        for tool in tools:
            stopwatch = Stopwatch()
            # CPU seconds of every thread of this process: on a shared machine (CPU
            # shared per session) they move less with the load than wall seconds.
            started = time.process_time()
            with stopwatch.running():
                customers[tool] = RUNNERS[tool](data_path)
            cpu[tool].append(time.process_time() - started)
            seconds[tool].append(stopwatch.seconds)
    return {
        "seconds": {tool: statistics.median(values) for tool, values in seconds.items()},
        "cpu_seconds": {tool: statistics.median(values) for tool, values in cpu.items()},
        "all_seconds": seconds,
        "customers": customers,
        "peak_rss_mib": peak_rss_mib(),
    }


def benchmark(n_rows: int, *, seed: int, repeats: int, id_kinds: tuple[str, ...]) -> list[dict]:
    """Write the data per id kind, time both tools in one process, peak RSS in their own."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="fidelite-bench-") as tmp:
        for ids in id_kinds:
            path = Path(tmp) / f"transactions-{ids}.parquet"
            synthetic_transactions(n_rows, seed=seed, ids=ids).to_parquet(path, index=False)
            base = [__file__, "--data", str(path)]
            timed = run_json_subprocess([*base, "--repeats", str(repeats), "--worker", *TOOLS])
            peaks = {
                tool: run_json_subprocess([*base, "--repeats", "1", "--worker", tool])[
                    "peak_rss_mib"
                ]
                for tool in TOOLS
            }
            baseline = timed["seconds"]["lifetimes"]
            cpu_baseline = timed["cpu_seconds"]["lifetimes"]
            for tool in TOOLS:
                rows.append(
                    {
                        "tool": "fidelite load_inputs + build_features (all features)"
                        if tool == "fidelite"
                        else "lifetimes read + summary_data_from_transaction_data (RFM only)",
                        "ids": ids,
                        "transactions": f"{n_rows:,}",
                        "customers": f"{timed['customers'][tool]:,}",
                        "seconds": timed["seconds"][tool],
                        "CPU seconds": timed["cpu_seconds"][tool],
                        "peak RSS (MiB)": peaks[tool],
                        "time vs lifetimes": timed["seconds"][tool] / baseline,
                        "CPU vs lifetimes": timed["cpu_seconds"][tool] / cpu_baseline,
                    }
                )
    return rows


COLUMNS = (
    "tool",
    "ids",
    "transactions",
    "customers",
    "seconds",
    "CPU seconds",
    "peak RSS (MiB)",
    "time vs lifetimes",
    "CPU vs lifetimes",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help=f"{ROWS_LARGE:,} transactions")
    parser.add_argument("--rows", type=int, default=None, help="number of transactions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool (median)")
    parser.add_argument("--ids", choices=ID_KINDS, nargs="+", default=list(ID_KINDS))
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--worker", choices=TOOLS, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.repeats)))
        return

    n_rows = args.rows or (ROWS_LARGE if args.large else ROWS_DEFAULT)
    print_machine()
    rows = benchmark(n_rows, seed=args.seed, repeats=args.repeats, id_kinds=tuple(args.ids))
    print_table(rows, COLUMNS, title=f"Loading + features, as_of {AS_OF}", precision=2)
    if args.markdown:
        print(markdown_table(rows, COLUMNS, precision=2))
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
