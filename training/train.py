"""End-to-end training: backtest windows → validation fit → final refit → MLflow.

Protocol (for as-of ``D`` and horizon ``H``):

1. Every input is cut to ``timestamp < D + 1 day`` before anything else.
2. ``training.labels.backtest_cutoffs`` gives cutoffs ``c_1 < ... < c_k`` whose
   label windows ``(c, c+H]`` end by ``D``. At each cutoff the features of every
   customer with a purchase by ``c`` are stacked with their labels, plus the
   BG/NBD + Gamma-Gamma baseline refitted on that cutoff's features (so the
   baseline columns are point-in-time too).
3. Validation: the models are fitted on windows ``c_1..c_{k-1}`` with early
   stopping on the last window ``c_k``; metrics (LightGBM and baseline side by
   side), calibration, CLV intervals and the promotion-gate comparison are all
   computed on ``c_k``. Because ``c_k`` also chose the number of trees, the
   challenger's metrics are slightly optimistic; the champion is scored on the
   very same rows for the gate. The CLV model's window-level (seasonal) offset
   for ``c_k`` comes from the training windows only (``clv.SeasonalLevel``),
   and its trees are re-centred on ``c_k``'s (unlabelled) rows so they move
   value between customers without moving the total.
4. Final model: refit on all ``k`` windows with the tree counts found in step 3
   (no early stopping), the isotonic calibrator and interval table learned on
   ``c_k`` carried over, and the baseline refitted on features at ``D`` itself.
   This uses the most recent behaviour at the cost of having no untouched
   window for the refit; the logged metrics describe the validation model.
   Features the customers at ``D`` almost all place outside the windows' range
   (typically tenure, when every window is younger than the scored cohort) are
   left out of both fits, and the CLV trees are re-centred on the rows at ``D``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from fidelite.features import inputs as features_inputs
from fidelite.features.data import as_of_bounds
from fidelite.features.inputs import Inputs
from fidelite.training import evaluate
from fidelite.training.baseline import BaselineModel
from fidelite.training.churn import ChurnModel, FeatureEncoder, choose_calibration
from fidelite.training.clv import (
    ClvModel,
    RatioIntervals,
    SeasonalLevel,
    crossfit_interval_coverage,
)
from fidelite.training.distributed import FeatureBuilder, feature_builder, model_classes
from fidelite.training.labels import InsufficientHistoryError, backtest_cutoffs, make_labels
from fidelite.training.model import REQUIRED_INPUT_COLUMNS, FideliteModel
from fidelite.training.registry import CHAMPION, GateDecision, alias_version, promote, register
from fidelite.training.tracking import (
    DEFAULT_EXPERIMENT,
    data_fingerprint,
    get_or_create_experiment,
    log_json,
    use_tracking,
)

__all__ = ["TrainConfig", "TrainResult", "load_inputs", "train"]

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that defines a training run (all of it is logged as params).

    Parameters
    ----------
    as_of : date-like
        Training day ``D``; only data with ``timestamp < D + 1 day`` is used.
    horizon_days : int
        Prediction horizon ``H`` in days.
    n_windows : int
        Backtest windows wanted (at least 2 for LightGBM: train + validation).
    step_days : int, optional
        Days between consecutive backtest cutoffs (``training.labels.backtest_cutoffs``);
        None steps by ``horizon_days`` so label windows do not overlap. Smaller steps
        give overlapping windows, which is how short histories get enough of them.
    min_history_days : int, optional
        Days of data required before each cutoff; None means ``max(horizon_days, 90)``.
    baseline_only : bool
        Fit only BG/NBD + Gamma-Gamma (works with too little history for windows).
    promote : bool
        Run the promotion gate after registering.
    experiment, model_name : str
        MLflow experiment and registered model names.
    tracking_uri : str, optional
        MLflow tracking/registry URI (see ``training.tracking``).
    churn_params, clv_params : dict
        Overrides for ``ChurnModel`` / ``ClvModel`` constructor parameters.
    gate_tolerance : float
        Allowed shortfall per gate metric when promoting.
    register : bool
        Register the logged model (``challenger`` alias) in the model registry.
    n_jobs : int
        LightGBM threads. Use 1 on a busy machine: OpenMP threads that spin while
        waiting for a core make small fits many times slower.
    engine : {"pandas", "dask"}
        Where features and LightGBM fits run; "dask" uses the current Dask client
        (see ``training.distributed``). The logged model is the same either way.
    """

    as_of: Any
    horizon_days: int = 90
    n_windows: int = 4
    step_days: int | None = None
    min_history_days: int | None = None
    baseline_only: bool = False
    promote: bool = False
    experiment: str = DEFAULT_EXPERIMENT
    model_name: str = "fidelite"
    tracking_uri: str | None = None
    churn_params: dict[str, Any] = field(default_factory=dict)
    clv_params: dict[str, Any] = field(default_factory=dict)
    gate_tolerance: float = 0.005
    register: bool = True
    engine: str = "pandas"
    n_jobs: int = 2

    def churn_kwargs(self) -> dict[str, Any]:
        """``ChurnModel`` arguments: ``n_jobs`` then the explicit overrides."""
        return {"n_jobs": self.n_jobs, **self.churn_params}

    def clv_kwargs(self) -> dict[str, Any]:
        """``ClvModel`` arguments: ``n_jobs`` then the explicit overrides."""
        return {"n_jobs": self.n_jobs, **self.clv_params}


