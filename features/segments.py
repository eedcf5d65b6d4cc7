"""Rule-based customer segments: lifecycle stage and RFM segment.

Lifecycle stage (first matching rule wins; thresholds are :class:`FeatureParams`
fields, all in days):

1. ``prospect``: no purchase day on or before ``as_of``.
2. ``new``: first purchase day less than ``new_days`` ago.
3. ``reactivated``: a purchase in the last ``reactivated_days`` that ended a gap
   longer than ``lapsed_days`` (``return_gap_days > lapsed_days``).
4. ``lapsed``: no purchase in the last ``lapsed_days`` (days since last purchase
   >= ``lapsed_days``).
5. ``at_risk``: overdue, i.e. days since last purchase > ``at_risk_overdue_ratio`` x
   own mean inter-purchase gap, or > ``at_risk_days`` when the rhythm is unknown
   (a single purchase day).
6. ``active``: everyone else.

RFM segment: purchasers get quintile scores 1-5 for R (fewer days since last
purchase is better), F (``frequency``) and M (``spend_total``). Score =
ceil(5 x rank / n) with tied customers sharing the lowest rank, so a large block of
one-time buyers all score F = 1. Then (first match wins):

=================  ======================================
``champions``      R >= 4 and F >= 4 and M >= 4
``loyal``          R >= 3 and F >= 4
``potential``      R >= 4 (recent, not yet frequent or big)
``need_attention`` R == 3
``at_risk``        R <= 2 and F >= 3 (used to buy often)
``hibernating``    R == 2
``lost``           R == 1
=================  ======================================

Customers without a purchase day get ``prospect``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.features._arrays import group_starts
from fidelite.features.params import FeatureParams

LIFECYCLE_STAGES = ("prospect", "new", "reactivated", "lapsed", "at_risk", "active")
RFM_SEGMENTS = (
    "champions",
    "loyal",
    "potential",
    "need_attention",
    "at_risk",
    "hibernating",
    "lost",
    "prospect",
)


def lifecycle_stage(features: pd.DataFrame, params: FeatureParams) -> np.ndarray:
    """Lifecycle stage per customer (rules in the module docstring).

    Parameters
    ----------
    features : DataFrame, shape (n_customers, ...)
        Needs ``T``, ``days_since_last_purchase``, ``ipt_mean_days`` and
        ``return_gap_days`` (days).
    params : FeatureParams

    Returns
    -------
    ndarray of object (str), shape (n_customers,)
    """
    return np.array(LIFECYCLE_STAGES, dtype=object)[lifecycle_codes(features, params)]


def lifecycle_codes(features: pd.DataFrame, params: FeatureParams) -> np.ndarray:
    """:func:`lifecycle_stage` as positions in :data:`LIFECYCLE_STAGES`, int64 (n_customers,)."""
    days_since_first = features["T"].to_numpy(dtype=np.float64)
    days_since_last = features["days_since_last_purchase"].to_numpy(dtype=np.float64)
    mean_gap = features["ipt_mean_days"].to_numpy(dtype=np.float64)
    return_gap = features["return_gap_days"].to_numpy(dtype=np.float64)
    overdue = np.where(
        np.isnan(mean_gap),
        days_since_last > params.at_risk_days,
        days_since_last > params.at_risk_overdue_ratio * np.nan_to_num(mean_gap),
    )
    conditions = [
        np.isnan(days_since_first),
        days_since_first < params.new_days,
        return_gap > params.lapsed_days,
        days_since_last >= params.lapsed_days,
        overdue,
    ]
    # The rules are in LIFECYCLE_STAGES order; "active" (the last) is the default.
    return np.select(conditions, np.arange(len(conditions)), default=len(conditions))


def quintile_score(values: pd.Series | np.ndarray) -> np.ndarray:
    """Score 1-5 by rank (higher value, higher score); ties share the lowest rank.

    The rank of a value is 1 + the number of values below it (``rank(method="min")``),
    found by a binary search in the sorted values: cheaper than pandas' rank.

    Returns
    -------
    ndarray of float64, shape (len(values),); NaN where ``values`` is NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    known = ~np.isnan(values)
    ranks = np.full(values.shape, np.nan)
    ranks[known] = _min_ranks(values[known])
    n_ranked = np.count_nonzero(known)
    if n_ranked == 0:
        return ranks
    return np.ceil(5.0 * ranks / n_ranked)


def _min_ranks(values: np.ndarray) -> np.ndarray:
    """1 + the number of values below each value, int64 of shape (n,) (no NaN)."""
    if values.size == 0:
        return np.empty(0, dtype=np.int64)
    low, high = values.min(), values.max()
    if high - low < 4 * values.size + 1024 and np.array_equal(values, np.floor(values)):
        # Whole numbers in a short range (counts, days): counting, no sort.
        offset = (values - low).astype(np.int64)
        counts = np.bincount(offset)
        return (np.cumsum(counts) - counts)[offset] + 1
    # Sorted once: a value's rank is the position of the first of its ties (5x cheaper
    # than a binary search per value).
    order = np.argsort(values)
    ordered = values[order]
    first_tie = np.where(group_starts(ordered), np.arange(ordered.size), 0)
    np.maximum.accumulate(first_tie, out=first_tie)
    ranks = np.empty(ordered.size, dtype=np.int64)
    ranks[order] = first_tie + 1
    return ranks


def rfm_segment(features: pd.DataFrame) -> np.ndarray:
    """RFM segment name per customer (rules in the module docstring).

    Parameters
    ----------
    features : DataFrame, shape (n_customers, ...)
        Needs ``T``, ``days_since_last_purchase``, ``frequency`` and ``spend_total``.

    Returns
    -------
    ndarray of object (str), shape (n_customers,)
    """
    return np.array(RFM_RULES, dtype=object)[rfm_segment_codes(features)]


#: :data:`RFM_SEGMENTS` in the order their rules are tried: "prospect" first (no purchase
#: yet), then best to worst; "lost" is the default.
RFM_RULES = ("prospect", *(name for name in RFM_SEGMENTS if name != "prospect"))


def rfm_segment_codes(features: pd.DataFrame) -> np.ndarray:
    """:func:`rfm_segment` as positions in :data:`RFM_RULES`, int64 (n_customers,)."""
    purchaser = features["T"].notna().to_numpy()

    def score(column: str, sign: float = 1.0) -> np.ndarray:
        out = np.full(len(features), np.nan)
        out[purchaser] = quintile_score(sign * features[column].to_numpy(np.float64)[purchaser])
        return out

    r = score("days_since_last_purchase", -1.0)
    f, m = score("frequency"), score("spend_total")
    conditions = [
        ~purchaser,
        (r >= 4) & (f >= 4) & (m >= 4),
        (r >= 3) & (f >= 4),
        r >= 4,
        r == 3,
        (r <= 2) & (f >= 3),
        r == 2,
    ]
    return np.select(conditions, np.arange(len(conditions)), default=len(conditions))
