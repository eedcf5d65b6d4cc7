"""Section 4: retention and cumulative revenue per customer by first-purchase month."""

from __future__ import annotations

import numpy as np

from fidelite.reports import charts
from fidelite.reports import formats as fmt
from fidelite.reports.base import CustomerBase, CustomerMonths, customer_months, month_label
from fidelite.reports.layout import Number, Section, SectionView
from fidelite.reports.sections._common import per_view

__all__ = ["COHORT_MONTHS", "CohortTable", "build", "cohort_table"]

#: Cohorts (first-purchase months) shown, and months after the first purchase.
COHORT_MONTHS = 24


class CohortTable:
    """Cohort sizes, buyers and net revenue per month after the first purchase.

    Attributes
    ----------
    months : list of int
        Cohort month numbers, oldest first.
    size : ndarray, shape (n_cohorts,)
        Customers whose first purchase day falls in the cohort month.
    buyers, revenue : ndarray, shape (n_cohorts, COHORT_MONTHS)
        Customers with a purchase day, and their net revenue, in month ``k`` after the
        cohort month (``k = 0`` is the cohort month); NaN where month ``k`` is not
        complete at D.
    """

    def __init__(
        self, months: list[int], size: np.ndarray, buyers: np.ndarray, revenue: np.ndarray
    ):
        self.months, self.size, self.buyers, self.revenue = months, size, buyers, revenue

    @property
    def retention(self) -> np.ndarray:
        """Share of the cohort buying in month k, shape (n_cohorts, COHORT_MONTHS)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.buyers / self.size[:, None]

    @property
    def cumulative_revenue(self) -> np.ndarray:
        """Cumulative net revenue per cohort customer through month k."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.cumsum(self.revenue, axis=1) / self.size[:, None]

    def mean_retention(self, k: int, last: int) -> float:
        """Size-weighted retention in month ``k`` over the ``last`` cohorts observing it."""
        observed = np.flatnonzero(np.isfinite(self.buyers[:, k]))[-last:]
        size = self.size[observed].sum()
        return float(self.buyers[observed, k].sum() / size) if size else float("nan")


def cohort_table(months: CustomerMonths, mask: np.ndarray) -> CohortTable:
    """The cohorts of the customers in ``mask`` with a purchase day by D."""
    last = months.last_full_month
    first = last - COHORT_MONTHS + 1
    cohort_of = months.first_month
    size = np.bincount(
        cohort_of[mask & (cohort_of >= first) & (cohort_of <= last)] - first,
        minlength=COHORT_MONTHS,
    ).astype(np.float64)
    cohort = cohort_of[months.code]
    offset = months.month - cohort
    keep = mask[months.code] & (cohort >= first) & (cohort <= last) & (offset >= 0)
    keep &= (offset < COHORT_MONTHS) & (months.month <= last)
    flat = (cohort[keep] - first) * COHORT_MONTHS + offset[keep]
    cells = COHORT_MONTHS * COHORT_MONTHS
    buyers = np.bincount(flat[months.bought[keep]], minlength=cells).astype(np.float64)
    revenue = np.bincount(flat, months.net[keep], minlength=cells).astype(np.float64)
    buyers, revenue = buyers.reshape(COHORT_MONTHS, -1), revenue.reshape(COHORT_MONTHS, -1)
    # Month k of cohort c is complete only when c + k <= last.
    unobserved = (
        np.add.outer(np.arange(COHORT_MONTHS), np.arange(COHORT_MONTHS)) > COHORT_MONTHS - 1
    )
    buyers[unobserved] = np.nan
    revenue[unobserved] = np.nan
    return CohortTable(list(range(first, last + 1)), size, buyers, revenue)


