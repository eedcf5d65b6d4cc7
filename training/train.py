"""A training run from inputs to a registered model: ``fidelite train``.

Protocol (for as-of ``D`` and horizon ``H``):

1. The inputs are cut to what was known on ``D`` (``Inputs.cut``).
2. Backtest windows (:mod:`~fidelite.training.windows`): at each cutoff ``c`` whose
   label window ``(c, c+H]`` ends by ``D``, every known customer's features (purchasers
   with a baseline fitted at ``c``) and outcomes; the plan says which windows train,
   which is held out and which only set a season's level.
3. The rows to score: the customers at ``D``, purchasers with the baseline fitted at ``D``.
4. :func:`~fidelite.training.fitting.fit_models` (pure): the models are fitted on the
   training windows; the held-out window (which they never see) chooses tree counts,
   calibrates the intervals and measures the validation metrics.
5. A model with missing or NaN validation metrics is refused (nothing is registered).
   The current champion, if any, is compared with the new model on its held-out window
   (:mod:`~fidelite.training.gate`); the run, its figures and the pyfunc model are logged
   to MLflow
   (:mod:`~fidelite.training.runlog`), registered as ``challenger`` and optionally
   promoted (:mod:`~fidelite.training.registry`).

Progress is reported to an optional ``on_step`` callback
(:mod:`~fidelite.training.progress`); nothing is displayed here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from fidelite.errors import ConfigurationError, InsufficientHistoryError
from fidelite.features.inputs import Inputs
from fidelite.features.purchases import is_purchaser
from fidelite.training.baseline import BaselineModel
from fidelite.training.config import TrainConfig
from fidelite.training.fitting import FittedModels, fit_baseline, fit_models
from fidelite.training.gate import ChampionComparison, champion_comparison
from fidelite.training.model import FideliteModel
from fidelite.training.packaging import code_version
from fidelite.training.progress import OnStep, StepClock
from fidelite.training.registry import (
    GateDecision,
    check_quality,
    promote,
    register,
)
from fidelite.training.resources import log_resources
from fidelite.training.runlog import log_run
from fidelite.training.sources import DaskTables, window_source
from fidelite.training.stacked import StackedWindows
from fidelite.training.tracking import resolve_tracking_uri
from fidelite.training.uplift.pipeline import champion_gate_metrics, fit_with_model
from fidelite.training.windows import (
    Scored,
    Window,
    WindowPlan,
    WindowSource,
    backtest_cutoffs,
    compact,
    fit_baseline_rows,
    plan_windows,
    window_and_baseline,
)
from fidelite.training.worker_rows import WorkerRows

__all__ = ["TrainConfig", "TrainResult", "train"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes
    ----------
    run_id, model_uri : str
        The MLflow run and the logged model (``models:/m-...``).
    model : FideliteModel
    metrics : dict
        Everything logged as metrics (validation, baseline, champion re-scored).
    cutoffs : list of Timestamp
        Backtest cutoffs, oldest first (the last one was held out).
    model_version : str, optional
        Registered version (None when ``register`` is off).
    gate : GateDecision, optional
        The promotion decision when ``promote`` is on.
    timings : dict of str -> float
        Wall seconds per kind of step (``window``, ``features``, ``fit``, ``champion``,
        ``log``, ``register``).
    """

    run_id: str
    model_uri: str
    model: FideliteModel
    metrics: dict[str, float]
    cutoffs: list[pd.Timestamp]
    model_version: str | None = None
    gate: GateDecision | None = None
    timings: dict[str, float] = field(default_factory=dict)


def plan_cutoffs(
    first_day: pd.Timestamp, as_of: pd.Timestamp, config: TrainConfig
) -> list[pd.Timestamp]:
    """Backtest cutoffs for this run (the newest only, or none, when baseline-only)."""
    try:
        cutoffs = backtest_cutoffs(
            first_day,
            as_of,
            horizon_days=config.horizon_days,
            n_windows=config.n_windows,
            step_days=config.step_days,
            min_history_days=config.min_history_days,
        )
    except InsufficientHistoryError as exc:
        if config.baseline_only:
            logger.warning("no validation window for the baseline: %s", exc)
            return []
        raise InsufficientHistoryError(
            f"{exc}. Use --baseline-only to fit BG/NBD + Gamma-Gamma on the available data."
        ) from exc
    if len(cutoffs) < 2 and not config.baseline_only:
        raise InsufficientHistoryError(
            f"only {len(cutoffs)} backtest window fits before {as_of.date()} with "
            f"horizon {config.horizon_days} days; LightGBM needs 2 (one to train, one to "
            "hold out). Use --baseline-only, a shorter horizon, overlapping windows "
            "(--step-days, --min-history-days) or more history."
        )
    return cutoffs[-1:] if config.baseline_only else cutoffs


