"""Features built server-side from the raw history sent to ``/predict``.

The request's tables are turned into frames in the data-contract shape and handed to
:func:`fidelite.features.build_features`, the same code ``fidelite features`` runs, so
serving cannot build features differently from training. Before that, what the loaders
cannot know is checked here: nothing may be dated after ``as_of`` (that would leak the
future into the features) and the number of customers is capped. Each customer's consent
depends on their own row only: a missing flag means opted in, as when the whole column
is absent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fidelite.features import ChannelVocabulary, Inputs, build_features
from fidelite.features.contract import CONSENT_COLUMN
from fidelite.features.data import load_customers, load_events, load_transactions
from fidelite.features.params import FeatureParams
from fidelite.serving.errors import PayloadTooLargeError, RequestError
from fidelite.serving.rows import FeatureBatch
from fidelite.serving.schemas import HistoryIn

_SAMPLES = 5


def _to_naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _records_frame(records: Sequence[Any], *, keep: Sequence[str] = ()) -> pd.DataFrame:
    """Columns of pydantic records; optional columns nobody filled in are left out.

    Columns named in ``keep`` stay even when empty (their defaults are per row).
    """
    fields = type(records[0]).model_fields
    columns: dict[str, list[Any]] = {}
    for name, info in fields.items():
        values = [getattr(record, name) for record in records]
        if not info.is_required() and name not in keep and all(v is None for v in values):
            continue
        if any(isinstance(v, dt.datetime) for v in values):
            values = [_to_naive_utc(v) for v in values]
        columns[name] = values
    return pd.DataFrame(columns)


def _reject_future_rows(records: Sequence[Any], column: str, end: dt.datetime, table: str) -> None:
    """Refuse rows dated at or after ``end`` (checked on the records: no frame needed)."""
    future = []
    for position, record in enumerate(records):
        value = getattr(record, column, None)
        if value is not None and _to_naive_utc(value) >= end:
            future.append(position)
    if future:
        raise RequestError(
            f"{table}.{column}: {len(future)} rows are after as_of "
            f"{(end - dt.timedelta(days=1)).date()} (rows {future[:_SAMPLES]})",
            field=f"{table}.{column}",
        )


def history_features(
    history: HistoryIn,
    *,
    as_of: dt.date,
    max_customers: int,
    params: FeatureParams | None = None,
    vocabulary: ChannelVocabulary | None = None,
) -> pd.DataFrame:
    """Point-in-time features of the customers in a request's raw history.

    Parameters
    ----------
    history : HistoryIn
        Transactions (required), events and customers.
    as_of : date
        Scoring day D; every row must be on or before the end of D.
    max_customers : int
        Largest accepted number of distinct customers (``FIDELITE_MAX_BATCH``).
    params : FeatureParams, optional
        The served model's (``FideliteModel.feature_params``): features are built as in
        its training. Default: ``FeatureParams()``.
    vocabulary : ChannelVocabulary, optional
        The served model's channels (``ServedModel.channels``), besides those in the
        request: a customer gets the columns (0 counts) the training population had for
        channels they never used, never a missing column.

    Returns
    -------
    DataFrame
        :func:`fidelite.features.build_features` output, indexed by ``customer_id``.

    Raises
    ------
    RequestError, PayloadTooLargeError, DataContractError
        Naming the table and column at fault.
    """
    transactions = _records_frame(history.transactions)
    events = _records_frame(history.events) if history.events else None
    customers = (
        _records_frame(history.customers, keep=tuple(CONSENT_COLUMN.values()))
        if history.customers
        else None
    )
    ids = set(transactions["customer_id"])
    if customers is not None:
        ids |= set(customers["customer_id"])
        for flag in CONSENT_COLUMN.values():
            # a missing flag is consent, per customer: never borrowed from others
            customers[flag] = [value is not False for value in customers[flag]]
    if len(ids) > max_customers:
        raise PayloadTooLargeError(
            f"history: {len(ids)} customers exceed the limit of {max_customers} per request "
            "(FIDELITE_MAX_BATCH)",
            field="history",
        )
    end = dt.datetime.combine(as_of, dt.time()) + dt.timedelta(days=1)
    _reject_future_rows(history.transactions, "timestamp", end, "history.transactions")
    _reject_future_rows(history.events, "timestamp", end, "history.events")
    _reject_future_rows(history.customers, "signup_at", end, "history.customers")
    inputs = Inputs(
        load_transactions(transactions, name="history.transactions"),
        pd.Timestamp(as_of),
        None if events is None else load_events(events, name="history.events"),
        None if customers is None else load_customers(customers, name="history.customers"),
    )
    try:
        return build_features(inputs, params=params, vocabulary=vocabulary)
    except (OverflowError, FloatingPointError, pd.errors.OutOfBoundsDatetime) as exc:
        raise RequestError(
            f"history: values out of the computable range ({type(exc).__name__})",
            field="history",
        ) from None


def frame_batch(features: pd.DataFrame) -> FeatureBatch:
    """A features frame as a :class:`FeatureBatch` (scored like feature rows).

    The frame is converted to objects once, then numeric columns to float64 (per-column
    access costs more than the model for a one-customer history).
    """
    names = [str(column) for column in features.columns]
    numeric = [dtype.kind in "iuf" for dtype in features.dtypes]
    values = features.to_numpy(dtype=object, na_value=None).T
    numbers: dict[str, np.ndarray] = {}
    others: dict[str, np.ndarray] = {}
    for name, is_number, column in zip(names, numeric, values, strict=True):
        if is_number:
            numbers[name] = np.array(
                [np.nan if v is None else v for v in column.tolist()], dtype=np.float64
            )
        else:
            others[name] = column.copy()
    return FeatureBatch(ids=[str(i) for i in features.index], numbers=numbers, others=others)
