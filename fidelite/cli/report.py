"""``fidelite report``: the customer-base report marketers open in a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fidelite.cli._app import (
    AsOfOption,
    CustomersOption,
    DateFormatOption,
    EventsOption,
    TrackingUriOption,
    TransactionsOption,
    app,
    console,
    errors_exit,
    location,
)


def _channels(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(c.strip() for c in value.split(",") if c.strip())


@app.command("report")
def report(
    transactions: TransactionsOption,
    as_of: AsOfOption,
    out: Annotated[Path, typer.Option(help="HTML file to write (one self-contained page).")],
    events: EventsOption = None,
    customers: CustomersOption = None,
    campaigns: Annotated[
        Path | None, typer.Option(help="Campaigns CSV/Parquet (treatment and control rows).")
    ] = None,
    scores: Annotated[
        Path | None, typer.Option(help="Scores written by `fidelite score` (CLV, churn, risk).")
    ] = None,
    horizon_days: Annotated[
        int | None,
        typer.Option("--horizon-days", min=1, help="Horizon H (default: the scores', else 90)."),
    ] = None,
    margin: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of net spend kept as profit (CLV:CAC, ROI)."),
    ] = 1.0,
    response_days: Annotated[
        int, typer.Option("--response-days", min=1, help="Campaign response window in days.")
    ] = 30,
    referral_channels: Annotated[
        str | None,
        typer.Option("--referral-channels", help="Comma-separated referral acquisition channels."),
    ] = None,
    paid_channels: Annotated[
        str | None,
        typer.Option("--paid-channels", help="Comma-separated paid acquisition channels."),
    ] = None,
    tracking_uri: TrackingUriOption = None,
    model_name: Annotated[
        str, typer.Option("--model-name", help="Registered model whose champion is shown.")
    ] = "fidelite",
    model_uri: Annotated[
        str | None,
        typer.Option(
            "--model-uri",
            help="Model to score D - H with, for calibration and gain charts "
            "(e.g. models:/fidelite@champion).",
        ),
    ] = None,
    title: Annotated[str, typer.Option(help="Page title.")] = "Customer base report",
    date_format: DateFormatOption = None,
) -> None:
    """Write the customer-base report (lifecycle, CLV:CAC, cohorts, campaigns...) as HTML."""
    import time

    from fidelite.reports import ReportConfig, build_report, load_report_inputs, write_report
    from fidelite.reports.page import render_html

    started = time.perf_counter()
    with errors_exit(), console.status("Reading the tables...") as status:
        config = ReportConfig(
            horizon_days=horizon_days,
            margin=margin,
            response_days=response_days,
            referral_channels=_channels(referral_channels),
            paid_channels=_channels(paid_channels),
            tracking_uri=tracking_uri,
            model_name=model_name,
            model_uri=model_uri,
            title=title,
        )
        inputs = load_report_inputs(
            location(transactions),
            location(events),
            location(customers),
            as_of=as_of,
            scores=location(scores),
            campaigns=location(campaigns),
            date_format=date_format,
        )
        built = build_report(
            inputs, config, progress=lambda step: status.update(f"Computing {step}...")
        )
        status.update("Rendering the page...")
        path = write_report(render_html(built), out)
    size = path.stat().st_size / 1e6
    console.print(
        f"[green]wrote[/] {path} ({size:.1f} MB, {len(built.sections)} sections, "
        f"{time.perf_counter() - started:.1f} s)",
        highlight=False,
    )