def _heatmap(table: CohortTable) -> dict:
    retention = table.retention[:, 1:]
    labels = [month_label(m) for m in table.months]
    text = [[fmt.pct(v, 0) if np.isfinite(v) else "" for v in row] for row in retention]
    trace = {
        "type": "heatmap",
        "z": [charts.rounded(100 * row) for row in retention],
        "x": list(range(1, COHORT_MONTHS)),
        "y": labels,
        "text": text,
        "texttemplate": "%{text}",
        "textfont": {"size": 9},
        "colorscale": "Blues",
        "reversescale": True,
        "zmin": 0,
        "colorbar": {"title": {"text": "%"}, "thickness": 10},
        "customdata": [[int(s)] * (COHORT_MONTHS - 1) for s in table.size],
        "hovertemplate": "cohort %{y}, month %{x}: %{z:.1f}% of %{customdata:,} bought"
        "<extra></extra>",
        "hoverongaps": False,
    }
    return charts.figure(
        [trace],
        title="Retention: share of each cohort buying in month k",
        x_title="Months after the first purchase",
        y_title="First-purchase month",
        height=520,
        yaxis={"autorange": "reversed", "type": "category"},
    )


def _curves(table: CohortTable) -> dict:
    cumulative = table.cumulative_revenue
    traces = []
    n = len(table.months)
    for i, month in enumerate(table.months):
        row = cumulative[i]
        if table.size[i] == 0 or not np.isfinite(row).any():
            continue
        shade = int(60 + 160 * (i / max(n - 1, 1)))
        traces.append(
            charts.line(
                list(range(0, int(np.isfinite(row).sum()))),
                row[np.isfinite(row)],
                month_label(month),
                colour=f"rgb({255 - shade}, {120 + shade // 3}, {shade})",
                hover=f"{month_label(month)}: "
                + "month %{x}: %{y:,.2f} per customer<extra></extra>",
            )
        )
    return charts.figure(
        traces,
        title="Cumulative net revenue per customer, by cohort",
        x_title="Months after the first purchase",
        y_title="Per customer (currency)",
        showlegend=False,
    )


def build(base: CustomerBase) -> Section:
    """Cohort heatmap and curves for every view."""
    months = customer_months(base)

    def compute(mask: np.ndarray) -> SectionView:
        table = cohort_table(months, mask)
        numbers = []
        for k in (1, 3, 6):
            recent = table.mean_retention(k, 6)
            before = _earlier_retention(table, k)
            numbers.append(
                Number(
                    f"Month-{k} retention",
                    fmt.pct(recent),
                    f"{fmt.change(recent, before, share=True)} vs the 6 cohorts before",
                    _tone(recent, before),
                    hint="Size-weighted over the latest 6 cohorts observing month k.",
                )
            )
        twelve = table.cumulative_revenue[:, 11]
        observed = np.isfinite(twelve)
        value_12 = (
            float(np.average(twelve[observed], weights=table.size[observed]))
            if (observed.any() and table.size[observed].sum())
            else float("nan")
        )
        numbers.append(Number("12-month revenue per customer", fmt.money(value_12)))
        reading = (
            f"Of the customers who first bought in the latest 6 observed months, "
            f"{fmt.pct(table.mean_retention(1, 6))} bought again the next month and "
            f"{fmt.pct(table.mean_retention(3, 6))} in month 3."
        )
        return SectionView(numbers, reading, [_heatmap(table), _curves(table)])

    return Section(
        "cohorts",
        "Cohorts",
        "How each monthly cohort of first-time buyers keeps buying.",
        per_view(base, compute),
        "A cohort is the calendar month of a customer's first purchase day. Retention in month "
        "k = cohort customers with a purchase day in the k-th month after it / cohort size. "
        "Revenue is net of refunds, per cohort customer, cumulated from the cohort month. Only "
        "months complete at D are shown.",
    )


def _earlier_retention(table: CohortTable, k: int) -> float:
    observed = np.flatnonzero(np.isfinite(table.buyers[:, k]))[-12:-6]
    size = table.size[observed].sum()
    return float(table.buyers[observed, k].sum() / size) if size else float("nan")


def _tone(now: float, before: float) -> str:
    if not (np.isfinite(now) and np.isfinite(before)) or now == before:
        return "neutral"
    return "good" if now > before else "bad"
