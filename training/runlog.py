"""Recording a training run in MLflow: parameters, metrics, figures, artifacts, the model."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.base import BaseEstimator

from fidelite.training import packaging
from fidelite.training.config import TrainConfig
from fidelite.training.fitting import FittedModels, finite
from fidelite.training.gate import ChampionComparison
from fidelite.training.model import FideliteModel
from fidelite.training.plots import validation_figures
from fidelite.training.tracking import experiment_id, log_json, tracking_scope
from fidelite.training.uplift.fit import UpliftFit
from fidelite.training.uplift.tracking import log_uplift
from fidelite.training.windows import WindowPlan

__all__ = ["LoggedRun", "log_run", "run_params"]


@dataclass(frozen=True)
class LoggedRun:
    """Where a training run was recorded.

    Attributes
    ----------
    run_id : str
    model_uri : str
        URI of the logged pyfunc model (``models:/m-...``), loadable and registrable.
    """

    run_id: str
    model_uri: str


def _flat(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``{prefix}{name}: value``, dataclass values (e.g. ``Trees``) expanded field by field."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(_flat(prefix, dataclasses.asdict(value)))
        else:
            out[f"{prefix}{name}"] = value
    return out


def _days(cutoffs: list[pd.Timestamp]) -> str:
    return ",".join(str(c.date()) for c in cutoffs)


def run_params(
    config: TrainConfig,
    as_of: pd.Timestamp,
    plan: WindowPlan,
    fitted: FittedModels,
    fingerprint: Mapping[str, Any],
) -> dict[str, Any]:
    """Every parameter of the run as MLflow params (strings, "" for None)."""
    skip = {"churn_params", "spend_params", "timing_params", "feature_params"}
    params = {k: v for k, v in dataclasses.asdict(config).items() if k not in skip}
    params["as_of"] = str(as_of.date())
    params["cutoffs"] = _days(plan.cutoffs)
    params["train_cutoffs"] = _days(plan.train)
    params["holdout_cutoff"] = "" if plan.holdout is None else str(plan.holdout.date())
    params["holdout_mode"] = plan.mode
    params["level_cutoffs"] = _days(plan.level)
    params.update(_flat("features__", dataclasses.asdict(config.feature_params)))
    if fitted.purchasers is not None:
        for name in ("churn", "spend", "timing"):
            estimator = getattr(fitted.purchasers, name)
            if isinstance(estimator, BaseEstimator):
                params.update(_flat(f"{name}__", estimator.get_params(deep=False)))
    params.update(_flat("data__", fingerprint))
    return {k: ("" if v is None else str(v)) for k, v in params.items()}


def _log_artifacts(
    client: MlflowClient, run_id: str, fitted: FittedModels, model: FideliteModel
) -> None:
    log_json(client, run_id, model.feature_names, "features.json")
    log_json(client, run_id, model.code_version, "code_version.json")
    log_json(client, run_id, model.baseline.report(), "baseline_params.json")
    log_json(client, run_id, fitted.notes, "warnings.json")
    if fitted.validation is None:
        return
    # Per-customer predictions of the held-out window (made by the shipped models, which
    # never saw it): what the reports' model-health charts read.
    frame = fitted.validation
    with tempfile.TemporaryDirectory(prefix="fidelite-") as folder:
        path = Path(folder) / "predictions.parquet"
        frame.rename_axis("customer_id").reset_index().to_parquet(path)
        client.log_artifact(run_id, str(path), "validation")
    churn = None if fitted.purchasers is None else fitted.purchasers.churn
    importance = None if churn is None else churn.feature_importance()
    churn_curves = {"BG/NBD": frame["baseline_churn_probability"].to_numpy()}
    clv_curves = {"BG/NBD + Gamma-Gamma": frame["baseline_clv"].to_numpy()}
    if churn is not None:
        churn_curves = {"LightGBM": frame["churn_probability"].to_numpy(), **churn_curves}
        clv_curves = {"LightGBM": frame["predicted_clv"].to_numpy(), **clv_curves}
    figures = validation_figures(
        frame["churned"].to_numpy(),
        frame["future_spend"].to_numpy(),
        churn_curves,
        clv_curves,
        importance,
    )
    for path, figure in figures.items():
        client.log_figure(run_id, figure, path)


def log_run(
    *,
    tracking_uri: str,
    config: TrainConfig,
    as_of: pd.Timestamp,
    fingerprint: Mapping[str, Any],
    plan: WindowPlan,
    fitted: FittedModels,
    model: FideliteModel,
    features: pd.DataFrame,
    gate: ChampionComparison,
    uplift: UpliftFit | None = None,
) -> LoggedRun:
    """Record the run and log the model; nothing is registered here.

    Parameters
    ----------
    as_of : Timestamp
        The training day ``D``.
    fingerprint : mapping
        :func:`~fidelite.training.tracking.data_fingerprint` of the inputs.
    features : DataFrame
        ``build_features`` at the as-of day (for the model's signature and example).
    gate : ChampionComparison
        The champion's numbers on the held-out window, and how fair they are.
    uplift : UpliftFit, optional
        The uplift fit (``train --campaigns``): its metrics, evidence and curves.
    """
    kind = "baseline" if config.baseline_only else "train"
    run_name = f"{kind}-{as_of.date()}-h{config.horizon_days}"
    with tracking_scope(tracking_uri) as client:
        experiment = experiment_id(config.experiment, tracking_uri)
        with mlflow.start_run(experiment_id=experiment, run_name=run_name) as run:
            run_id = run.info.run_id
            params = run_params(config, as_of, plan, fitted, fingerprint)
            mlflow.log_params(params)
            mlflow.log_metrics(finite({**fitted.metrics, **gate.metrics}))
            mlflow.set_tags(
                {
                    "unsupported_features": ",".join(fitted.unsupported_features),
                    "gate_basis": gate.basis,
                    "gate_fair": str(gate.fair).lower(),
                    "warnings": " | ".join(fitted.notes)[:4000],
                }
            )
            log_json(client, run_id, fingerprint, "data_fingerprint.json")
            _log_artifacts(client, run_id, fitted, model)
            if uplift is not None:
                log_uplift(uplift)
            logged = mlflow.pyfunc.log_model(
                name="model",
                python_model=model,
                signature=packaging.signature(features),
                input_example=packaging.input_example(features),
                pip_requirements=packaging.pip_requirements(),
            )
    return LoggedRun(run_id=run_id, model_uri=logged.model_uri)
