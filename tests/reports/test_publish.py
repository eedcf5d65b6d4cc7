"""`fidelite score` leaves the report beside the scores and in the model's MLflow run."""

from __future__ import annotations

import os

import pytest
from mlflow.tracking import MlflowClient

from fidelite.reports.publish import ReportUnavailableError, report_for_snapshot, report_path_for

from .conftest import DEMO_AS_OF

pytestmark = pytest.mark.slow


def test_score_writes_the_report_beside_the_scores(demo_files):
    page = report_path_for(demo_files["scores"])
    assert page.name == "scores.report.html" and page.exists()
    html = page.read_text(encoding="utf-8")
    assert 'id="health"' in html and "version 1" in html  # the champion's record
    assert 'id="campaigns"' in html  # score --campaigns: the served report has every section


def test_score_logs_the_report_to_the_champions_run(demo_files):
    client = MlflowClient(tracking_uri=demo_files["tracking_uri"])
    version = client.get_model_version_by_alias("fidelite", "champion")
    listed = [a.path for a in client.list_artifacts(version.run_id, "reports")]
    assert f"reports/report-{DEMO_AS_OF}.html" in listed


def test_service_reads_the_report_for_its_snapshot(demo_files, tmp_path):
    body = report_for_snapshot(demo_files["scores"])
    assert body.startswith(b"<!DOCTYPE html>")
    assert report_for_snapshot(demo_files["scores"]) is body  # cached until the file changes

    lonely = tmp_path / "scores.parquet"
    lonely.write_bytes(demo_files["scores"].read_bytes())
    with pytest.raises(ReportUnavailableError, match="fidelite score"):
        report_for_snapshot(lonely)
    stale = report_path_for(lonely)
    stale.write_bytes(body)
    os.utime(stale, ns=(1, 1))  # older than the snapshot: scores rewritten without a report
    with pytest.raises(ReportUnavailableError, match="older than the scores"):
        report_for_snapshot(lonely)
