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
    return np.select(conditions, LIFECYCLE_STAGES[:-1], default="active").astype(object)


def quintile_score(values: pd.Series) -> np.ndarray:
    """Score 1-5 by rank (higher value, higher score); ties share the lowest rank.

    Returns
    -------
    ndarray of float64, shape (len(values),); NaN where ``values`` is NaN.
    """
    ranks = values.rank(method="min", ascending=True).to_numpy(dtype=np.float64)
    n_ranked = np.count_nonzero(~np.isnan(ranks))
    if n_ranked == 0:
        return ranks
    return np.ceil(5.0 * ranks / n_ranked)


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
    purchaser = features["T"].notna().to_numpy()
    scored = features.loc[purchaser]
    r = np.full(len(features), np.nan)
    f, m = r.copy(), r.copy()
    r[purchaser] = quintile_score(-scored["days_since_last_purchase"])
    f[purchaser] = quintile_score(scored["frequency"])
    m[purchaser] = quintile_score(scored["spend_total"])
    conditions = [
        ~purchaser,
        (r >= 4) & (f >= 4) & (m >= 4),
        (r >= 3) & (f >= 4),
        r >= 4,
        r == 3,
        (r <= 2) & (f >= 3),
        r == 2,
    ]
    names = [
        "prospect",
        "champions",
        "loyal",
        "potential",
        "need_attention",
        "at_risk",
        "hibernating",
    ]
    return np.select(conditions, names, default="lost").astype(object)
