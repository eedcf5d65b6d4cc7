"""Phrases for feature values, one template per feature family of the contract.

Every phrase states what the customer's value means in words (no column names), and
reads correctly whether the feature raised or lowered the risk: the same template serves
positive drivers and the neutral fallback of :func:`~fidelite.training.reasons.top_reasons`.
Templates are keyed by :class:`fidelite.features.contract.FeatureFamily` name (the
channel and window of per-channel or per-window families come from the family's column
template), plus the ``baseline_*`` columns training adds. Each has a phrase for a
missing value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = ["NUMERIC_PHRASES", "TEXT_PHRASES", "Context", "Parts", "Template", "words"]


class Parts(NamedTuple):
    """What a column name adds to its family: the channel (in words) and window (days)."""

    channel: str = ""
    window: str = ""


#: Column accessor for the rows being phrased: name -> float array aligned with them
#: (all-NaN when the column is absent).
Context = Callable[[str], np.ndarray]
#: A numeric template renders the values (shape (m,), never NaN) of one column.
Template = Callable[[Parts, np.ndarray, Context], list[str]]


def words(name: object) -> str:
    """Identifier-like text (``call_center``, ``at_risk``) as plain words."""
    return str(name).replace("_", " ").strip()


def _times(n: float, noun: str) -> str:
    """``1 order``, ``3 orders`` (n rounded to a whole number)."""
    count = round(n)
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _days_since_last(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
    gaps = context("ipt_mean_days")
    return [
        f"no order for {v:.0f} days, {v / g:.1f}x their usual gap"
        if g > 0
        else f"no order for {v:.0f} days"
        for v, g in zip(values.tolist(), gaps.tolist(), strict=True)
    ]


def _overdue(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
    return [
        f"{v:.1f}x past their usual gap between orders"
        if v >= 1
        else f"next order not due yet: {v:.0%} of their usual gap has passed"
        for v in values.tolist()
    ]


def _regularity(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
    # Spread relative to the usual gap (coefficient of variation): > 0.5 is erratic.
    means = context("ipt_mean_days")
    return [
        f"irregular buyer: gaps between orders vary by ±{v:.1f} days"
        + (f" around {g:.0f}" if g > 0 else "")
        if not g > 0 or v / g > 0.5
        else f"regular buyer: gaps between orders vary by only ±{v:.1f} days around {g:.0f}"
        for v, g in zip(values.tolist(), means.tolist(), strict=True)
    ]


def _window_count(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
    return [
        f"no orders in the last {parts.window} days"
        if v == 0
        else f"{_times(v, 'order')} in the last {parts.window} days"
        for v in values.tolist()
    ]


def _window_spend(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
    return [
        f"no spend in the last {parts.window} days"
        if v == 0
        else f"spent {v:,.0f} in the last {parts.window} days"
        for v in values.tolist()
    ]


def _balance_change(label: str, baseline: str) -> Template:
    """Template for ``balance`` features, b = (recent - earlier) / (recent + earlier) in [-1, 1].

    b converts back to a relative change recent/earlier - 1 = 2b / (1 - b).
    """

    def phrase(value: float) -> str:
        if value <= -1.0:
            return f"{label} fell to 0 vs {baseline}"
        if value >= 1.0:
            return f"{label} appeared from nothing vs {baseline}"
        change = 200.0 * value / (1.0 - value)
        if abs(change) < 0.5:
            return f"{label} steady vs {baseline}"
        direction = "down" if change < 0 else "up"
        return f"{label} {direction} {abs(change):.0f}% vs {baseline}"

    def render(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
        return [phrase(v) for v in values.tolist()]

    return render


def _engagement_events(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
    channel = parts.channel
    return [
        f"no {channel} activity in the last {parts.window} days"
        if v == 0
        else f"{_times(v, f'{channel} interaction')} in the last {parts.window} days"
        for v in values.tolist()
    ]


def _engagement_rate(kind: str) -> Template:
    def render(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
        channel = parts.channel
        return [
            f"never {kind} any {channel} message"
            if v == 0
            else f"{kind} every {channel} message"
            if v >= 1
            else f"{kind} {v:.0%} of {channel} messages"
            for v in values.tolist()
        ]

    return render


def _engagement_recency(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
    return [
        f"active on {parts.channel} today"
        if v < 1
        else f"no {parts.channel} activity for {v:.0f} days"
        for v in values.tolist()
    ]


def _share(all_of: str, none_of: str, some_of: str) -> Template:
    """Template for a share in [0, 1]; ``{channel}`` and ``{v}`` are filled in."""

    def render(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
        return [
            (all_of if v >= 1 else none_of if v == 0 else some_of).format(
                channel=parts.channel, v=v
            )
            for v in values.tolist()
        ]

    return render


def _purchase_days(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
    # BG/NBD frequency counts *repeat* purchase days: distinct days = frequency + 1.
    return [
        "only one purchase day so far" if v == 0 else f"bought on {v + 1:.0f} different days"
        for v in values.tolist()
    ]


def _counted(noun: str, none: str) -> Template:
    def render(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
        return [none if v == 0 else _times(v, noun) for v in values.tolist()]

    return render


def _p_alive(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
    return [
        f"model estimates {'only ' if v < 0.5 else ''}{v:.0%} chance they are still active"
        for v in values.tolist()
    ]


def _consent_state(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
    return [
        f"opted in to {parts.channel}" if v >= 0.5 else f"opted out of {parts.channel}"
        for v in values.tolist()
    ]


def _consent_change(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
    return [
        f"changed {parts.channel} consent {v:.0f} days ago"
        if v > 0
        else f"changed {parts.channel} consent today"
        for v in values.tolist()
    ]


def _simple(template: str, zero: str | None = None) -> Template:
    """``template.format(v=value)``, or the fixed ``zero`` phrase for a value of 0."""

    def render(parts: Parts, values: np.ndarray, context: Context) -> list[str]:
        return [
            zero if zero is not None and v == 0 else template.format(v=v) for v in values.tolist()
        ]

    return render


_NO_PURCHASE = "no purchase yet"
_NO_RHYTHM = "too few purchase days to know their usual gap"
_NO_BASELINE = "no purchase yet for the BG/NBD model to assess"
_NO_ENGAGEMENT = "no {channel} activity on record"

#: Numeric families (and baseline columns) -> (template, phrase for a missing value).
#: ``{channel}`` in a missing phrase is the column's channel.
NUMERIC_PHRASES: dict[str, tuple[Template, str]] = {
    "days_since_last_purchase": (_days_since_last, _NO_PURCHASE),
    "overdue_ratio": (_overdue, _NO_RHYTHM),
    "ipt_mean_days": (_simple("usually orders every {v:.0f} days"), _NO_RHYTHM),
    "ipt_std_days": (_regularity, "too few repeat orders to judge how regular they are"),
    "longest_gap_days": (_simple("longest gap between orders {v:.0f} days"), _NO_RHYTHM),
    "return_gap_days": (
        _simple("came back recently after {v:.0f} days away"),
        "no recent comeback after a long gap",
    ),
    "orders_window": (_window_count, _NO_PURCHASE),
    "spend_window": (_window_spend, _NO_PURCHASE),
    "spend_trend": (
        _balance_change("spend", "the prior 90 days"),
        "no spend in the last 180 days to compare",
    ),
    "velocity_90_vs_prior": (
        _balance_change("order pace", "their earlier rate"),
        "too little order history to compare pace",
    ),
    "order_share": (
        _share(
            "all orders via {channel}",
            "never orders via {channel}",
            "{v:.0%} of orders via {channel}",
        ),
        _NO_PURCHASE,
    ),
    "eng_events": (_engagement_events, _NO_ENGAGEMENT),
    "eng_open_rate": (_engagement_rate("opened"), "no {channel} messages received"),
    "eng_click_rate": (_engagement_rate("clicked"), "no {channel} messages received"),
    "eng_days_since_last": (_engagement_recency, _NO_ENGAGEMENT),
    "eng_share": (
        _share(
            "all recent engagement is on {channel}",
            "no recent engagement on {channel}",
            "{v:.0%} of recent engagement is on {channel}",
        ),
        "no engagement on record",
    ),
    "refund_share": (_simple("{v:.0%} of spend refunded", zero="no refunds"), _NO_PURCHASE),
    "discount_share": (
        _simple("{v:.0%} of spend on discounted orders", zero="never buys on discount"),
        _NO_PURCHASE,
    ),
    "orders_total": (_counted("order", "no orders yet"), _NO_PURCHASE),
    "spend_total": (_simple("spent {v:,.0f} in total", zero="no net spend yet"), _NO_PURCHASE),
    "avg_order_value": (_simple("average order value {v:,.0f}"), _NO_PURCHASE),
    "monetary_value": (
        _simple(
            "spends {v:,.0f} per repeat purchase day", zero="no repeat purchase spend to average"
        ),
        _NO_PURCHASE,
    ),
    "tenure_days": (
        _simple("customer for {v:.0f} days", zero="joined today"),
        "signup date unknown",
    ),
    "frequency": (_purchase_days, _NO_PURCHASE),
    "recency": (
        _simple(
            "last order {v:.0f} days after their first",
            zero="has not bought again after their first purchase day",
        ),
        _NO_PURCHASE,
    ),
    "T": (_simple("first purchase {v:.0f} days ago", zero="first purchase today"), _NO_PURCHASE),
    "days_since_last_engagement": (
        _simple("no engagement for {v:.0f} days", zero="engaged today"),
        "no engagement on record",
    ),
    "unsubscribes_total": (_counted("unsubscribe", "never unsubscribed"), "no unsubscribes"),
    "bounces_total": (_counted("bounced message", "no bounced messages"), "no bounced messages"),
    "acquisition_cost": (_simple("cost {v:,.0f} to acquire"), "acquisition cost unknown"),
    "consent_at_as_of": (_consent_state, "no {channel} consent change on record"),
    "consent_change_age": (_consent_change, "no {channel} consent change on record"),
    "baseline_p_alive": (_p_alive, _NO_BASELINE),
    "baseline_churn_probability": (
        _simple("BG/NBD model gives {v:.0%} chance of no purchase in the forecast period"),
        _NO_BASELINE,
    ),
    "baseline_expected_purchases": (
        _simple("BG/NBD model expects {v:.1f} purchases in the forecast period"),
        _NO_BASELINE,
    ),
    "baseline_expected_spend": (
        _simple("expected spend {v:,.0f} per purchase (Gamma-Gamma model)"),
        _NO_BASELINE,
    ),
    "baseline_clv": (
        _simple("BG/NBD model forecasts {v:,.0f} of spend in the forecast period"),
        _NO_BASELINE,
    ),
}

#: Text families -> (template for a value, phrase for a missing or empty value).
TEXT_PHRASES: dict[str, tuple[str, str]] = {
    "lifecycle_stage": ("lifecycle stage: {v}", "lifecycle stage unknown"),
    "rfm_segment": ("RFM segment: {v}", "RFM segment unknown"),
    "best_channel": ("engages most on {v}", "no engagement on any channel yet"),
    "channel_preference": ("channels by engagement: {v}", "no engagement on any channel yet"),
    "acquisition_channel": ("acquired via {v}", "acquisition channel unknown"),
}
