"""The scores frame (``fidelite.features.contract.SCORE_COLUMNS``) from model outputs.

Conventions fixed here (other tools read them; the meaning of every column is in the
contract):

- ``status``: "ok" (purchasers), "prospect" (no purchase yet, scored by the
  first-purchase model) or "insufficient_history" (no purchase and no such model: every
  prediction is NaN).
- ``expected_next_purchase`` = as-of + the median days to the next purchase given a
  purchase within H (:func:`fidelite.training.timing.median_days`, the day
  F(t) / F(H) reaches 1/2); NaT when P(purchase within H) < 1/2.
- ``churn_percentile`` (0-100) places the probability within the churn probabilities
  of the held-out window stored at fit, so a single customer's percentile does not
  depend on who else is in the batch.
- ``risk_band`` cut-offs on churn probability: < 0.25 low, < 0.50 medium, < 0.75 high,
  otherwise critical (:data:`RISK_BAND_EDGES`).
- ``reasons`` is a JSON list of phrases (``[]`` when reasons were not asked for).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fidelite.features.contract import MESSAGING_CHANNELS, score_column_names

__all__ = [
    "CORE_COLUMNS",
    "NO_HISTORY_REASON",
    "PASSTHROUGH_COLUMNS",
    "RISK_BANDS",
    "RISK_BAND_EDGES",
    "assemble_scores",
    "json_lists",
    "next_purchase_dates",
    "percentiles",
    "score_arrays",
]

STATUS_OK, STATUS_PROSPECT, STATUS_NO_HISTORY = "ok", "prospect", "insufficient_history"

RISK_BAND_EDGES = (0.25, 0.50, 0.75)
RISK_BANDS = ("low", "medium", "high", "critical")
#: Model outputs per customer (float arrays, NaN where not scored); the other score
#: columns derive from them and from the features.
CORE_COLUMNS = (
    "churn_probability",
    "p_alive",
    "expected_purchases",
    "predicted_clv",
    "predicted_clv_p10",
    "predicted_clv_p90",
    "value_if_retained",
    "next_purchase_days",
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


def next_purchase_dates(days_ahead: np.ndarray, day: pd.Timestamp) -> np.ndarray:
    """``day`` + whole days, datetime64[ns] of shape (n,); NaN days give NaT."""
    missing = np.isnan(days_ahead)
    # Whole days as int64 nanoseconds (NaN -> NaT) without pandas timedelta parsing.
    nanos = np.where(missing, 0, days_ahead).astype(np.int64) * _NANOS_PER_DAY
    dates = _day_ns(day) + nanos.astype("timedelta64[ns]")
    dates[missing] = np.datetime64("NaT")
    return dates


def json_lists(lists: list[list[str]]) -> np.ndarray:
    """JSON encodings of string lists, shape (n,) object array.

    The strings of ``json.JSONEncoder(ensure_ascii=True).encode(items)``, written by its
    string escaper and a join (the encoder's per-call set-up was a third of the reasons'
    cost for 10,000 rows); a list holding anything but strings goes through the encoder.
    """
    out = np.empty(len(lists), dtype=object)
    try:
        out[:] = ["[" + ", ".join(map(_quote, items)) + "]" for items in lists]
    except TypeError:
        encode = json.JSONEncoder(ensure_ascii=True).encode
        out[:] = [encode(items) for items in lists]
    return out


#: The JSON encoder's own string escaper (its C version when available).
_quote = json.encoder.encode_basestring_ascii


#: Feature columns copied to the scores as they are (object, missing values as None).
PASSTHROUGH_COLUMNS = (
    "lifecycle_stage",
    "best_channel",
    "channel_preference",
    *(f"{channel}_opt_in" for channel in MESSAGING_CHANNELS),
)


def assemble_scores(
    frame: pd.DataFrame,
    status: np.ndarray,
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
    status, core, reasons, day, horizon_days, churn_reference
        As for :func:`score_arrays`.
    """
    copied = {
        column: frame[column].to_numpy(dtype=object, na_value=None)
        for column in PASSTHROUGH_COLUMNS
        if column in frame.columns
    }
    columns = score_arrays(
        frame.index.to_numpy(dtype=object),
        copied,
        status,
        core,
        reasons,
        day=day,
        horizon_days=horizon_days,
        churn_reference=churn_reference,
    )
    for name in ("lifecycle_stage", "best_channel", "channel_preference"):
        # An explicit object Series: a bare array of strings would become pandas' str dtype.
        columns[name] = pd.Series(columns[name], dtype=object, copy=False)
    return pd.DataFrame(columns)