@dataclass
class TrainResult:
    """What a training run produced."""

    run_id: str
    model: FideliteModel
    metrics: dict[str, float]
    cutoffs: list[pd.Timestamp]
    model_uri: str
    model_version: str | None = None
    gate: GateDecision | None = None
    timings: dict[str, float] = field(default_factory=dict)
    """Wall seconds per stage: ``features`` (all windows + as_of, incl. per-window
    baselines), ``fit`` (models, calibration, champion re-scoring) and ``mlflow``
    (logging, registering, gate)."""


@dataclass
class _Window:
    """One backtest window: purchasers' features at the cutoff and their outcomes."""

    cutoff: pd.Timestamp
    features: pd.DataFrame
    baseline: pd.DataFrame
    labels: pd.DataFrame
    horizon_days: int

    @property
    def augmented(self) -> pd.DataFrame:
        """Features + baseline columns, exactly as ``FideliteModel`` builds them."""
        return self.features.join(self.baseline)


# --------------------------------------------------------------------------- inputs
def load_inputs(
    transactions: Any, events: Any = None, customers: Any = None, *, as_of: Any
) -> Inputs:
    """Load, validate and cut every input to ``timestamp < as_of + 1 day``.

    Customers who sign up after ``as_of`` are dropped too: they do not exist yet.
    """
    inputs = features_inputs.load_inputs(transactions, events, customers, as_of=as_of, cut=True)
    if inputs.transactions.empty:
        raise InsufficientHistoryError(
            f"transactions: no rows before {inputs.end.date()} (as_of {as_of}); nothing to train on"
        )
    return inputs


def _purchasers(features: pd.DataFrame) -> pd.DataFrame:
    return features.loc[features["orders_total"] > 0]


def _build_window(build: FeatureBuilder, tx, cutoff: pd.Timestamp, horizon: int) -> _Window:
    features = _purchasers(build(cutoff))
    labels = make_labels(tx, as_of=cutoff, horizon_days=horizon, customers_index=features.index)
    baseline = BaselineModel(horizon).fit(features).predict(features)
    return _Window(cutoff, features, baseline, labels, horizon)


# --------------------------------------------------------------------------- progress
class _StageTimer:
    """Accumulates wall-clock seconds per named stage: ``with timer("fit"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


@contextmanager
def _progress(total: int) -> Iterator[Any]:
    """A rich progress bar on stderr; ``step(description)`` advances it."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    with progress:
        task = progress.add_task("training", total=total)

        def step(description: str) -> None:
            progress.update(task, description=description, advance=1)
            logger.info(description)

        yield step


# --------------------------------------------------------------------------- metrics
def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in metrics.items()}


def _validation_metrics(
    labels: pd.DataFrame, churn_p: np.ndarray, clv_pred: np.ndarray, prefix: str
) -> dict[str, float]:
    return {
        **_prefixed(f"{prefix}churn_", evaluate.churn_metrics(labels["churned"], churn_p)),
        **_prefixed(f"{prefix}clv_", evaluate.clv_metrics(labels["future_spend"], clv_pred)),
    }


