"""``GET /report``: the customer-base report beside the served snapshot (issue 14), over
HTTP against the session server, and the handler's 503 cases without a server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fidelite.reports.publish import report_path_for
from fidelite.serving import handlers
from fidelite.serving.errors import ReportUnavailableError, SnapshotUnavailableError
from fidelite.serving.snapshot import SnapshotStore, write_snapshot_atomic
from tests.serving.conftest import AS_OF, LiveServer


def _assert_error_without_path(response, folder: Path, needle: str) -> None:
    assert response.status_code == 503, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "field", "detail"}
    assert needle in body["error"] and str(folder) not in response.text


@pytest.mark.slow
def test_report_is_served_with_its_snapshot_behind_the_key(live_server: LiveServer) -> None:
    snapshot_path, report_path = live_server.snapshot_path, live_server.report_path
    assert report_path == report_path_for(snapshot_path)
    live_server.refresh_report()
    html = report_path.read_bytes()
    with live_server.client(None) as anonymous:
        unauthorised = anonymous.get("/report")
    assert unauthorised.status_code == 401 and "API key" in unauthorised.json()["error"]
    assert unauthorised.headers["content-type"].startswith("application/json")
    with live_server.client() as client:
        response = client.get("/report")
        assert response.status_code == 200, response.text[:300]
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.text.startswith("<!DOCTYPE html>")
        assert response.content == html
        try:
            # the snapshot rewritten after the report (e.g. `score --no-report`): stale
            stale = snapshot_path.stat().st_mtime - 60
            os.utime(report_path, (stale, stale))
            _assert_error_without_path(client.get("/report"), snapshot_path.parent, "older")
            report_path.unlink()
            _assert_error_without_path(client.get("/report"), snapshot_path.parent, "no report")
        finally:
            report_path.write_bytes(html)
        assert client.get("/report").content == html
        spec = client.get("/docs.json").json()["paths"]["/report"]["get"]
    assert set(spec["responses"]) >= {"200", "401", "503"}
    assert "text/html" in spec["responses"]["200"]["content"]
    assert spec["security"] == [{"bearer": []}]


def test_report_needs_a_served_snapshot(tmp_path: Path) -> None:
    with pytest.raises(SnapshotUnavailableError):
        handlers.report(SnapshotStore(None))
    store = SnapshotStore(tmp_path / "hidden" / "scores.parquet")
    store.refresh()
    with pytest.raises(SnapshotUnavailableError):
        handlers.report(store)


def test_missing_or_stale_report_is_a_503_naming_no_folder(tmp_path: Path) -> None:
    import pandas as pd

    folder = tmp_path / "hidden"
    path = write_snapshot_atomic(
        pd.DataFrame(
            {
                "customer_id": ["a"],
                "as_of": [AS_OF],
                "status": ["ok"],
                "churn_probability": [0.5],
                "predicted_clv": [1.0],
            }
        ),
        folder / "scores.parquet",
    )
    store = SnapshotStore(path)
    assert store.refresh()
    with pytest.raises(ReportUnavailableError) as missing:
        handlers.report(store)
    assert "scores.report.html" in str(missing.value) and str(folder) not in str(missing.value)
    report = report_path_for(path)
    report.write_text("<!DOCTYPE html><title>r</title>", encoding="utf-8")
    assert handlers.report(store).startswith(b"<!DOCTYPE html>")
    stale = path.stat().st_mtime - 60
    os.utime(report, (stale, stale))
    with pytest.raises(ReportUnavailableError, match="older") as older:
        handlers.report(store)
    assert str(folder) not in str(older.value)
