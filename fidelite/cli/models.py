"""``fidelite train``, ``score``, ``evaluate`` and ``promote``: the model lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fidelite.cli._app import (
    ConsentHistoryOption,
    CustomersOption,
    DateFormatOption,
    Engine,
    EngineOption,
    EventsOption,
    SchedulerOption,
    TrackingUriOption,
    TransactionsOption,
    WorkerMemoryOption,
    WorkersOption,
    app,
    console,
    dask_session,
    errors_exit,
    location,
    optional_table,
    table_sources,
)
from fidelite.cli._training import (
    TrainingSources,
    print_training_result,
    progress_bar,
    training_inputs,
)
from fidelite.features.days import parse_day
from fidelite.features.inputs import load_inputs

if TYPE_CHECKING:
    pass

ModelNameOption = Annotated[str, typer.Option("--model-name", help="Registered model name.")]
HorizonOption = Annotated[
    int, typer.Option("--horizon-days", min=1, help="Prediction horizon H in days.")
]
WindowsOption = Annotated[int, typer.Option(min=1, help="Backtest windows (newest held out).")]
StepDaysOption = Annotated[
    int | None,
    typer.Option(
        "--step-days",
        min=1,
        help="Days between backtest cutoffs (default: the horizon; smaller = overlapping "
        "windows for short histories).",
    ),
]
MinHistoryOption = Annotated[
    int | None,
    typer.Option(
        "--min-history-days",
        min=0,
        help="Days of data required before each cutoff (default: max(horizon, 90)).",
    ),
]
BaselineOnlyOption = Annotated[
    bool, typer.Option("--baseline-only", help="Fit only BG/NBD + Gamma-Gamma (short histories).")
]
NJobsOption = Annotated[
    int, typer.Option("--n-jobs", min=1, help="LightGBM threads (1 on a busy machine).")
]


@app.command("train")
def train(
    transactions: TransactionsOption,
    as_of: Annotated[
        str, typer.Option("--as-of", help="Training day D (YYYY-MM-DD): only data up to D.")
    ],
    horizon_days: HorizonOption = 90,
    events: EventsOption = None,
    customers: CustomersOption = None,
    windows: WindowsOption = 4,
    step_days: StepDaysOption = None,
    min_history_days: MinHistoryOption = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Run the promotion gate after training.")
    ] = False,
    baseline_only: BaselineOnlyOption = False,
    register: Annotated[
        bool,
        typer.Option(
            "--register/--no-register",
            help="Register the model as the challenger (refused when its validation metrics "
            "are missing or NaN).",
        ),
    ] = True,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "fidelite",
    model_name: ModelNameOption = "fidelite",
    tracking_uri: TrackingUriOption = None,
    n_jobs: NJobsOption = 2,
    consent_history: ConsentHistoryOption = None,
    date_format: DateFormatOption = None,
    engine: EngineOption = Engine.pandas,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    worker_memory: WorkerMemoryOption = None,
    campaigns: Annotated[
        Path | None,
        typer.Option(
            help="Past campaigns (campaigns-table CSV/Parquet, e.g. `fidelite winback --out` "
            "files): also learn which customers an offer changes (uplift)."
        ),
    ] = None,
) -> None:
    """Backtest, train and log churn + CLV models to MLflow; register a challenger."""
    from fidelite.training.config import TrainConfig
    from fidelite.training.train import train as run_training

    config = TrainConfig(
        horizon_days=horizon_days,
        n_windows=windows,
        step_days=step_days,
        min_history_days=min_history_days,
        baseline_only=baseline_only,
        register=register,
        promote=promote,
        experiment=experiment,
        model_name=model_name,
        tracking_uri=tracking_uri,
        engine=engine.value,
        n_jobs=n_jobs,
    )
    with errors_exit(), dask_session(engine, scheduler, workers, worker_memory):
        day = parse_day(as_of, name="--as-of")
        history = None
        if campaigns is not None:
            from fidelite.training.uplift.campaigns import load_campaigns_table

            history = load_campaigns_table(location(campaigns), date_format=date_format)
        sources = TrainingSources(transactions, events, customers, consent_history, date_format)
        inputs = training_inputs(sources, day, engine)
        with progress_bar() as on_step:
            result = run_training(inputs, config, campaigns=history, on_step=on_step)
    print_training_result(result, model_name)


@app.command("score")
def score(
    transactions: TransactionsOption,
    as_of: Annotated[str, typer.Option("--as-of", help="Scoring day D (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option(help="Output scores Parquet (or .csv).")],
    events: EventsOption = None,
    customers: CustomersOption = None,
    model_uri: Annotated[
        str, typer.Option("--model-uri", help="MLflow model URI.")
    ] = "models:/fidelite@champion",
    tracking_uri: TrackingUriOption = None,
    consent_history: ConsentHistoryOption = None,
    date_format: DateFormatOption = None,
    engine: EngineOption = Engine.pandas,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    worker_memory: WorkerMemoryOption = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report/--no-report",
            help="Also write the customer-base report beside the scores "
            "(<out>.report.html) and log it to the model's MLflow run.",
        ),
    ] = True,
    campaigns: Annotated[
        Path | None,
        typer.Option(help="Campaigns CSV/Parquet for the report's campaigns section (not scored)."),
    ] = None,
) -> None:
    """Score every customer known by D with a logged model and write the scores frame."""
    with errors_exit(), dask_session(engine, scheduler, workers, worker_memory):
        day = parse_day(as_of, name="--as-of")
        with console.status(f"Scoring as of {day.date()} with {model_uri}..."):
            if engine is Engine.dask:
                from fidelite.training.distributed import score_dask

                sources = table_sources(transactions, events, customers, date_format)
                scores = score_dask(
                    *sources,
                    as_of=day,
                    model_uri=model_uri,
                    tracking_uri=tracking_uri,
                    consent_history=optional_table(consent_history, "consent_history", date_format),
                )
            else:
                from fidelite.training.score import score as run_scoring

                sources = (location(transactions), location(events), location(customers))
                inputs = load_inputs(
                    *sources,
                    as_of=day,
                    consent_history=location(consent_history),
                    date_format=date_format,
                )
                scores = run_scoring(inputs, model_uri=model_uri, tracking_uri=tracking_uri)
    # atomic: a running service never reads a half-written snapshot
    from fidelite.serving.snapshot import write_snapshot_atomic

    write_snapshot_atomic(scores, out)
    ok = int((scores["status"] == "ok").sum())
    console.print(
        f"[green]wrote[/] {out} ({len(scores):,} customers, {ok:,} scored)", highlight=False
    )
    if report:  # the report is owned by fidelite.reports (see reports/publish.py)
        from fidelite.reports.publish import publish_scoring_report

        with errors_exit(), console.status("Rendering the customer-base report..."):
            page, artifact = publish_scoring_report(
                scores,
                *sources,
                as_of=as_of,
                scores_path=out,
                model_uri=model_uri,
                tracking_uri=tracking_uri,
                campaigns=location(campaigns),
            )
        logged = f"; logged to MLflow as {artifact}" if artifact else " (not logged to MLflow)"
        console.print(f"[green]wrote[/] {page}{logged}", highlight=False)


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
    date_format: DateFormatOption = None,
) -> None:
    """Compare scores with what actually happened after their as-of day."""
    from rich.table import Table

    from fidelite.features.data import load_transactions, read_table
    from fidelite.training.evaluation import evaluate_scores

    with errors_exit(), console.status("Evaluating scores against observed outcomes..."):
        outcomes = load_transactions(location(transactions), date_format=date_format)
        result = evaluate_scores(read_table(scores), outcomes)
    table = Table(
        title=f"Scores as of {result['as_of']} vs the next "
        f"{result['horizon_days']} days ({result['n_evaluated']:,} customers)"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for family in ("churn", "clv"):
        for name, value in result[family].items():
            table.add_row(f"{family}.{name}", f"{value:,.4f}")
    console.print(table)
    console.print(
        f"{result['n_skipped_status']:,} rows skipped (status not 'ok'); "
        f"{result['n_without_transactions']:,} evaluated customers had no transaction "
        "at all (counted as churned, zero spend)",
        highlight=False,
    )
    if plots is not None:
        from fidelite.training.plots import score_figures

        plots.mkdir(parents=True, exist_ok=True)
        for name, figure in score_figures(result).items():
            figure.savefig(plots / f"{name}.png", dpi=120)
            console.print(f"[green]wrote[/] {plots / f'{name}.png'}", highlight=False)


@app.command("promote")
def promote(
    model_name: ModelNameOption = "fidelite",
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Make this registered version the champion (e.g. roll back); needs --reason.",
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (recorded on the version).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote the challenger regardless of the gate.")
    ] = False,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Move `champion` to the `challenger` if it passes the gate, or to any --version."""
    from fidelite.errors import ConfigurationError
    from fidelite.training.registry import promote as run_gate
    from fidelite.training.registry import promote_version

    with errors_exit():
        if version is not None:
            if not reason:
                raise ConfigurationError(
                    "--version needs --reason (it is recorded)", field="reason"
                )
            decision = promote_version(
                model_name, version, reason=reason, tracking_uri=tracking_uri
            )
        else:
            decision = run_gate(model_name, tracking_uri=tracking_uri, force=force)
    colour = "green" if decision.promoted else "yellow"
    console.print(
        f"[{colour}]{'promoted' if decision.promoted else 'not promoted'}:[/] {decision.reason}",
        highlight=False,
    )
    if not decision.promoted:
        raise typer.Exit(code=1)
