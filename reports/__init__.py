"""Reports people read: the customer-base report and campaign results.

Reads features, scores and model metadata (the outputs of ``fidelite.features`` and
``fidelite.training``) and renders them for marketers as one self-contained HTML page;
``fidelite.serving`` may serve what it renders. Nothing here trains a model.

Public API: :func:`load_report_inputs`, :class:`ReportConfig`, :func:`build_report`,
:func:`render_report` and :func:`write_report`.
"""

from fidelite.reports.inputs import ReportConfig, ReportInputs, load_report_inputs
from fidelite.reports.report import Report, build_report, render_report, write_report

__all__ = [
    "Report",
    "ReportConfig",
    "ReportInputs",
    "build_report",
    "load_report_inputs",
    "render_report",
    "write_report",
]
