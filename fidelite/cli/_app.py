"""The typer application, its console and what every command shares.

Errors are mapped to output here and nowhere else: a :class:`fidelite.errors.FideliteError`
becomes one red line naming what is wrong and the error's own exit code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from fidelite.errors import FideliteError

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(
    name="fidelite",
    help="Churn and customer-lifetime-value prediction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# soft_wrap: never break file paths or error messages across lines.
console = Console(stderr=True, soft_wrap=True)


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
def errors_exit() -> Iterator[None]:
    """Print a :class:`FideliteError` as one red line and exit with its ``exit_code``."""
    try:
        yield
    except FideliteError as exc:
        console.print(f"[bold red]{exc.label}:[/] {exc}", highlight=False)
        raise typer.Exit(code=exc.exit_code) from None


def print_done(message: str) -> None:
    """A green progress line on stderr."""
    console.print(f"[green]{message}[/]", highlight=False)


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
    typer.Option(min=1, help="Worker processes of the local Dask cluster (default: one per core)."),
]
WorkerMemoryOption = Annotated[
    str | None,
    typer.Option(
        "--worker-memory",
        help="Memory limit of each local Dask worker (e.g. 4GiB; default: the machine's "
        "memory shared between the workers). Above 70% of it workers spill to disk.",
    ),
]
TrackingUriOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db).",
    ),
]
AsOfOption = Annotated[str, typer.Option("--as-of", help="As-of calendar day D (YYYY-MM-DD).")]
TransactionsOption = Annotated[Path, typer.Option(help="Transactions CSV/Parquet.")]
EventsOption = Annotated[Path | None, typer.Option(help="Events CSV/Parquet.")]
CustomersOption = Annotated[Path | None, typer.Option(help="Customers CSV/Parquet.")]
ConsentHistoryOption = Annotated[
    Path | None,
    typer.Option(
        "--consent-history",
        help="Consent changes CSV/Parquet (customer_id, channel, opted_in, changed_at): "
        "consent read as of each day, point-in-time.",
    ),
]
CampaignsOption = Annotated[
    Path | None,
    typer.Option(
        "--campaigns",
        help="Campaigns CSV/Parquet (customer_id, campaign_id, sent_at, group treatment/"
        "control, optional channel, offer_cost, offer), e.g. written by `fidelite winback`.",
    ),
]
DateFormatOption = Annotated[
    str | None,
    typer.Option(
        "--date-format",
        help="strftime layout of text timestamps in the input tables, e.g. '%d/%m/%Y "
        "%H:%M' (ISO 8601 rows are read too). Default: ISO 8601 only; any other text is "
        "refused, never guessed.",
    ),
]


@contextmanager
def dask_session(
    engine: Engine,
    scheduler: str | None,
    workers: int | None,
    worker_memory: str | None = None,
) -> Iterator[None]:
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
    with dask_client(scheduler, workers, memory_limit=worker_memory or "auto") as client:
        console.print(
            f"dask: {len(client.scheduler_info()['workers'])} worker(s) at "
            f"{client.scheduler.address}; dashboard {client.dashboard_link}",
            highlight=False,
        )
        yield


def table_sources(
    transactions: Path, events: Path | None, customers: Path | None, date_format: str | None
) -> tuple[str | pd.DataFrame, str | pd.DataFrame | None, str | pd.DataFrame | None]:
    """The input tables as the training and scoring entry points take them.

    Without ``date_format`` their locations are passed on and read there. With one, the
    tables are read here with that layout; the entry points then get normalised frames,
    which the (idempotent) loaders re-validate without parsing dates again.
    """
    if date_format is None:
        return location(transactions), location(events), location(customers)
    from fidelite.features.data import load_customers, load_events, load_transactions

    return (
        load_transactions(location(transactions), date_format=date_format),
        None if events is None else load_events(location(events), date_format=date_format),
        None if customers is None else load_customers(location(customers), date_format=date_format),
    )


def optional_table(
    path: Path | None, table: str, date_format: str | None
) -> str | pd.DataFrame | None:
    """An optional table (``consent_history``, ``campaigns``) as the entry points take it.

    Its location, or, with an explicit ``date_format``, the frame read here with it.
    """
    if path is None or date_format is None:
        return location(path)
    from fidelite.features.campaigns import load_campaigns
    from fidelite.features.consent import load_consent_history

    loaders = {"consent_history": load_consent_history, "campaigns": load_campaigns}
    return loaders[table](location(path), date_format=date_format)


def location(path: Path | None) -> str | None:
    """A path option as text, repairing URLs (typer's Path turns s3://b/k into s3:/b/k)."""
    if path is None:
        return None
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]+):/(?!/)", r"\1://", str(path))