def _figures(
    labels: pd.DataFrame,
    churn_by_model: dict[str, np.ndarray],
    clv_by_model: dict[str, np.ndarray],
    importance: pd.Series | None,
) -> dict[str, Any]:
    y, spend = labels["churned"].to_numpy(), labels["future_spend"].to_numpy()
    curves = {name: (y, p) for name, p in churn_by_model.items()}
    figures = {
        "figures/roc.png": evaluate.plot_roc(curves),
        "figures/calibration.png": evaluate.plot_calibration(curves),
        "figures/cumulative_gain.png": evaluate.plot_cumulative_gain(curves),
        "figures/clv_deciles.png": evaluate.plot_clv_deciles(spend, clv_by_model),
    }
    if importance is not None:
        figures["figures/feature_importance.png"] = evaluate.plot_feature_importance(importance)
    return figures


def _score_champion(
    model_name: str, tracking_uri: str | None, window: _Window
) -> tuple[dict[str, float], str | None]:
    """Score the current champion on the validation window (empty when there is none)."""
    client = use_tracking(tracking_uri)
    version = alias_version(client, model_name, CHAMPION)
    if version is None:
        return {}, None
    try:
        loaded = mlflow.pyfunc.load_model(f"models:/{model_name}@{CHAMPION}")
        champion: FideliteModel = loaded.unwrap_python_model()
        scores = champion.predict(
            None, window.features, params={"as_of": str(window.cutoff.date())}
        )
    # Unpickling an old champion can fail in many ways (renamed classes, changed
    # attributes); none of them may block training its replacement.
    except Exception as exc:
        logger.warning("could not score champion version %s: %s", version, exc)
        return {}, version
    scores = scores.set_index("customer_id").loc[window.labels.index]
    metrics = _validation_metrics(
        window.labels,
        scores["churn_probability"].to_numpy(),
        scores["predicted_clv"].to_numpy(),
        "champion_",
    )
    metrics["champion_version"] = float(version)
    return metrics, version


# --------------------------------------------------------------------------- fitting
def _check_labels(labels: pd.DataFrame, windows: list[_Window], role: str) -> None:
    """Refuse windows whose outcomes cannot train or validate a model, naming them."""
    cutoffs = ", ".join(str(w.cutoff.date()) for w in windows)
    if labels.empty or labels["churned"].nunique() < 2:
        outcome = (
            "no customers"
            if labels.empty
            else ("every customer churned" if labels["churned"].iat[0] else "no customer churned")
        )
        raise InsufficientHistoryError(
            f"{role} window(s) at {cutoffs}: {outcome} within {windows[0].horizon_days} days, "
            "so churn cannot be learnt or evaluated; check that the transactions cover the "
            "label windows, or use --baseline-only"
        )
    if labels["future_spend"].clip(lower=0).sum() <= 0:
        raise InsufficientHistoryError(
            f"{role} window(s) at {cutoffs}: no positive spend after the cutoff, so CLV "
            "cannot be learnt or evaluated; use --baseline-only"
        )


def _window_column(windows: list[_Window]) -> np.ndarray:
    """Each stacked row's window cutoff, shape (n_rows,), aligned with the concat order."""
    return np.concatenate([np.full(len(w.labels), w.cutoff.to_datetime64()) for w in windows])


