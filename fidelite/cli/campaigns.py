"""``fidelite winback`` and ``fidelite campaign-report``: plan a campaign, then measure it.

The loop: ``fidelite score`` writes the scores; ``fidelite winback --out contacts.parquet``
ranks customers and writes both groups (contacts and the held-out control group) in the
campaigns-table format; the CRM sends to the treatment rows; ``fidelite train
--campaigns contacts.parquet`` learns from the outcome and ``fidelite campaign-report``
shows what each campaign achieved, treatment against control.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from fidelite.cli._app import (
    DateFormatOption,
    TrackingUriOption,
    app,
    console,
    errors_exit,
    location,
    print_done,
)
from fidelite.errors import DataContractError, ModelNotFoundError

if TYPE_CHECKING:
    from fidelite.training.winback import WinbackPlan

_POLICIES = ("auto", "uplift", "value_at_risk", "churn_probability")


def _write(frame: pd.DataFrame, out: Path) -> None:
    """Parquet, or CSV when the name ends in .csv; written atomically (temp + rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    if out.name.lower().endswith(".csv"):
        frame.to_csv(partial, index=False)
    else:
        frame.to_parquet(partial, index=False)
    partial.replace(out)


def _chooser(model_uri: str, tracking_uri: str | None):
    """The served model's uplift component (None when it has none or none is wanted)."""
    if model_uri.lower() == "none":
        return None
    from fidelite.training.registry import load_model

    try:
        model = load_model(model_uri, tracking_uri=tracking_uri)
    except Exception as exc:  # MLflow raises many types for a missing model or store
        raise ModelNotFoundError(
            f"--model-uri {model_uri}: cannot load the model ({type(exc).__name__}); "
            "train and promote one, or pass --model-uri none to rank by value at risk"
        ) from exc
    return getattr(model, "uplift", None)


@app.command("winback")
def winback(
    scores: Annotated[Path, typer.Option(help="Scores Parquet written by `fidelite score`.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Write both groups in the campaigns-table format (.parquet/.csv)."),
    ] = None,
    campaign_id: Annotated[
        str | None,
        typer.Option("--campaign-id", help="Campaign id; seeds the control group."),
    ] = None,
    holdout_share: Annotated[
        float, typer.Option("--holdout-share", min=0.0, max=0.9, help="Control group share.")
    ] = 0.1,
    channels: Annotated[
        str, typer.Option(help="Channels the campaign may use, comma-separated.")
    ] = "email,sms,push",
    policy: Annotated[str, typer.Option(help=f"Ranking policy: {', '.join(_POLICIES)}.")] = "auto",
    offer_cost: Annotated[
        float, typer.Option("--offer-cost", min=0.0, help="Cost of one contact (currency).")
    ] = 0.0,
    offer: Annotated[str | None, typer.Option(help="What is offered (written to --out).")] = None,
    response_rate: Annotated[
        float,
        typer.Option("--response-rate", help="Retained share assumed by the value-at-risk policy."),
    ] = 0.1,
    max_contacts: Annotated[
        int | None, typer.Option("--max-contacts", min=0, help="Budget in contacts.")
    ] = None,
    max_spend: Annotated[
        float | None, typer.Option("--max-spend", min=0.0, help="Budget in currency.")
    ] = None,
    min_value: Annotated[float, typer.Option("--min-value", min=0.0)] = 0.0,
    sent_at: Annotated[
        str | None, typer.Option("--sent-at", help="Planned send day (default: scores as-of + 1).")
    ] = None,
    model_uri: Annotated[
        str,
        typer.Option(
            "--model-uri", help="Model whose uplift component picks the policy ('none': skip)."
        ),
    ] = "models:/fidelite@champion",
    tracking_uri: TrackingUriOption = None,
    show: Annotated[int, typer.Option(min=0, help="Contacts to print.")] = 10,
) -> None:
    """Rank customers for a win-back offer; hold out a reproducible control group."""
    from fidelite.features.data import read_table
    from fidelite.features.days import parse_day
    from fidelite.training.winback import campaigns_table, rank_winback

    with errors_exit():
        frame = read_table(location(scores))
        if "customer_id" not in frame or "status" not in frame:
            raise DataContractError(f"{scores}: not a scores file (no customer_id/status)")
        if policy not in _POLICIES:
            raise DataContractError(f"--policy must be one of {_POLICIES}, got {policy!r}")
        as_of = pd.Timestamp(frame["as_of"].max()) if "as_of" in frame else pd.Timestamp.now()
        day = parse_day(sent_at, name="--sent-at") if sent_at else as_of + pd.Timedelta(days=1)
        settings = _settings(
            offer_cost=offer_cost,
            response_rate=response_rate,
            max_contacts=max_contacts,
            max_spend=max_spend,
            min_value=min_value,
            channels=channels,
            holdout_share=holdout_share,
            campaign_id=campaign_id or f"winback-{day.date()}",
            policy=policy,
        )
        plan = rank_winback(frame, settings, _chooser(model_uri, tracking_uri))
        if out is not None:
            _write(campaigns_table(plan, sent_at=day, offer=offer), out)
    _print_plan(plan, out, show)


def _print_plan(plan: WinbackPlan, out: Path | None, show: int) -> None:
    """The policy and why, totals, exclusions and the first contacts."""
    console.print(f"[bold]policy:[/] {plan.policy.policy} - {plan.policy.reason}", highlight=False)
    totals = plan.totals
    console.print(
        f"campaign {plan.campaign_id}: {totals['contacts']:,} contacts, "
        f"{totals['holdout']:,} held out (do not contact), cost {totals['cost']:,.2f}, "
        f"expected net value {totals['expected_net_value']:,.2f}",
        highlight=False,
    )
    excluded = ", ".join(f"{k} {v:,}" for k, v in plan.excluded.items() if v)
    console.print(f"excluded: {excluded or 'none'}", highlight=False)
    _print_contacts(plan.selected.head(show))
    if out is not None:
        print_done(f"wrote {out} ({totals['contacts'] + totals['holdout']:,} rows, both groups)")


def _settings(*, channels: str, **options: object):
    """The command's options as a WinbackPolicy; invalid combinations are contract errors."""
    from fidelite.training.winback import WinbackPolicy

    names = tuple(c.strip().lower() for c in channels.split(",") if c.strip())
    try:
        return WinbackPolicy(channels=names, **options)
    except ValueError as exc:
        raise DataContractError(str(exc)) from exc


def _print_contacts(rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    table = Table("rank", "customer", "channel", "churn", "value at risk", "uplift", "net value")
    for r in rows.itertuples():
        uplift = "" if pd.isna(r.uplift_purchase) else f"{r.uplift_purchase:+.3f}"
        table.add_row(
            str(r.rank),
            str(r.customer_id),
            str(r.channel),
            f"{r.churn_probability:.2f}",
            f"{r.value_at_risk:,.2f}",
            uplift,
            f"{r.expected_net_value:,.2f}",
        )
    console.print(table)


@app.command("campaign-report")
def campaign_report(
    campaigns: Annotated[Path, typer.Option(help="Campaigns CSV/Parquet (both groups).")],
    transactions: Annotated[Path, typer.Option(help="Transactions CSV/Parquet.")],
    window_days: Annotated[
        int, typer.Option("--window-days", min=1, help="Response window after a send.")
    ] = 30,
    out: Annotated[Path | None, typer.Option(help="Also write the table (.csv/.parquet).")] = None,
    date_format: DateFormatOption = None,
) -> None:
    """Measured incremental conversion and revenue per campaign, treatment vs control."""
    from fidelite.features.campaigns import load_campaigns
    from fidelite.features.data import load_transactions
    from fidelite.training.uplift.effects import campaign_effects

    with errors_exit():
        table = load_campaigns(location(campaigns), date_format=date_format)
        sales = load_transactions(location(transactions), date_format=date_format)
        effects = campaign_effects(table, sales, window_days=window_days)
        if out is not None:
            _write(effects, out)
    view = Table("campaign", "sent", "T / C", "conversion T / C", "incremental conversion")
    view.add_column("incremental revenue")
    view.add_column("return on spend")
    for r in effects.itertuples():
        view.add_row(
            str(r.campaign_id),
            str(pd.Timestamp(r.first_sent).date()),
            f"{r.n_treatment:,} / {r.n_control:,}",
            f"{r.conversion_treatment:.1%} / {r.conversion_control:.1%}",
            _ci(
                r.incremental_conversion,
                r.incremental_conversion_ci_low,
                r.incremental_conversion_ci_high,
                "{:+.1%}",
            ),
            _ci(
                r.incremental_revenue,
                r.incremental_revenue_ci_low,
                r.incremental_revenue_ci_high,
                "{:+,.0f}",
            ),
            _ci(r.return_on_spend, r.return_on_spend_ci_low, r.return_on_spend_ci_high, "{:.2f}")
            + f" of {r.cost:,.0f}",
        )
    console.print(f"95% intervals; response window {window_days} days", highlight=False)
    # A wide table on stdout: the report is the command's output, logs stay on stderr.
    Console(width=max(Console().width, 150)).print(view)
    for r in effects.itertuples():
        if r.note:
            console.print(f"{r.campaign_id}: {r.note}", highlight=False)
    if out is not None:
        print_done(f"wrote {out} ({len(effects)} campaigns)")


def _ci(value: float, low: float, high: float, fmt: str) -> str:
    if pd.isna(value):
        return "n/a"
    return f"{fmt.format(value)} [{fmt.format(low)}, {fmt.format(high)}]"
