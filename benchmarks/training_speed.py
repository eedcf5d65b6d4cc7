"""``fidelite train`` and ``fidelite score`` as users run them: seconds and peak memory.

Demo data (``_demo.demo_tables``: generated once per size and cached) is written as
Parquet; then the two commands run in their own processes exactly as on the command
line, with MLflow writing to a throw-away SQLite store:

* ``fidelite train --as-of 2025-09-30 --horizon-days 90 --windows 4`` (no promotion);
* ``fidelite score`` with the trained model at the same as-of day (``--no-report``: the
  HTML report is measured by ``benchmarks/report_speed.py``).

Peak memory is the largest summed RSS of the command and all its child processes
(sampled every 0.25 s), so a Dask LocalCluster's workers count too. The training run's
per-step seconds and its own peak RSS come from the metrics it logs to MLflow
(``time_<step>_s``, ``peak_rss_mib``, on Dask ``peak_rss_workers_mib``), with its
validation metrics and the rows its trees were fitted on (``n_train_rows`` on the client,
``churn_tree_rows`` / ``spend_tree_rows``: every customer's on Dask over the client budget).

Usage::

    python benchmarks/training_speed.py --customers 100000
    python benchmarks/training_speed.py --large                  # 1,000,000 customers
    python benchmarks/training_speed.py --large --engine dask --workers 2
    python benchmarks/training_speed.py --large --replicas 5 --engine dask --no-score \
        --worker-memory 5GiB                                     # 5,000,000 customers
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import markdown_table, print_machine, print_table, run_measured
from _demo import DEFAULT_ROOT, demo_tables

LARGE_CUSTOMERS = 1_000_000
AS_OF = "2025-09-30"
QUALITY = (
    "churn_roc_auc",
    "baseline_churn_roc_auc",
    "churn_ece",
    "clv_normalized_gini",
    "baseline_clv_normalized_gini",
    "clv_total_ratio",
)
#: What the trees were fitted on, and the training process's (and workers') peak memory.
FIT = (
    "n_train_rows",
    "churn_tree_rows",
    "spend_tree_rows",
    "n_validation_rows",
    "churn_best_iteration",
    "spend_best_iteration",
    "peak_rss_mib",
    "peak_rss_workers_mib",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="demo customers")
    parser.add_argument("--large", action="store_true", help=f"{LARGE_CUSTOMERS:,} customers")
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--windows", type=int, default=4, help="backtest windows")
    parser.add_argument("--n-jobs", type=int, default=2, help="LightGBM threads")
    parser.add_argument("--seed", type=int, default=7, help="demo data seed")
    parser.add_argument("--engine", choices=("pandas", "dask"), default="pandas")
    parser.add_argument("--workers", type=int, default=2, help="Dask LocalCluster workers")
    parser.add_argument("--worker-memory", default=None, help="Dask worker memory limit")
    parser.add_argument("--no-score", action="store_true", help="train only")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument(
        "--replicas", type=int, default=1, help="copies of the demo with distinct ids (5M: 5)"
    )
    return parser.parse_args(argv)


def replicated_tables(
    n_customers: int, copies: int, *, seed: int = 7, root: Path | None = None
) -> dict[str, Path]:
    """The cached ``n_customers`` demo written ``copies`` times with id prefixes ``k0-``...

    Generating 5,000,000 independent demo customers takes 1-2 hours on 2 cores; five
    copies of one 1M world (distinct customer and order ids, the same histories) take
    minutes: Arrow row groups with prefixed ids (a dictionary column's dictionary only).
    Cached next to the demo data (``replica5x-demo-1000000-seed-7``); each file is
    written under a temporary name first, ``DONE`` marks a complete set.
    """
    import pyarrow.parquet as pq

    source = demo_tables(n_customers, seed=seed, root=root or DEFAULT_ROOT)
    out = Path(root or DEFAULT_ROOT) / f"replica{copies}x-demo-{n_customers}-seed-{seed}"
    paths = {name: out / name for name in ("transactions", "events", "customers")}
    if (out / "DONE").exists():
        return paths
    for name, folder in paths.items():
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(copies):
            for i, file in enumerate(sorted(source[name].glob("*.parquet"))):
                target = folder / f"part-{k:03d}-{i:03d}.parquet"
                if target.exists():
                    continue
                reader = pq.ParquetFile(file)
                partial = target.with_suffix(".tmp")
                with pq.ParquetWriter(partial, reader.schema_arrow) as writer:
                    for group in range(reader.num_row_groups):
                        table = reader.read_row_group(group)
                        writer.write_table(_with_prefix(table, f"k{k}-"))
                partial.rename(target)
        print(f"{copies} copies of {name} written", flush=True)
    (out / "DONE").touch()
    return paths


def _with_prefix(table, prefix: str):
    """``table`` with ``prefix`` before every customer and order id (Arrow, no pandas)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for column in ("customer_id", "order_id"):
        if column not in table.column_names:
            continue
        values = table[column].combine_chunks()
        text = values.dictionary if pa.types.is_dictionary(values.type) else values
        joined = pc.binary_join_element_wise(
            pa.scalar(prefix, text.type), text, pa.scalar("", text.type)
        )
        if pa.types.is_dictionary(values.type):
            values = pa.DictionaryArray.from_arrays(values.indices, joined)
        else:
            values = joined
        table = table.set_column(table.column_names.index(column), column, values)
    return table


def _tables(paths: dict[str, Path]) -> list[str]:
    return [f"--{name}={paths[name]}" for name in ("transactions", "events", "customers")]


def _fidelite(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("fidelite")), *args]


