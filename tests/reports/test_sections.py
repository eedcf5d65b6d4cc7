"""Sections degrade gracefully: missing tables or score columns are said, never faked."""

from __future__ import annotations

from fidelite.reports import ReportConfig, build_report, load_report_inputs
from fidelite.reports.page import render_html

from .conftest import AS_OF


def _numbers(report, key: str, view: str = "all") -> dict[str, str]:
    section = next(s for s in report.sections if s.key == key)
    return {n.label: n.value for n in section.views[view].numbers}


def test_minimal_scores_and_no_customers_table(hand_made):
    transactions, _, scores = hand_made
    minimal = scores[["customer_id", "as_of", "horizon_days", "predicted_clv"]]
    inputs = load_report_inputs(transactions, as_of=AS_OF, scores=minimal)
    report = build_report(inputs, ReportConfig())
    kpis = _numbers(report, "kpis")
    assert "Predicted CLV (90 d)" in kpis and "Value at risk" not in kpis
    acquisition = next(s for s in report.sections if s.key == "acquisition")
    assert any("No customers table" in n for n in acquisition.views["all"].notes)
    assert [v.key for v in report.views][0] == "all"
    assert not any(v.key.startswith("acq:") for v in report.views)  # nothing to filter on
    engagement = next(s for s in report.sections if s.key == "engagement")
    assert len(engagement.views["all"].figures) == 2  # no events: no reach chart
    health = next(s for s in report.sections if s.key == "health")
    assert health.views["all"].figures == []
    assert any("no labelled window" in n for n in health.views["all"].notes)
    assert "campaigns" not in [s.key for s in report.sections]
    render_html(report)


def test_prospect_status_and_value_if_retained_are_accepted(hand_made):
    transactions, customers, scores = hand_made
    richer = scores.assign(
        status=["prospect" if i % 5 == 0 else "ok" for i in range(len(scores))],
        value_if_retained=scores["predicted_clv"] * 1.5,
    )
    inputs = load_report_inputs(transactions, None, customers, as_of=AS_OF, scores=richer)
    report = build_report(inputs, ReportConfig())
    total = richer["predicted_clv"].sum()
    assert (
        _numbers(report, "kpis")["Predicted CLV (90 d)"] == f"{total:,.2f}"
        or _numbers(report, "kpis")["Predicted CLV (90 d)"] == f"{total:,.0f}"
    )


def test_scores_of_an_older_day_are_checked_against_what_followed(hand_made):
    transactions, customers, scores = hand_made
    older = scores.assign(as_of="2025-03-31")  # its 90-day horizon ends on AS_OF
    inputs = load_report_inputs(transactions, None, customers, as_of=AS_OF, scores=older)
    report = build_report(inputs, ReportConfig())
    health = next(s for s in report.sections if s.key == "health")
    assert len(health.views["all"].figures) == 3
    assert any("scores of 2025-03-31" in n for n in health.views["all"].notes)
