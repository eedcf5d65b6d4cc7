"""Section 1: headline numbers at D and their change against D - 30 and D - 90 days."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fidelite.reports import charts
from fidelite.reports import formats as fmt
from fidelite.reports.base import CustomerBase, CustomerMonths, customer_months, month_label
from fidelite.reports.layout import Number, Section, SectionView
from fidelite.reports.sections._common import masked_sum, per_view, safe_ratio

__all__ = ["ACTIVE_DAYS", "COMPARE_DAYS", "TREND_MONTHS", "KpiSnapshot", "build"]

#: A customer is an *active buyer* at day X with a purchase day in (X - 90, X].
ACTIVE_DAYS = 90
#: The KPIs are compared with their values this many days before D.
COMPARE_DAYS = (30, 90)
#: Months shown in the trend chart.
TREND_MONTHS = 24

DEFINITIONS = (
    "Customers: known by the day (signed up or bought). Active buyers: a purchase day in the "
    f"{ACTIVE_DAYS} days up to the day. Repeat-purchase rate: buyers with two or more purchase "
    f"days / buyers. Average order value: net value of the purchases placed in the last "
    f"{ACTIVE_DAYS} days (refunds attributed to their order) / those purchases. Purchase "
    f"frequency: purchases per active buyer over those {ACTIVE_DAYS} days. Churn "
    "rate: of the customers who were active buyers H days before the day, the share without a "
    "purchase day in the H days since; retention rate = 1 - churn rate. Predicted CLV and "
    "value at risk come from the scores (net spend expected over the next H days; value at "
    "risk = churn probability x value)."
)


@dataclass(frozen=True)
class KpiSnapshot:
    """Per-customer ingredients of the KPIs at one day, shape (n_customers,) each."""

    known: np.ndarray
    active: np.ndarray
    purchaser: np.ndarray
    repeater: np.ndarray
    orders: np.ndarray
    gross: np.ndarray
    churn_base: np.ndarray
    churned: np.ndarray

    @classmethod
    def at(cls, base: CustomerBase, day: int) -> KpiSnapshot:
        """Ingredients at day number ``day`` (<= D)."""
        h, orders = base.horizon, base.orders
        p = base.purchases_at(day)
        placed = orders.purchase_at(day) & (orders.day > day - ACTIVE_DAYS)
        churn_base = base.purchases_at(day - h).count_between(day - h - ACTIVE_DAYS, day - h) > 0
        return cls(
            known=base.known_day <= day,
            active=p.count_between(day - ACTIVE_DAYS, day) > 0,
            purchaser=p.count > 0,
            repeater=p.count > 1,
            orders=np.bincount(orders.code[placed], minlength=base.n).astype(np.float64),
            gross=np.bincount(orders.code[placed], orders.net_at(day)[placed], base.n),
            churn_base=churn_base,
            churned=churn_base & (p.count_between(day - h, day) == 0),
        )

    def values(self, mask: np.ndarray) -> dict[str, float]:
        """The KPIs over the customers in ``mask``."""
        active = float((self.active & mask).sum())
        orders = masked_sum(self.orders, mask & self.active)
        churn_base = float((self.churn_base & mask).sum())
        churn = safe_ratio(float((self.churned & mask).sum()), churn_base)
        return {
            "customers": float((self.known & mask).sum()),
            "active": active,
            "repeat_rate": safe_ratio(
                float((self.repeater & mask).sum()), float((self.purchaser & mask).sum())
            ),
            "aov": safe_ratio(masked_sum(self.gross, mask), orders),
            "frequency": safe_ratio(orders, active),
            "churn": churn,
            "retention": 1 - churn,
        }


# (key, label, formatter, is a share, higher is better)
_OBSERVED = (
    ("customers", "Customers", fmt.count, False, True),
    ("active", "Active buyers", fmt.count, False, True),
    ("repeat_rate", "Repeat-purchase rate", fmt.pct, True, True),
    ("aov", "Average order value", fmt.money, False, True),
    ("frequency", f"Orders per active buyer ({ACTIVE_DAYS} d)", lambda v: f"{v:.2f}", False, True),
    ("churn", "Churn rate", fmt.pct, True, False),
    ("retention", "Retention rate", fmt.pct, True, True),
)


def _observed_numbers(now: dict, before: dict[int, dict]) -> list[Number]:
    numbers = []
    for key, label, formatter, share, up_is_good in _OBSERVED:
        deltas, tone = [], "neutral"
        for days, values in before.items():
            text = fmt.change(now[key], values[key], share=share)
            if text:
                deltas.append(f"{text} vs {days} d")
        first = before[COMPARE_DAYS[0]][key]
        if np.isfinite(now[key]) and np.isfinite(first) and now[key] != first:
            tone = "good" if (now[key] > first) == up_is_good else "bad"
        value = formatter(now[key]) if np.isfinite(now[key]) else "n/a"
        numbers.append(Number(label, value, " · ".join(deltas), tone))
    return numbers


def _score_numbers(base: CustomerBase, mask: np.ndarray) -> list[Number]:
    clv, risk = base.score("predicted_clv"), base.score("value_at_risk")
    h = base.horizon
    if clv is None:
        return [Number(f"Predicted CLV ({h} d)", "no scores", hint="pass --scores")]
    numbers = [
        Number(
            f"Predicted CLV ({h} d)",
            fmt.money(masked_sum(clv, mask)),
            hint=f"Expected net spend over the next {h} days, summed over scored customers.",
        )
    ]
    if risk is not None:
        numbers.append(
            Number(
                "Value at risk",
                fmt.money(masked_sum(risk, mask)),
                tone="bad",
                hint="Sum of churn probability x value over scored customers.",
            )
        )
    return numbers


def _trend(months: CustomerMonths, mask: np.ndarray) -> dict:
    last = months.last_full_month
    first = last - TREND_MONTHS + 1
    keep = mask[months.code] & (months.month >= first) & (months.month <= last)
    offset = months.month[keep] - first
    revenue = np.bincount(offset, months.net[keep], TREND_MONTHS)
    buyers = np.bincount(offset[months.bought[keep]], minlength=TREND_MONTHS)
    labels = [month_label(m) for m in range(first, last + 1)]
    traces = [
        charts.bar(
            labels,
            revenue,
            "Net revenue",
            colour="#9cc3e6",
            hover="%{x}: %{y:,.0f} net revenue<extra></extra>",
        ),
        charts.line(
            labels,
            buyers,
            "Buyers in the month",
            colour=charts.PALETTE[1],
            yaxis="y2",
            hover="%{x}: %{y:,} buyers<extra></extra>",
        ),
    ]
    return charts.figure(
        traces,
        title="Monthly net revenue and buyers",
        y_title="Net revenue",
        yaxis2={
            "title": {"text": "Buyers"},
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "automargin": True,
            "rangemode": "tozero",
        },
    )


def build(base: CustomerBase) -> Section:
    """The KPI section for every view."""
    now = KpiSnapshot.at(base, base.as_of_day)
    earlier = {d: KpiSnapshot.at(base, base.as_of_day - d) for d in COMPARE_DAYS}
    months = customer_months(base)

    def compute(mask: np.ndarray) -> SectionView:
        values = now.values(mask)
        before = {d: snapshot.values(mask) for d, snapshot in earlier.items()}
        numbers = _observed_numbers(values, before) + _score_numbers(base, mask)
        change = fmt.change(values["active"], before[COMPARE_DAYS[0]]["active"]) or "no change"
        reading = (
            f"{fmt.count(values['active'])} active buyers ({change} in 30 days); "
            f"{fmt.pct(values['churn'])} of the buyers active {base.horizon} days ago have not "
            "bought since."
        )
        clv = base.score("predicted_clv")
        if clv is not None:
            risk = base.score("value_at_risk")
            at_risk = (
                f", {fmt.money(masked_sum(risk, mask))} of it at risk" if risk is not None else ""
            )
            reading += (
                f" Expected net spend over the next {base.horizon} days: "
                f"{fmt.money(masked_sum(clv, mask))}{at_risk}."
            )
        return SectionView(numbers, reading, [_trend(months, mask)])

    return Section(
        "kpis",
        "Headline numbers",
        f"Where the customer base stands on {base.as_of.date()} and how it moved since "
        "30 and 90 days before.",
        per_view(base, compute),
        DEFINITIONS,
    )
