"""Plotly figure specifications with one house style.

Figures are plain dicts (``{"data": [...], "layout": {...}}``) that Plotly.js draws in
the page; numbers are rounded here so the page carries no needless digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fidelite.reports.layout import Figure

__all__ = [
    "PALETTE",
    "STAGE_COLOURS",
    "bar",
    "figure",
    "line",
    "rounded",
]

PALETTE = (
    "#3b6fb6",
    "#e4812f",
    "#3a9d5d",
    "#c8443f",
    "#8a64b5",
    "#8c6d5a",
    "#d774b9",
    "#7f7f7f",
    "#b6b33a",
    "#2fb2c4",
)
#: Lifecycle stage colours, shared by every lifecycle chart.
STAGE_COLOURS = {
    "prospect": "#b8c2cc",
    "new": "#7fb8e6",
    "active": "#3a9d5d",
    "at_risk": "#e4a12f",
    "lapsed": "#c8443f",
    "reactivated": "#8a64b5",
    "not yet known": "#dddddd",
}
GOOD, BAD, MUTED = "#3a9d5d", "#c8443f", "#9aa5b1"


def rounded(values: Any, digits: int = 4) -> list[Any]:
    """A JSON-ready list with NaN as None and floats rounded to ``digits`` significant places."""
    array = np.asarray(values)
    if array.dtype.kind not in "fc":
        return array.tolist()
    out: list[Any] = []
    for value in array.tolist():
        if value is None or not np.isfinite(value):
            out.append(None)
        elif value == 0:
            out.append(0.0)
        else:
            magnitude = int(np.floor(np.log10(abs(value))))
            out.append(round(value, max(0, digits - 1 - magnitude)))
    return out


def figure(
    traces: list[dict[str, Any]],
    *,
    title: str,
    x_title: str = "",
    y_title: str = "",
    height: int = 340,
    **layout: Any,
) -> Figure:
    """A figure in the house style.

    Parameters
    ----------
    traces : list of dict
        Plotly traces.
    title, x_title, y_title : str
    height : int
        Pixels.
    **layout
        Extra layout keys, merged last (``xaxis``/``yaxis`` dicts are merged into the
        defaults).
    """
    base: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 80},
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "colorway": list(PALETTE),
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.28, "yanchor": "top"},
        "xaxis": {
            "title": {"text": x_title},
            "gridcolor": "#eef0f3",
            "zeroline": False,
            "automargin": True,
        },
        "yaxis": {
            "title": {"text": y_title},
            "gridcolor": "#eef0f3",
            "zeroline": False,
            "automargin": True,
        },
    }
    for key, value in layout.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return {"data": traces, "layout": base}


def bar(
    x: Sequence[Any],
    y: Any,
    name: str = "",
    *,
    colour: str | Sequence[str] | None = None,
    hover: str | None = None,
    **trace: Any,
) -> dict[str, Any]:
    """A bar trace with rounded values."""
    out: dict[str, Any] = {"type": "bar", "x": list(x), "y": rounded(y), "name": name}
    if colour is not None:
        out["marker"] = {"color": colour if isinstance(colour, str) else list(colour)}
    if hover is not None:
        out["hovertemplate"] = hover
    out.update(trace)
    return out


def line(
    x: Sequence[Any],
    y: Any,
    name: str = "",
    *,
    colour: str | None = None,
    dash: str | None = None,
    hover: str | None = None,
    **trace: Any,
) -> dict[str, Any]:
    """A lines+markers trace with rounded values."""
    out: dict[str, Any] = {
        "type": "scatter",
        "mode": "lines+markers",
        "x": list(x),
        "y": rounded(y),
        "name": name,
        "line": {"width": 2},
        "marker": {"size": 5},
    }
    if colour is not None:
        out["line"]["color"] = colour
        out["marker"]["color"] = colour
    if dash is not None:
        out["line"]["dash"] = dash
    if hover is not None:
        out["hovertemplate"] = hover
    out.update(trace)
    return out
