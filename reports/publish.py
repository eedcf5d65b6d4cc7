"""Where a report goes after ``fidelite score``: next to the scores, and into MLflow.

``fidelite score`` writes the report beside the scores snapshot
(``scores.parquet`` -> ``scores.report.html``, see :func:`report_path_for`) and logs it
to the MLflow run of the model that scored, so the MLflow UI shows it next to the
model. The service's ``GET /report`` returns the file beside its snapshot
(:func:`report_for_snapshot`): reading a file, cheap enough for every request.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

import pandas as pd

from fidelite.errors import FideliteError
from fidelite.features.inputs import TableSource
from fidelite.reports.inputs import ReportConfig, load_report_inputs
from fidelite.reports.report import build_report, write_report

__all__ = [
    "ReportUnavailableError",
    "log_report",
    "publish_scoring_report",
    "report_for_snapshot",
    "report_path_for",
]

logger = logging.getLogger(__name__)

_REGISTRY = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-f]+)(/.*)?$")
_LOGGED = re.compile(r"^models:/(?P<model_id>m-[0-9a-f]+)$")


class ReportUnavailableError(FideliteError):
    """No up-to-date report beside the scores snapshot (503 from the service)."""

    exit_code = 4
    http_status = 503
    label = "report not found"


def report_path_for(scores_path: str | os.PathLike[str]) -> Path:
    """The report written beside a scores file: ``scores.parquet`` -> ``scores.report.html``."""
    path = Path(scores_path)
    return path.with_name(f"{path.name.split('.')[0]}.report.html")


def _run_id(client, model_uri: str) -> str:
    """The MLflow run that logged ``model_uri`` (registry alias/version, runs:/, models:/m-)."""
    if match := _RUNS.match(model_uri):
        return match["run"]
    if match := _LOGGED.match(model_uri):
        return client.get_logged_model(match["model_id"]).source_run_id
    if match := _REGISTRY.match(model_uri):
        if match["alias"]:
            version = client.get_model_version_by_alias(match["name"], match["alias"])
        else:
            version = client.get_model_version(match["name"], match["version"])
        return version.run_id
    raise ValueError(f"cannot tell which MLflow run logged {model_uri!r}")


def log_report(html: str, *, model_uri: str, tracking_uri: str | None, as_of: str) -> str:
    """Log the page as ``reports/report-<as_of>.html`` in the run that logged the model.

    Returns
    -------
    str
        ``runs:/<run_id>/reports/report-<as_of>.html``.
    """
    from mlflow.tracking import MlflowClient

    from fidelite.training.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run_id = _run_id(client, model_uri)
    artifact = f"reports/report-{as_of}.html"
    client.log_text(run_id, html, artifact)
    return f"runs:/{run_id}/{artifact}"


def publish_scoring_report(
    scores: pd.DataFrame,
    transactions: TableSource,
    events: TableSource | None = None,
    customers: TableSource | None = None,
    *,
    as_of: object,
    scores_path: str | os.PathLike[str],
    model_uri: str,
    tracking_uri: str | None = None,
    campaigns: TableSource | None = None,
) -> tuple[Path, str | None]:
    """Render the report for freshly written scores; write it beside them and log it.

    Parameters
    ----------
    scores : DataFrame
        The scores frame just written to ``scores_path``.
    transactions, events, customers, campaigns : path or DataFrame
        The tables the scores were computed from.
    as_of : day
    scores_path : path
        Where the scores were written; the report goes to :func:`report_path_for` it.
    model_uri, tracking_uri : str
        The model that scored: the report is logged to its run, and it scores D - H for
        the model-health charts.

    Returns
    -------
    (Path, str or None)
        The report file, and the MLflow artifact URI (None when logging failed: the
        scores and the file are kept, a warning says why).
    """
    from fidelite.reports.page import render_html

    inputs = load_report_inputs(
        transactions, events, customers, as_of=as_of, scores=scores, campaigns=campaigns
    )
    config = ReportConfig(tracking_uri=tracking_uri, model_uri=model_uri)
    html = render_html(build_report(inputs, config))
    path = write_report(html, report_path_for(scores_path))
    try:
        artifact = log_report(
            html, model_uri=model_uri, tracking_uri=tracking_uri, as_of=str(inputs.as_of.date())
        )
    except Exception as exc:  # the report on disk is still good; MLflow may be down
        logger.warning("report not logged to MLflow (%s): %s", model_uri, exc)
        artifact = None
    return path, artifact


class _Cached:
    def __init__(self) -> None:
        self.key: tuple[str, int] | None = None
        self.body = b""
        self.lock = threading.Lock()


_CACHE = _Cached()


def report_for_snapshot(snapshot_path: str | os.PathLike[str]) -> bytes:
    """The report rendered for the scores snapshot, as UTF-8 bytes (cached by mtime).

    Raises
    ------
    ReportUnavailableError
        No report beside the snapshot, or one older than the snapshot (the scores
        were rewritten without one).
    """
    snapshot, report = Path(snapshot_path), report_path_for(snapshot_path)
    try:
        stat = report.stat()
    except FileNotFoundError:
        raise ReportUnavailableError(
            f"no report beside the scores snapshot {snapshot}: `fidelite score` writes "
            f"{report.name} next to the scores (or run `fidelite report ... --out {report}`)"
        ) from None
    if snapshot.exists() and snapshot.stat().st_mtime_ns > stat.st_mtime_ns:
        raise ReportUnavailableError(
            f"the report {report} is older than the scores snapshot {snapshot}: re-run "
            "`fidelite score` (or `fidelite report`) to refresh it"
        )
    key = (str(report.resolve()), stat.st_mtime_ns)
    with _CACHE.lock:
        if _CACHE.key != key:
            _CACHE.body, _CACHE.key = report.read_bytes(), key
        return _CACHE.body
