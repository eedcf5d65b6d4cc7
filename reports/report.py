"""Build a report from validated inputs, and the one-call entry points.

>>> html = render_report("tx.parquet", "events.parquet", "customers.parquet",
...                      as_of="2025-12-31", scores="scores.parquet")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fidelite.features.inputs import TableSource
from fidelite.reports.base import build_customer_base
from fidelite.reports.inputs import ReportConfig, ReportInputs, load_report_inputs
from fidelite.reports.layout import Section, View
from fidelite.reports.sections import (
    acquisition,
    campaigns,
    cohorts,
    engagement,
    health,
    kpis,
    lifecycle,
    value,
)

__all__ = ["SECTION_BUILDERS", "Report", "build_report", "render_report", "write_report"]

logger = logging.getLogger(__name__)

#: Section builders in page order; a builder may return None (campaigns without a table).
SECTION_BUILDERS: tuple[tuple[str, Callable], ...] = (
    ("headline numbers", kpis.build),
    ("lifecycle", lifecycle.build),
    ("acquisition", acquisition.build),
    ("cohorts", cohorts.build),
    ("engagement and velocity", engagement.build),
    ("value segments", value.build),
    ("campaigns", campaigns.build),
    ("model health", health.build),
)
Progress = Callable[[str], None]


@dataclass
class Report:
    """A built report, ready to render.

    Attributes
    ----------
    title : str
    as_of : Timestamp
    horizon : int
    sections : list of Section
    views : list of View
        Customer filters, ``all`` first.
    summary : str
        One line on what the report covers.
    timings, cpu_timings : dict of str -> float
        Wall-clock and CPU seconds of this process per step.
    """

    title: str
    as_of: pd.Timestamp
    horizon: int
    sections: list[Section]
    views: list[View]
    summary: str
    generated_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    )
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)


def build_report(
    inputs: ReportInputs, config: ReportConfig | None = None, *, progress: Progress | None = None
) -> Report:
    """Compute every section of the report.

    Parameters
    ----------
    inputs : ReportInputs
        From :func:`~fidelite.reports.inputs.load_report_inputs`.
    config : ReportConfig, optional
    progress : callable, optional
        Called with a short description before each step.
    """
    config = config or ReportConfig()
    say = progress or (lambda _: None)
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    started, cpu_started = time.perf_counter(), time.process_time()
    say("features at D")
    base = build_customer_base(inputs, config)
    timings["features"] = time.perf_counter() - started
    cpu["features"] = time.process_time() - cpu_started
    sections = []
    for name, builder in SECTION_BUILDERS:
        say(name)
        t0, c0 = time.perf_counter(), time.process_time()
        section = builder(base)
        timings[name] = time.perf_counter() - t0
        cpu[name] = time.process_time() - c0
        if section is not None:
            sections.append(section)
    data = inputs.inputs
    first = data.transactions["timestamp"].min()
    tables = {
        "events": data.events,
        "customers": data.customers,
        "scores": inputs.scores,
        "campaigns": inputs.campaigns,
    }
    given = "".join(f", {name}" for name, table in tables.items() if table is not None)
    summary = (
        f"{base.n:,} customers known on {data.as_of.date()}; transactions from {first.date()}"
        f"{given}; horizon H = {base.horizon} days."
    )
    return Report(
        title=config.title,
        as_of=data.as_of,
        horizon=base.horizon,
        sections=sections,
        views=[view for view, _ in base.views.values()],
        summary=summary,
        timings=timings,
        cpu_timings=cpu,
    )


def render_report(
    transactions: TableSource,
    events: TableSource | None = None,
    customers: TableSource | None = None,
    *,
    as_of: object,
    scores: str | Path | pd.DataFrame | None = None,
    campaigns: TableSource | None = None,
    config: ReportConfig | None = None,
    progress: Progress | None = None,
) -> str:
    """Load, build and render a report in one call; returns the self-contained HTML page."""
    from fidelite.reports.page import render_html

    inputs = load_report_inputs(
        transactions, events, customers, as_of=as_of, scores=scores, campaigns=campaigns
    )
    return render_html(build_report(inputs, config, progress=progress))


def write_report(html: str, path: str | Path) -> Path:
    """Write the page atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(path)
    return path
