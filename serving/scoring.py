"""Turn validated requests into model inputs and scores frames into responses.

Everything here is plain pandas/numpy so that it can be unit-tested without a server;
:mod:`serving.service` only wires these functions to HTTP.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pydantic_core
from pydantic import TypeAdapter

from fidelite.features import Inputs, build_features
from fidelite.features.data import as_of_bounds, load_customers, load_events, load_transactions
from fidelite.serving.schemas import CustomerScore, HistoryIn, ModelRef

SCORE_COLUMNS: tuple[str, ...] = tuple(CustomerScore.model_fields)
_SCORES_ADAPTER = TypeAdapter(list[CustomerScore])
_MAX_SAMPLES = 5
# Features that count things or measure elapsed days: a negative value is impossible
# and points to a broken upstream pipeline.
NON_NEGATIVE_FEATURES: frozenset[str] = frozenset(
    {
        "frequency",
        "recency",
        "T",
        "days_since_last_purchase",
        "tenure_days",
        "unsubscribes_total",
        "bounces_total",
    }
)
NON_NEGATIVE_PREFIXES: tuple[str, ...] = ("orders_", "ipt_")
NON_NEGATIVE_ENGAGEMENT_SUFFIXES: tuple[str, ...] = (
    "_events_30d",
    "_events_90d",
    "_rate",
    "_days_since_last",
    "_share",
)


class RequestError(ValueError):
    """A request is well-formed JSON but unusable; answered with a 4xx.

    Parameters
    ----------
    message : str
        Human-readable problem, naming the offending field and sample values.
    field : str
        Dotted path of the offending field, e.g. ``history.transactions.timestamp``.
    status_code : int
        HTTP status to answer with (400 invalid, 413 too large).
    """

    def __init__(self, message: str, *, field: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status_code = status_code

    def to_dict(self) -> dict[str, Any]:
        return {"error": str(self), "field": self.field}


# ------------------------------------------------------------------- feature rows


def features_frame(
    rows: Sequence[dict[str, Any]],
    *,
    required_columns: Iterable[str] = (),
    max_customers: int,
) -> pd.DataFrame:
    """Validate feature rows and return them as a features frame.

    Parameters
    ----------
    rows : sequence of dict, length n_customers
        One mapping per customer with ``customer_id`` and feature values.
    required_columns : iterable of str
        Feature columns the model needs.
    max_customers : int
        Largest accepted batch.

    Returns
    -------
    DataFrame, shape (n_customers, n_columns)
        Indexed by ``customer_id`` (str), in request order.

    Raises
    ------
    RequestError
        Batch too large, missing/duplicate ``customer_id``, missing required columns,
        text in a numeric column, negative counts or durations.
    """
    if len(rows) > max_customers:
        raise RequestError(
            f"features: {len(rows)} rows exceed the limit of {max_customers} customers "
            "per request (FIDELITE_MAX_BATCH)",
            field="features",
            status_code=413,
        )
    frame = pd.DataFrame.from_records(rows)
    if "customer_id" not in frame or frame["customer_id"].isna().any():
        bad = _positions(frame["customer_id"].isna() if "customer_id" in frame else None, frame)
        raise RequestError(
            f"features.customer_id: missing in rows {bad}", field="features.customer_id"
        )
    ids = frame["customer_id"].astype(str)
    duplicated = ids.duplicated(keep=False)
    if duplicated.any():
        raise RequestError(
            f"features.customer_id: duplicate ids {sorted(set(ids[duplicated]))[:_MAX_SAMPLES]}",
            field="features.customer_id",
        )
    frame.index = pd.Index(ids, name="customer_id")
    frame = frame.drop(columns="customer_id")
    missing = [column for column in required_columns if column not in frame]
    if missing:
        raise RequestError(
            f"features: missing required feature columns {missing[:20]}"
            + (f" and {len(missing) - 20} more" if len(missing) > 20 else ""),
            field=f"features.{missing[0]}",
        )
    _check_numeric(frame, required_columns)
    _check_non_negative(frame)
    return frame


def _check_numeric(frame: pd.DataFrame, required_columns: Iterable[str]) -> None:
    """Model inputs that are numeric in training must not arrive as text."""
    for column in required_columns:
        values = frame[column]
        if values.dtype != object:
            continue
        is_text = values.map(lambda value: isinstance(value, str)).to_numpy()
        # A column mixing text and numbers is a client bug; all-text columns are
        # categorical features (best_channel ...) and are left to the model.
        if is_text.any() and not is_text[values.notna().to_numpy()].all():
            raise RequestError(
                f"features.{column}: expected numbers, got text for customers "
                f"{list(frame.index[is_text][:_MAX_SAMPLES])}",
                field=f"features.{column}",
            )


def _check_non_negative(frame: pd.DataFrame) -> None:
    columns = [c for c in frame.columns if _is_non_negative_feature(str(c))]
    # text in these columns is left to the model; only numbers can be negative
    numeric = frame[columns].select_dtypes("number")
    values = numeric.to_numpy(dtype=float, na_value=np.nan)
    negative = values < 0
    if not negative.any():
        return
    column = numeric.columns[int(np.flatnonzero(negative.any(axis=0))[0])]
    bad = numeric[column][numeric[column] < 0].head(_MAX_SAMPLES)
    raise RequestError(
        f"features.{column}: must be >= 0, got {dict(zip(bad.index, bad.tolist(), strict=False))}",
        field=f"features.{column}",
    )


def _is_non_negative_feature(column: str) -> bool:
    if column in NON_NEGATIVE_FEATURES or column.startswith(NON_NEGATIVE_PREFIXES):
        return True
    return column.startswith("eng_") and column.endswith(NON_NEGATIVE_ENGAGEMENT_SUFFIXES)


def _positions(mask: pd.Series | None, frame: pd.DataFrame) -> list[int]:
    if mask is None:
        return list(range(min(len(frame), _MAX_SAMPLES)))
    return np.flatnonzero(mask.to_numpy())[:_MAX_SAMPLES].tolist()


# ------------------------------------------------------------------------ history


def history_features(history: HistoryIn, *, as_of: dt.date, max_customers: int) -> pd.DataFrame:
    """Build point-in-time features from raw history sent with a request.

    Parameters
    ----------
    history : HistoryIn
        Transactions (required), events and customers in the data-contract shape.
    as_of : date
        Scoring day D; every row must be on or before the end of D.
    max_customers : int
        Largest accepted number of distinct customers.

    Returns
    -------
    DataFrame
        The output of :func:`features.build_features`, indexed by ``customer_id``.

    Raises
    ------
    RequestError
        Too many customers, or rows dated after ``as_of`` (leakage from the future).
    features.data.DataContractError
        Rows violating the data contract.
    """
    transactions = _records_frame(history.transactions)
    events = _records_frame(history.events) if history.events else None
    customers = _records_frame(history.customers) if history.customers else None
    n_customers = len(
        set(transactions["customer_id"])
        | (set(customers["customer_id"]) if customers is not None else set())
    )
    if n_customers > max_customers:
        raise RequestError(
            f"history: {n_customers} customers exceed the limit of {max_customers} per "
            "request (FIDELITE_MAX_BATCH)",
            field="history",
            status_code=413,
        )
    _, end_exclusive = as_of_bounds(as_of)
    _reject_future_rows(transactions, "timestamp", end_exclusive, "history.transactions")
    if events is not None:
        _reject_future_rows(events, "timestamp", end_exclusive, "history.events")
    if customers is not None:
        _reject_future_rows(customers, "signup_at", end_exclusive, "history.customers")
    inputs = Inputs(
        load_transactions(transactions, name="history.transactions"),
        as_of,
        load_events(events, name="history.events") if events is not None else None,
        load_customers(customers, name="history.customers") if customers is not None else None,
    )
    return build_features(inputs)


def _records_frame(records: Sequence[Any]) -> pd.DataFrame:
    """Columns of pydantic records, dropping optional columns nobody filled in."""
    fields = type(records[0]).model_fields
    columns = {name: [getattr(record, name) for record in records] for name in fields}
    for name, values in columns.items():
        if values and isinstance(_first_present(values), dt.datetime):
            columns[name] = [_to_naive_utc(value) for value in values]
    frame = pd.DataFrame(columns)
    optional = [name for name, info in fields.items() if not info.is_required()]
    # an all-missing optional column means "not provided": let the loader apply defaults
    empty = [name for name in optional if frame[name].isna().all()]
    return frame.drop(columns=empty)


def _first_present(values: list[Any]) -> Any:
    return next((value for value in values if value is not None), None)


def _to_naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _reject_future_rows(
    frame: pd.DataFrame, column: str, end_exclusive: pd.Timestamp, table: str
) -> None:
    if column not in frame:
        return
    timestamps = pd.to_datetime(frame[column])
    future = (timestamps >= end_exclusive).to_numpy()
    if future.any():
        rows = np.flatnonzero(future)[:_MAX_SAMPLES]
        samples = [
            f"row {row} (customer_id={frame['customer_id'].iat[row]}, "
            f"{column}={timestamps.iat[row].isoformat()})"
            for row in rows
        ]
        raise RequestError(
            f"{table}.{column}: {int(future.sum())} rows are after as_of "
            f"{(end_exclusive - pd.Timedelta(days=1)).date()}: {'; '.join(samples)}",
            field=f"{table}.{column}",
        )


# ------------------------------------------------------------------------- output


_DATE_COLUMNS = ("as_of", "expected_next_purchase")
# The scores frame writes "" for "no engagement on any channel"; the API says null.
_CHANNEL_COLUMNS = ("best_channel", "channel_preference")


def score_columns(scores: pd.DataFrame) -> dict[str, list[Any]]:
    """Scores frame as JSON-ready columns of plain Python values.

    Parameters
    ----------
    scores : DataFrame, shape (n_customers, ...)
        Scores frame (ARCHITECTURE.md); ``customer_id`` as column or index;
        ``reasons`` as lists or JSON-encoded lists.

    Returns
    -------
    dict of str to list, each of length n_customers
        One entry per :class:`CustomerScore` field, in field order: dates as
        ISO strings, missing values (NaN/NaT/None) as None, reasons as lists,
        empty ``best_channel`` / ``channel_preference`` (no engagement) as None.
    """
    frame = scores.reset_index() if "customer_id" not in scores else scores
    frame = frame.reindex(columns=list(SCORE_COLUMNS))
    columns: dict[str, list[Any]] = {}
    for name in SCORE_COLUMNS:
        values = frame[name]
        if name == "customer_id":
            columns[name] = values.astype(str).tolist()
        elif name in _DATE_COLUMNS:
            days = pd.to_datetime(values)
            columns[name] = _plain_values(days.dt.strftime("%Y-%m-%d"))
        elif name == "reasons":
            columns[name] = reason_lists(values)
        elif name in _CHANNEL_COLUMNS:
            columns[name] = _plain_values(_blank_as_missing(values))
        else:
            columns[name] = _plain_values(values)
    return columns


def _blank_as_missing(values: pd.Series) -> pd.Series:
    """Text column with empty or all-blank strings turned into missing values."""
    if values.dtype.kind in "biuf":
        return values
    text = values.astype(object)
    blank = text.map(lambda v: isinstance(v, str) and not v.strip(), na_action="ignore")
    return text.mask(blank.fillna(False).astype(bool))


def _plain_values(values: pd.Series) -> list[Any]:
    """Python scalars with every kind of missing value as None."""
    if values.dtype.kind == "f":
        array = values.to_numpy()
        out = array.tolist()
        for position in np.flatnonzero(~np.isfinite(array)).tolist():
            out[position] = None
        return out
    if values.dtype.kind in "biu":
        return values.tolist()
    missing = values.isna().to_numpy()
    out = values.astype(object).tolist()
    for position in np.flatnonzero(missing).tolist():
        out[position] = None
    return out


def score_dicts(scores: pd.DataFrame) -> list[dict[str, Any]]:
    """Scores frame as JSON-ready records (one dict per customer, see :func:`score_columns`)."""
    columns = score_columns(scores)
    names = list(columns)
    return [dict(zip(names, row, strict=False)) for row in zip(*columns.values(), strict=False)]


def score_records(scores: pd.DataFrame) -> list[CustomerScore]:
    """Convert a scores frame into response models.

    Parameters
    ----------
    scores : DataFrame, shape (n_customers, ...)
        Scores frame (ARCHITECTURE.md); ``customer_id`` as column or index;
        ``reasons`` as a list or a JSON-encoded list.

    Returns
    -------
    list of CustomerScore, length n_customers
    """
    return _SCORES_ADAPTER.validate_python(score_dicts(scores))


def predict_response_json(model: ModelRef, scores: pd.DataFrame) -> bytes:
    """The JSON body of a ``PredictResponse`` built straight from a scores frame.

    Equivalent to ``PredictResponse(...).model_dump_json()`` but without one
    pydantic model per customer: the frame's columns are converted vectorised and
    encoded once by pydantic-core, which matters for 10,000-customer batches.

    Parameters
    ----------
    model : ModelRef
        The model that produced the scores.
    scores : DataFrame, shape (n_customers, 21)
        Scores frame from ``FideliteModel.predict``.
    """
    return pydantic_core.to_json(
        {
            "model": model.model_dump(),
            "n_customers": len(scores),
            "n_insufficient_history": int((scores["status"] != "ok").sum()),
            "scores": score_dicts(scores),
        }
    )


def parse_reasons(reasons: pd.Series) -> pd.Series:
    """Reasons as Python lists, whether stored as lists or JSON strings (parquet)."""
    lists = np.empty(len(reasons), dtype=object)
    # element-wise: numpy would turn equal-length lists into a 2-D array
    for position, items in enumerate(reason_lists(reasons)):
        lists[position] = items
    return pd.Series(lists, index=reasons.index)


def reason_lists(reasons: pd.Series) -> list[list[str]]:
    """Reasons as a list of Python lists (see :func:`parse_reasons`)."""
    texts = reasons.tolist()
    if texts and all(isinstance(value, str) and value.startswith("[") for value in texts):
        # Model output: one JSON list per row; parsing them as one document is ~10x faster.
        try:
            parsed = json.loads("[" + ",".join(texts) + "]")
        except json.JSONDecodeError:
            parsed = None
        if (
            parsed is not None
            and len(parsed) == len(texts)
            and all(isinstance(item, list) for item in parsed)
        ):
            return parsed
    return [_to_list(value) for value in texts]


def _to_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [str(item) for item in json.loads(value)] if value else []
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [str(item) for item in value]
