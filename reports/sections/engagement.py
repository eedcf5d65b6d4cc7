"""Section 5: channel reach and engagement, rising or fading interest, reorder timing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.features.contract import ENGAGEMENT_CHANNELS
from fidelite.reports import charts
from fidelite.reports import formats as fmt
from fidelite.reports.arrays import customer_codes, day_numbers
from fidelite.reports.base import CustomerBase
from fidelite.reports.inputs import EVENT_DAYS
from fidelite.reports.layout import Number, Section, SectionView
from fidelite.reports.sections._common import per_view, safe_ratio

__all__ = ["DUE_SOON_DAYS", "TREND_BAND", "build", "reorder_buckets", "trend_bands"]

#: Interest is *rising* when the recent rate beats the earlier one by this balance
#: ((recent - earlier) / (recent + earlier) > 0.2, i.e. 50% more), *fading* below -0.2.
TREND_BAND = 0.2
#: Engagement trends compare the last SHORT_DAYS with the LONG_DAYS - SHORT_DAYS before.
SHORT_DAYS, LONG_DAYS = 30, EVENT_DAYS
#: Customers are *due soon* when their own mean gap runs out within this many days.
DUE_SOON_DAYS = 14
REORDER_BUCKETS = ("not due yet", "due within 14 days", "overdue", "well overdue (at risk)")
_TRENDS = ("rising", "stable", "fading")
_TREND_COLOURS = {"rising": "#3a9d5d", "stable": "#c9d3dd", "fading": "#c8443f"}


def trend_bands(balance: np.ndarray) -> np.ndarray:
    """0 rising, 1 stable, 2 fading, -1 unknown (NaN balance), int8 of the same shape."""
    out = np.full(balance.shape, 1, dtype=np.int8)
    out[balance > TREND_BAND] = 0
    out[balance < -TREND_BAND] = 2
    out[np.isnan(balance)] = -1
    return out


def reorder_buckets(features: pd.DataFrame, overdue_limit: float) -> np.ndarray:
    """Reorder timing against the customer's own rhythm, codes into REORDER_BUCKETS.

    Customers with fewer than two purchase days (no rhythm) or lapsed get -1.
    """
    mean_gap = features["ipt_mean_days"].to_numpy(dtype=np.float64)
    since = features["days_since_last_purchase"].to_numpy(dtype=np.float64)
    ratio = features["overdue_ratio"].to_numpy(dtype=np.float64)
    out = np.full(len(features), -1, dtype=np.int8)
    known = np.isfinite(mean_gap) & (features["lifecycle_stage"].to_numpy() != "lapsed")
    due_in = mean_gap - since
    out[known & (due_in > DUE_SOON_DAYS)] = 0
    out[known & (due_in >= 0) & (due_in <= DUE_SOON_DAYS)] = 1
    out[known & (due_in < 0) & (ratio <= overdue_limit)] = 2
    out[known & (due_in < 0) & (ratio > overdue_limit)] = 3
    return out


def _channels(events: pd.DataFrame | None) -> list[str]:
    """The documented engagement channels, then any other channel seen, sorted."""
    # unique() before str: on categories it keeps those present, no per-row conversion
    seen = set() if events is None else {str(c) for c in events["channel"].unique()}
    return [c for c in ENGAGEMENT_CHANNELS if c in seen] + sorted(seen - set(ENGAGEMENT_CHANNELS))


def _channel_activity(
    base: CustomerBase, channels: list[str], short: int, long: int
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per channel: reached (any event, sends included) in the last ``long`` days, and
    engagement events (the product's engagement types) in the last ``short`` days and in
    the ``long - short`` days before, each of shape (n_customers,)."""
    events = base.inputs.inputs.events
    zeros = np.zeros(base.n)
    out = {c: (zeros > 0, zeros, zeros) for c in channels}
    if events is None:
        return out
    days_ago = base.as_of_day - day_numbers(events["timestamp"])
    inside = (days_ago < long) & (days_ago >= 0)
    recent = events if inside.all() else events.loc[inside]  # the loader keeps 90 days
    days_ago = days_ago[inside]
    code = customer_codes(recent["customer_id"], base.features.index)
    channel_code, channel_names = _codes(recent["channel"])
    type_code, type_names = _codes(recent["event_type"])
    engaging = np.isin(type_names, base.config.params.engagement_event_types)[type_code]
    known = code >= 0
    # One (customer, channel) cell per event: three bincounts instead of one pass per channel.
    k = len(channel_names)
    cell = code * k + channel_code

    def per_cell(rows: np.ndarray) -> np.ndarray:
        return np.bincount(cell[rows], minlength=base.n * k).reshape(base.n, k)

    reached = per_cell(known) > 0
    late = per_cell(known & engaging & (days_ago < short)).astype(np.float64)
    early = per_cell(known & engaging & (days_ago >= short)).astype(np.float64)
    for c in channels:
        if c in channel_names:
            j = channel_names.index(c)
            out[c] = (reached[:, j], late[:, j], early[:, j])
    return out


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and their labels (category codes when the column is categorical)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), [str(c) for c in values.cat.categories]
    codes, uniques = pd.factorize(values.astype(str))
    return codes, [str(u) for u in uniques]