def score_arrays(
    ids: np.ndarray,
    copied: Mapping[str, np.ndarray],
    status: np.ndarray,
    core: Mapping[str, np.ndarray],
    reasons: np.ndarray,
    *,
    day: pd.Timestamp,
    horizon_days: int,
    churn_reference: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """The score columns as arrays of shape (n,), in contract order (no frame built).

    Parameters
    ----------
    ids : ndarray of str, shape (n,)
        Customer ids.
    copied : mapping of str -> object ndarray, shape (n,)
        The scored rows' :data:`PASSTHROUGH_COLUMNS` that they have, missing values as
        None.
    status : ndarray of str, shape (n,)
        ``STATUS_OK``, ``STATUS_PROSPECT`` or ``STATUS_NO_HISTORY`` per row.
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
    n = len(ids)
    proba = core["churn_probability"]
    scoreable = status != STATUS_NO_HISTORY
    percentile = np.full(n, np.nan)
    percentile[scoreable] = percentiles(proba[scoreable], churn_reference)
    band = _BAND_EDGES.searchsorted(_nan_as_zero(proba), side="right")

    def copy(column: str) -> np.ndarray:
        values = copied.get(column)
        return np.full(n, None, dtype=object) if values is None else values

    # One dict of arrays: per-column frame inserts cost more than the models for the
    # one-customer requests of the HTTP service.
    columns: dict[str, Any] = {
        "customer_id": ids,
        "as_of": np.full(n, _day64(day, day.unit)),
        "horizon_days": np.full(n, horizon_days, dtype=np.int64),
        "status": status.astype(object),
        **{name: core[name] for name in CORE_COLUMNS if name != "next_purchase_days"},
        "expected_next_purchase": next_purchase_dates(core["next_purchase_days"], day),
        "lifecycle_stage": copy("lifecycle_stage"),
        "churn_percentile": percentile,
        "risk_band": np.where(scoreable, _BAND_NAMES[band], None),
        "value_at_risk": proba * core["value_if_retained"],
        "reasons": reasons,
        "best_channel": copy("best_channel"),
        "channel_preference": copy("channel_preference"),
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
        consent = copied.get(f"{channel}_opt_in")
        if consent is None:
            columns[f"{channel}_opt_in"] = np.ones(n, dtype=bool)
        else:
            consent = consent.copy()
            consent[_missing(consent)] = True
            columns[f"{channel}_opt_in"] = consent.astype(bool)
    return {name: columns[name] for name in _score_names()}


#: Element types none of whose values pd.isna finds missing (None aside).
_NEVER_NAN = frozenset({bool, int, str, type(None)})


def _missing(values: np.ndarray) -> np.ndarray:
    """``pd.isna(values)`` of a column, shape (n,); a ``v is None`` test for a few rows of
    flags and None (pd.isna costs more than the rest of a one-row consent column)."""
    if len(values) < 64 and values.dtype == object:
        items = values.tolist()
        if set(map(type, items)) <= _NEVER_NAN:
            return np.array([v is None for v in items], dtype=bool)
    return pd.isna(values)


#: The risk bands' edges and names as arrays, made once (not per request).
_BAND_EDGES = np.asarray(RISK_BAND_EDGES)
_BAND_NAMES = np.asarray(RISK_BANDS, dtype=object)


def _nan_as_zero(proba: np.ndarray) -> np.ndarray:
    """``np.nan_to_num(proba)`` as far as the band edges (finite, in (0, 1)) can tell:
    NaN -> 0; infinities keep their side of every edge, as the largest finite floats do."""
    if proba.dtype != np.float64:
        return np.nan_to_num(proba)
    return np.where(np.isnan(proba), 0.0, proba)


@functools.lru_cache(maxsize=64)
def _day_ns(day: pd.Timestamp) -> np.datetime64:
    """``day`` as datetime64[ns] (one as-of day serves many requests: converted once)."""
    return np.datetime64(day.to_datetime64(), "ns")


@functools.lru_cache(maxsize=64)
def _day64(day: pd.Timestamp, unit: str) -> np.datetime64:
    """``day.to_datetime64()`` in ``day.unit`` (equal days of other units hash alike, so
    the unit is part of the key)."""
    return day.to_datetime64()


@functools.cache
def _score_names() -> tuple[str, ...]:
    """:func:`score_column_names` (a constant), built once."""
    return score_column_names()
