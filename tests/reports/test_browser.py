"""The demo report drawn by a real headless Chromium: every chart, no errors, no network.

Chromium comes from Debian (``make test`` installs the ``chromium`` package when
/usr/bin/chromium is missing); Playwright drives that executable and never downloads
a browser. The screenshot is kept in ``test-artifacts/`` for people to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from fidelite.reports import ReportConfig, build_report, load_report_inputs, write_report
from fidelite.reports.page import render_html

from .conftest import DEMO_AS_OF

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: Charts each section draws on the demo data (with scores, a model and campaigns).
EXPECTED_CHARTS = {
    "kpis": 1,
    "lifecycle": 2,
    "acquisition": 2,
    "cohorts": 2,
    "engagement": 3,
    "value": 2,
    "campaigns": 2,
    "health": 3,
}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_report(demo_files, tmp_path_factory) -> tuple[Path, object]:
    inputs = load_report_inputs(
        demo_files["transactions"],
        demo_files["events"],
        demo_files["customers"],
        as_of=DEMO_AS_OF,
        scores=demo_files["scores"],
        campaigns=demo_files["campaigns"],
    )
    config = ReportConfig(
        tracking_uri=demo_files["tracking_uri"], model_uri="models:/fidelite@champion"
    )
    report = build_report(inputs, config)
    path = write_report(render_html(report), tmp_path_factory.mktemp("html") / "report.html")
    return path, report


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} missing: `make test` installs Debian's chromium package"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh temporary profile (user data dir).
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _open(browser, path: Path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    def block(route):
        if not route.request.url.startswith("file://"):
            requests.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route("**/*", block)  # the page must need nothing but itself
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-report-ready='1']", timeout=60_000)
    return context, page, problems, requests


def _charts_per_section(page) -> dict[str, int]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('section')].map(s =>
            [s.id, s.querySelectorAll('.js-plotly-plot .main-svg').length > 0 ?
             [...s.querySelectorAll('.js-plotly-plot')].filter(
                 p => p.querySelector('.main-svg')).length : 0]))"""
    )


def test_every_section_draws_its_charts(browser, demo_report):
    path, report = demo_report
    assert [s.key for s in report.sections] == list(EXPECTED_CHARTS)
    context, page, problems, requests = _open(browser, path)
    try:
        assert _charts_per_section(page) == EXPECTED_CHARTS
        # Plotly draws data marks: bars, lines, heatmap cells, Sankey links.
        marks = page.locator(".js-plotly-plot .trace, .js-plotly-plot .sankey-link").count()
        assert marks >= sum(EXPECTED_CHARTS.values())
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    finally:
        context.close()
    assert problems == []
    assert requests == []
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000


def test_filter_redraws_every_section(browser, demo_report):
    path, report = demo_report
    view = next(v for v in report.views if v.key.startswith("acq:"))
    context, page, problems, _ = _open(browser, path)
    try:
        before = page.inner_text("#kpis .numbers")
        page.select_option("#view-filter", view.key)
        page.wait_for_timeout(500)
        after = page.inner_text("#kpis .numbers")
        charts = _charts_per_section(page)
    finally:
        context.close()
    assert before != after  # the numbers follow the filter
    section_views = {s.key: s.views.get(view.key, s.views["all"]) for s in report.sections}
    assert charts == {k: len(v.figures) for k, v in section_views.items()}
    assert problems == []


def test_campaign_numbers_are_the_products_campaign_effects(demo_files, demo_report):
    from fidelite.training.uplift.campaigns import load_campaigns_table
    from fidelite.training.uplift.effects import campaign_effects

    _, report = demo_report
    section = next(s for s in report.sections if s.key == "campaigns")
    campaigns = load_campaigns_table(demo_files["campaigns"])
    campaigns = campaigns.loc[
        campaigns["sent_at"] < pd.Timestamp(DEMO_AS_OF) + pd.Timedelta(days=1)
    ]
    transactions = pd.read_parquet(demo_files["transactions"])
    effects = campaign_effects(
        campaigns, transactions, until=pd.Timestamp(DEMO_AS_OF) + pd.Timedelta(days=1)
    )
    done = effects.loc[effects["window_complete"] & (effects["n_control"] > 0)]
    numbers = {n.label: n.value for n in section.views["all"].numbers}
    assert numbers["Campaigns measured"] == f"{len(done):,}"
    assert numbers["Incremental revenue"] == f"{done['incremental_revenue'].sum():,.0f}"
    figure = section.views["all"].figures[1]
    assert figure["data"][0]["x"][: len(done)] == list(done["campaign_id"])