def _fit_ml(
    windows: list[_Window],
    config: TrainConfig,
    step,
    scored: pd.DataFrame,
    as_of: pd.Timestamp,
) -> tuple[FideliteModel, dict[str, float], dict[str, Any]]:
    """Validation fit on windows[:-1] → windows[-1], then the final refit on all.

    ``scored`` holds the purchasers' features at ``as_of`` with the final
    baseline's columns: the rows the final model will score, used without
    labels (so point-in-time safe) in two ways that the validation model
    mirrors on its own window:

    - features ``scored`` places almost entirely outside the training windows'
      range (``FeatureEncoder.unsupported_features_``) are left out of both
      models, so the validation picks tree counts for the shipped feature set;
    - the CLV trees are re-centred (``ClvModel.keep_level_on``) so that they
      only redistribute the baseline x seasonal-level total among customers.
    """
    train_windows, val = windows[:-1], windows[-1]
    train_aug = pd.concat([w.augmented for w in train_windows])
    train_labels = pd.concat([w.labels for w in train_windows])
    _check_labels(train_labels, train_windows, "training")
    _check_labels(val.labels, [val], "validation")
    val_aug = val.augmented

    all_aug = pd.concat([w.augmented for w in windows])
    final_encoder = FeatureEncoder().fit(all_aug, reference=scored)
    encoder = FeatureEncoder(exclude=tuple(final_encoder.unsupported_features_)).fit(train_aug)
    X_tr, X_val = encoder.transform(train_aug), encoder.transform(val_aug)
    churn_model, clv_model = model_classes(config.engine)
    churn_val = churn_model(**config.churn_kwargs()).fit(
        X_tr, train_labels["churned"], X_val, val.labels["churned"]
    )
    clv_val = clv_model(**config.clv_kwargs())
    train_starts = _window_column(train_windows)
    level = SeasonalLevel(config.horizon_days).fit(
        train_starts, clv_val.baseline_level(X_tr), train_labels["future_spend"]
    )
    # The validation window's level comes from the training windows only.
    offset_val = level.predict(val.cutoff)
    clv_val.fit(
        X_tr,
        train_labels["future_spend"],
        X_val,
        val.labels["future_spend"],
        offset=level.window_offsets(train_starts),
        offset_val=offset_val,
    )
    step("validation models fitted")

    p_raw = churn_val.predict_raw_proba(X_val)
    calibrator, calibration = choose_calibration(val.labels["churned"], p_raw)
    # The aggregate comes from baseline x level; trees only redistribute it.
    clv_val.keep_level_on(X_val, offset_val)
    clv_pred = clv_val.predict(X_val, offset=offset_val)
    intervals = RatioIntervals().fit(clv_pred, val.labels["future_spend"])
    metrics = {
        **_validation_metrics(val.labels, p_raw, clv_pred, ""),
        **_validation_metrics(
            val.labels,
            val.baseline["baseline_churn_probability"].to_numpy(),
            val.baseline["baseline_clv"].to_numpy(),
            "baseline_",
        ),
        **_prefixed("churn_", calibration),
        "clv_interval_coverage_p10_p90": crossfit_interval_coverage(
            clv_pred, val.labels["future_spend"]
        ),
        "clv_validation_log_level": offset_val,
        "churn_best_iteration": float(churn_val.best_iteration_),
        "clv_best_iteration": float(clv_val.best_iteration_),
        "n_train_rows": float(len(X_tr)),
        "n_validation_rows": float(len(X_val)),
    }

    all_labels = pd.concat([w.labels for w in windows])
    X_all = final_encoder.transform(all_aug)
    churn = churn_model(
        **{
            **config.churn_kwargs(),
            "n_estimators": churn_val.best_iteration_,
            "early_stopping_rounds": 0,
        }
    ).fit(X_all, all_labels["churned"])
    churn.set_calibrator(calibrator)
    clv = clv_model(
        **{
            **config.clv_kwargs(),
            "n_estimators": clv_val.best_iteration_,
            "early_stopping_rounds": 0,
        }
    )
    all_starts = _window_column(windows)
    final_level = SeasonalLevel(config.horizon_days).fit(
        all_starts, clv.baseline_level(X_all), all_labels["future_spend"]
    )
    clv.fit(X_all, all_labels["future_spend"], offset=final_level.window_offsets(all_starts))
    clv.keep_level_on(final_encoder.transform(scored), final_level.predict(as_of))
    step("final models refitted on all windows")

    p_val = calibrator.predict(p_raw) if calibrator is not None else p_raw
    model_parts = {
        "encoder": final_encoder,
        "churn": churn,
        "clv": clv,
        "clv_level": final_level,
        "intervals": intervals,
        "churn_reference": np.quantile(p_val, np.linspace(0, 1, 1001)),
    }
    figures = _figures(
        val.labels,
        {"LightGBM": p_raw, "BG/NBD": val.baseline["baseline_churn_probability"].to_numpy()},
        {"LightGBM": clv_pred, "BG/NBD + Gamma-Gamma": val.baseline["baseline_clv"].to_numpy()},
        churn.feature_importance(),
    )
    return model_parts, metrics, figures


