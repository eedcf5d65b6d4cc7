"""The fidelite data contract: reading, validating and normalising input tables.

Three tables feed the pipeline (see ``ARCHITECTURE.md``):

* **transactions** (required): ``customer_id``, ``order_id``, ``timestamp``, ``amount``
  (currency units, negative = refund), optional ``channel``, ``discount``, ``items``.
* **events** (optional): ``customer_id``, ``timestamp``, ``channel``, ``event_type``,
  optional ``campaign_id``.
* **customers** (optional): ``customer_id``, optional ``signup_at``,
  ``acquisition_channel``, ``acquisition_cost``, ``email_opt_in``, ``sms_opt_in``,
  ``push_opt_in``.

Normalised form
---------------
* ``customer_id``/``order_id``/``campaign_id`` are strings (integer ids become ``"123"``).
* Timestamps are tz-naive UTC ``datetime64[ns]``: tz-aware inputs are converted to UTC,
  naive inputs are taken to be UTC already.
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

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fidelite.errors import DataContractError
from fidelite.features.days import ONE_DAY, parse_day

__all__ = [
    "CUSTOMER_COLUMNS",
    "EVENT_COLUMNS",
    "KNOWN_EVENT_CHANNELS",
    "KNOWN_EVENT_TYPES",
    "KNOWN_ORDER_CHANNELS",
    "TRANSACTION_COLUMNS",
    "DataContractError",
    "as_of_bounds",
    "load_customers",
    "load_events",
    "load_transactions",
    "read_table",
]

logger = logging.getLogger(__name__)

TRANSACTION_COLUMNS = (
    "customer_id",
    "order_id",
    "timestamp",
    "amount",
    "channel",
    "discount",
    "items",
)
EVENT_COLUMNS = ("customer_id", "timestamp", "channel", "event_type", "campaign_id")
CUSTOMER_COLUMNS = (
    "customer_id",
    "signup_at",
    "acquisition_channel",
    "acquisition_cost",
    "email_opt_in",
    "sms_opt_in",
    "push_opt_in",
)
CONSENT_COLUMNS = ("email_opt_in", "sms_opt_in", "push_opt_in")

# Documented vocabularies. They are not enforced: any other name is kept as-is.
KNOWN_ORDER_CHANNELS = ("web", "app", "store", "phone", "marketplace")
KNOWN_EVENT_CHANNELS = ("email", "sms", "push", "web", "app", "store", "social", "call_center")
KNOWN_EVENT_TYPES = (
    "sent",
    "delivered",
    "open",
    "click",
    "visit",
    "session",
    "add_to_cart",
    "search",
    "unsubscribe",
    "bounce",
    "complaint",
)

MISSING_LABEL = "unknown"
_MAX_SAMPLES = 5
_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
# Read as text so that ids such as "00123" keep their leading zeros.
_TEXT_ID_COLUMNS = ("customer_id", "order_id", "campaign_id")
_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})


@dataclass(frozen=True)
class _Table:
    """A raw table together with how to refer to it in error messages."""

    frame: pd.DataFrame
    label: str
    is_csv: bool = False


# --------------------------------------------------------------------------- reading
def _suffix_kind(path: Path) -> str | None:
    name = path.name.lower()
    if path.is_dir():
        return "parquet"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    return None


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet table without validating it.

    Parameters
    ----------
    path : str or Path
        A ``.csv``/``.csv.gz`` file, a ``.parquet``/``.pq`` file, or a directory of
        Parquet files (e.g. written by Dask).

    Returns
    -------
    DataFrame
        The raw table, shape (n_rows, n_columns). CSV id columns (``customer_id``,
        ``order_id``, ``campaign_id``) are read as text.

    Raises
    ------
    DataContractError
        If the file is missing, has an unsupported suffix or cannot be parsed.
    """
    path = Path(path)
    if not path.exists():
        raise DataContractError(f"{path}: file not found")
    kind = _suffix_kind(path)
    if kind is None:
        raise DataContractError(
            f"{path}: unsupported file type; expected .csv, .csv.gz, .parquet, .pq "
            "or a directory of Parquet files"
        )
    try:
        if kind == "csv":
            return pd.read_csv(path, dtype={c: str for c in _TEXT_ID_COLUMNS})
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise DataContractError(f"{path}: table is empty (no header or rows)") from exc
    except Exception as exc:
        raise DataContractError(
            f"{path}: cannot read {kind.upper()} file ({type(exc).__name__}: {exc})"
        ) from exc