def plan_run(first_day: pd.Timestamp, as_of: pd.Timestamp, config: TrainConfig) -> WindowPlan:
    """The run's windows: training, held-out and level-only (``windows.plan_windows``)."""
    cutoffs = plan_cutoffs(first_day, as_of, config)
    if config.baseline_only:
        return WindowPlan([], cutoffs[-1] if cutoffs else None, [], "time", [])
    min_history = config.min_history_days
    min_history = max(config.horizon_days, 90) if min_history is None else min_history
    earliest = first_day.floor("D") + pd.Timedelta(days=min_history)
    return plan_windows(cutoffs, as_of, config.horizon_days, earliest)


def _scored(
    as_of: pd.Timestamp, source: WindowSource, horizon_days: int
) -> tuple[Scored, BaselineModel, pd.DataFrame]:
    """The rows to score, the baseline fitted at D, and the rows the run logs (schema and
    input example: five purchasers), so the whole frame at D is not held through the fit
    (a gigabyte at a million customers). The rows are compact (float32), like the
    windows': they are the encoder's reference and the intervals' sample, never scored
    here. A sampling source gives the sample's rows (``WindowSource.model_rows``)."""
    features, rfm = source.model_rows(as_of)
    buying = is_purchaser(features).to_numpy()
    buyers = features.loc[buying]
    logged = buyers.head(5).copy()
    baseline, predicted = fit_baseline_rows(buyers, rfm, horizon_days)
    del rfm
    prospects = compact(features.loc[~buying])
    del features
    scored = Scored(as_of, compact(buyers.join(predicted)), prospects)
    return scored, baseline, logged


def _model(
    span: tuple[pd.Timestamp, pd.Timestamp],
    config: TrainConfig,
    fitted: FittedModels,
    baseline: BaselineModel,
) -> FideliteModel:
    return FideliteModel(
        baseline=baseline,
        horizon_days=config.horizon_days,
        train_start=span[0],
        train_end=span[1],
        feature_params=config.feature_params,
        code_version=code_version(),
        purchasers=fitted.purchasers,
        prospects=fitted.prospects,
        intervals=fitted.intervals,
        churn_reference=fitted.churn_reference,
        validation_metrics={k: v for k, v in fitted.metrics.items() if v == v},
    )


def train(
    inputs: Inputs | DaskTables,
    config: TrainConfig,
    *,
    campaigns: pd.DataFrame | None = None,
    on_step: OnStep | None = None,
) -> TrainResult:
    """Train, log to MLflow, register as ``challenger`` and optionally promote.

    Parameters
    ----------
    inputs : Inputs or DaskTables
        Normalised tables and the as-of day ``D`` (``fidelite.features.inputs.load_inputs``);
        anything dated after ``D`` is ignored. With ``engine="dask"``, a
        :class:`~fidelite.training.sources.DaskTables` (paths read by the workers) keeps
        the tables off this process altogether.
    config : TrainConfig
    campaigns : DataFrame, optional
        Past campaigns (campaigns-table rows, both groups): an uplift component is learnt
        from them (:func:`fidelite.training.uplift.fit_uplift`), versioned in the same
        model, and the gate refuses a challenger that would drop it.
    on_step : callable, optional
        Receives a :class:`~fidelite.training.progress.Step` after every step.

    Raises
    ------
    InsufficientHistoryError
        Too short a history for two windows (LightGBM), or windows without outcomes.
    ModelQualityError
        Registering a model whose validation metrics are missing or NaN (no labelled
        window). Nothing is logged or registered in either case.
    """
    inputs = inputs.cut()
    as_of = inputs.as_of
    tracking_uri = resolve_tracking_uri(config.tracking_uri)
    _check_campaigns(inputs, campaigns)
    clock = StepClock(5 + int(config.register) + int(campaigns is not None), on_step or _quiet)
    with clock.step("encode") as note:
        source = window_source(config.engine, inputs, config.feature_params)
        note.append(f"tables encoded ({_rate(_rows(inputs), clock)})")
    plan = plan_run(_first_day(source, as_of), as_of, config)
    windows, rows = _build_windows(source, plan, config.horizon_days, clock)
    with clock.step("features", f"features and baseline at {as_of.date()}"):
        scored, baseline, features = _scored(as_of, source, config.horizon_days)
    with clock.step("fit", "models fitted"):
        fitted = _fit(windows, scored, config, plan, rows)
        model = _model((_first_day(source, as_of), as_of), config, fitted, baseline)
    uplift = None
    if campaigns is not None:
        with clock.step("uplift", "uplift learnt from past campaigns"):
            uplift = fit_with_model(inputs, campaigns, model, source.features, config.n_jobs)
    with clock.step("champion", "champion compared on the held-out window"):
        gate = _compare_with_champion(config, tracking_uri, windows, plan, fitted)
        if config.register:
            found = champion_gate_metrics(
                config.model_name, tracking_uri, model, uplift, source.features
            )
            gate.metrics.update(found)
    with clock.step("log", "run and model logged to MLflow"):
        logged = log_run(
            tracking_uri=tracking_uri,
            config=config,
            as_of=as_of,
            fingerprint=source.fingerprint(),
            plan=plan,
            fitted=fitted,
            model=model,
            features=features,
            gate=gate,
            uplift=uplift,
        )
    metrics = {**fitted.metrics, **gate.metrics, **(uplift.metrics if uplift else {})}
    result = TrainResult(logged.run_id, logged.model_uri, model, metrics, plan.cutoffs)
    if config.register:
        with clock.step("register", "registered as challenger"):
            _register(result, config, tracking_uri, fitted.metrics)
    return _with_resources(result, config, tracking_uri, clock)


