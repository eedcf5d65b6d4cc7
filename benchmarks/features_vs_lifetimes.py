"""Feature-building speed: fidelite ``build_features`` vs ``lifetimes`` RFM summary.

Both tools get the same synthetic transactions (1M rows by default, 5M with
``--large``) and the same ``as_of``. fidelite computes its full feature table (RFM plus
windows, rhythm, velocity, segments...); lifetimes computes only
frequency/recency/T/monetary_value with ``summary_data_from_transaction_data``. So the
comparison is deliberately unfavourable to fidelite: more work per customer.

Each tool runs in its own subprocess so that peak RSS (a process high-water mark) is
attributable to that tool alone; the parent only generates the data file.

Usage::

    python benchmarks/features_vs_lifetimes.py            # 1M transactions
    python benchmarks/features_vs_lifetimes.py --large    # 5M transactions
    python benchmarks/features_vs_lifetimes.py --rows 200000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
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


def synthetic_transactions(n_rows: int, *, seed: int = 0) -> pd.DataFrame:
    """Transactions in the fidelite data contract, vectorised.

    Customers get a gamma-distributed purchase propensity so order counts are skewed
    like real retail (many one-timers, a long tail of heavy buyers); 3% of rows are
    refunds. About 5% of rows fall after ``AS_OF`` so that the point-in-time cut-off is
    exercised by both tools.

    Returns
    -------
    DataFrame, shape (n_rows, 6)
        customer_id (str), order_id (str), timestamp (datetime64[ns]), amount (float64,
        currency units), channel (str), items (float64).
    """
    rng = np.random.default_rng(seed)
    n_customers = max(1, n_rows // MEAN_ORDERS_PER_CUSTOMER)
    propensity = rng.gamma(shape=0.6, scale=1.0, size=n_customers)
    customer_idx = rng.choice(n_customers, size=n_rows, p=propensity / propensity.sum())
    start = pd.Timestamp(HISTORY_START).value
    span = (pd.Timestamp(AS_OF) + pd.Timedelta(days=40)).value - start
    timestamps = start + rng.integers(0, span, size=n_rows, dtype=np.int64)
    amount = np.round(rng.lognormal(mean=3.5, sigma=0.8, size=n_rows), 2)
    amount[rng.random(n_rows) < 0.03] *= -1
    return pd.DataFrame(
        {
            "customer_id": pd.Series(customer_idx).astype(str).radd("c"),
            "order_id": pd.Series(np.arange(n_rows)).astype(str).radd("o"),
            "timestamp": pd.to_datetime(timestamps).astype("datetime64[ns]"),
            "amount": amount,
            "channel": rng.choice(np.array(["web", "app", "store"]), size=n_rows),
            "items": rng.integers(1, 6, size=n_rows).astype(np.float64),
        }
    )


def _run_fidelite(transactions: pd.DataFrame) -> int:
    from fidelite.features import build_features

    return len(build_features(transactions, as_of=AS_OF))


def _run_lifetimes(transactions: pd.DataFrame) -> int:
    from lifetimes.utils import summary_data_from_transaction_data

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


def worker(tool: str, data_path: Path) -> dict[str, float | int | str]:
    """Time one tool on the Parquet file; reading the file is not timed."""
    transactions = pd.read_parquet(data_path)
    rss_after_load = peak_rss_mib()
    run = {"fidelite": _run_fidelite, "lifetimes": _run_lifetimes}[tool]
    stopwatch = Stopwatch()
    with stopwatch.running():
        n_customers = run(transactions)
    return {
        "tool": tool,
        "seconds": stopwatch.seconds,
        "peak_rss_mib": peak_rss_mib(),
        "input_rss_mib": rss_after_load,
        "customers": n_customers,
    }


def benchmark(n_rows: int, *, seed: int = 0) -> list[dict]:
    """Generate ``n_rows`` transactions once and measure each tool in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="fidelite-bench-") as tmp:
        data_path = Path(tmp) / "transactions.parquet"
        synthetic_transactions(n_rows, seed=seed).to_parquet(data_path, index=False)
        results = [
            run_json_subprocess([__file__, "--worker", tool, "--data", str(data_path)])
            for tool in TOOLS
        ]
    baseline = next(r for r in results if r["tool"] == "lifetimes")
    rows = []
    for result in results:
        rows.append(
            {
                "tool": "fidelite build_features (all features)"
                if result["tool"] == "fidelite"
                else "lifetimes summary_data_from_transaction_data (RFM only)",
                "transactions": f"{n_rows:,}",
                "customers": f"{result['customers']:,}",
                "seconds": result["seconds"],
                "peak RSS (MiB)": result["peak_rss_mib"],
                "RSS after load (MiB)": result["input_rss_mib"],
                "time vs lifetimes": result["seconds"] / baseline["seconds"],
            }
        )
    return rows


COLUMNS = (
    "tool",
    "transactions",
    "customers",
    "seconds",
    "peak RSS (MiB)",
    "RSS after load (MiB)",
    "time vs lifetimes",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help=f"{ROWS_LARGE:,} transactions")
    parser.add_argument("--rows", type=int, default=None, help="number of transactions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.data)))
        return

    n_rows = args.rows or (ROWS_LARGE if args.large else ROWS_DEFAULT)
    print_machine()
    rows = benchmark(n_rows, seed=args.seed)
    print_table(rows, COLUMNS, title=f"Feature building, as_of {AS_OF}", precision=2)
    if args.markdown:
        print(markdown_table(rows, COLUMNS, precision=2))


if __name__ == "__main__":
    main()
