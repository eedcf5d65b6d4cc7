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
    # copies: the days are sorted by customer, so a customer's gaps are one run.
    gap_code = days.code[1:]
    gaps = np.diff(days.day).astype(np.float64)
    across = days.starts_customer[1:]

    # A customer's gaps add up to last - first purchase day (whole days, exact in
    # float64): the mean needs no pass over the gaps.
    n_gaps = np.maximum(days.count - 1, 0)
    mean = safe_divide(days.last_day - days.first_day, n_gaps)
    squared_dev = np.where(across, 0.0, (gaps - mean[gap_code]) ** 2)
    std = np.sqrt(safe_divide(group_sum(gap_code, n, squared_dev), n_gaps - 1))
    std[n_gaps < 2] = np.nan

    days_since_last = as_of_day - days.last_day
    gaps[across] = -np.inf
    recent_end = (as_of_day - days.day[1:]) < params.reactivated_days
    return column_frame(
        {
            "ipt_mean_days": mean,
            "ipt_std_days": std,
            "overdue_ratio": safe_divide(days_since_last, mean),
            "longest_gap_days": _run_max(days, gaps, n),
            "return_gap_days": _run_max(days, np.where(recent_end, gaps, -np.inf), n),
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
