"""Lifecycle stages at earlier days, from the purchase days alone.

Building features at a dozen past days would cost a dozen feature builds; the lifecycle
rule needs only four per-customer inputs (``T``, ``days_since_last_purchase``,
``ipt_mean_days`` and ``return_gap_days``), which come straight from the purchase days
as known on each day (a refund dated later does not cancel a purchase yet). They are
handed to the product's own rule,
:func:`fidelite.features.segments.lifecycle_stage`, so the thresholds and the order of
the rules are the product's; tests check the result against ``build_features`` at
those days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.features.params import FeatureParams
from fidelite.features.segments import lifecycle_stage
from fidelite.reports.arrays import PurchaseCalendar, PurchaseDays

__all__ = ["NOT_KNOWN", "STAGE_ORDER", "lifecycle_inputs", "stage_codes"]

#: Stages in reading order (the journey new -> active -> at risk -> lapsed -> reactivated).
STAGE_ORDER: tuple[str, ...] = ("prospect", "new", "active", "at_risk", "lapsed", "reactivated")
#: Code of customers not yet known on a snapshot day (no signup, no transaction).
NOT_KNOWN = -1


def lifecycle_inputs(purchases: PurchaseDays, day: int, params: FeatureParams) -> pd.DataFrame:
    """The lifecycle rule's inputs for every customer, as the feature builder computes them.

    Parameters
    ----------
    purchases : PurchaseDays
        Purchase days as known on ``day`` (sorted by customer, day).
    day : int
        Day number of the snapshot.
    params : FeatureParams

    Returns
    -------
    DataFrame, shape (n_customers, 4)
        ``T``, ``days_since_last_purchase``, ``ipt_mean_days``, ``return_gap_days`` in
        days; NaN where the feature builder gives NaN.
    """
    count, start = purchases.count, purchases.start
    has = count > 0
    first = np.full(count.size, np.nan)
    last = np.full(count.size, np.nan)
    first[has] = purchases.day[start[has]]
    last[has] = purchases.day[start[has] + count[has] - 1]
    mean_gap = np.full(count.size, np.nan)
    repeat = count >= 2
    mean_gap[repeat] = (last[repeat] - first[repeat]) / (count[repeat] - 1)
    recent = (day - purchases.day < params.reactivated_days) & ~np.isnan(purchases.gap)
    return_gap = np.full(count.size, np.nan)
    code, gap = purchases.code[recent], purchases.gap[recent]
    if code.size:  # rows are sorted by customer: one maximum per run of a customer's rows
        starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
        return_gap[code[starts]] = np.maximum.reduceat(gap, starts)
    return pd.DataFrame(
        {
            "T": day - first,
            "days_since_last_purchase": day - last,
            "ipt_mean_days": mean_gap,
            "return_gap_days": return_gap,
        }
    )


def stage_codes(
    calendar: PurchaseCalendar, known_day: np.ndarray, day: int, params: FeatureParams
) -> np.ndarray:
    """Lifecycle stage per customer on ``day`` as codes into :data:`STAGE_ORDER`.

    Returns
    -------
    ndarray of int8, shape (n_customers,)
        :data:`NOT_KNOWN` for customers who were not known yet on ``day``.
    """
    stages = lifecycle_stage(lifecycle_inputs(calendar.at(day), day, params), params)
    raw, names = pd.factorize(stages)  # a handful of names: map them, not a million strings
    codes = np.array([STAGE_ORDER.index(str(n)) for n in names], dtype=np.int8)[raw]
    codes[~(known_day <= day)] = NOT_KNOWN
    return codes
