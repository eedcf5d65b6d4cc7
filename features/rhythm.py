"""Inter-purchase rhythm: how regularly a customer buys and how overdue they are now."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.features._arrays import column_frame, group_sum, safe_divide
from fidelite.features.params import FeatureParams
from fidelite.features.purchases import PurchaseDays


def rhythm_features(days: PurchaseDays, as_of_day: int, params: FeatureParams) -> pd.DataFrame:
    """Gaps between consecutive purchase days of each customer.

    Returns
    -------
    DataFrame, shape (n_customers, 5)
        ``ipt_mean_days``: mean gap in days (NaN with fewer than 2 purchase days).
        ``ipt_std_days``: sample standard deviation of the gaps (ddof=1, NaN with
        fewer than 2 gaps: one gap says nothing about spread).
        ``overdue_ratio``: days since last purchase / ``ipt_mean_days`` (> 1 means
        later than usual; NaN when the rhythm is unknown).
        ``longest_gap_days``: longest gap (NaN with fewer than 2 purchase days).
        ``return_gap_days``: longest gap that *ended* in the last
        ``reactivated_days`` days, i.e. how long the customer had been away before
        coming back recently (NaN when no such gap); drives ``reactivated``.
    """
    n = days.count.size
    # Gaps between consecutive purchase days, and the customer each ends with; a gap
    # across two customers (at each customer's first day) counts for nothing. No masked
    # copies: the days are sorted by customer, so a customer's gaps are one run. Each
    # pass writes into an array it owns: fresh 1M-row arrays cost more than the sums.
    gap_code = days.code[1:]
    gaps = np.empty(max(days.day.size - 1, 0))
    np.subtract(days.day[1:], days.day[:-1], out=gaps)
    across = days.starts_customer[1:]

    # A customer's gaps add up to last - first purchase day (whole days, exact in
    # float64): the mean needs no pass over the gaps.
    n_gaps = np.maximum(days.count - 1, 0)
    mean = safe_divide(days.last_day - days.first_day, n_gaps)
    squared_dev = mean.take(gap_code)
    np.subtract(gaps, squared_dev, out=squared_dev)
    np.square(squared_dev, out=squared_dev)
    squared_dev[across] = 0.0
    std = np.sqrt(safe_divide(group_sum(gap_code, n, squared_dev), n_gaps - 1))
    std[n_gaps < 2] = np.nan
    del squared_dev

    days_since_last = as_of_day - days.last_day
    gaps[across] = -np.inf
    # Gaps ending in the last ``reactivated_days`` days: few, maximised on their own.
    recent = np.flatnonzero(days.day[1:] > as_of_day - params.reactivated_days)
    return_gap = np.full(n, -np.inf)
    np.maximum.at(return_gap, gap_code[recent], gaps[recent])
    return_gap[np.isneginf(return_gap)] = np.nan
    return column_frame(
        {
            "ipt_mean_days": mean,
            "ipt_std_days": std,
            "overdue_ratio": safe_divide(days_since_last, mean),
            "longest_gap_days": _run_max(days, gaps, n),
            "return_gap_days": return_gap,
        }
    )


def _run_max(days: PurchaseDays, gaps: np.ndarray, n: int) -> np.ndarray:
    """Per-customer maximum of ``gaps`` (-inf where a gap does not count), NaN without
    one; float64 of shape (n,). ``gaps[i]`` ends on purchase day ``i + 1``."""
    out = np.full(n, np.nan)
    buyer = np.flatnonzero(days.count >= 2)
    if buyer.size:
        # A customer's gaps start at their first day's row; each run stops at the next
        # such start (the rows between belong to one-day customers: -inf).
        first_row = np.cumsum(days.count, dtype=np.int64)[buyer] - days.count[buyer].astype(
            np.int64
        )
        out[buyer] = np.maximum.reduceat(gaps, first_row)
        out[np.isneginf(out)] = np.nan
    return out
