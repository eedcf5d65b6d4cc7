"""Section 6: RFM segments, VIPs and defector signals, with the share of value they hold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.features.segments import RFM_SEGMENTS
from fidelite.reports import charts
from fidelite.reports import formats as fmt
from fidelite.reports.base import CustomerBase
from fidelite.reports.layout import Number, Section, SectionView
from fidelite.reports.sections._common import per_view, safe_ratio

__all__ = ["RECENT_DAYS", "SIGNALS", "SIGNAL_ROWS", "VIP_SHARE", "build", "defector_signals"]

#: VIPs: the top 5% of customers by net spend over the last 365 days.
VIP_SHARE = 0.05
#: Defector signals compare the last 90 days with the 275 days before them.
RECENT_DAYS, YEAR_DAYS = 90, 365
CHEAPER_BASKET = 0.8  # recent average order value below 80% of the earlier one
MORE_REFUNDS = 0.10  # refund share up by 10 points or more
SIGNALS = ("fewer orders", "cheaper baskets", "more refunds")
#: Rows of the defector chart: each signal, then any of them, then two or more.
SIGNAL_ROWS = (*SIGNALS, "any signal", "two or more")
_ANY = len(SIGNALS)  # the "any signal" row


def defector_signals(base: CustomerBase) -> np.ndarray:
    """Defector signals per customer, bool of shape (n_customers, 3) in :data:`SIGNALS` order.

    Only customers who ordered in the earlier period (D-365, D-90] can show a signal:
    * fewer orders: the product's ``velocity_90_vs_prior`` <= -1/3 (rate at most halved);
    * cheaper baskets: net value per purchase of the last 90 days < 80% of the earlier one;
    * more refunds: refunded share of the orders placed in the period up by 10 points or
      more (refunds attributed to their order, as known at D).
    """
    d, n, o = base.as_of_day, base.n, base.orders
    recent = o.day > d - RECENT_DAYS
    earlier = ~recent & (o.day > d - YEAR_DAYS)
    purchase, net = o.purchase_at(d), o.net_at(d)

    def per_customer(rows: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        w = None if weights is None else weights[rows]
        return np.bincount(o.code[rows], w, minlength=n).astype(np.float64)

    orders = [per_customer(p & purchase) for p in (recent, earlier)]
    gross = [per_customer(p, o.amount) for p in (recent, earlier)]
    kept = [per_customer(p, net) for p in (recent, earlier)]
    with np.errstate(invalid="ignore", divide="ignore"):
        aov = [k / c for k, c in zip(kept, orders, strict=True)]
        refund_share = [1 - k / g for k, g in zip(kept, gross, strict=True)]
        refunds = [g - k for k, g in zip(kept, gross, strict=True)]
    had_orders = orders[1] > 0
    velocity = base.features["velocity_90_vs_prior"].to_numpy(dtype=np.float64)
    fewer = had_orders & (velocity <= -1 / 3)
    cheaper = had_orders & (orders[0] > 0) & (aov[0] < CHEAPER_BASKET * aov[1])
    more_refunds = had_orders & (refunds[0] > 0)
    more_refunds &= np.nan_to_num(refund_share[0]) - np.nan_to_num(refund_share[1]) >= MORE_REFUNDS
    return np.column_stack([fewer, cheaper, more_refunds])


def _segment_chart(segments: list[str], customers: np.ndarray, value: np.ndarray, label: str):
    names = [s.replace("_", " ") for s in segments]
    return charts.figure(
        [
            charts.bar(
                names,
                100 * customers,
                "Share of customers",
                colour="#9aa5b1",
                hover="%{x}: %{y:.1f}% of customers<extra></extra>",
            ),
            charts.bar(
                names,
                100 * value,
                f"Share of {label}",
                colour="#3b6fb6",
                hover="%{x}: %{y:.1f}% of " + label + "<extra></extra>",
            ),
        ],
        title="RFM segments: customers against value",
        y_title="%",
        barmode="group",
    )


@dataclass(frozen=True)
class _Inputs:
    """Per-customer segments, flags and values of the section, computed once for all views."""

    segments: np.ndarray  # RFM segment name per customer
    present: list[str]  # RFM segments that occur, in the product's order
    segment_code: np.ndarray  # code into present
    vip: np.ndarray  # top VIP_SHARE by 12-month spend, bool
    flags: list[np.ndarray]  # one bool per customer for each of SIGNAL_ROWS
    value: np.ndarray  # predicted CLV (else 12-month spend), clipped at 0
    spend: np.ndarray  # 12-month net spend, clipped at 0
    label: str  # what value is


def _inputs(base: CustomerBase) -> _Inputs:
    f = base.features
    segments = f["rfm_segment"].astype(str).to_numpy()
    spend = f["spend_365d"].to_numpy(dtype=np.float64)
    clv = base.score("predicted_clv")
    value = spend if clv is None else np.nan_to_num(clv)
    threshold = np.quantile(spend[spend > 0], 1 - VIP_SHARE) if (spend > 0).any() else np.inf
    signals = defector_signals(base)
    present = [s for s in RFM_SEGMENTS if (segments == s).any()]
    return _Inputs(
        segments=segments,
        present=present,
        segment_code=pd.Categorical(segments, categories=present).codes.astype(np.int64),
        vip=spend >= threshold,
        flags=[*signals.T, signals.any(axis=1), signals.sum(axis=1) >= 2],
        value=np.clip(np.nan_to_num(value), 0, None),
        spend=np.clip(np.nan_to_num(spend), 0, None),
        label="12-month spend" if clv is None else f"predicted CLV ({base.horizon} d)",
    )


def _share(flag: np.ndarray, weights: np.ndarray, mask: np.ndarray, total: float) -> float:
    return safe_ratio(float(weights[mask & flag].sum()), total)


def _defector_chart(customers: list[float], value: list[float], spend: list[float], label: str):
    return charts.figure(
        [
            charts.bar(
                SIGNAL_ROWS,
                customers,
                "Share of customers",
                colour="#9aa5b1",
                hover="%{x}: %{y:.1f}% of customers<extra></extra>",
            ),
            charts.bar(
                SIGNAL_ROWS,
                value,
                f"Share of {label}",
                colour="#c8443f",
                customdata=charts.rounded(spend),
                hover="%{x}: %{y:.1f}% of "
                + label
                + " (%{customdata:.1f}% of 12-month spend)<extra></extra>",
            ),
        ],
        title="Defector signals and the value they hold",
        y_title="%",
        barmode="group",
    )


def _compute(data: _Inputs, mask: np.ndarray) -> SectionView:
    n, k = max(int(mask.sum()), 1), len(data.present)
    value_total, spend_total = float(data.value[mask].sum()), float(data.spend[mask].sum())
    customers = np.bincount(data.segment_code[mask], minlength=k) / n
    shares = np.bincount(data.segment_code[mask], data.value[mask], minlength=k) / max(
        value_total, 1e-12
    )
    signal_customers = [100 * (mask & fl).sum() / n for fl in data.flags]
    signal_value = [100 * _share(fl, data.value, mask, value_total) for fl in data.flags]
    spend_share = [100 * _share(fl, data.spend, mask, spend_total) for fl in data.flags]
    vip_share = _share(data.vip, data.spend, mask, spend_total)
    champions = data.segments == "champions"
    defectors, defector_value = (mask & data.flags[_ANY]).sum(), signal_value[_ANY] / 100
    numbers = [
        Number(
            "VIPs (top 5% by 12-month spend)",
            fmt.count((data.vip & mask).sum()),
            f"hold {fmt.pct(vip_share)} of 12-month spend",
        ),
        Number(
            "Champions' share of value",
            fmt.pct(_share(champions, data.value, mask, value_total)),
            f"{fmt.pct(safe_ratio((mask & champions).sum(), n))} of customers",
        ),
        Number(
            "Customers showing a defector signal",
            fmt.count(defectors),
            f"hold {fmt.pct(defector_value)} of {data.label}",
            "bad",
        ),
    ]
    reading = (
        f"VIPs hold {fmt.pct(vip_share)} of the last year's spend; "
        f"{fmt.count(defectors)} customers buy less often, cheaper or with "
        f"more refunds than before, holding {fmt.pct(defector_value)} of {data.label}."
    )
    figures = [
        _segment_chart(data.present, customers, shares, data.label),
        _defector_chart(signal_customers, signal_value, spend_share, data.label),
    ]
    return SectionView(numbers, reading, figures)


def build(base: CustomerBase) -> Section:
    """RFM value shares, VIPs and defector signals for every view."""
    data = _inputs(base)
    return Section(
        "value",
        "Value segments",
        "Who the VIPs and the defectors are, and how much value each group holds.",
        per_view(base, lambda mask: _compute(data, mask)),
        "RFM segments follow the product's rules (fidelite.features.segments: quintile scores "
        "of recency, frequency and spend). VIPs: top 5% of customers by net spend over the last "
        "365 days. Defector signals compare the last 90 days with the 275 days before: fewer "
        "orders = the product's velocity_90_vs_prior at or below -1/3 (order rate at most "
        "half the earlier one); cheaper baskets = average order value below 80% of the "
        "earlier one; more refunds = refunded share of gross spend up 10 points or more. "
        "Value: predicted CLV when scores are given, else 12-month net spend.",
    )
