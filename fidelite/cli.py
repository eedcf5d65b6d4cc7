"""The ``fidelite`` command line: thin typer commands over the library functions.

Data problems (:class:`features.data.DataContractError`) are printed as one red line
and exit with status 2; any other failure keeps its traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.logging import RichHandler

from fidelite.features.data import (
    DataContractError,
    as_of_bounds,
    load_customers,
    load_events,
    load_transactions,
)

app = typer.Typer(
    name="fidelite",
    help="Churn and customer-lifetime-value prediction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# soft_wrap: never break file paths or error messages across lines.
console = Console(stderr=True, soft_wrap=True)

DATA_ERROR_EXIT_CODE = 2


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logging.")] = False,
) -> None:
    """Churn and customer-lifetime-value prediction."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,
    )


@contextmanager
def data_errors_exit() -> Iterator[None]:
    """Turn a :class:`DataContractError` into a one-line red message and exit code 2."""
    try:
        yield
    except DataContractError as exc:
        console.print(f"[bold red]data error:[/] {exc}", highlight=False)
        raise typer.Exit(code=DATA_ERROR_EXIT_CODE) from None


class Engine(StrEnum):
    """Where features, training and scoring run."""

    pandas = "pandas"
    dask = "dask"


EngineOption = Annotated[
    Engine, typer.Option(help="pandas: in this process; dask: on a Dask cluster (see --scheduler).")
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(help="Dask scheduler address (tcp://host:8786); default: start a local cluster."),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(min=1, help="Worker processes of the local Dask cluster (default: cores / 2)."),
]


@contextmanager
def dask_session(engine: Engine, scheduler: str | None, workers: int | None) -> Iterator[None]:
    """Keep a Dask client open for the command when ``engine`` is dask."""
    if engine is not Engine.dask:
        yield
        return
    import distributed  # noqa: F401 - creates the loggers quietened below

    from fidelite.features.distributed import dask_client

    # Cluster start-up chatter and p2p shuffle notices would drown the command's output;
    # distributed sets levels per module logger, so each one is lowered.
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("distributed")]:
        logging.getLogger(name).setLevel(
            logging.ERROR if name.startswith("distributed.shuffle") else logging.WARNING
        )
    with dask_client(scheduler, workers) as client:
        console.print(
            f"dask: {len(client.scheduler_info()['workers'])} worker(s) at "
            f"{client.scheduler.address}; dashboard {client.dashboard_link}",
            highlight=False,
        )
        yield


def _location(path: Path | None) -> str | None:
    """A path option as text, repairing URLs (typer's Path turns s3://b/k into s3:/b/k)."""
    if path is None:
        return None
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]+):/(?!/)", r"\1://", str(path))


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="Directory for the Parquet files.")],
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 0,
    start: Annotated[str, typer.Option(help="First day of the simulated period.")] = "2024-01-01",
    end: Annotated[str, typer.Option(help="Last day of the simulated period.")] = "2025-12-31",
) -> None:
    """Generate synthetic transactions, events and customers as Parquet files."""
    from fidelite.features.demo import generate_demo_data, write_demo_data

    with data_errors_exit():
        # Validate dates up front so a typo fails cleanly instead of mid-generation.
        as_of_bounds(start)
        as_of_bounds(end)
        if pd.Timestamp(end) <= pd.Timestamp(start):
            raise DataContractError(f"--end ({end}) must be after --start ({start})")
        with console.status(f"Generating {customers:,} demo customers..."):
            data = generate_demo_data(customers, seed=seed, start=start, end=end)
            paths = write_demo_data(data, out)
    for name, path in paths.items():
        rows = len(getattr(data, name))
        console.print(f"[green]wrote[/] {path} ({rows:,} rows)", highlight=False)


@app.command("features")
def features(
    transactions: Annotated[Path, typer.Option(help="Transactions CSV/Parquet.")],
    as_of: Annotated[str, typer.Option("--as-of", help="As-of calendar day (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option(help="Output Parquet file.")],
    events: Annotated[Path | None, typer.Option(help="Events CSV/Parquet.")] = None,
    customers: Annotated[Path | None, typer.Option(help="Customers CSV/Parquet.")] = None,
    engine: EngineOption = Engine.pandas,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
) -> None:
    """Build point-in-time customer features as of a day and write them to Parquet."""
    if engine is Engine.dask:
        from fidelite.features.distributed import build_features_dask, compute_features

        with data_errors_exit(), dask_session(engine, scheduler, workers):
            day, _ = as_of_bounds(as_of)
            with console.status(f"Building features as of {day.date()} on Dask..."):
                table = compute_features(
                    build_features_dask(
                        _location(transactions), _location(events), _location(customers), as_of=day
                    )
                )
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out)
        console.print(
            f"[green]wrote[/] {out} ({len(table):,} customers x {table.shape[1]} features)",
            highlight=False,
        )
        return
    with data_errors_exit():
        day, _ = as_of_bounds(as_of)
        with console.status("Loading input tables..."):
            tx = load_transactions(transactions)
            ev = load_events(events) if events is not None else None
            cu = load_customers(customers) if customers is not None else None
        # Imported here so that `fidelite --help` stays fast.
        from fidelite.features import build_features

        with console.status(f"Building features as of {day.date()}..."):
            table = build_features(tx, ev, cu, as_of=day)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out)
    console.print(
        f"[green]wrote[/] {out} ({len(table):,} customers x {table.shape[1]} features)",
        highlight=False,
    )


