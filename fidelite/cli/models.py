"""``fidelite train``, ``score``, ``evaluate`` and ``promote``: the model lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fidelite.cli._app import (
    DateFormatOption,
    Engine,
    EngineOption,
    SchedulerOption,
    WorkersOption,
    app,
    console,
    dask_session,
    errors_exit,
    table_sources,
)
from fidelite.features.data import load_transactions


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
    date_format: DateFormatOption = None,
    engine: EngineOption = Engine.pandas,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
) -> None:
    """Backtest, train and log churn + CLV models to MLflow; register a challenger."""
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
    with errors_exit(), dask_session(engine, scheduler, workers):
        sources = table_sources(transactions, events, customers, date_format)
        result = run_training(*sources, config=config)
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
    date_format: DateFormatOption = None,
    engine: EngineOption = Engine.pandas,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report/--no-report",
            help="Also write the customer-base report beside the scores "
            "(<out>.report.html) and log it to the model's MLflow run.",
        ),
    ] = True,
) -> None:
    """Score every customer known by D with a logged model and write the scores frame."""
    from fidelite.training.score import score as run_scoring

    if engine is Engine.dask:
        from fidelite.training.distributed import score_dask as run_scoring

    with (
        errors_exit(),
        dask_session(engine, scheduler, workers),
        console.status(f"Scoring as of {as_of} with {model_uri}..."),
    ):
        sources = table_sources(transactions, events, customers, date_format)
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

    from fidelite.features.data import read_table
    from fidelite.training.evaluate import evaluate_scores, score_figures

    with errors_exit(), console.status("Evaluating scores against observed outcomes..."):
        outcomes = load_transactions(transactions, date_format=date_format)
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
        plots.mkdir(parents=True, exist_ok=True)
        for name, figure in score_figures(result).items():
            figure.savefig(plots / f"{name}.png", dpi=120)
            console.print(f"[green]wrote[/] {plots / f'{name}.png'}", highlight=False)


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
