"""Reading, validating and normalising the input tables of the data contract.

The tables and their columns are declared in :mod:`fidelite.features.contract`
(:data:`~fidelite.features.contract.TRANSACTIONS`, ``EVENTS``, ``CUSTOMERS``; the
campaigns and consent-history loaders live in their own modules). Column-level checks
are in :mod:`fidelite.features._columns` (timestamps in ``_timestamps``, id hashing in
``_text``), reading in ``_read``, error messages in ``_source``.

Normalised form
---------------
* ``customer_id``/``order_id``/``campaign_id`` are strings (integer ids become ``"123"``).
* Timestamps are tz-naive UTC ``datetime64[ns]``: tz-aware inputs are converted to UTC,
  naive inputs are taken to be UTC already. Text timestamps must be ISO 8601 unless an
  explicit ``date_format`` (strftime layout, e.g. ``"%d/%m/%Y %H:%M"``) is given; no
  other layout is guessed, so ``13/08/2025`` is an error naming the rows.
* ``channel`` (transactions, events) and ``event_type`` (events) are ``category`` columns
  whose categories are stripped, lower-case strings; unknown names are kept as their own
  category and missing values become ``"unknown"``. Categoricals keep 20M-row event
  tables cheap to normalise and to group by; they compare equal to plain strings
  (``df.channel == "email"``) and ``.astype(str)`` gives plain strings when needed.
* Only the contract columns are kept, in contract order, on a fresh ``RangeIndex``.

Every loader is idempotent: loading an already-normalised frame returns an equal frame
and only costs the validation passes.

Bad input raises :class:`DataContractError`, whose message names the file (or the table
name when a DataFrame is given), the column, and up to five offending rows. Row numbers
count data rows from 0 in file order; for CSV files the 1-based file line is given too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fidelite.errors import DataContractError
from fidelite.features._columns import (
    IdCodes,
    as_flag,
    as_id,
    as_label,
    as_label_text,
    as_number,
    as_optional_text,
    coded_id,
)
from fidelite.features._read import CSV_SUFFIXES, read_table
from fidelite.features._source import SourceTable, drop_duplicates, finish, require_columns
from fidelite.features._text import duplicated_text, repeated, text_hash
from fidelite.features._timestamps import as_timestamp, check_date_format
from fidelite.features.contract import CONSENT_COLUMN, CUSTOMERS, EVENTS, TRANSACTIONS
from fidelite.features.days import ONE_DAY, parse_day

__all__ = [
    "DataContractError",
    "TableSource",
    "as_of_bounds",
    "duplicated_orders",
    "load_coded_transactions",
    "load_customers",
    "load_events",
    "load_transactions",
    "read_table",
    "source_table",
]

#: A table as users give it: a CSV/Parquet path or a DataFrame.
TableSource = str | Path | pd.DataFrame


def source_table(
    source: TableSource,
    name: str,
    *,
    date_format: str | None = None,
    columns: Sequence[str] | None = None,
    categories: Sequence[str] = (),
) -> SourceTable:
    """Read ``source`` (a path, or a DataFrame named ``name`` in messages) for a loader.

    A path is read for ``columns`` only (default: all), with ``categories`` read as
    categories from Parquet; see :func:`read_table`.
    """
    date_format = check_date_format(date_format)
    if isinstance(source, pd.DataFrame):
        return SourceTable(source, name, date_format=date_format)
    if not isinstance(source, (str, Path)):
        raise DataContractError(
            f"{name}: expected a file path or a pandas DataFrame, got {type(source).__name__}"
        )
    path = Path(source)
    is_csv = path.name.lower().endswith(CSV_SUFFIXES)
    frame = read_table(path, columns, categories=categories)
    return SourceTable(frame, str(path), is_csv=is_csv, date_format=date_format)


def duplicated_orders(
    order_id: pd.Series,
    timestamp: pd.Series,
    amount: pd.Series,
    keys: np.ndarray | None = None,
) -> np.ndarray:
    """Flag rows repeating an earlier order, or an earlier refund row exactly.

    An order is one row per ``order_id``; a refund reuses its order's id, and an order
    may be refunded in several parts, so a refund row is a repeat only when its
    ``order_id``, ``timestamp`` and ``amount`` all equal an earlier refund's. Only the
    (usually few) rows whose 64-bit id key repeats (``keys``: :func:`order_keys`,
    computed when not given) go through that exact multi-column check.
    """
    keys = text_hash(order_id) if keys is None else keys
    shared = repeated(keys)
    duplicated = np.zeros(len(order_id), dtype=bool)
    if shared.any():
        refund = amount.to_numpy()[shared] < 0
        key = pd.DataFrame(
            {
                "order_id": order_id[shared].array,
                "is_refund": refund,
                "timestamp": np.where(refund, timestamp.to_numpy()[shared], np.datetime64("NaT")),
                "amount": np.where(refund, amount.to_numpy()[shared], 0.0),
            }
        )
        duplicated[shared] = key.duplicated(keep="first").to_numpy()
    return duplicated


# --------------------------------------------------------------------------- loaders
def load_transactions(
    source: TableSource, *, name: str = "transactions", date_format: str | None = None
) -> pd.DataFrame:
    """Load, validate and normalise the transactions table.

    Parameters
    ----------
    source : path or DataFrame
        A CSV/Parquet path (see :func:`read_table`) or a DataFrame.
    name : str
        Table name used in error messages when ``source`` is a DataFrame.
    date_format : str, optional
        strftime layout of text timestamps; default ISO 8601 only.

    Returns
    -------
    DataFrame
        Shape (n_rows - duplicates, 7) with the columns of ``contract.TRANSACTIONS``:
        ``customer_id`` (str), ``order_id`` (str), ``timestamp`` (datetime64[ns], UTC),
        ``amount`` (float64, currency; negative = refund), ``channel`` (category of
        lower-case str, "unknown" if absent), ``discount`` (float64 currency, 0 if
        absent), ``items`` (float64 count, NaN if absent). Repeats are dropped: a second
        order row with an earlier order's ``order_id``, or a refund row equal to an
        earlier refund in ``order_id``, ``timestamp`` and ``amount`` (an order may be
        refunded in several parts); their count is logged on the
        ``fidelite.features.data`` logger and stored in ``df.attrs["duplicates_dropped"]``.

    Raises
    ------
    DataContractError
        Missing required column, empty table, missing id, unparsable (not ISO 8601 nor
        ``date_format``) or missing timestamp, non-numeric or NaN amount, non-numeric
        discount/items.
    """
    return load_coded_transactions(source, name=name, date_format=date_format)[0]


def load_coded_transactions(
    source: TableSource, *, name: str = "transactions", date_format: str | None = None
) -> tuple[pd.DataFrame, IdCodes, np.ndarray]:
    """:func:`load_transactions`, also returning the customer ids factorised and the
    order ids' 64-bit keys (:func:`order_keys`), both over the returned rows.

    The loader computes both anyway (to normalise ids and find repeats); handing them on
    (:class:`~fidelite.features.inputs.Inputs` keeps them) spares features and refund
    links hashing a million ids again.
    """
    # Parquet customer ids come as their dictionary: one code per row, no hashing.
    table = source_table(
        source,
        name,
        date_format=date_format,
        columns=TRANSACTIONS.names,
        categories=("customer_id",),
    )
    require_columns(table, TRANSACTIONS.required)
    frame = table.frame
    customer_id, customer_codes = coded_id(table, "customer_id")
    order_id = as_id(table, "order_id")
    order_keys = _order_keys(table.frame["order_id"], order_id)
    columns = {
        "customer_id": customer_id,
        "order_id": order_id,
        "timestamp": as_timestamp(table, "timestamp", allow_missing=False),
        "amount": as_number(table, "amount", allow_missing=False),
        "channel": as_label(frame, "channel"),
        "discount": (
            as_number(table, "discount", allow_missing=True, fill=0.0)
            if "discount" in frame.columns
            else pd.Series(0.0, index=frame.index)
        ),
        "items": (
            as_number(table, "items", allow_missing=True)
            if "items" in frame.columns
            else pd.Series(np.nan, index=frame.index)
        ),
    }
    result = finish(columns)
    duplicated = duplicated_orders(
        result["order_id"], result["timestamp"], result["amount"], order_keys
    )
    result = drop_duplicates(result, duplicated, table.label, "order, or identical refund")
    if duplicated.any():
        customer_codes, order_keys = customer_codes.take(~duplicated), order_keys[~duplicated]
    return result, customer_codes, order_keys


def _order_keys(raw: pd.Series, order_id: pd.Series) -> np.ndarray:
    """64-bit keys of normalised order ids: equal ids, equal keys (uint64, (n_rows,)).

    Integer ids are their own keys (exact); text is hashed (:func:`text_hash`), so two
    ids may share a key and every use checks the ids themselves where keys match.
    """
    if raw.dtype.kind in "iu":
        return raw.to_numpy().view(np.uint64) if raw.dtype.kind == "i" else raw.to_numpy()
    return text_hash(order_id)


def load_events(
    source: TableSource, *, name: str = "events", date_format: str | None = None
) -> pd.DataFrame:
    """Load, validate and normalise the engagement events table.

    Parameters are those of :func:`load_transactions`.

    Returns
    -------
    DataFrame
        Shape (n_rows, 5) with the columns of ``contract.EVENTS``: ``customer_id``
        (str), ``timestamp`` (datetime64[ns], UTC), ``channel`` and ``event_type``
        (category of lower-case str; unknown names kept, missing → "unknown"),
        ``campaign_id`` (str or missing).

    Raises
    ------
    DataContractError
        Missing required column, empty table, missing id, unparsable or missing
        timestamp.
    """
    table = source_table(
        source,
        name,
        date_format=date_format,
        columns=EVENTS.names,
        categories=("campaign_id",),
    )
    require_columns(table, EVENTS.required)
    frame = table.frame
    result = finish(
        {
            "customer_id": as_id(table, "customer_id", categorical=True),
            "timestamp": as_timestamp(table, "timestamp", allow_missing=False),
            "channel": as_label(frame, "channel"),
            "event_type": as_label(frame, "event_type"),
            "campaign_id": as_optional_text(frame, "campaign_id", categorical=True),
        }
    )
    result.attrs["duplicates_dropped"] = 0
    return result


def load_customers(
    source: TableSource, *, name: str = "customers", date_format: str | None = None
) -> pd.DataFrame:
    """Load, validate and normalise the customers table.

    Parameters are those of :func:`load_transactions`.

    Returns
    -------
    DataFrame
        One row per customer, the columns of ``contract.CUSTOMERS``: ``customer_id``
        (str), ``signup_at`` (datetime64[ns] UTC or NaT), ``acquisition_channel``
        (lower-case str, "unknown" if missing), ``acquisition_cost`` (float64 currency,
        NaN if missing), ``email_opt_in``/``sms_opt_in``/``push_opt_in`` (bool; True
        when the column is absent, False where a present column is blank). The consent
        flags are today's state: for targeting only, never model inputs. Repeated
        customer ids keep their first row; the count is logged and stored in
        ``df.attrs["duplicates_dropped"]``.

    Raises
    ------
    DataContractError
        Missing ``customer_id`` column or values, empty table, unparsable
        ``signup_at``, non-numeric ``acquisition_cost``, unrecognised consent values.
    """
    table = source_table(source, name, date_format=date_format, columns=CUSTOMERS.names)
    require_columns(table, CUSTOMERS.required)
    frame = table.frame
    columns: dict[str, pd.Series] = {
        "customer_id": as_id(table, "customer_id"),
        "signup_at": (
            as_timestamp(table, "signup_at", allow_missing=True)
            if "signup_at" in frame.columns
            else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
        ),
        "acquisition_channel": as_label_text(frame, "acquisition_channel"),
        "acquisition_cost": (
            as_number(table, "acquisition_cost", allow_missing=True)
            if "acquisition_cost" in frame.columns
            else pd.Series(np.nan, index=frame.index)
        ),
    }
    for flag in CONSENT_COLUMN.values():
        columns[flag] = as_flag(table, flag)
    result = finish(columns)
    duplicated = duplicated_text(result["customer_id"], keep="first")
    return drop_duplicates(result, duplicated, table.label, "customer_id")


# --------------------------------------------------------------------------- time
def as_of_bounds(as_of: object) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The as-of calendar day and the exclusive end of what features may see.

    ``as_of`` is parsed strictly by :func:`fidelite.features.days.parse_day`.

    Returns
    -------
    (day, end_exclusive) : tuple of Timestamp
        Tz-naive midnight of day D and D + 1 day. Features use rows with
        ``timestamp < end_exclusive``; labels use ``end_exclusive <= timestamp``.
    """
    day = parse_day(as_of)
    return day, day + ONE_DAY