@app.command("evaluate")
def evaluate(
    scores: Annotated[Path, typer.Option(help="Scores file written by `fidelite score`.")],
    transactions: Annotated[
        Path,
        typer.Option(help="Transactions CSV/Parquet covering the horizon after the scores' as-of."),
    ],
    plots: Annotated[
        Path | None,
        typer.Option(help="Directory to write ROC, calibration, gain and CLV-decile PNGs to."),
    ] = None,
) -> None:
    """Compare scores with what actually happened after their as-of day."""
    from rich.table import Table

    from fidelite.features.data import read_table
    from fidelite.training.evaluate import evaluate_scores, score_figures

    with data_errors_exit(), console.status("Evaluating scores against observed outcomes..."):
        result = evaluate_scores(read_table(scores), load_transactions(transactions))
    table = Table(
        title=f"Scores as of {result['as_of']} vs the next "
        f"{result['horizon_days']} days ({result['n_evaluated']:,} customers)"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for family in ("churn", "clv"):
        for name, value in result[family].items():
            table.add_row(f"{family}.{name}", f"{value:,.4f}")
    Console().print(table)
    console.print(
        f"{result['n_skipped_status']:,} rows skipped (status not 'ok'); "
        f"{result['n_without_transactions']:,} evaluated customers had no transaction "
        "at all (counted as churned, zero spend)",
        highlight=False,
    )
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        for name, figure in score_figures(result).items():
            figure.savefig(plots / f"{name}.png", dpi=120)
            console.print(f"[green]wrote[/] {plots / f'{name}.png'}", highlight=False)


@app.command("train")
def train(
    transactions: Annotated[Path, typer.Option(help="Transactions CSV/Parquet.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Training day D: only data up to D.")],
    horizon_days: Annotated[
        int, typer.Option("--horizon-days", min=1, help="Prediction horizon H in days.")
    ] = 90,
    events: Annotated[Path | None, typer.Option(help="Events CSV/Parquet.")] = None,
    customers: Annotated[Path | None, typer.Option(help="Customers CSV/Parquet.")] = None,
    windows: Annotated[int, typer.Option(min=1, help="Backtest windows (last = validation).")] = 4,
    step_days: Annotated[
        int | None,
        typer.Option(
            "--step-days",
            min=1,
            help="Days between backtest cutoffs (default: the horizon; smaller = overlapping "
            "windows for short histories).",
        ),
    ] = None,
    min_history_days: Annotated[
        int | None,
        typer.Option(
            "--min-history-days",
            min=0,
            help="Days of data required before each cutoff (default: max(horizon, 90)).",
        ),
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Run the promotion gate after training.")
    ] = False,
    baseline_only: Annotated[
        bool,
        typer.Option("--baseline-only", help="Fit only BG/NBD + Gamma-Gamma (short histories)."),
    ] = False,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "fidelite",
    model_name: Annotated[
        str, typer.Option("--model-name", help="Registered model name.")
    ] = "fidelite",
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or "
            "sqlite:///mlruns/mlflow.db).",
        ),
    ] = None,
    n_jobs: Annotated[
        int, typer.Option("--n-jobs", min=1, help="LightGBM threads (1 on a busy machine).")
    ] = 2,
    engine: EngineOption = Engine.pandas,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
) -> None:
    """Backtest, train and log churn + CLV models to MLflow; register a challenger."""
    from fidelite.training.labels import InsufficientHistoryError
    from fidelite.training.train import TrainConfig
    from fidelite.training.train import train as run_training

    config = TrainConfig(
        as_of=as_of,
        horizon_days=horizon_days,
        n_windows=windows,
        step_days=step_days,
        min_history_days=min_history_days,
        baseline_only=baseline_only,
        promote=promote,
        experiment=experiment,
        model_name=model_name,
        tracking_uri=tracking_uri,
        engine=engine.value,
        n_jobs=n_jobs,
    )
    with data_errors_exit(), dask_session(engine, scheduler, workers):
        try:
            result = run_training(
                _location(transactions), _location(events), _location(customers), config=config
            )
        except InsufficientHistoryError as exc:
            console.print(f"[bold red]insufficient history:[/] {exc}", highlight=False)
            raise typer.Exit(code=1) from None
    for name in (
        "churn_roc_auc",
        "baseline_churn_roc_auc",
        "clv_normalized_gini",
        "baseline_clv_normalized_gini",
        "clv_total_ratio",
    ):
        if name in result.metrics:
            console.print(f"{name}: {result.metrics[name]:.4f}", highlight=False)
    console.print(
        f"[green]run[/] {result.run_id}; model {result.model_uri}; "
        f"registered {model_name} version {result.model_version} as challenger",
        highlight=False,
    )
    if result.gate is not None:
        colour = "green" if result.gate.promoted else "yellow"
        console.print(f"[{colour}]gate:[/] {result.gate.reason}", highlight=False)


