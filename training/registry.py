"""Model registry: register a challenger and gate its promotion to champion.

The gate compares churn ROC-AUC and CLV normalized Gini. The fair comparison is
on the same rows: at train time the current champion is scored on the new
validation window and logged to the challenger's run as ``champion_*``; the gate
reads those. If they are missing (the champion appeared after the challenger
was trained) it falls back to the champion's own run metrics and says so in the
decision, since those come from a different window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mlflow
import mlflow.pyfunc
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from fidelite.errors import ModelNotFoundError
from fidelite.training.model import FideliteModel
from fidelite.training.tracking import mlflow_client, resolve_tracking_uri, tracking_scope

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "GATE_METRICS",
    "GateDecision",
    "alias_version",
    "compare",
    "load_model",
    "promote",
    "register",
]

CHALLENGER = "challenger"
CHAMPION = "champion"
GATE_METRICS = ("churn_roc_auc", "clv_normalized_gini")
DEFAULT_TOLERANCE = 0.005


@dataclass
class GateDecision:
    """Outcome of the promotion gate.

    Attributes
    ----------
    promoted : bool
        True when ``champion`` now points at the challenger.
    reason : str
        Human-readable explanation, including the compared numbers.
    challenger_version, champion_version : str or None
        Versions compared (champion is the previous one).
    comparison : dict
        ``{metric: (challenger, champion)}`` for the gate metrics.
    """

    promoted: bool
    reason: str
    challenger_version: str | None = None
    champion_version: str | None = None
    comparison: dict[str, tuple[float, float]] = field(default_factory=dict)


def alias_version(client: MlflowClient, model_name: str, alias: str) -> str | None:
    """Version the alias points at, or None when the model or alias does not exist."""
    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def load_model(model_uri: str, *, tracking_uri: str | None = None) -> FideliteModel:
    """The ``FideliteModel`` behind any MLflow model URI (``models:/fidelite@champion``...).

    Raises
    ------
    ModelNotFoundError
        When the URI names no model in the store.
    """
    uri = resolve_tracking_uri(tracking_uri)
    try:
        with tracking_scope(uri):
            return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"no model at {model_uri} in the MLflow store {uri}: train one with "
            "`fidelite train ... --promote` or pass --model-uri"
        ) from exc


def register(
    model_uri: str, model_name: str = "fidelite", *, tracking_uri: str | None = None
) -> str:
    """Register a logged model as a new version and point ``challenger`` at it.

    Parameters
    ----------
    model_uri : str
        URI of the logged model (``models:/m-...`` from ``log_model`` or ``runs:/<id>/model``).

    Returns
    -------
    str
        The new version number.
    """
    with tracking_scope(resolve_tracking_uri(tracking_uri)) as client:
        version = mlflow.register_model(model_uri, model_name)
        client.set_registered_model_alias(model_name, CHALLENGER, version.version)
    return str(version.version)


def compare(
    challenger: dict[str, float],
    champion: dict[str, float],
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[bool, dict[str, tuple[float, float]], list[str]]:
    """Challenger passes when every gate metric is >= champion - tolerance.

    Returns
    -------
    passed : bool
    comparison : dict of metric -> (challenger, champion)
    failures : list of str
        One line per failed or missing metric.
    """
    comparison: dict[str, tuple[float, float]] = {}
    failures: list[str] = []
    for metric in GATE_METRICS:
        new, old = challenger.get(metric, math.nan), champion.get(metric, math.nan)
        comparison[metric] = (new, old)
        if math.isnan(new):
            failures.append(f"challenger has no {metric}")
        elif not math.isnan(old) and new < old - tolerance:
            failures.append(f"{metric} {new:.4f} < champion {old:.4f} - {tolerance}")
    return not failures, comparison, failures


def _fmt(comparison: dict[str, tuple[float, float]]) -> str:
    return ", ".join(f"{m}: {new:.4f} vs {old:.4f}" for m, (new, old) in comparison.items())


def promote(
    model_name: str = "fidelite",
    *,
    tracking_uri: str | None = None,
    force: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
) -> GateDecision:
    """Move ``champion`` to the current ``challenger`` if it passes the gate.

    Parameters
    ----------
    model_name : str
        Registered model name.
    tracking_uri : str, optional
        Tracking/registry URI (see ``training.tracking.resolve_tracking_uri``).
    force : bool
        Promote regardless of the metrics.
    tolerance : float
        Allowed shortfall on each gate metric.

    Returns
    -------
    GateDecision
        Whether it was promoted and why.
    """
    client = mlflow_client(resolve_tracking_uri(tracking_uri))
    challenger_version = alias_version(client, model_name, CHALLENGER)
    if challenger_version is None:
        return GateDecision(False, f"no {CHALLENGER!r} version of model {model_name!r} to promote")
    champion_version = alias_version(client, model_name, CHAMPION)
    if champion_version == challenger_version:
        return GateDecision(
            False,
            f"version {challenger_version} is already the champion",
            challenger_version,
            champion_version,
        )

    def promote_now(reason: str, comparison: dict | None = None) -> GateDecision:
        client.set_registered_model_alias(model_name, CHAMPION, challenger_version)
        return GateDecision(True, reason, challenger_version, champion_version, comparison or {})

    if champion_version is None:
        return promote_now(f"no champion yet: version {challenger_version} promoted")

    challenger_run = client.get_run(client.get_model_version(model_name, challenger_version).run_id)
    metrics = challenger_run.data.metrics
    champion_on_same_window = {
        m: metrics[f"champion_{m}"]
        for m in GATE_METRICS
        if f"champion_{m}" in metrics and metrics.get("champion_version") == float(champion_version)
    }
    if len(champion_on_same_window) == len(GATE_METRICS):
        champion_metrics, basis = champion_on_same_window, "same validation window"
    else:
        champion_run = client.get_run(client.get_model_version(model_name, champion_version).run_id)
        champion_metrics = champion_run.data.metrics
        basis = "champion's own validation window (not re-scored on the challenger's)"
    passed, comparison, failures = compare(metrics, champion_metrics, tolerance)
    if metrics.get("uplift_gate_passed") == 0.0:  # see training.uplift.gate
        passed = False
        failures.append("the challenger has no uplift component but the champion has one")
    summary = f"{_fmt(comparison)} ({basis}, tolerance {tolerance})"
    if force:
        return promote_now(f"forced: version {challenger_version} promoted; {summary}", comparison)
    if passed:
        return promote_now(
            f"version {challenger_version} at least as good as champion version "
            f"{champion_version}: {summary}",
            comparison,
        )
    return GateDecision(
        False,
        f"version {challenger_version} refused, champion stays version {champion_version}: "
        f"{'; '.join(failures)} ({basis})",
        challenger_version,
        champion_version,
        comparison,
    )
