"""The scores frame (``fidelite.features.contract.SCORE_COLUMNS``) from model outputs.

Conventions fixed here (other tools read them):

- ``status`` is "insufficient_history" for customers with no purchase yet: BG/NBD has
  nothing to condition on, so every prediction is NaN for them.
- ``expected_next_purchase`` = ``as_of + H / expected_purchases`` days, i.e. one
  expected purchase at the customer's expected rate over the horizon; NaT when that is
  more than ``3 x H`` days away (the model would be extrapolating).
- ``churn_percentile`` (0-100) places the probability within the churn probabilities
  of the held-out window stored at fit, so a single customer's percentile does not
  depend on who else is in the batch.
- ``risk_band`` cut-offs on churn probability: < 0.25 low, < 0.50 medium, < 0.75 high,
  otherwise critical (:data:`RISK_BAND_EDGES`).
- ``reasons`` is a JSON list of phrases (``[]`` when reasons were not asked for).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fidelite.features.contract import MESSAGING_CHANNELS, score_column_names

__all__ = [
    "CORE_COLUMNS",
    "NO_HISTORY_REASON",
    "RISK_BANDS",
    "RISK_BAND_EDGES",
    "assemble_scores",
    "json_lists",
    "next_purchase_dates",
    "percentiles",
]

RISK_BAND_EDGES = (0.25, 0.50, 0.75)
RISK_BANDS = ("low", "medium", "high", "critical")
#: Model outputs per purchaser (float arrays); everything else derives from them.
CORE_COLUMNS = (
    "p_alive",
    "expected_purchases",
    "churn_probability",
    "predicted_clv",
    "predicted_clv_p10",
    "predicted_clv_p90",
)
NO_HISTORY_REASON = "no purchase yet: not enough history to score"
_NANOS_PER_DAY = 86_400_000_000_000


def percentiles(proba: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """Percentile (0-100) of each probability within the sorted ``reference``, shape (n,).

    Without a reference the batch itself is the reference.
    """
    if reference is None or len(reference) == 0:
        return pd.Series(proba).rank(pct=True).to_numpy() * 100
    return np.searchsorted(reference, proba, side="right") / len(reference) * 100


def next_purchase_dates(expected: np.ndarray, day: pd.Timestamp, horizon: int) -> np.ndarray:
    """``day`` + H / expected purchases, datetime64[ns] of shape (n,), NaT beyond ``3 x H``."""
    h = float(horizon)
    with np.errstate(divide="ignore", invalid="ignore"):
        days_ahead = np.where(expected > 0, h / expected, np.inf)
    days_ahead = np.where(days_ahead <= 3 * h, np.ceil(days_ahead), np.nan)
    # Whole days as int64 nanoseconds (NaN -> NaT) without pandas timedelta parsing.
    nanos = np.where(np.isnan(days_ahead), 0, days_ahead).astype(np.int64) * _NANOS_PER_DAY
    dates = np.datetime64(day.to_datetime64(), "ns") + nanos.astype("timedelta64[ns]")
    dates[np.isnan(days_ahead)] = np.datetime64("NaT")
    return dates


def json_lists(lists: list[list[str]]) -> np.ndarray:
    """JSON encodings of string lists, shape (n,) object array."""
    encode = json.JSONEncoder(ensure_ascii=True).encode
    return np.asarray([encode(items) for items in lists], dtype=object)


def passthrough(frame: pd.DataFrame, column: str, default: Any) -> pd.Series:
    """A feature column copied to the scores (object dtype, missing values as None)."""
    if column in frame.columns:
        values = frame[column].to_numpy(dtype=object, na_value=None)
    else:
        values = np.full(len(frame), default, dtype=object)
    # An explicit object Series: a bare array of strings would become pandas' str dtype.
    return pd.Series(values, dtype=object, copy=False)


def assemble_scores(
    frame: pd.DataFrame,
    scoreable: np.ndarray,
    core: Mapping[str, np.ndarray],
    reasons: np.ndarray,
    *,
    day: pd.Timestamp,
    horizon_days: int,
    churn_reference: np.ndarray | None,
) -> pd.DataFrame:
    """The scores frame, one row per row of ``frame``, columns in contract order.

    Parameters
    ----------
    frame : DataFrame, shape (n, ...)
        The features that were scored, indexed by ``customer_id``.
    scoreable : ndarray of bool, shape (n,)
        Purchasers (the rows the models scored).
    core : mapping of :data:`CORE_COLUMNS` -> ndarray, shape (n,)
        Model outputs, NaN where not scoreable.
    reasons : ndarray of str, shape (n,)
        JSON lists of phrases.
    day : Timestamp
        The as-of day of the features.
    horizon_days : int
    churn_reference : ndarray, optional
        Sorted held-out churn probabilities for ``churn_percentile``.
    """
    n = len(frame)
    proba = core["churn_probability"]
    percentile = np.full(n, np.nan)
    percentile[scoreable] = percentiles(proba[scoreable], churn_reference)
    band = np.searchsorted(RISK_BAND_EDGES, np.nan_to_num(proba), side="right")
    # One dict of arrays: per-column frame inserts cost more than the models for the
    # one-customer requests of the HTTP service.
    columns: dict[str, Any] = {
        "customer_id": frame.index.to_numpy(dtype=object),
        "as_of": np.full(n, day.to_datetime64()),
        "horizon_days": np.full(n, horizon_days, dtype=np.int64),
        "status": np.where(scoreable, "ok", "insufficient_history").astype(object),
        **core,
        "expected_next_purchase": next_purchase_dates(
            core["expected_purchases"], day, horizon_days
        ),
        "lifecycle_stage": passthrough(frame, "lifecycle_stage", None),
        "churn_percentile": percentile,
        "risk_band": np.where(scoreable, np.asarray(RISK_BANDS, dtype=object)[band], None),
        "value_at_risk": proba * core["predicted_clv"],
        "reasons": reasons,
        "best_channel": passthrough(frame, "best_channel", None),
        "channel_preference": passthrough(frame, "channel_preference", None),
    }
    # Filled by the model's uplift component when it has one (UpliftModel.add_scores).
    columns.update(
        {name: np.full(n, None, dtype=object) for name in ("uplift_channel", "uplift_by_channel")}
    )
    columns.update(
        {name: np.full(n, np.nan) for name in ("uplift_purchase", "response_value", "uplift_value")}
    )
    for channel in MESSAGING_CHANNELS:
        # Absent consent columns mean opted in, as in features.data.load_customers.
        consent = passthrough(frame, f"{channel}_opt_in", True)
        columns[f"{channel}_opt_in"] = consent.where(consent.notna(), True).to_numpy(dtype=bool)
    return pd.DataFrame({name: columns[name] for name in score_column_names()})
