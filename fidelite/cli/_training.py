"""Helpers of ``fidelite train``: where the tables come from, progress, the summary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from fidelite.cli._app import Engine, console, location
from fidelite.features.inputs import Inputs, load_inputs

if TYPE_CHECKING:
    from fidelite.training.sources import DaskTables
    from fidelite.training.train import TrainResult

SHOWN_METRICS = (
    "churn_roc_auc",
    "baseline_churn_roc_auc",
    "clv_normalized_gini",
    "baseline_clv_normalized_gini",
    "clv_total_ratio",
)


@contextmanager
def progress_bar() -> Iterator[object]:
    """A rich progress bar on stderr fed by the pipeline's ``on_step`` callback."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from fidelite.training.progress import Step
    from fidelite.training.resources import peak_rss_mib

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("training", total=None)

        def on_step(step: Step) -> None:
            peak = peak_rss_mib()
            progress.console.print(
                f"{step.message} ({step.seconds:.1f} s; peak memory {peak:,.0f} MiB)",
                highlight=False,
            )
            progress.update(task, description=step.message, completed=step.done, total=step.total)

        yield on_step


@dataclass(frozen=True)
class TrainingSources:
    """The table options of ``fidelite train``, as given on the command line."""

    transactions: Path
    events: Path | None
    customers: Path | None
    consent_history: Path | None
    date_format: str | None


def training_inputs(sources: TrainingSources, day: date, engine: Engine) -> Inputs | DaskTables:
    """Loaded, validated tables for pandas; for Dask, where the workers read them."""
    from fidelite.training.sources import DaskTables

    paths = (location(sources.transactions), location(sources.events))
    customers = location(sources.customers)
    consent = location(sources.consent_history)
    if engine is Engine.dask:
        # The workers read the tables themselves: nothing is loaded here.
        return DaskTables(paths[0], day, paths[1], customers, sources.date_format, consent)
    with console.status("Loading and validating the input tables..."):
        started = time.perf_counter()
        inputs = load_inputs(
            *paths,
            customers,
            as_of=day,
            consent_history=consent,
            cut=True,
            date_format=sources.date_format,
        )
    _report_loading(inputs, time.perf_counter() - started)
    return inputs


def print_training_result(result: TrainResult, model_name: str) -> None:
    """Headline metrics, memory, the uplift policy, the run and the gate's decision."""
    for name in SHOWN_METRICS:
        if name in result.metrics:
            console.print(f"{name}: {result.metrics[name]:.4f}", highlight=False)
    if "peak_rss_mib" in result.metrics:
        console.print(
            f"peak memory {result.metrics['peak_rss_mib']:,.0f} MiB, "
            f"{result.metrics['time_total_s']:.0f} s in all",
            highlight=False,
        )
    if result.model.uplift is not None:
        choice = result.model.uplift.choose_policy(0.2)
        console.print(
            f"uplift: {result.model.uplift.learner_name}; at a 20% budget the {choice.policy} "
            f"policy wins (evidence logged in uplift/evidence.csv)",
            highlight=False,
        )
    registered = (
        f"; registered {model_name} version {result.model_version} as challenger"
        if result.model_version
        else ""
    )
    console.print(
        f"[green]run[/] {result.run_id}; model {result.model_uri}{registered}", highlight=False
    )
    if result.gate is not None:
        colour = "green" if result.gate.promoted else "yellow"
        console.print(f"[{colour}]gate:[/] {result.gate.reason}", highlight=False)


def _report_loading(inputs: Inputs, seconds: float) -> None:
    tables = (inputs.transactions, inputs.events, inputs.customers)
    rows = sum(len(t) for t in tables if t is not None)
    console.print(
        f"loaded {rows:,} rows in {seconds:.1f} s ({rows / max(seconds, 1e-9):,.0f} rows/s)",
        highlight=False,
    )
