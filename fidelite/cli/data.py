"""``fidelite demo-data`` and ``fidelite features``: inputs and point-in-time features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fidelite.cli._app import (
    ConsentHistoryOption,
    DateFormatOption,
    Engine,
    EngineOption,
    SchedulerOption,
    WorkerMemoryOption,
    WorkersOption,
    app,
    console,
    dask_session,
    errors_exit,
    location,
)
from fidelite.errors import DataContractError
from fidelite.features.days import parse_day
from fidelite.features.inputs import load_inputs


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

    with errors_exit():
        # Validate dates up front so a typo fails cleanly instead of mid-generation.
        first, last = parse_day(start, name="--start"), parse_day(end, name="--end")
        if last <= first:
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
    consent_history: ConsentHistoryOption = None,
    date_format: DateFormatOption = None,
    engine: EngineOption = Engine.pandas,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Build point-in-time customer features as of a day and write them to Parquet."""
    if engine is Engine.dask:
        from fidelite.features.distributed import build_features_dask, compute_features

        with errors_exit(), dask_session(engine, scheduler, workers, worker_memory):
            day = parse_day(as_of, name="--as-of")
            with console.status(f"Building features as of {day.date()} on Dask..."):
                table = compute_features(
                    build_features_dask(
                        location(transactions),
                        location(events),
                        location(customers),
                        as_of=day,
                        date_format=date_format,
                        consent_history=location(consent_history),
                    )
                )
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out)
        console.print(
            f"[green]wrote[/] {out} ({len(table):,} customers x {table.shape[1]} features)",
            highlight=False,
        )
        return
    with errors_exit():
        day = parse_day(as_of, name="--as-of")
        with console.status("Loading input tables..."):
            inputs = load_inputs(
                transactions,
                events,
                customers,
                as_of=day,
                consent_history=consent_history,
                date_format=date_format,
            )
        # Imported here so that `fidelite --help` stays fast.
        from fidelite.features import build_features

        with console.status(f"Building features as of {day.date()}..."):
            table = build_features(inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out)
    console.print(
        f"[green]wrote[/] {out} ({len(table):,} customers x {table.shape[1]} features)",
        highlight=False,
    )
