"""The report as one self-contained HTML page.

Plotly.js is inlined once in the page (no network at view time: the file works opened
from disk or attached to an email). Every view's numbers, reading and chart
specifications are embedded as JSON; a small script draws the selected view and
redraws when the reader changes the customer filter.
"""

from __future__ import annotations

import functools
import html
import json
from importlib import metadata
from typing import Any

import numpy as np

from fidelite.reports.layout import ALL_VIEW, Number, Section, SectionView
from fidelite.reports.report import Report

__all__ = ["plotly_js", "render_html"]

_TONES = {"good": "good", "bad": "bad", "neutral": ""}


@functools.cache
def plotly_js() -> str:
    """The bundled, minified Plotly.js of the installed ``plotly`` package."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _json(value: Any) -> str:
    """JSON safe to embed in a <script> element."""

    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        return str(obj)

    text = json.dumps(value, default=default, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _clean(value: Any) -> Any:
    """Replace NaN/inf (not valid JSON) with None, recursively."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.floating):
        return _clean(float(value))
    return value


def _number_html(number: Number) -> str:
    tone = _TONES[number.tone]
    delta = f'<div class="delta {tone}">{html.escape(number.delta)}</div>' if number.delta else ""
    return (
        f'<div class="card" title="{html.escape(number.hint)}">'
        f'<div class="label">{html.escape(number.label)}</div>'
        f'<div class="value">{html.escape(number.value)}</div>{delta}</div>'
    )


def _view_payload(view: SectionView) -> dict[str, Any]:
    return {
        "numbers": "".join(_number_html(n) for n in view.numbers),
        "reading": html.escape(view.reading),
        "notes": "".join(f"<li>{html.escape(n)}</li>" for n in view.notes),
        "figures": _clean(view.figures),
    }


def _section_html(section: Section) -> str:
    view = section.views[ALL_VIEW]
    payload = _view_payload(view)
    badge = "" if section.filterable else '<span class="badge">all customers</span>'
    charts = "".join(
        f'<div class="chart" id="chart-{section.key}-{i}"></div>' for i in range(len(view.figures))
    )
    definitions = (
        f"<details><summary>Definitions</summary><p>{html.escape(section.definitions)}</p></details>"
        if section.definitions
        else ""
    )
    return (
        f'<section id="{section.key}" data-section="{section.key}">'
        f"<h2>{html.escape(section.title)} {badge}</h2>"
        f'<p class="question">{html.escape(section.question)}</p>'
        f'<div class="numbers">{payload["numbers"]}</div>'
        f'<p class="reading">{payload["reading"]}</p>'
        f'<div class="charts">{charts}</div>'
        f'<ul class="notes">{payload["notes"]}</ul>{definitions}</section>'
    )


def _filter_html(report: Report) -> str:
    groups: dict[str, list[str]] = {}
    for view in report.views:
        option = f'<option value="{html.escape(view.key)}">{html.escape(view.label)}</option>'
        groups.setdefault(view.group, []).append(option)
    parts = groups.pop("", [])
    for group, options in groups.items():
        parts.append(f'<optgroup label="{html.escape(group)}">{"".join(options)}</optgroup>')
    return f'<label>Customers: <select id="view-filter">{"".join(parts)}</select></label>'


def render_html(report: Report) -> str:
    """The whole page as a string (UTF-8 when written)."""
    payload = {
        s.key: {key: _view_payload(v) for key, v in s.views.items()} for s in report.sections
    }
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in report.sections)
    try:
        version = metadata.version("fidelite")
    except metadata.PackageNotFoundError:
        version = "unknown"
    title = f"{report.title}, {report.as_of.date()}"
    return _TEMPLATE.format(
        title=html.escape(title),
        summary=html.escape(report.summary),
        generated=html.escape(f"Generated {report.generated_at} by fidelite {version}"),
        filter=_filter_html(report),
        nav=nav,
        sections="".join(_section_html(s) for s in report.sections),
        style=_STYLE,
        plotly=plotly_js(),
        data=_json(payload),
        script=_SCRIPT,
    )