def _resolve(source: str | Path | pd.DataFrame, name: str) -> _Table:
    if isinstance(source, pd.DataFrame):
        return _Table(source, name)
    if not isinstance(source, (str, Path)):
        raise DataContractError(
            f"{name}: expected a file path or a pandas DataFrame, got {type(source).__name__}"
        )
    path = Path(source)
    return _Table(read_table(path), str(path), is_csv=path.name.lower().endswith(_CSV_SUFFIXES))


# --------------------------------------------------------------------------- errors
def _row_reference(table: _Table, position: int) -> str:
    if table.is_csv:
        return f"row {position} (line {position + 2})"
    return f"row {position}"


def _fail(
    table: _Table, column: str, problem: str, bad: np.ndarray, values: pd.Series
) -> DataContractError:
    """Build an error naming the table, the column and a sample of bad rows.

    ``bad`` is a boolean mask over rows, shape (n_rows,).
    """
    positions = np.flatnonzero(bad)
    samples = ", ".join(
        f"{_row_reference(table, int(p))}: {column}={values.iloc[p]!r}"
        for p in positions[:_MAX_SAMPLES]
    )
    return DataContractError(
        f"{table.label}: column '{column}': {problem} in {len(positions)} row(s); e.g. {samples}"
    )


def _require_columns(table: _Table, required: tuple[str, ...]) -> None:
    if table.frame.empty:
        raise DataContractError(f"{table.label}: table is empty (no rows)")
    missing = [c for c in required if c not in table.frame.columns]
    if missing:
        raise DataContractError(
            f"{table.label}: missing required column(s) {missing}; "
            f"found columns {list(map(str, table.frame.columns))}"
        )


# --------------------------------------------------------------------------- columns
def _as_id(table: _Table, column: str) -> pd.Series:
    """Normalise an identifier column to strings; missing ids are an error."""
    values = table.frame[column]
    if pd.api.types.is_float_dtype(values):
        # Integer ids read through a float column (because of NaNs) must not become "1.0".
        integral = values.isna() | (values == np.floor(values))
        if integral.all():
            values = values.astype("Int64")
    if isinstance(values.dtype, pd.StringDtype) or values.dtype == object:
        text = values.astype("str").str.strip()
        missing = values.isna().to_numpy() | (text == "").to_numpy()
    else:
        text = values.astype("str")
        missing = values.isna().to_numpy()
    if missing.any():
        raise _fail(table, column, "missing identifier", missing, values)
    return text


def _as_timestamp(table: _Table, column: str, *, allow_missing: bool) -> pd.Series:
    """Normalise a timestamp column to tz-naive UTC ``datetime64[ns]``."""
    values = table.frame[column]
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(values):
        parsed = values
    elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        # Epoch numbers are ambiguous (s, ms, ns?); refuse rather than guess.
        raise _fail(
            table,
            column,
            "expected ISO-8601 text or datetimes, got numbers",
            values.notna().to_numpy(),
            values,
        )
    else:
        parsed = _parse_timestamp_text(values)
    parsed = parsed.astype("datetime64[ns]")
    missing_after = parsed.isna().to_numpy()
    unparsable = missing_after & values.notna().to_numpy()
    if unparsable.any():
        raise _fail(table, column, "unparsable timestamp", unparsable, values)
    if not allow_missing and missing_after.any():
        raise _fail(table, column, "missing timestamp", missing_after, values)
    return parsed


