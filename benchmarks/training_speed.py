"""Seconds per stage and peak memory of ``fidelite train`` on demo data.

Stages: demo-data generation, features (every backtest window plus the as-of day,
including the per-window BG/NBD + Gamma-Gamma fits), model fitting (validation
fit, refit, calibration) and MLflow logging/registration. MLflow writes to a
throw-away SQLite store in a temporary directory. Peak memory is the process's
max RSS, so run one size per process.

Usage::

    python benchmarks/training_speed.py --customers 100000
    python benchmarks/training_speed.py --large          # 1,000,000 customers
"""

from __future__ import annotations

import os

# A launcher: sleeping OpenMP waiters before anything loads LightGBM (see fidelite.cli).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import markdown_table, peak_rss_mib, print_machine, print_table

from fidelite.features.demo import generate_demo_data
from fidelite.features.inputs import load_inputs
from fidelite.training.config import TrainConfig
from fidelite.training.train import train

LARGE_CUSTOMERS = 1_000_000
COLUMNS = ("stage", "seconds", "share_pct")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="demo customers")
    parser.add_argument(
        "--large",
        action="store_true",
        help=f"use {LARGE_CUSTOMERS:,} customers (needs several GiB of RAM)",
    )
    parser.add_argument("--as-of", default="2025-09-30", help="training day D")
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--windows", type=int, default=4, help="backtest windows")
    parser.add_argument("--n-jobs", type=int, default=2, help="LightGBM threads")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n_customers = LARGE_CUSTOMERS if args.large else args.customers
    print_machine()

    start = time.perf_counter()
    demo = generate_demo_data(n_customers, seed=args.seed)
    demo_seconds = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            horizon_days=args.horizon_days,
            n_windows=args.windows,
            tracking_uri=f"sqlite:///{Path(tmp) / 'mlflow.db'}",
            experiment="training-speed",
            n_jobs=args.n_jobs,
        )
        start = time.perf_counter()
        inputs = load_inputs(demo.transactions, demo.events, demo.customers, as_of=args.as_of)
        result = train(inputs, config)
        train_seconds = time.perf_counter() - start

    stages = {"demo data": demo_seconds, **result.timings}
    # Loading/validating inputs, creating the MLflow store and fingerprinting the
    # data happen outside the three timed stages.
    stages["load + setup"] = train_seconds - sum(result.timings.values())
    total = sum(stages.values())
    rows = [
        {"stage": name, "seconds": seconds, "share_pct": 100 * seconds / total}
        for name, seconds in stages.items()
    ]
    rows.append({"stage": "total", "seconds": total, "share_pct": 100.0})
    n_rows = int(result.metrics.get("n_train_rows", 0) + result.metrics.get("n_validation_rows", 0))
    title = (
        f"fidelite train: {n_customers:,} customers, {len(demo.transactions):,} transactions, "
        f"{len(demo.events):,} events, {len(result.cutoffs)} windows ({n_rows:,} training rows), "
        f"n_jobs={args.n_jobs}; peak RSS {peak_rss_mib():,.0f} MiB"
    )
    # LightGBM time depends heavily on how busy the cores are: report the load too.
    load_1, load_5, _ = os.getloadavg()
    title += f"; load average {load_1:.1f} (1 min) / {load_5:.1f} (5 min) at the end"
    print_table(rows, COLUMNS, title=title, precision=1)
    print(markdown_table(rows, COLUMNS, precision=1))
    print(
        f"validation: churn ROC-AUC {result.metrics.get('churn_roc_auc', float('nan')):.3f} "
        f"(BG/NBD {result.metrics.get('baseline_churn_roc_auc', float('nan')):.3f}), "
        f"CLV Gini {result.metrics.get('clv_normalized_gini', float('nan')):.3f} "
        f"(baseline {result.metrics.get('baseline_clv_normalized_gini', float('nan')):.3f}), "
        f"CLV total ratio {result.metrics.get('clv_total_ratio', float('nan')):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