_STYLE = """
body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2933;
background:#f5f7fa}
header{background:#1f3a5f;color:#fff;padding:16px 28px;position:sticky;top:0;z-index:10}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85;font-size:13px}
header label{font-size:14px}header select{font-size:14px;margin-left:6px;padding:2px 4px}
.bar{display:flex;justify-content:space-between;align-items:flex-end;gap:16px;flex-wrap:wrap}
nav{padding:8px 28px;background:#fff;border-bottom:1px solid #e4e7eb;font-size:13px}
nav a{margin-right:16px;color:#1f3a5f;text-decoration:none}
main{max-width:1280px;margin:0 auto;padding:8px 28px 40px}
section{background:#fff;border-radius:8px;margin:18px 0;padding:16px 20px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{margin:0 0 2px;font-size:19px}.question{margin:0 0 12px;color:#52606d;font-size:14px}
.badge{font-size:11px;background:#e4e7eb;color:#52606d;border-radius:10px;padding:2px 8px;
vertical-align:middle;font-weight:normal}
.numbers{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #e4e7eb;border-radius:6px;padding:8px 12px;min-width:140px}
.card .label{font-size:12px;color:#52606d}.card .value{font-size:20px;font-weight:600}
.delta{font-size:12px;color:#52606d}.delta.good{color:#2f8a4f}.delta.bad{color:#b83a36}
.reading{font-size:15px;margin:12px 0;padding:8px 12px;background:#f0f4f8;
border-left:4px solid #3b6fb6}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:12px}
.chart{min-height:300px}.notes{font-size:12px;color:#52606d;margin:8px 0 0;padding-left:18px}
details{font-size:12px;color:#52606d;margin-top:6px}details p{margin:4px 0}
.chart-error{color:#b83a36;font-size:13px;padding:20px}
footer{text-align:center;font-size:12px;color:#7b8794;padding:16px}
"""

_SCRIPT = """
(function () {
  var DATA = JSON.parse(document.getElementById('report-data').textContent);
  var CONFIG = {displaylogo: false, responsive: true, showLink: false,
                modeBarButtonsToRemove: ['select2d', 'lasso2d']};
  function draw(sectionKey, view) {
    var figures = view.figures;
    figures.forEach(function (figure, i) {
      var element = document.getElementById('chart-' + sectionKey + '-' + i);
      if (!element) { return; }
      try {
        Plotly.react(element, figure.data, figure.layout, CONFIG);
      } catch (error) {
        element.innerHTML = '<div class="chart-error">chart failed: ' + error + '</div>';
        console.error('chart ' + sectionKey + '-' + i + ' failed', error);
      }
    });
  }
  function show(viewKey) {
    Object.keys(DATA).forEach(function (sectionKey) {
      var views = DATA[sectionKey];
      var view = views[viewKey] || views['all'];
      var section = document.getElementById(sectionKey);
      section.querySelector('.numbers').innerHTML = view.numbers;
      section.querySelector('.reading').innerHTML = view.reading;
      section.querySelector('.notes').innerHTML = view.notes;
      var holder = section.querySelector('.charts');
      var wanted = view.figures.length;
      while (holder.children.length > wanted) { holder.removeChild(holder.lastChild); }
      while (holder.children.length < wanted) {
        var div = document.createElement('div');
        div.className = 'chart';
        div.id = 'chart-' + sectionKey + '-' + holder.children.length;
        holder.appendChild(div);
      }
      draw(sectionKey, view);
    });
  }
  var select = document.getElementById('view-filter');
  select.addEventListener('change', function () { show(select.value); });
  Object.keys(DATA).forEach(function (key) { draw(key, DATA[key]['all']); });
  document.body.setAttribute('data-report-ready', '1');
})();
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{style}</style>
<script>{plotly}</script></head>
<body><header><div class="bar"><div><h1>{title}</h1><p>{summary}</p></div>{filter}</div></header>
<nav>{nav}</nav><main>{sections}</main>
<footer>{generated}. Self-contained page: no network needed to view it.</footer>
<script type="application/json" id="report-data">{data}</script>
<script>{script}</script></body></html>
"""
