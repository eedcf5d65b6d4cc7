"""Model registry: register a challenger, gate its promotion, roll back to any version.

The gate compares churn ROC-AUC and CLV normalized Gini of the challenger and the
champion **on the same labelled window, after both models' data**: the challenger's
held-out window, which it never trained on. At train time
(:func:`fidelite.training.gate.champion_comparison`) the champion is re-scored on it when
its data ended before it, or, when both held out that very window (a retrain at the same
as-of), their held-out metrics are compared as logged; the run records the basis in the
tags ``gate_basis`` and ``gate_fair``. When no such window exists (the champion saw
later data than the challenger's held-out window) the gate says so and promotes only
with ``force``.

Nothing is registered whose validation metrics are missing or NaN
(:class:`~fidelite.errors.ModelQualityError`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import mlflow
import mlflow.pyfunc
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from fidelite.errors import ModelNotFoundError, ModelQualityError
from fidelite.training.model import FideliteModel
from fidelite.training.tracking import mlflow_client, resolve_tracking_uri, tracking_scope

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "GATE_METRICS",
    "GateDecision",
    "alias_version",
    "check_quality",
    "compare",
    "load_model",
    "promote",
    "promote_version",
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


def check_quality(metrics: dict[str, float]) -> None:
    """Refuse a model whose gate metrics are missing or not finite.

    Raises
    ------
    ModelQualityError
        Naming the metrics at fault.
    """
    bad = [m for m in GATE_METRICS if not math.isfinite(metrics.get(m, math.nan))]
    if bad:
        raise ModelQualityError(
            f"validation metrics {', '.join(bad)} are missing or NaN: the held-out window has "
            "no usable outcomes (is the as-of day after the end of the data?); the model was "
            "not registered"
        )


def register(
    model_uri: str,
    model_name: str = "fidelite",
    *,
    metrics: dict[str, float],
    tracking_uri: str | None = None,
) -> str:
    """Register a logged model as a new version and point ``challenger`` at it.

    Parameters
    ----------
    model_uri : str
        URI of the logged model (``models:/m-...`` from ``log_model`` or ``runs:/<id>/model``).
    metrics : dict
        Its validation metrics; :func:`check_quality` must pass.

    Returns
    -------
    str
        The new version number.
    """
    check_quality(metrics)
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


def _set_champion(client: MlflowClient, model_name: str, version: str, reason: str) -> None:
    """Point ``champion`` at ``version`` and record why on the version."""
    client.set_registered_model_alias(model_name, CHAMPION, version)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    client.set_model_version_tag(model_name, version, "champion_since", stamp)
    client.set_model_version_tag(model_name, version, "champion_reason", reason[:4000])


def promote_version(
    model_name: str, version: str, *, reason: str, tracking_uri: str | None = None
) -> GateDecision:
    """Make any registered version the champion (a rollback), recording ``reason``.

    Raises
    ------
    ModelNotFoundError
        When the version does not exist.
    """
    client = mlflow_client(resolve_tracking_uri(tracking_uri))
    try:
        client.get_model_version(model_name, str(version))
    except MlflowException as exc:
        raise ModelNotFoundError(f"model {model_name!r} has no version {version}") from exc
    previous = alias_version(client, model_name, CHAMPION)
    text = f"version {version} made champion by hand (was {previous}): {reason}"
    _set_champion(client, model_name, str(version), text)
    return GateDecision(True, text, str(version), previous)


def _basis(tags: dict[str, str], metrics: dict[str, float], champion: str) -> tuple[bool, str]:
    """Whether the challenger's run compared it fairly with this champion, and how."""
    if metrics.get("champion_version") != float(champion):
        return False, (
            f"the champion is now version {champion}, not the one the challenger was compared with"
        )
    return tags.get("gate_fair") == "true", tags.get("gate_basis", "no comparison recorded")


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
        Tracking/registry URI (``training.tracking.resolve_tracking_uri``).
    force : bool
        Promote regardless of the metrics, and without a fair comparison.
    tolerance : float
        Allowed shortfall on each gate metric.

    Returns
    -------
    GateDecision
        Whether it was promoted and why.
    """
    client = mlflow_client(resolve_tracking_uri(tracking_uri))
    challenger = alias_version(client, model_name, CHALLENGER)
    if challenger is None:
        return GateDecision(False, f"no {CHALLENGER!r} version of model {model_name!r} to promote")
    champion = alias_version(client, model_name, CHAMPION)
    if champion == challenger:
        return GateDecision(
            False, f"version {challenger} is already the champion", challenger, champion
        )

    def promote_now(reason: str, comparison: dict | None = None) -> GateDecision:
        _set_champion(client, model_name, challenger, reason)
        return GateDecision(True, reason, challenger, champion, comparison or {})

    if champion is None:
        return promote_now(f"no champion yet: version {challenger} promoted")
    run = client.get_run(client.get_model_version(model_name, challenger).run_id)
    metrics = run.data.metrics
    fair, basis = _basis(run.data.tags, metrics, champion)
    champion_metrics = {m: metrics.get(f"champion_{m}", math.nan) for m in GATE_METRICS}
    passed, comparison, failures = compare(metrics, champion_metrics, tolerance)
    if metrics.get("uplift_gate_passed") == 0.0:  # see training.uplift.gate
        passed = False
        failures.append(
            run.data.tags.get("uplift_gate_reason")
            or "the challenger has no uplift component but the champion has one"
        )
    summary = f"{_fmt(comparison)} ({basis}, tolerance {tolerance})"
    if force:
        return promote_now(f"forced: version {challenger} promoted; {summary}", comparison)
    if not fair:
        return GateDecision(
            False,
            f"version {challenger} not compared fairly with champion version {champion}: "
            f"{basis}; promote with --force, or retrain so that its held-out window follows "
            "the champion's data",
            challenger,
            champion,
            comparison,
        )
    if passed:
        return promote_now(
            f"version {challenger} at least as good as champion version {champion}: {summary}",
            comparison,
        )
    return GateDecision(
        False,
        f"version {challenger} refused, champion stays version {champion}: "
        f"{'; '.join(failures)} ({basis})",
        challenger,
        champion,
        comparison,
    )
