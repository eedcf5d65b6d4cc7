"""Section 3: what a customer from each acquisition channel is worth against its cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.reports import charts
from fidelite.reports import formats as fmt
from fidelite.reports.base import CustomerBase, customer_months, month_numbers
from fidelite.reports.layout import Number, Section, SectionView
from fidelite.reports.sections._common import per_view, safe_ratio

__all__ = ["PAYBACK_MONTHS", "build", "channel_table", "payback_curves"]

#: Months after acquisition drawn in the payback curves.
PAYBACK_MONTHS = 24
#: A payback point needs this many customers observed that long (small tails are noise).
MIN_OBSERVED = 30


@dataclass(frozen=True)
class _Inputs:
    """Per-customer values and per-(customer, month) cells, coded once for all views."""

    names: list[str]  # acquisition channels
    channel: np.ndarray  # code into names, per customer
    cost: np.ndarray  # acquisition cost (NaN unknown)
    realised: np.ndarray  # net spend to date x margin
    predicted: np.ndarray  # predicted CLV over H x margin (0 when unscored)
    purchase_days: np.ndarray
    observed: np.ndarray  # complete months since acquisition, capped; -1 none
    pair_customer: np.ndarray  # (customer, month) pairs within PAYBACK_MONTHS
    pair_cell: np.ndarray  # observed cap x PAYBACK_MONTHS + months since acquisition
    pair_net: np.ndarray


def _inputs(base: CustomerBase) -> _Inputs:
    margin, k_max = base.config.margin, PAYBACK_MONTHS
    predicted = base.score("predicted_clv")
    f = base.features
    names, channel = np.unique(base.acquisition.astype(str), return_inverse=True)
    months = customer_months(base)
    acquired = month_numbers(np.nan_to_num(base.known_day).astype(np.int64))
    observed = months.last_full_month - acquired
    observed = np.where(observed >= 0, np.minimum(observed, k_max - 1), -1)
    offset = months.month - acquired[months.code]
    keep = (offset >= 0) & (offset < k_max) & (observed[months.code] >= 0)
    return _Inputs(
        names=[str(n) for n in names],
        channel=channel.astype(np.int64),
        cost=f["acquisition_cost"].to_numpy(dtype=np.float64),
        realised=f["spend_total"].to_numpy(dtype=np.float64) * margin,
        predicted=(np.zeros(base.n) if predicted is None else np.nan_to_num(predicted)) * margin,
        purchase_days=base.purchases.count,
        observed=observed,
        pair_customer=months.code[keep],
        pair_cell=observed[months.code[keep]] * k_max + offset[keep],
        pair_net=months.net[keep] * margin,
    )


def channel_table(
    base: CustomerBase, mask: np.ndarray, data: _Inputs | None = None
) -> pd.DataFrame:
    """Per acquisition channel: customers, CAC, value to date, predicted CLV, CLV:CAC, payback.

    Value is net spend x ``config.margin``. ``clv_to_cac`` = (value to date + predicted
    value over H) per customer / CAC per customer, where CAC is the mean known
    acquisition cost. ``payback_months`` is the first month since acquisition in which
    the cumulative value per customer reaches the CAC (NaN when not reached yet).

    Returns
    -------
    DataFrame indexed by channel, sorted by CLV:CAC (best first).
    """
    data = data or _inputs(base)
    c, n = data.channel[mask], len(data.names)

    def per_channel(values: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        keep = slice(None) if rows is None else rows[mask]
        weights = None if values is None else values[mask][keep]
        return np.bincount(c[keep], weights, minlength=n).astype(np.float64)

    customers = per_channel()
    known_cost = np.isfinite(data.cost)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "customers": customers,
                "cac": per_channel(np.nan_to_num(data.cost), known_cost)
                / per_channel(rows=known_cost),
                "value_to_date": per_channel(data.realised) / customers,
                "predicted_value": per_channel(data.predicted) / customers,
                "buyers": per_channel(rows=data.purchase_days > 0),
                "repeaters": per_channel(rows=data.purchase_days > 1),
            },
            index=pd.Index(data.names, name="channel"),
        )
    table = table.loc[table["customers"] > 0]
    table["repeat_rate"] = table["repeaters"] / table["buyers"].where(table["buyers"] > 0)
    table["clv_to_cac"] = (table["value_to_date"] + table["predicted_value"]) / table["cac"].where(
        table["cac"] > 0
    )
    curves = payback_curves(mask, data)
    table["payback_months"] = [
        _payback(curves.get(ch), cac) for ch, cac in zip(table.index, table["cac"], strict=True)
    ]
    return table.sort_values("clv_to_cac", ascending=False, na_position="last")


def _payback(curve: np.ndarray | None, cac: float) -> float:
    if curve is None or not np.isfinite(cac) or cac <= 0:
        return float("nan")
    reached = np.flatnonzero(curve >= cac)
    return float(reached[0] + 1) if reached.size else float("nan")


def payback_curves(mask: np.ndarray, data: _Inputs) -> dict[str, np.ndarray]:
    """Cumulative value per customer by month since acquisition, per channel.

    Month ``k`` (0 = the acquisition month) averages the customers whose ``k``-th month
    is complete at D, so every point is observed, never extrapolated; months observed
    for fewer than :data:`MIN_OBSERVED` customers are left out.

    Returns
    -------
    dict of channel -> ndarray of float64, shape (n_observed_months,)
    """
    k_max, n = PAYBACK_MONTHS, len(data.names)
    rows = mask[data.pair_customer]
    cells = data.channel[data.pair_customer[rows]] * k_max * k_max + data.pair_cell[rows]
    net = np.bincount(cells, data.pair_net[rows], minlength=n * k_max * k_max)
    net = net.reshape(n, k_max, k_max)  # channel, observed months (capped), month offset
    valid = mask & (data.observed >= 0)
    sizes = np.bincount(data.channel[valid] * k_max + data.observed[valid], minlength=n * k_max)
    # Customers observed through month k are those whose cap is >= k.
    observed = sizes.reshape(n, k_max)[:, ::-1].cumsum(axis=1)[:, ::-1]
    out = {}
    for c, name in enumerate(data.names):
        if not observed[c, 0]:
            continue
        enough = int(np.sum(observed[c] >= min(MIN_OBSERVED, observed[c, 0])))
        cumulative = np.array([net[c, k:, : k + 1].sum() / observed[c, k] for k in range(enough)])
        out[name] = cumulative
    return out


def _value_chart(table: pd.DataFrame, horizon: int) -> dict:
    names = [c.replace("_", " ") for c in table.index]
    ratio_text = [f"CLV:CAC {fmt.ratio(r)}" for r in table["clv_to_cac"]]
    traces = [
        charts.bar(
            names,
            table["value_to_date"],
            "Value to date",
            colour="#3b6fb6",
            offsetgroup="value",
            hover="%{x}: %{y:,.2f} per customer to date<extra></extra>",
        ),
        charts.bar(
            names,
            table["predicted_value"],
            f"Predicted next {horizon} d",
            colour="#9cc3e6",
            offsetgroup="value",
            base=charts.rounded(table["value_to_date"]),
            text=ratio_text,
            textposition="outside",
            textfont={"size": 11},
            cliponaxis=False,
            hover="%{x}: %{y:,.2f} per customer expected<extra></extra>",
        ),
        charts.bar(
            names,
            table["cac"],
            "CAC",
            colour="#9aa5b1",
            offsetgroup="cac",
            hover="%{x}: CAC %{y:,.2f}<extra></extra>",
        ),
    ]
    return charts.figure(
        traces,
        title="Value per customer against acquisition cost",
        y_title="Per customer (currency)",
        barmode="group",
    )


def _payback_chart(curves: dict[str, np.ndarray], table: pd.DataFrame) -> dict:
    traces = []
    for name in table.index:
        curve, cac = curves.get(name), table.at[name, "cac"]
        if curve is None or not np.isfinite(cac) or cac <= 0:
            continue
        months = list(range(1, len(curve) + 1))
        traces.append(
            charts.line(
                months,
                curve / cac,
                name.replace("_", " "),
                hover=f"{name}: " + "month %{x}: %{y:.2f}x CAC<extra></extra>",
            )
        )
    traces.append(
        charts.line(
            [1, PAYBACK_MONTHS],
            [1, 1],
            "CAC paid back",
            colour="#7f7f7f",
            dash="dash",
            mode="lines",
            hoverinfo="skip",
        )
    )
    return charts.figure(
        traces,
        title="Payback: cumulative value per customer / CAC",
        x_title="Months since acquisition",
        y_title="x CAC",
    )


def _group_numbers(base: CustomerBase, table: pd.DataFrame) -> tuple[list[Number], str]:
    config = base.config
    groups = {
        "Referral": [c for c in table.index if config.is_referral(c)],
        "Paid": [c for c in table.index if config.is_paid(c)],
    }
    numbers, parts = [], {}
    for label, channels in groups.items():
        rows = table.loc[channels]
        n = rows["customers"].sum()
        if not n:
            continue
        value = ((rows["value_to_date"] + rows["predicted_value"]) * rows["customers"]).sum() / n
        cac = (rows["cac"].fillna(0) * rows["customers"]).sum() / n
        repeat = safe_ratio(rows["repeaters"].sum(), rows["buyers"].sum())
        ratio = safe_ratio(value, cac)
        parts[label] = (value, ratio)
        numbers.append(
            Number(
                f"{label}: CLV:CAC",
                fmt.ratio(ratio),
                f"{fmt.money(value)} value · {fmt.pct(repeat)} repeat",
                hint=f"{label} channels: {', '.join(channels)}",
            )
        )
    reading = ""
    if len(parts) == 2:
        (rv, rr), (pv, pr) = parts["Referral"], parts["Paid"]
        reading = (
            f" Referred customers are worth {fmt.money(rv)} each against {fmt.money(pv)} "
            f"for paid ones (CLV:CAC {fmt.ratio(rr)} vs {fmt.ratio(pr)})."
        )
    return numbers, reading


def build(base: CustomerBase) -> Section:
    """CLV:CAC and payback per acquisition channel, referral against paid."""
    data = _inputs(base)
    has_channels = base.inputs.inputs.customers is not None and data.names != ["unknown"]

    def compute(mask: np.ndarray) -> SectionView:
        table = channel_table(base, mask, data)
        curves = payback_curves(mask, data)
        numbers = [
            Number(
                c.replace("_", " "),
                fmt.ratio(r),
                _payback_text(m),
                "good" if r >= 3 else ("bad" if r < 1 else "neutral"),
            )
            for c, r, m in zip(
                table.index, table["clv_to_cac"], table["payback_months"], strict=True
            )
        ]
        group_numbers, group_reading = _group_numbers(base, table)
        reading = _ranking_reading(table["clv_to_cac"].dropna()) + group_reading
        figures = [_value_chart(table, base.horizon), _payback_chart(curves, table)]
        return SectionView(numbers + group_numbers, reading, figures)

    views = per_view(base, compute)
    if not has_channels:
        for view in views.values():
            view.notes.append(
                "No customers table with acquisition_channel: every customer is "
                "'unknown' and CAC is unknown."
            )
    margin = base.config.margin
    return Section(
        "acquisition",
        "Acquisition",
        "What a customer from each acquisition channel is worth against what it cost to acquire.",
        views,
        f"Value = net spend x margin ({margin:g}). CAC = mean acquisition_cost of the channel's "
        "customers. CLV:CAC = (value to date + predicted value over the next H days, unscored "
        "customers counting 0) / CAC. Payback = first month since acquisition (signup or first "
        "transaction) in which the cumulative value per customer reaches the CAC, averaged over "
        "the customers observed that long. Referral channels: names containing 'referr', "
        "'advoca' or 'friend'; paid: 'paid', 'affiliate', 'cpc', 'ads', 'display', 'sponsor' "
        "(options --referral-channels / --paid-channels).",
    )


def _payback_text(months: float) -> str:
    return f"pays back in {months:.0f} mo" if np.isfinite(months) else "not paid back yet"


def _ranking_reading(ranked: pd.Series) -> str:
    if ranked.empty:
        return "No acquisition cost known: CLV:CAC cannot be computed."
    best, worst = ranked.index[0].replace("_", " "), ranked.index[-1].replace("_", " ")
    return (
        f"{best} returns the most per unit of acquisition cost (CLV:CAC "
        f"{fmt.ratio(ranked.iloc[0])}), {worst} the least ({fmt.ratio(ranked.iloc[-1])})."
    )