def _run_metrics(tracking_uri: str) -> dict[str, float]:
    from fidelite.training.tracking import mlflow_client

    client = mlflow_client(tracking_uri)
    experiment = client.get_experiment_by_name("training-speed")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    return dict(runs[0].data.metrics)


def _engine_args(args: argparse.Namespace) -> list[str]:
    if args.engine == "pandas":
        return []
    extra = ["--engine", "dask", "--workers", str(args.workers)]
    return extra + (["--worker-memory", args.worker_memory] if args.worker_memory else [])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n_customers = LARGE_CUSTOMERS if args.large else args.customers
    print_machine()
    if args.replicas > 1:
        paths = replicated_tables(n_customers, args.replicas, seed=args.seed, root=args.data_root)
        n_customers *= args.replicas
    else:
        paths = demo_tables(n_customers, seed=args.seed, root=args.data_root)
    env = {"OMP_WAIT_POLICY": "PASSIVE"}
    rows, quality = [], []
    for model_seed in [None]:
        with tempfile.TemporaryDirectory() as tmp:
            uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
            train = run_measured(
                _fidelite(
                    "train",
                    *_tables(paths),
                    f"--as-of={AS_OF}",
                    f"--horizon-days={args.horizon_days}",
                    f"--windows={args.windows}",
                    f"--n-jobs={args.n_jobs}",
                    "--experiment=training-speed",
                    f"--tracking-uri={uri}",
                    *_engine_args(args),
                ),
                env=env,
            )
            if train.returncode:
                print(train.stderr[-4000:])
                return 1
            metrics = _run_metrics(uri)
            label = f"train (seed {model_seed})" if model_seed is not None else "train"
            rows.append(_row(label, train, n_customers, args))
            quality.append({"run": label, **{k: metrics.get(k) for k in QUALITY}})
            fit = [{"run": label, **{k: metrics.get(k) for k in FIT}}]
            print_table(fit, ("run", *FIT), title=f"{label}: rows fitted, peak MiB", precision=0)
            print(markdown_table(fit, ("run", *FIT), precision=0))
            steps = {k[5:-2]: v for k, v in metrics.items() if k.startswith("time_")}
            if steps:
                step_rows = [{"step": k, "seconds": v} for k, v in steps.items()]
                print_table(step_rows, ("step", "seconds"), title=f"{label}: steps", precision=1)
            if not args.no_score and model_seed is None:
                out = Path(tmp) / "scores.parquet"
                score = run_measured(
                    _fidelite(
                        "score",
                        *_tables(paths),
                        f"--as-of={AS_OF}",
                        f"--out={out}",
                        f"--tracking-uri={uri}",
                        "--model-uri=models:/fidelite@challenger",
                        "--no-report",
                        *_engine_args(args),
                    ),
                    env=env,
                )
                if score.returncode:  # still report the training run
                    print(f"fidelite score failed:\n{score.stderr[-2000:]}")
                else:
                    rows.append(_row("score", score, n_customers, args))
    columns = ("command", "customers", "engine", "seconds", "peak RSS (MiB)", "load average")
    title = f"fidelite train / score, as-of {AS_OF}, {args.windows} windows, H={args.horizon_days}"
    print_table(rows, columns, title=title, precision=1)
    print(markdown_table(rows, columns, precision=1))
    print_table(quality, ("run", *QUALITY), title="validation metrics", precision=3)
    print(markdown_table(quality, ("run", *QUALITY), precision=3))
    return 0


def _row(label: str, measured, n_customers: int, args: argparse.Namespace) -> dict:
    load_1, load_5, _ = os.getloadavg()
    engine = args.engine if args.engine == "pandas" else f"dask x{args.workers}"
    return {
        "command": label,
        "customers": f"{n_customers:,}",
        "engine": engine,
        "seconds": measured.seconds,
        "peak RSS (MiB)": measured.peak_tree_mib,
        "load average": f"{load_1:.1f} / {load_5:.1f}",
    }


if __name__ == "__main__":
    raise SystemExit(main())