def _fit_baseline_validation(
    windows: list[_Window],
) -> tuple[dict[str, Any], dict[str, float], dict[str, Any]]:
    """Baseline-only: metrics and intervals on the newest window, if there is one."""
    if not windows:
        return {}, {}, {}
    val = windows[-1]
    p = val.baseline["baseline_churn_probability"].to_numpy()
    clv_pred = val.baseline["baseline_clv"].to_numpy()
    metrics = {
        **_validation_metrics(val.labels, p, clv_pred, ""),
        **_validation_metrics(val.labels, p, clv_pred, "baseline_"),
        "clv_interval_coverage_p10_p90": crossfit_interval_coverage(
            clv_pred, val.labels["future_spend"]
        ),
        "n_validation_rows": float(len(val.labels)),
    }
    parts = {
        "intervals": RatioIntervals().fit(clv_pred, val.labels["future_spend"]),
        "churn_reference": np.quantile(p, np.linspace(0, 1, 1001)),
    }
    figures = _figures(val.labels, {"BG/NBD": p}, {"BG/NBD + Gamma-Gamma": clv_pred}, None)
    return parts, metrics, figures


def _cutoffs(tx: pd.DataFrame, config: TrainConfig) -> list[pd.Timestamp]:
    try:
        cutoffs = backtest_cutoffs(
            tx["timestamp"].min(),
            config.as_of,
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
            f"only {len(cutoffs)} backtest window fits before {pd.Timestamp(config.as_of).date()} "
            f"with horizon {config.horizon_days} days; LightGBM needs 2 (one to train, one to "
            "validate). Use --baseline-only, a shorter horizon, overlapping windows "
            "(--step-days, --min-history-days) or more history."
        )
    return cutoffs[-1:] if config.baseline_only else cutoffs


