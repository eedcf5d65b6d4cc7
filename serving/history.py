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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fidelite.features import ChannelVocabulary, Inputs, build_features
from fidelite.features.build import customer_features
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


def _records_columns(records: Sequence[Any], *, keep: Sequence[str] = ()) -> dict[str, list[Any]]:
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
    return columns


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


Columns = dict[str, list[Any]]


@dataclass(frozen=True)
class PreparedHistory:
    """A history request checked on its own, as columns ready for the loaders.

    Attributes
    ----------
    as_of : date
        Scoring day D.
    transactions : dict of str to list
        The request's transaction columns (datetimes naive UTC).
    events, customers : dict of str to list, or None
        Likewise; None when the request has no such table. Consent flags are filled
        per customer (a missing flag is consent).
    n_customers : int
        Distinct customer ids in the request (as sent).
    """

    as_of: dt.date
    transactions: Columns
    events: Columns | None
    customers: Columns | None
    n_customers: int

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
        """The tables as frames in the data-contract shape (events/customers or None)."""
        return (
            pd.DataFrame(self.transactions),
            None if self.events is None else pd.DataFrame(self.events),
            None if self.customers is None else pd.DataFrame(self.customers),
        )


def prepare_history(history: HistoryIn, *, as_of: dt.date, max_customers: int) -> PreparedHistory:
    """What can be checked on the request alone, before any feature code runs.

    Raises
    ------
    RequestError, PayloadTooLargeError
        Rows after ``as_of``; more than ``max_customers`` customers.
    """
    transactions = _records_columns(history.transactions)
    events = _records_columns(history.events) if history.events else None
    customers = (
        _records_columns(history.customers, keep=tuple(CONSENT_COLUMN.values()))
        if history.customers
        else None
    )
    ids = set(transactions["customer_id"])
    if customers is not None:
        ids.update(customers["customer_id"])
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
    return PreparedHistory(as_of, transactions, events, customers, len(ids))


def load_prepared(tables: PreparedHistory) -> Inputs:
    """The request's tables through the data-contract loaders (errors name the table)."""
    transactions, events, customers = tables.frames()
    return Inputs(
        load_transactions(transactions, name="history.transactions"),
        pd.Timestamp(tables.as_of),
        None if events is None else load_events(events, name="history.events"),
        None if customers is None else load_customers(customers, name="history.customers"),
    )


def computable(build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """``build()``, with values beyond the computable range as the client's error."""
    try:
        return build()
    except (OverflowError, FloatingPointError, pd.errors.OutOfBoundsDatetime) as exc:
        raise RequestError(
            f"history: values out of the computable range ({type(exc).__name__})",
            field="history",
        ) from None


def prepared_features(
    tables: PreparedHistory,
    *,
    params: FeatureParams | None = None,
    vocabulary: ChannelVocabulary | None = None,
    population: bool = True,
) -> pd.DataFrame:
    """:func:`fidelite.features.build_features` of one prepared request.

    ``population=False`` leaves out the population columns (``rfm_segment``: ranked
    among the request's customers), for models that do not read them.
    """
    inputs = load_prepared(tables)
    if population:
        return computable(lambda: build_features(inputs, params=params, vocabulary=vocabulary))
    return computable(lambda: customer_features(inputs, params=params, vocabulary=vocabulary))


def history_features(
    history: HistoryIn,
    *,
    as_of: dt.date,
    max_customers: int,
    params: FeatureParams | None = None,
    vocabulary: ChannelVocabulary | None = None,
    population: bool = True,
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
    population : bool
        Whether to add the population columns (``ServedModel.uses_population``).

    Returns
    -------
    DataFrame
        :func:`fidelite.features.build_features` output (without the population
        columns when ``population`` is false), indexed by ``customer_id``.

    Raises
    ------
    RequestError, PayloadTooLargeError, DataContractError
        Naming the table and column at fault.
    """
    tables = prepare_history(history, as_of=as_of, max_customers=max_customers)
    return prepared_features(tables, params=params, vocabulary=vocabulary, population=population)


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