def _trend_chart(shares: dict[str, np.ndarray]) -> dict:
    names = list(shares)
    traces = [
        charts.bar(
            [100 * shares[n][t] for n in names],
            names,
            trend,
            colour=_TREND_COLOURS[trend],
            orientation="h",
            hover=f"%{{y}}: %{{x:.1f}}% {trend}<extra></extra>",
        )
        for t, trend in enumerate(_TRENDS)
    ]
    for trace in traces:  # horizontal bars: values on x
        trace["x"], trace["y"] = charts.rounded(trace["x"]), list(trace["y"])
    return charts.figure(
        traces,
        title="Rising or fading interest (last 30 vs the 60 days before)",
        x_title="% of customers active on the channel",
        barmode="stack",
        yaxis={"autorange": "reversed"},
    )


@dataclass(frozen=True)
class _Inputs:
    """Per-customer flags and codes of the section, computed once for all views."""

    channels: list[str]  # engagement channels seen in the recent events
    reached: dict[str, np.ndarray]  # channel -> any event in the last LONG_DAYS, bool
    engaged: dict[str, np.ndarray]  # channel -> an engagement event there, bool
    bands: dict[str, np.ndarray]  # "orders", then each channel -> trend_bands codes
    buckets: np.ndarray  # reorder_buckets codes
    value: np.ndarray  # predicted CLV, else 12-month net spend

    @property
    def has_reach(self) -> bool:
        """Whether there are recent events to draw the reach chart from."""
        return bool(self.channels)


def _inputs(base: CustomerBase) -> _Inputs:
    f, short, long = base.features, SHORT_DAYS, LONG_DAYS
    events = base.inputs.inputs.events
    channels = _channels(events)
    activity = _channel_activity(base, channels, short, long)
    bands = {"orders": trend_bands(f["velocity_90_vs_prior"].to_numpy(dtype=np.float64))}
    for c in channels:
        recent = activity[c][1] / short
        earlier = activity[c][2] / (long - short)
        with np.errstate(invalid="ignore", divide="ignore"):
            bands[c] = trend_bands((recent - earlier) / (recent + earlier))
    value = base.score("predicted_clv")
    return _Inputs(
        channels=channels,
        reached={c: activity[c][0] for c in channels},
        engaged={c: (activity[c][1] + activity[c][2]) > 0 for c in channels},
        bands=bands,
        buckets=reorder_buckets(f, base.config.params.at_risk_overdue_ratio),
        value=f["spend_365d"].to_numpy(dtype=np.float64) if value is None else np.nan_to_num(value),
    )


def _reach_chart(channels: list[str], reach: list[float], engage: list[float]) -> dict:
    return charts.figure(
        [
            charts.bar(
                channels,
                reach,
                f"Reached (any event, {LONG_DAYS} d)",
                colour="#9cc3e6",
                hover="%{x}: %{y:.1f}% reached<extra></extra>",
            ),
            charts.bar(
                channels,
                engage,
                f"Engaged ({LONG_DAYS} d)",
                colour="#3b6fb6",
                hover="%{x}: %{y:.1f}% engaged<extra></extra>",
            ),
        ],
        title="Channel reach and engagement",
        y_title="% of customers",
        barmode="group",
    )


