"""``fidelite report``: the customer-base report marketers open in a browser."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fidelite.cli._app import (
    AsOfOption,
    CampaignsOption,
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

if TYPE_CHECKING:  # the CLI imports the report modules only when the command runs
    from rich.status import Status

    from fidelite.reports import ReportConfig, ReportInputs


def _channels(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(c.strip() for c in value.split(",") if c.strip())


# The report's own options, named here so the command's signature reads as a list.
OutOption = Annotated[Path, typer.Option(help="HTML file to write (one self-contained page).")]
ScoresOption = Annotated[
    Path | None, typer.Option(help="Scores written by `fidelite score` (CLV, churn, risk).")
]
HorizonOption = Annotated[
    int | None,
    typer.Option("--horizon-days", min=1, help="Horizon H (default: the scores', else 90)."),
]
MarginOption = Annotated[
    float,
    typer.Option(min=0.0, max=1.0, help="Share of net spend kept as profit (CLV:CAC, ROI)."),
]
ResponseDaysOption = Annotated[
    int, typer.Option("--response-days", min=1, help="Campaign response window in days.")
]
ReferralOption = Annotated[
    str | None,
    typer.Option("--referral-channels", help="Comma-separated referral acquisition channels."),
]
PaidOption = Annotated[
    str | None,
    typer.Option("--paid-channels", help="Comma-separated paid acquisition channels."),
]
ModelNameOption = Annotated[
    str, typer.Option("--model-name", help="Registered model whose champion is shown.")
]
ModelUriOption = Annotated[
    str | None,
    typer.Option(
        "--model-uri",
        help="Model to score D - H with, for calibration and gain charts "
        "(e.g. models:/fidelite@champion).",
    ),
]
TitleOption = Annotated[str, typer.Option(help="Page title.")]


def _write_page(
    inputs: ReportInputs, config: ReportConfig, out: Path, status: Status
) -> tuple[Path, int]:
    """Compute the sections (saying each on ``status``), render and write the page.

    Returns the path written and the number of sections shown.
    """
    from fidelite.reports import build_report, write_report
    from fidelite.reports.page import render_html

    built = build_report(
        inputs, config, progress=lambda step: status.update(f"Computing {step}...")
    )
    status.update("Rendering the page...")
    return write_report(render_html(built), out), len(built.sections)


@app.command("report")
def report(
    transactions: TransactionsOption,
    as_of: AsOfOption,
    out: OutOption,
    events: EventsOption = None,
    customers: CustomersOption = None,
    campaigns: CampaignsOption = None,
    scores: ScoresOption = None,
    horizon_days: HorizonOption = None,
    margin: MarginOption = 1.0,
    response_days: ResponseDaysOption = 30,
    referral_channels: ReferralOption = None,
    paid_channels: PaidOption = None,
    tracking_uri: TrackingUriOption = None,
    model_name: ModelNameOption = "fidelite",
    model_uri: ModelUriOption = None,
    title: TitleOption = "Customer base report",
    date_format: DateFormatOption = None,
) -> None:
    """Write the customer-base report (lifecycle, CLV:CAC, cohorts, campaigns...) as HTML."""
    import time

    from fidelite.reports import ReportConfig, load_report_inputs

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
        path, n_sections = _write_page(inputs, config, out, status)
    size = path.stat().st_size / 1e6
    console.print(
        f"[green]wrote[/] {path} ({size:.1f} MB, {n_sections} sections, "
        f"{time.perf_counter() - started:.1f} s)",
        highlight=False,
    )