def _parse_timestamp_text(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    retry = parsed.isna() & values.notna()
    if retry.any():
        # Non-ISO text (e.g. "03/01/2024 10:00") is rare, so only those rows pay for
        # the slow per-element "mixed" parser.
        parsed = parsed.copy()
        parsed[retry] = pd.to_datetime(values[retry], utc=True, errors="coerce", format="mixed")
    return parsed.dt.tz_localize(None)


def _as_number(
    table: _Table, column: str, *, allow_missing: bool, fill: float | None = None
) -> pd.Series:
    """Normalise a numeric column to float64."""
    values = table.frame[column]
    if pd.api.types.is_bool_dtype(values):
        raise _fail(
            table,
            column,
            "expected numbers, got booleans",
            np.ones(len(values), dtype=bool),
            values,
        )
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
    else:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        non_numeric = numbers.isna().to_numpy() & values.notna().to_numpy()
        if non_numeric.any():
            raise _fail(table, column, "non-numeric value", non_numeric, values)
    missing = numbers.isna().to_numpy()
    if not allow_missing and missing.any():
        raise _fail(table, column, "missing (NaN) value", missing, values)
    infinite = np.isinf(numbers.to_numpy())
    if infinite.any():
        raise _fail(table, column, "infinite value", infinite, values)
    if fill is not None:
        numbers = numbers.fillna(fill)
    return numbers


def _as_lower_category(frame: pd.DataFrame, column: str) -> pd.Series:
    """Lower-case a name column through its (few) distinct values.

    Returns a ``category`` Series with sorted, stripped, lower-case categories; missing
    values (and an absent column) become ``"unknown"``.
    """
    if column not in frame.columns:
        return pd.Series(
            pd.Categorical.from_codes(
                np.zeros(len(frame), dtype=np.int8), categories=[MISSING_LABEL]
            ),
            index=frame.index,
            name=column,
        )
    values = frame[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        uniques = values.cat.categories.to_numpy()
    else:
        codes, uniques = pd.factorize(values)
    names = [str(u).strip().lower() for u in uniques]
    if (codes < 0).any():
        names.append(MISSING_LABEL)
        codes = np.where(codes < 0, len(uniques), codes)
    # Distinct raw spellings ("Email", " email") may collapse onto one name.
    categories, remap = np.unique(np.array(names, dtype=object), return_inverse=True)
    return pd.Series(
        pd.Categorical.from_codes(remap[codes], categories=categories),
        index=frame.index,
        name=column,
    )


def _as_lower_text(frame: pd.DataFrame, column: str) -> pd.Series:
    """Lower-case a (small) name column as plain strings; missing → ``"unknown"``."""
    if column not in frame.columns:
        return pd.Series(MISSING_LABEL, index=frame.index, dtype="str", name=column)
    return _as_lower_category(frame, column).astype("str")


def _as_optional_text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="str", name=column)
    values = frame[column]
    if pd.api.types.is_float_dtype(values):
        integral = values.isna() | (values == np.floor(values))
        if integral.all():
            values = values.astype("Int64")
    return values.astype("str").where(values.notna())


def _as_flag(table: _Table, column: str) -> pd.Series:
    """Parse a consent flag: bool, 0/1 or true/false/yes/no text.

    An absent column means consent was not tracked (True); a missing value in a
    present column means no recorded consent (False).
    """
    frame = table.frame
    if column not in frame.columns:
        return pd.Series(True, index=frame.index, name=column)
    values = frame[column]
    if pd.api.types.is_bool_dtype(values) and not values.isna().any():
        return values.astype(bool)
    codes, uniques = pd.factorize(values)
    words = [str(u).strip().lower() for u in uniques]
    unknown = [w not in _TRUE_WORDS and w not in _FALSE_WORDS for w in words]
    bad = np.isin(codes, np.flatnonzero(unknown))
    if bad.any():
        raise _fail(table, column, "expected a boolean (true/false, yes/no, 1/0)", bad, values)
    truth = np.array([w in _TRUE_WORDS for w in words] + [False], dtype=bool)
    return pd.Series(
        truth[np.where(codes < 0, len(uniques), codes)], index=frame.index, name=column
    )


def _finish(columns: dict[str, pd.Series]) -> pd.DataFrame:
    # Build from arrays, not Series, so a duplicated input index cannot misalign rows.
    return pd.DataFrame({name: col.array for name, col in columns.items()}, copy=False)


def _drop_duplicates(
    frame: pd.DataFrame, duplicated: np.ndarray, label: str, what: str
) -> pd.DataFrame:
    """Drop rows flagged in the boolean mask ``duplicated`` (shape (n_rows,))."""
    n_dropped = int(duplicated.sum())
    if n_dropped:
        logger.warning("%s: dropped %d duplicated row(s) (same %s)", label, n_dropped, what)
        frame = frame.loc[~duplicated].reset_index(drop=True)
    frame.attrs["duplicates_dropped"] = n_dropped
    return frame


def _duplicated_orders(order_id: pd.Series, timestamp: pd.Series, amount: pd.Series) -> np.ndarray:
    """Flag rows repeating an earlier order, or an earlier refund row exactly.

    An order is one row per ``order_id``; a refund reuses its order's id, and an order
    may be refunded in several parts, so a refund row is a repeat only when its
    ``order_id``, ``timestamp`` and ``amount`` all equal an earlier refund's. Hashing
    one string column is the expensive part, so the multi-column check only runs on
    the (usually few) rows whose order_id occurs more than once.
    """
    shared = order_id.duplicated(keep=False).to_numpy()
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
    source: str | Path | pd.DataFrame, *, name: str = "transactions"
) -> pd.DataFrame:
    """Load, validate and normalise the transactions table.

    Parameters
    ----------
    source : path or DataFrame
        A CSV/Parquet path (see :func:`read_table`) or a DataFrame.
    name : str
        Table name used in error messages when ``source`` is a DataFrame.

    Returns
    -------
    DataFrame
        Shape (n_rows - duplicates, 7) with columns ``TRANSACTION_COLUMNS``:
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
        Missing required column, empty table, missing id, unparsable or missing
        timestamp, non-numeric or NaN amount, non-numeric discount/items.
    """
    table = _resolve(source, name)
    _require_columns(table, ("customer_id", "order_id", "timestamp", "amount"))
    frame = table.frame
    amount = _as_number(table, "amount", allow_missing=False)
    columns = {
        "customer_id": _as_id(table, "customer_id"),
        "order_id": _as_id(table, "order_id"),
        "timestamp": _as_timestamp(table, "timestamp", allow_missing=False),
        "amount": amount,
        "channel": _as_lower_category(frame, "channel"),
        "discount": (
            _as_number(table, "discount", allow_missing=True, fill=0.0)
            if "discount" in frame.columns
            else pd.Series(0.0, index=frame.index)
        ),
        "items": (
            _as_number(table, "items", allow_missing=True)
            if "items" in frame.columns
            else pd.Series(np.nan, index=frame.index)
        ),
    }
    result = _finish(columns)
    duplicated = _duplicated_orders(result["order_id"], result["timestamp"], result["amount"])
    return _drop_duplicates(result, duplicated, table.label, "order, or identical refund")


