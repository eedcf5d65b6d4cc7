"""A training run from inputs to a registered model: ``fidelite train``.

Protocol (for as-of ``D`` and horizon ``H``):

1. The inputs are cut to what was known on ``D`` (``Inputs.cut``).
2. Backtest windows (:mod:`~fidelite.training.windows`): at each cutoff ``c`` whose
   label window ``(c, c+H]`` ends by ``D``, the purchasers' features with a baseline
   fitted at ``c``, and their outcomes.
3. The rows to score: the purchasers at ``D`` with the baseline fitted at ``D``.
4. :func:`~fidelite.training.fitting.fit_models` (pure): the newest window is held out
   to choose tree counts, calibration, intervals and to measure the validation
   metrics; the shipped models are refitted on every window.
5. The current champion, if any, is scored on the held-out window for the promotion
   gate; the run, its figures and the pyfunc model are logged to MLflow
   (:mod:`~fidelite.training.runlog`), registered as ``challenger`` and optionally
   promoted (:mod:`~fidelite.training.registry`).

Progress is reported to an optional ``on_step`` callback
(:mod:`~fidelite.training.progress`); nothing is displayed here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from fidelite.errors import ConfigurationError, InsufficientHistoryError
from fidelite.features.inputs import Inputs
from fidelite.training.baseline import BaselineModel
from fidelite.training.config import TrainConfig
from fidelite.training.fitting import FittedModels, fit_baseline, fit_models, validation_metrics
from fidelite.training.model import FideliteModel
from fidelite.training.packaging import code_version
from fidelite.training.progress import OnStep, StepClock
from fidelite.training.registry import (
    CHAMPION,
    GateDecision,
    alias_version,
    load_model,
    promote,
    register,
)
from fidelite.training.resources import log_resources
from fidelite.training.runlog import log_run
from fidelite.training.sources import DaskTables, window_source
from fidelite.training.tracking import mlflow_client, resolve_tracking_uri
from fidelite.training.uplift import UpliftConfig, UpliftFit, fit_uplift
from fidelite.training.uplift.gate import uplift_gate
from fidelite.training.windows import Scored, Window, backtest_cutoffs, build_window, purchasers

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


def champion_metrics(config: TrainConfig, tracking_uri: str, window: Window) -> dict[str, float]:
    """The current champion scored on the held-out window (``champion_*``); {} without one."""
    version = alias_version(mlflow_client(tracking_uri), config.model_name, CHAMPION)
    if version is None:
        return {}
    try:
        champion = load_model(f"models:/{config.model_name}@{CHAMPION}", tracking_uri=tracking_uri)
        scores = champion.predict(
            None, window.features, params={"as_of": str(window.cutoff.date())}
        )
    # Unpickling an old champion can fail in many ways (renamed classes, changed
    # attributes); none of them may block training its replacement.
    except Exception as exc:
        logger.warning("could not score champion version %s: %s", version, exc)
        return {}
    scores = scores.set_index("customer_id").loc[window.labels.index]
    metrics = validation_metrics(
        window.labels,
        scores["churn_probability"].to_numpy(),
        scores["predicted_clv"].to_numpy(),
        "champion_",
    )
    return {**metrics, "champion_version": float(version)}


def _scored(
    as_of: pd.Timestamp, features: pd.DataFrame, horizon_days: int
) -> tuple[Scored, BaselineModel]:
    buyers = purchasers(features)
    baseline = BaselineModel(horizon_days).fit(buyers)
    return Scored(as_of, buyers.join(baseline.predict(buyers))), baseline


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
        encoder=fitted.encoder,
        churn=fitted.churn,
        clv=fitted.clv,
        intervals=fitted.intervals,
        churn_reference=fitted.churn_reference,
        validation_metrics={k: v for k, v in fitted.metrics.items() if v == v},
    )


def _fit_uplift(
    inputs: Inputs, campaigns: pd.DataFrame, model: FideliteModel, build, config: TrainConfig
) -> UpliftFit:
    """Uplift from the campaigns, with this run's features and churn/CLV scores as inputs."""

    def score(features: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
        return model.predict(None, features, params={"as_of": str(day.date()), "reasons": False})

    return fit_uplift(
        campaigns,
        inputs.transactions,
        as_of=inputs.as_of,
        build=build,
        score=score,
        config=UpliftConfig(n_jobs=config.n_jobs),
    )


def uplift_gate_metrics(
    config: TrainConfig, tracking_uri: str, model: FideliteModel
) -> dict[str, float]:
    """``uplift_gate_passed`` (1/0) against the champion's uplift component; {} without one."""
    version = alias_version(mlflow_client(tracking_uri), config.model_name, CHAMPION)
    if version is None:
        return {}
    try:
        champion = load_model(f"models:/{config.model_name}@{CHAMPION}", tracking_uri=tracking_uri)
    except Exception as exc:  # an unreadable champion is handled by champion_metrics
        logger.warning("could not load champion version %s: %s", version, exc)
        return {}
    gate = uplift_gate(getattr(champion, "uplift", None), model.uplift)
    logger.info("uplift gate: %s", gate.reason)
    return {"uplift_gate_passed": float(gate.passed), **gate.metrics}


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
        :class:`~fidelite.training.distributed.DaskTables` (paths read by the workers)
        keeps the tables off this process altogether.
    config : TrainConfig
    campaigns : DataFrame, optional
        Past campaigns (campaigns-table rows, both groups): an uplift component is
        learnt from them (:func:`fidelite.training.uplift.fit_uplift`), versioned in
        the same model, and the gate refuses a challenger that would drop it.
    on_step : callable, optional
        Receives a :class:`~fidelite.training.progress.Step` after every step.

    Raises
    ------
    InsufficientHistoryError
        When the history is too short for two backtest windows (LightGBM) and
        ``baseline_only`` is not set. Nothing is logged or registered then.
    """
    inputs = inputs.cut()
    as_of = inputs.as_of
    tracking_uri = resolve_tracking_uri(config.tracking_uri)
    if campaigns is not None and isinstance(inputs, DaskTables):
        raise ConfigurationError(
            "--campaigns needs the transactions on this machine: train the uplift part "
            "with --engine pandas (the churn and CLV models train the same either way)"
        )
    steps = 5 + int(config.register) + int(campaigns is not None)
    clock = StepClock(steps, on_step or (lambda step: None))
    with clock.step("encode") as note:
        source = window_source(config.engine, inputs, config.feature_params)
        note.append(f"tables encoded ({_rate(_rows(inputs), clock)})")
    first_day = source.first_day()
    if first_day is None:
        raise InsufficientHistoryError(
            f"transactions: no rows on or before {as_of.date()}; nothing to train on"
        )
    cutoffs = plan_cutoffs(first_day, as_of, config)
    clock.total += len(cutoffs)
    windows: list[Window] = []
    for cutoff in cutoffs:
        with clock.step("window") as note:
            windows.append(build_window(source, cutoff, config.horizon_days))
            customers = len(windows[-1].labels)
            rate = customers / max(clock.elapsed(), 1e-9)
            note.append(f"window {cutoff.date()}: {customers:,} customers ({rate:,.0f}/s)")
    with clock.step("features", f"features and baseline at {as_of.date()}"):
        features = source.features(as_of)
        scored, baseline = _scored(as_of, features, config.horizon_days)
    with clock.step("fit", "models fitted"):
        if config.baseline_only:
            fitted = fit_baseline(windows)
        else:
            fitted = fit_models(windows, scored, config)
        model = _model((first_day, as_of), config, fitted, baseline)
    uplift = None
    if campaigns is not None:
        with clock.step("uplift", "uplift learnt from past campaigns"):
            uplift = _fit_uplift(inputs, campaigns, model, source.features, config)
            model.uplift = uplift.model
    with clock.step("champion", "champion scored on the held-out window"):
        champion = champion_metrics(config, tracking_uri, windows[-1]) if windows else {}
        champion.update(uplift_gate_metrics(config, tracking_uri, model))
    with clock.step("log", "run and model logged to MLflow"):
        logged = log_run(
            tracking_uri=tracking_uri,
            config=config,
            as_of=as_of,
            fingerprint=source.fingerprint(),
            cutoffs=cutoffs,
            fitted=fitted,
            model=model,
            features=features,
            extra_metrics=champion,
            uplift=uplift,
        )
    metrics = {**fitted.metrics, **champion, **(uplift.metrics if uplift else {})}
    result = TrainResult(logged.run_id, logged.model_uri, model, metrics, cutoffs)
    if config.register:
        with clock.step("register", "registered as challenger"):
            result.model_version = register(
                logged.model_uri, config.model_name, tracking_uri=tracking_uri
            )
            if config.promote:
                result.gate = promote(
                    config.model_name, tracking_uri=tracking_uri, tolerance=config.gate_tolerance
                )
    result.timings = dict(clock.seconds)
    dask = config.engine == "dask"
    result.metrics.update(log_resources(tracking_uri, result.run_id, result.timings, dask=dask))
    return result


def _rows(inputs: Inputs | DaskTables) -> int:
    tables = (inputs.transactions, inputs.events, inputs.customers)
    return sum(len(t) for t in tables if isinstance(t, pd.DataFrame))


def _rate(rows: int, clock: StepClock) -> str:
    """``"12,345,678 rows, 2.1M rows/s"`` for the step being timed."""
    seconds = max(clock.elapsed(), 1e-9)
    return f"{rows:,} rows, {rows / seconds / 1e6:.1f}M rows/s"
