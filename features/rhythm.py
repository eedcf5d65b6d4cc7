"""Inter-purchase rhythm: how regularly a customer buys and how overdue they are now."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.features._arrays import column_frame, group_sum, safe_divide, sorted_group_max
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
    same_customer = ~days.starts_customer[1:]
    gap_code = days.code[1:][same_customer]
    gaps = (days.day[1:] - days.day[:-1])[same_customer].astype(np.float64)
    gap_end_day = days.day[1:][same_customer]

    # A customer's gaps add up to last - first purchase day (whole days, exact in
    # float64): the mean needs no pass over the gaps.
    n_gaps = np.maximum(days.count - 1, 0)
    mean = safe_divide(days.last_day - days.first_day, n_gaps)
    squared_dev = (gaps - mean[gap_code]) ** 2
    std = np.sqrt(safe_divide(group_sum(gap_code, n, squared_dev), n_gaps - 1))
    std[n_gaps < 2] = np.nan

    days_since_last = as_of_day - days.last_day
    recent_gap = (as_of_day - gap_end_day) < params.reactivated_days
    # Purchase days are sorted by customer, so are the gaps: maxima by runs.
    return column_frame(
        {
            "ipt_mean_days": mean,
            "ipt_std_days": std,
            "overdue_ratio": safe_divide(days_since_last, mean),
            "longest_gap_days": sorted_group_max(gap_code, gaps, n),
            "return_gap_days": sorted_group_max(gap_code[recent_gap], gaps[recent_gap], n),
        }
    )