# --------------------------------------------------------------------------- logging
def _column_type(series: pd.Series) -> str:
    """MLflow column type matching what ``build_features`` produces for this column."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "long"
    if pd.api.types.is_numeric_dtype(series):
        return "double"
    return "string"


def _signature(features: pd.DataFrame) -> ModelSignature:
    """Input schema of a ``build_features`` frame; ``as_of`` and ``reasons`` as params.

    Params reach ``FideliteModel.predict`` through ``mlflow.pyfunc`` only when they
    are declared here: ``as_of`` (ISO date, "" = the training ``as_of``) and
    ``reasons`` (bool, False skips the reason phrases).

    Only the columns the baseline cannot do without are required, so frames
    without events or customers (fewer columns) still score. Types follow
    ``build_features`` (MLflow refuses lossy casts such as int64 to double).
    """
    specs = [ColSpec("string", "customer_id", required=False)]
    specs += [
        ColSpec(_column_type(features[col]), col, required=col in REQUIRED_INPUT_COLUMNS)
        for col in features.columns
    ]
    return ModelSignature(
        inputs=Schema(specs),
        params=ParamSchema(
            [ParamSpec("as_of", "string", ""), ParamSpec("reasons", "boolean", True)]
        ),
    )


def _input_example(features: pd.DataFrame) -> pd.DataFrame:
    return _purchasers(features).head(5).reset_index()


def _pip_requirements() -> list[str]:
    """Pinned runtime requirements of the pickled model.

    Given explicitly because MLflow's inference loads the model in a subprocess
    (~10 s). The model's classes live in the ``fidelite`` distribution
    (``training``/``features`` packages), which must be installed where it loads.
    """
    from importlib.metadata import version

    packages = ("mlflow", "lightgbm", "pandas", "numpy", "scikit-learn", "scipy", "cloudpickle")
    return [f"{name}=={version(name)}" for name in packages]


def _log_params(config: TrainConfig, cutoffs: list[pd.Timestamp], fingerprint: dict) -> None:
    params = {k: v for k, v in asdict(config).items() if k not in ("churn_params", "clv_params")}
    params["as_of"] = str(as_of_bounds(config.as_of)[0].date())
    params["cutoffs"] = ",".join(str(c.date()) for c in cutoffs)
    if not config.baseline_only:
        params.update(
            {f"churn__{k}": v for k, v in ChurnModel(**config.churn_kwargs()).get_params().items()}
        )
        params.update(
            {f"clv__{k}": v for k, v in ClvModel(**config.clv_kwargs()).get_params().items()}
        )
    params.update({f"data__{k}": v for k, v in fingerprint.items()})
    mlflow.log_params({k: ("" if v is None else v) for k, v in params.items()})


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}


# --------------------------------------------------------------------------- entry point
def train(
    transactions: Any,
    events: Any = None,
    customers: Any = None,
    *,
    config: TrainConfig,
) -> TrainResult:
    """Train, log to MLflow, register as ``challenger`` and optionally promote.

    Parameters
    ----------
    transactions, events, customers : path or DataFrame
        Raw or normalised inputs (see ``features.data``); events and customers optional.
    config : TrainConfig

    Returns
    -------
    TrainResult

    Raises
    ------
    InsufficientHistoryError
        When the history is too short for two backtest windows (LightGBM) and
        ``baseline_only`` is not set. Nothing is logged or registered then.
    """
    day, _ = as_of_bounds(config.as_of)
    horizon = int(config.horizon_days)
    inputs = load_inputs(transactions, events, customers, as_of=day)
    tx, ev, cu = inputs.transactions, inputs.events, inputs.customers
    cutoffs = _cutoffs(tx, config)
    experiment_id = get_or_create_experiment(config.experiment, config.tracking_uri)

    n_steps = len(cutoffs) + (3 if config.baseline_only else 5)
    timer = _StageTimer()
    with (
        _progress(n_steps) as step,
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"{'baseline' if config.baseline_only else 'train'}-{day.date()}-h{horizon}",
        ) as run,
    ):
        fingerprint = data_fingerprint(tx, ev, cu)
        _log_params(config, cutoffs, fingerprint)
        log_json(fingerprint, "data_fingerprint.json")
        with timer("features"):
            build = feature_builder(config.engine, inputs)
            windows = []
            for cutoff in cutoffs:
                windows.append(_build_window(build, tx, cutoff, horizon))
                step(f"window {cutoff.date()}: {len(windows[-1].labels)} customers")
            current = build(day)

        with timer("fit"):
            buyers_now = _purchasers(current)
            final_baseline = BaselineModel(horizon).fit(buyers_now)
            if config.baseline_only:
                parts, metrics, figures = _fit_baseline_validation(windows)
            else:
                scored = buyers_now.join(final_baseline.predict(buyers_now))
                parts, metrics, figures = _fit_ml(windows, config, step, scored, day)
            model = FideliteModel(
                baseline=final_baseline,
                horizon_days=horizon,
                train_start=tx["timestamp"].min().floor("D"),
                train_end=day,
                validation_metrics=_finite(metrics),
                **parts,
            )
            step("baseline fitted at as_of")
            if windows:
                champion_metrics, _ = _score_champion(
                    config.model_name, config.tracking_uri, windows[-1]
                )
                metrics.update(champion_metrics)

        with timer("mlflow"):
            mlflow.log_metrics(_finite(metrics))
            log_json(model.feature_names or list(current.columns), "features.json")
            if "encoder" in parts:
                # Left out because the customers at as_of lie beyond every window's range.
                mlflow.set_tag(
                    "unsupported_features", ",".join(parts["encoder"].unsupported_features_)
                )
            log_json(
                {
                    "bgnbd": final_baseline.bgnbd_.summary(),
                    "gamma_gamma": final_baseline.gamma_gamma_.summary(),
                },
                "baseline_params.json",
            )
            for path, figure in figures.items():
                mlflow.log_figure(figure, path)
            step("metrics and figures logged")
            logged = mlflow.pyfunc.log_model(
                name="model",
                python_model=model,
                signature=_signature(current),
                input_example=_input_example(current),
                pip_requirements=_pip_requirements(),
            )
            step("model logged")
        run_id = run.info.run_id

    result = TrainResult(
        run_id=run_id,
        model=model,
        metrics=metrics,
        cutoffs=cutoffs,
        model_uri=logged.model_uri,
        timings=timer.seconds,
    )
    if config.register:
        with timer("mlflow"):
            result.model_version = register(
                logged.model_uri, config.model_name, tracking_uri=config.tracking_uri
            )
            if config.promote:
                result.gate = promote(
                    config.model_name,
                    tracking_uri=config.tracking_uri,
                    tolerance=config.gate_tolerance,
                )
    return result