def _with_resources(
    result: TrainResult, config: TrainConfig, tracking_uri: str, clock: StepClock
) -> TrainResult:
    """The run's step timings and peak memory, logged to its MLflow run too."""
    result.timings = dict(clock.seconds)
    dask = config.engine == "dask"
    result.metrics.update(log_resources(tracking_uri, result.run_id, result.timings, dask=dask))
    return result


def _check_campaigns(inputs: Inputs | DaskTables, campaigns: pd.DataFrame | None) -> None:
    if campaigns is not None and isinstance(inputs, DaskTables):
        raise ConfigurationError(
            "--campaigns needs the transactions on this machine: train the uplift part "
            "with --engine pandas (the churn and CLV models train the same either way)"
        )


def _quiet(step: object) -> None:
    """The default progress callback: nothing shown."""


def _first_day(source: WindowSource, as_of: pd.Timestamp) -> pd.Timestamp:
    first_day = source.first_day()
    if first_day is None:
        raise InsufficientHistoryError(
            f"transactions: no rows on or before {as_of.date()}; nothing to train on"
        )
    return first_day


def _build_windows(
    source: WindowSource, plan: WindowPlan, horizon_days: int, clock: StepClock
) -> tuple[StackedWindows, WorkerRows | None]:
    """The windows (stacked), and every customer's training rows on the workers when
    the windows hold a sample (``WindowSource.worker_rows``)."""
    clock.total += len(plan.cutoffs)
    windows: list[Window] = []
    baselines: dict[pd.Timestamp, BaselineModel] = {}
    for cutoff in plan.cutoffs:
        with clock.step("window") as note:
            window, baselines[cutoff] = window_and_baseline(source, cutoff, horizon_days)
            windows.append(window)
            customers = len(window.labels) + len(window.prospect_labels)
            del window
            rate = customers / max(clock.elapsed(), 1e-9)
            note.append(f"window {cutoff.date()}: {customers:,} customers ({rate:,.0f}/s)")
    train_cutoffs = plan.train if plan.mode == "time" else []
    rows = source.worker_rows(train_cutoffs, baselines, horizon_days)
    # Stacked once, the per-window frames released: the fit reads the stack in place.
    return StackedWindows(windows), rows


def _fit(
    windows: Sequence[Window],
    scored: Scored,
    config: TrainConfig,
    plan: WindowPlan,
    rows: WorkerRows | None = None,
) -> FittedModels:
    """The models, refused before anything is logged when they cannot be registered.

    ``rows`` (every customer's training rows on the workers) are released once fitted.
    """
    try:
        if config.baseline_only:
            fitted = fit_baseline(windows, plan)
        else:
            fitted = fit_models(windows, scored, config, plan, rows)
    finally:
        if rows is not None:
            rows.release()
    if config.register:
        check_quality(fitted.metrics)
    for note in fitted.notes:
        logger.warning(note)
    return fitted


def _held_out_rows(
    windows: Sequence[Window], plan: WindowPlan, fitted: FittedModels
) -> pd.DataFrame:
    """The held-out purchasers' features with their outcomes (to re-score the champion)."""
    window = next(w for w in windows if w.cutoff == plan.holdout)
    rows = window.features.index.isin(fitted.validation.index)
    outcomes = window.labels.loc[rows, ["churned", "future_spend"]]
    return window.features.loc[rows].join(outcomes)


def _compare_with_champion(
    config: TrainConfig,
    tracking_uri: str,
    windows: Sequence[Window],
    plan: WindowPlan,
    fitted: FittedModels,
) -> ChampionComparison:
    if not config.register or plan.holdout is None or fitted.validation is None:
        return ChampionComparison()
    return champion_comparison(
        config.model_name,
        tracking_uri,
        holdout_cutoff=plan.holdout,
        horizon_days=config.horizon_days,
        held_out=_held_out_rows(windows, plan, fitted),
        held_out_metrics=fitted.metrics,
    )


def _register(
    result: TrainResult, config: TrainConfig, tracking_uri: str, metrics: dict[str, float]
) -> None:
    """Register the logged model as challenger and run the gate when asked."""
    result.model_version = register(
        result.model_uri, config.model_name, metrics=metrics, tracking_uri=tracking_uri
    )
    if config.promote:
        result.gate = promote(
            config.model_name, tracking_uri=tracking_uri, tolerance=config.gate_tolerance
        )


def _rows(inputs: Inputs | DaskTables) -> int:
    tables = (inputs.transactions, inputs.events, inputs.customers)
    return sum(len(t) for t in tables if isinstance(t, pd.DataFrame))


def _rate(rows: int, clock: StepClock) -> str:
    """``"12,345,678 rows, 2.1M rows/s"`` for the step being timed."""
    seconds = max(clock.elapsed(), 1e-9)
    return f"{rows:,} rows, {rows / seconds / 1e6:.1f}M rows/s"
