"""Section 2: lifecycle stage counts over time and the flows since the previous period."""

from __future__ import annotations

import numpy as np

from fidelite.reports import charts
from fidelite.reports import formats as fmt
from fidelite.reports.base import CustomerBase
from fidelite.reports.layout import Number, Section, SectionView
from fidelite.reports.sections._common import per_view
from fidelite.reports.snapshots import STAGE_ORDER, stage_codes

__all__ = ["FLOW_DAYS", "SNAPSHOTS", "build", "stage_flows"]

#: Flows compare the stages at D with those this many days earlier.
FLOW_DAYS = 30
#: Stage counts are drawn every FLOW_DAYS days over this many periods.
SNAPSHOTS = 12
_LABELS = ("not yet known", *STAGE_ORDER)


def stage_flows(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Customers moving from each stage to each stage.

    Parameters
    ----------
    before, after : ndarray of int8, shape (n_customers,)
        Stage codes (:func:`stage_codes`; -1 = not yet known) at the two days.
    mask : ndarray of bool, shape (n_customers,)

    Returns
    -------
    ndarray of int64, shape (7, 7)
        ``flows[i, j]``: customers in ``_LABELS[i]`` before and ``_LABELS[j]`` after.
    """
    k = len(_LABELS)
    pairs = (before[mask].astype(np.int64) + 1) * k + (after[mask].astype(np.int64) + 1)
    return np.bincount(pairs, minlength=k * k).reshape(k, k)


def _sankey(flows: np.ndarray, before: str, after: str) -> dict:
    k = len(_LABELS)
    source, target, value = [], [], []
    for i in range(k):
        for j in range(1, k):
            if flows[i, j]:
                source.append(i)
                target.append(k + j)
                value.append(int(flows[i, j]))
    colours = [charts.STAGE_COLOURS[s] for s in _LABELS]
    names = [s.replace("_", " ") for s in _LABELS]
    trace = {
        "type": "sankey",
        "arrangement": "snap",
        "node": {
            "label": [f"{n} ({before})" for n in names] + [f"{n} ({after})" for n in names],
            "color": colours + colours,
            "pad": 12,
            "thickness": 14,
            "hovertemplate": "%{label}: %{value:,} customers<extra></extra>",
        },
        "link": {
            "source": source,
            "target": target,
            "value": value,
            "color": "rgba(150,160,170,0.35)",
            "hovertemplate": "%{source.label} → %{target.label}: %{value:,}<extra></extra>",
        },
    }
    return charts.figure([trace], title=f"Stage flows from {before} to {after}", height=420)


def _counts_chart(days: list[str], counts: np.ndarray) -> dict:
    traces = [
        {
            "type": "scatter",
            "mode": "lines",
            "stackgroup": "stages",
            "name": stage.replace("_", " "),
            "x": days,
            "y": counts[:, i + 1].tolist(),
            "line": {"width": 0.5, "color": charts.STAGE_COLOURS[stage]},
            "hovertemplate": f"{stage.replace('_', ' ')}: " + "%{y:,}<extra>%{x}</extra>",
        }
        for i, stage in enumerate(STAGE_ORDER)
    ]
    return charts.figure(
        traces, title="Customers per lifecycle stage", y_title="Customers", hovermode="x unified"
    )


def _numbers(counts: np.ndarray, flows: np.ndarray) -> list[Number]:
    index = {s: i + 1 for i, s in enumerate(STAGE_ORDER)}
    numbers = []
    for stage in ("new", "active", "at_risk", "lapsed", "reactivated"):
        now, before = counts[-1, index[stage]], counts[-2, index[stage]]
        good = stage in ("new", "active", "reactivated")
        tone = "neutral" if now == before else ("good" if (now > before) == good else "bad")
        numbers.append(
            Number(
                stage.replace("_", " ").capitalize(),
                fmt.count(now),
                f"{fmt.change(now, before) or '±0'} vs {FLOW_DAYS} d",
                tone,
            )
        )
    slipped = flows[index["active"], index["at_risk"]] + flows[index["new"], index["at_risk"]]
    numbers.append(
        Number(
            "Slipped to at risk",
            fmt.count(slipped),
            tone="bad",
            hint="new or active customers now at risk",
        )
    )
    won_back = (
        flows[index["lapsed"], index["reactivated"]] + flows[index["at_risk"], index["active"]]
    )
    numbers.append(
        Number(
            "Won back",
            fmt.count(won_back),
            tone="good",
            hint="lapsed customers reactivated plus at-risk customers active again",
        )
    )
    return numbers


def build(base: CustomerBase) -> Section:
    """Stage counts over the last SNAPSHOTS periods and the flows of the last one."""
    params = base.config.params
    days = [base.as_of_day - FLOW_DAYS * k for k in range(SNAPSHOTS, -1, -1)]
    stages = [stage_codes(base.calendar, base.known_day, d, params) for d in days]
    labels = [base.day_label(d) for d in days]
    k = len(_LABELS)

    def compute(mask: np.ndarray) -> SectionView:
        counts = np.stack([np.bincount(s[mask].astype(np.int64) + 1, minlength=k) for s in stages])
        flows = stage_flows(stages[-2], stages[-1], mask)
        index = {s: i + 1 for i, s in enumerate(STAGE_ORDER)}

        def flow(a: str, b: str) -> str:
            return fmt.count(flows[index[a], index[b]])

        reading = (
            f"Since {labels[-2]}, {flow('active', 'at_risk')} active customers slipped to at "
            f"risk, {flow('at_risk', 'lapsed')} at-risk customers lapsed and "
            f"{flow('lapsed', 'reactivated')} lapsed customers came back; "
            f"{fmt.count(flows[0, 1:].sum())} customers are new to the base."
        )
        figures = [_counts_chart(labels, counts), _sankey(flows, labels[-2], labels[-1])]
        return SectionView(_numbers(counts, flows), reading, figures)

    p = params
    definitions = (
        "Stages follow the product's rules (fidelite.features.segments, first match wins): "
        "prospect = no purchase yet; new = first purchase less than "
        f"{p.new_days} days ago; reactivated = bought in the last {p.reactivated_days} days after "
        f"a gap over {p.lapsed_days} days; lapsed = no purchase for {p.lapsed_days} days; at risk "
        f"= days since last purchase over {p.at_risk_overdue_ratio}x the customer's own mean gap "
        f"(over {p.at_risk_days} days with a single purchase day); active = everyone else. "
        f"Counts are taken every {FLOW_DAYS} days; flows compare D with {FLOW_DAYS} days earlier."
    )
    return Section(
        "lifecycle",
        "Lifecycle",
        "How many customers are new, active, at risk, lapsed or reactivated, and how they moved.",
        per_view(base, compute),
        definitions,
    )