def _reorder_chart(counts: np.ndarray, values: np.ndarray) -> dict:
    return charts.figure(
        [
            charts.bar(
                REORDER_BUCKETS,
                counts,
                "Customers",
                colour=["#9cc3e6", "#3a9d5d", "#e4a12f", "#c8443f"],
                customdata=charts.rounded(values),
                hover="%{x}: %{y:,} customers, value %{customdata:,.0f}<extra></extra>",
            )
        ],
        title="Reorder timing against each customer's own rhythm",
        y_title="Customers",
    )


def _trend_shares(bands: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """Share rising, stable, fading among the view's customers with a known trend."""
    shares = {}
    for name, band in bands.items():
        known = mask & (band >= 0)
        shares[name] = np.bincount(band[known], minlength=3) / max(int(known.sum()), 1)
    return shares


def _compute(data: _Inputs, mask: np.ndarray) -> SectionView:
    n = max(int(mask.sum()), 1)
    figures, numbers = [], []
    if data.has_reach:
        reach = [100 * (data.reached[c] & mask).sum() / n for c in data.channels]
        engage = [100 * (data.engaged[c] & mask).sum() / n for c in data.channels]
        figures.append(_reach_chart(data.channels, reach, engage))
        best = int(np.argmax(engage))
        numbers.append(
            Number("Most engaging channel", data.channels[best], f"{engage[best]:.1f}% engaged")
        )
    shares = _trend_shares(data.bands, mask)
    figures.append(_trend_chart(shares))
    timed = mask & (data.buckets >= 0)
    counts = np.bincount(data.buckets[timed], minlength=4)
    values = np.bincount(data.buckets[timed], data.value[timed], 4)
    figures.append(_reorder_chart(counts, values))
    rising, fading = shares["orders"][0], shares["orders"][2]
    overdue, overdue_value = counts[2] + counts[3], values[2] + values[3]
    numbers += [
        Number("Rising order rate", fmt.pct(rising), tone="good"),
        Number("Fading order rate", fmt.pct(fading), tone="bad"),
        Number("Due within 14 days", fmt.count(counts[1]), f"value {fmt.money(values[1])}"),
        Number("Overdue", fmt.count(overdue), f"value {fmt.money(overdue_value)}", "bad"),
    ]
    reading = (
        f"{fmt.pct(rising)} of buyers are ordering faster than before and {fmt.pct(fading)} "
        f"slower; {fmt.count(counts[1])} customers are due to reorder within "
        f"{DUE_SOON_DAYS} days and {fmt.count(overdue)} are overdue "
        f"({fmt.pct(safe_ratio(overdue, counts.sum()))} of those with a rhythm)."
    )
    return SectionView(numbers, reading, figures)


def build(base: CustomerBase) -> Section:
    """Engagement per channel, velocity bands and reorder timing for every view."""
    data = _inputs(base)
    short, long, overdue_ratio = SHORT_DAYS, LONG_DAYS, base.config.params.at_risk_overdue_ratio
    return Section(
        "engagement",
        "Engagement and velocity",
        "Where customers engage, whose interest rises or fades, and who is ready to reorder.",
        per_view(base, lambda mask: _compute(data, mask)),
        f"Reached: any event on the channel in the last {long} days (sends included); engaged: "
        f"an engagement event (open, click, visit...) there. Interest on a channel compares the "
        f"event rate of the last {short} days with the {long - short} days before; orders use "
        f"the product's velocity_90_vs_prior. Rising/fading: balance above {TREND_BAND} / below "
        f"-{TREND_BAND} (about 50% faster or slower). Reorder timing: due when the customer's "
        f"mean gap between purchase days runs out within {DUE_SOON_DAYS} days; well overdue "
        f"beyond {overdue_ratio}x the mean gap (the at-risk rule). Value: "
        "predicted CLV when scores are given, else net spend over the last 365 days.",
    )