@app.command("score")
def score(
    transactions: Annotated[Path, typer.Option(help="Transactions CSV/Parquet.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Scoring day D.")],
    out: Annotated[Path, typer.Option(help="Output scores Parquet (or .csv).")],
    events: Annotated[Path | None, typer.Option(help="Events CSV/Parquet.")] = None,
    customers: Annotated[Path | None, typer.Option(help="Customers CSV/Parquet.")] = None,
    model_uri: Annotated[
        str, typer.Option("--model-uri", help="MLflow model URI.")
    ] = "models:/fidelite@champion",
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")
    ] = None,
    engine: EngineOption = Engine.pandas,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
) -> None:
    """Score every customer known by D with a logged model and write the scores frame."""
    from fidelite.training.score import score as run_scoring

    if engine is Engine.dask:
        from fidelite.training.distributed import score_dask as run_scoring

    sources = (_location(transactions), _location(events), _location(customers))
    with (
        data_errors_exit(),
        dask_session(engine, scheduler, workers),
        console.status(f"Scoring as of {as_of} with {model_uri}..."),
    ):
        scores = run_scoring(*sources, as_of=as_of, model_uri=model_uri, tracking_uri=tracking_uri)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        scores.to_csv(out, index=False)
    else:
        scores.to_parquet(out, index=False)
    ok = int((scores["status"] == "ok").sum())
    console.print(
        f"[green]wrote[/] {out} ({len(scores):,} customers, {ok:,} scored)", highlight=False
    )


@app.command("promote")
def promote(
    model_name: Annotated[
        str, typer.Option("--model-name", help="Registered model name.")
    ] = "fidelite",
    force: Annotated[bool, typer.Option("--force", help="Promote regardless of metrics.")] = False,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")
    ] = None,
) -> None:
    """Move the `champion` alias to the `challenger` if it passes the gate."""
    from fidelite.training.registry import promote as run_gate

    decision = run_gate(model_name, tracking_uri=tracking_uri, force=force)
    colour = "green" if decision.promoted else "yellow"
    console.print(
        f"[{colour}]{'promoted' if decision.promoted else 'not promoted'}:[/] {decision.reason}",
        highlight=False,
    )
    if not decision.promoted:
        raise typer.Exit(code=1)


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="HTTP port.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 for all).")] = "127.0.0.1",
    model_uri: Annotated[
        str, typer.Option("--model-uri", help="Registered model to serve.")
    ] = "models:/fidelite@champion",
    snapshot: Annotated[
        Path | None,
        typer.Option(
            help="Scores Parquet for /customers/lookup and /winback "
            "(default: $FIDELITE_SNAPSHOT or data/scores.parquet)."
        ),
    ] = None,
) -> None:
    """Export the registered model to BentoML and start the prediction service."""
    from fidelite.serving.launch import serve as run_server
    from fidelite.serving.loader import ModelNotFoundError

    try:
        status = run_server(port=port, host=host, model_uri=model_uri, snapshot=snapshot)
    except (ModelNotFoundError, ValueError) as exc:
        console.print(f"[bold red]cannot serve:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from None
    raise typer.Exit(code=status)


@app.command("export-bento")
def export_bento(
    model_uri: Annotated[
        str, typer.Option("--model-uri", help="Registered model to export.")
    ] = "models:/fidelite@champion",
) -> None:
    """Import the registered model into the BentoML store (then run `bentoml build`)."""
    from fidelite.serving.loader import ModelNotFoundError, export_to_bento

    try:
        bento_model = export_to_bento(model_uri)
    except (ModelNotFoundError, ValueError) as exc:
        console.print(f"[bold red]cannot export:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from None
    console.print(
        f"[green]exported[/] {model_uri} as BentoML model {bento_model.tag}; "
        f"package it with: FIDELITE_BENTO_MODEL={bento_model.tag} bentoml build",
        highlight=False,
    )


if __name__ == "__main__":
    app()