def load_events(source: str | Path | pd.DataFrame, *, name: str = "events") -> pd.DataFrame:
    """Load, validate and normalise the engagement events table.

    Returns
    -------
    DataFrame
        Shape (n_rows, 5) with columns ``EVENT_COLUMNS``: ``customer_id`` (str),
        ``timestamp`` (datetime64[ns], UTC), ``channel`` and ``event_type`` (category of
        lower-case str; unknown names kept, missing → "unknown"), ``campaign_id``
        (str or missing).

    Raises
    ------
    DataContractError
        Missing required column, empty table, missing id, unparsable or missing
        timestamp.
    """
    table = _resolve(source, name)
    _require_columns(table, ("customer_id", "timestamp", "channel", "event_type"))
    frame = table.frame
    result = _finish(
        {
            "customer_id": _as_id(table, "customer_id"),
            "timestamp": _as_timestamp(table, "timestamp", allow_missing=False),
            "channel": _as_lower_category(frame, "channel"),
            "event_type": _as_lower_category(frame, "event_type"),
            "campaign_id": _as_optional_text(frame, "campaign_id"),
        }
    )
    result.attrs["duplicates_dropped"] = 0
    return result


def load_customers(source: str | Path | pd.DataFrame, *, name: str = "customers") -> pd.DataFrame:
    """Load, validate and normalise the customers table.

    Returns
    -------
    DataFrame
        One row per customer, columns ``CUSTOMER_COLUMNS``: ``customer_id`` (str),
        ``signup_at`` (datetime64[ns] UTC or NaT), ``acquisition_channel`` (lower-case
        str, "unknown" if missing), ``acquisition_cost`` (float64 currency, NaN if
        missing), ``email_opt_in``/``sms_opt_in``/``push_opt_in`` (bool; True when the
        column is absent, False where a present column is blank). Repeated customer ids
        keep their first row; the count is logged and stored in
        ``df.attrs["duplicates_dropped"]``.

    Raises
    ------
    DataContractError
        Missing ``customer_id`` column or values, empty table, unparsable
        ``signup_at``, non-numeric ``acquisition_cost``, unrecognised consent values.
    """
    table = _resolve(source, name)
    _require_columns(table, ("customer_id",))
    frame = table.frame
    columns: dict[str, pd.Series] = {
        "customer_id": _as_id(table, "customer_id"),
        "signup_at": (
            _as_timestamp(table, "signup_at", allow_missing=True)
            if "signup_at" in frame.columns
            else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
        ),
        "acquisition_channel": _as_lower_text(frame, "acquisition_channel"),
        "acquisition_cost": (
            _as_number(table, "acquisition_cost", allow_missing=True)
            if "acquisition_cost" in frame.columns
            else pd.Series(np.nan, index=frame.index)
        ),
    }
    for flag in CONSENT_COLUMNS:
        columns[flag] = _as_flag(table, flag)
    result = _finish(columns)
    duplicated = result["customer_id"].duplicated(keep="first").to_numpy()
    return _drop_duplicates(result, duplicated, table.label, "customer_id")


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
