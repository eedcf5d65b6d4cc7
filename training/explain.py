"""Turn the churn model's top feature contributions into readable phrases.

Each feature family has a template that reads the customer's own values (and
related columns, e.g. the usual purchase gap next to days since last order);
anything without a template falls back to ``"<feature> = <value>"``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

__all__ = ["describe", "top_reasons"]

Row = Mapping[str, object]


def _num(value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return out


def _fmt(value: object) -> str:
    x = _num(value)
    if math.isnan(x):
        return "unknown" if value is None or isinstance(value, float) else str(value)
    return f"{x:.0f}" if abs(x) >= 10 or x == int(x) else f"{x:.2f}"


def _days_since_last(feature: str, value: float, row: Row) -> str:
    text = f"no order for {value:.0f} days"
    gap = _num(row.get("ipt_mean_days"))
    if gap > 0:
        text += f", {value / gap:.1f}x their usual gap"
    return text


def _overdue(feature: str, value: float, row: Row) -> str:
    return f"{value:.1f}x past their usual gap between orders"


def _window_count(feature: str, value: float, row: Row) -> str:
    days = re.search(r"_(\d+)d$", feature).group(1)  # type: ignore[union-attr]
    return f"{value:.0f} orders in the last {days} days"


def _window_spend(feature: str, value: float, row: Row) -> str:
    days = re.search(r"_(\d+)d$", feature).group(1)  # type: ignore[union-attr]
    return f"spent {value:,.0f} in the last {days} days"


def _balance_change(label: str, baseline: str) -> Callable[[str, float, Row], str]:
    """Template for ``balance`` features, b = (recent - earlier) / (recent + earlier) in [-1, 1].

    b converts back to a relative change recent/earlier - 1 = 2b / (1 - b).
    """

    def render(feature: str, value: float, row: Row) -> str:
        if value <= -1.0:
            return f"{label} fell to 0 vs {baseline}"
        if value >= 1.0:
            return f"{label} appeared from nothing vs {baseline}"
        change = 200.0 * value / (1.0 - value)
        direction = "down" if change < 0 else "up"
        return f"{label} {direction} {abs(change):.0f}% vs {baseline}"

    return render


def _engagement_events(feature: str, value: float, row: Row) -> str:
    match = re.match(r"eng_(.+)_events_(\d+)d$", feature)
    channel, days = match.group(1), match.group(2)  # type: ignore[union-attr]
    if value == 0:
        return f"{channel} activity fell to 0 in the last {days} days"
    return f"{value:.0f} {channel} interactions in the last {days} days"


def _engagement_rate(feature: str, value: float, row: Row) -> str:
    match = re.match(r"eng_(.+)_(open|click)_rate$", feature)
    channel, kind = match.group(1), match.group(2)  # type: ignore[union-attr]
    noun = "opens" if kind == "open" else "clicks"
    if value == 0:
        return f"{channel} {noun} fell to 0"
    return f"{channel} {kind} rate {value:.0%}"


def _engagement_recency(feature: str, value: float, row: Row) -> str:
    channel = re.match(r"eng_(.+)_days_since_last$", feature).group(1)  # type: ignore[union-attr]
    return f"no {channel} activity for {value:.0f} days"


def _order_share(feature: str, value: float, row: Row) -> str:
    return f"{value:.0%} of orders via {feature.removeprefix('order_share_')}"


def _share(label: str) -> Callable[[str, float, Row], str]:
    def render(feature: str, value: float, row: Row) -> str:
        return f"{value:.0%} {label}"

    return render


def _simple(template: str) -> Callable[[str, float, Row], str]:
    def render(feature: str, value: float, row: Row) -> str:
        return template.format(v=value)

    return render


# Ordered (pattern, template); the first full match wins.
_NUMERIC_TEMPLATES: list[tuple[str, Callable[[str, float, Row], str]]] = [
    (r"days_since_last_purchase", _days_since_last),
    (r"overdue_ratio", _overdue),
    (r"orders_\d+d", _window_count),
    (r"spend_\d+d", _window_spend),
    (r"spend_trend", _balance_change("spend", "the prior 90 days")),
    (r"velocity_90_vs_prior", _balance_change("order pace", "their earlier rate")),
    (r"order_share_.+", _order_share),
    (r"eng_.+_events_\d+d", _engagement_events),
    (r"eng_.+_(open|click)_rate", _engagement_rate),
    (r"eng_.+_days_since_last", _engagement_recency),
    (r"refund_share", _share("of spend refunded")),
    (r"discount_share", _share("of spend on discounted orders")),
    (r"orders_total", _simple("{v:.0f} orders in total")),
    (r"spend_total", _simple("spent {v:,.0f} in total")),
    (r"avg_order_value", _simple("average order value {v:,.0f}")),
    (r"tenure_days", _simple("customer for {v:.0f} days")),
    (r"ipt_mean_days", _simple("usually orders every {v:.0f} days")),
    (r"frequency", _simple("{v:.0f} repeat purchase days")),
    (r"recency", _simple("last order {v:.0f} days after their first")),
    (r"days_since_last_engagement", _simple("no engagement for {v:.0f} days")),
    (r"unsubscribes_total", _simple("{v:.0f} unsubscribes")),
    (r"bounces_total", _simple("{v:.0f} bounced messages")),
    (r"baseline_p_alive", _simple("BG/NBD puts the chance they are still active at {v:.0%}")),
    (r"baseline_churn_probability", _simple("BG/NBD gives {v:.0%} chance of no purchase")),
    (r"baseline_expected_purchases", _simple("{v:.1f} purchases expected by BG/NBD")),
    (r"baseline_clv", _simple("baseline value forecast {v:,.0f}")),
]

_TEXT_TEMPLATES: dict[str, str] = {
    "lifecycle_stage": "lifecycle stage: {v}",
    "rfm_segment": "RFM segment: {v}",
    "best_channel": "best channel: {v}",
    "acquisition_channel": "acquired via {v}",
}

_BOOL_TEMPLATES = re.compile(r"(email|sms|push)_opt_in")
_ENGAGEMENT_COLUMN = re.compile(
    r"eng_(.+?)_(events_\d+d|open_rate|click_rate|days_since_last|share)$"
)


@functools.cache
def _numeric_template(feature: str) -> Callable[[str, float, Row], str] | None:
    """First template whose pattern matches the feature name (cached: names repeat)."""
    for pattern, render in _NUMERIC_TEMPLATES:
        if re.fullmatch(pattern, feature):
            return render
    return None


def describe(feature: str, value: object, row: Row) -> str:
    """Readable phrase for one feature value of one customer.

    Parameters
    ----------
    feature : str
        Column name in the features frame.
    value : object
        The customer's value for it.
    row : mapping
        The customer's other feature values (for context such as the usual gap).
    """
    if feature in _TEXT_TEMPLATES:
        return _TEXT_TEMPLATES[feature].format(v="unknown" if pd.isna(value) else value)
    opt_in = _BOOL_TEMPLATES.fullmatch(feature)
    if opt_in:
        return f"{'opted in to' if bool(value) else 'not opted in to'} {opt_in.group(1)}"
    number = _num(value)
    if math.isnan(number):
        channel = _ENGAGEMENT_COLUMN.match(feature)
        if channel:
            return f"no {channel.group(1)} activity on record"
        if feature == "days_since_last_engagement":
            return "no engagement on record"
    else:
        render = _numeric_template(feature)
        if render is not None:
            return render(feature, number, row)
    return f"{feature} = {_fmt(value)}"


def top_reasons(
    contributions: pd.DataFrame, features: pd.DataFrame, top_k: int = 3
) -> list[list[str]]:
    """Phrases for the ``top_k`` features pushing each customer towards churn.

    Parameters
    ----------
    contributions : DataFrame of shape (n, n_features)
        Per-feature contributions to the churn log-odds (``pred_contrib``).
    features : DataFrame of shape (n, m)
        The customers' raw feature values, same row order.
    top_k : int
        Reasons per customer; only positive contributions are used, so a
        customer with nothing raising their risk gets fewer (possibly none).

    Returns
    -------
    list of list of str, length n
    """
    values = contributions.to_numpy(dtype=float)
    names = np.asarray(contributions.columns)
    k = min(top_k, values.shape[1])
    order = np.argsort(-values, axis=1)[:, :k]
    top_values = np.take_along_axis(values, order, axis=1)
    records = features.to_dict(orient="records")
    reasons: list[list[str]] = []
    for row, idx, contrib in zip(records, order, top_values):
        reasons.append(
            [
                describe(str(names[j]), row.get(str(names[j])), row)
                for j, c in zip(idx, contrib)
                if c > 0
            ]
        )
    return reasons
