"""Column-level validation and normalisation shared by every table loader.

Each ``as_*`` function takes a :class:`SourceTable` (the raw frame plus how to name it
in messages) and one column, and returns the normalised column or raises a
:class:`~fidelite.errors.DataContractError` naming the table, the column and up to five
offending rows (data rows counted from 0; for CSV files the 1-based file line too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fidelite.errors import DataContractError
from fidelite.features.contract import MISSING_LABEL

__all__ = [
    "SourceTable",
    "as_flag",
    "as_id",
    "as_label",
    "as_label_text",
    "as_number",
    "as_optional_text",
    "as_timestamp",
    "check_date_format",
    "drop_duplicates",
    "duplicated_text",
    "factorize_text",
    "fail",
    "finish",
    "require_columns",
    "text_hash",
    "vocabulary_check",
]

logger = logging.getLogger("fidelite.features.data")

_MAX_SAMPLES = 5
_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})


@dataclass(frozen=True)
class SourceTable:
    """A raw table together with how to refer to it in error messages.

    Attributes
    ----------
    frame : DataFrame
        The table as read (unvalidated).
    label : str
        File path, or the table name when a DataFrame was given.
    is_csv : bool
        Row references then also give the 1-based file line.
    date_format : str or None
        strftime layout of its text timestamps; None = ISO 8601 only.
    """

    frame: pd.DataFrame
    label: str
    is_csv: bool = False
    date_format: str | None = None


# --------------------------------------------------------------------------- errors
def _row_reference(table: SourceTable, position: int) -> str:
    if table.is_csv:
        return f"row {position} (line {position + 2})"
    return f"row {position}"


def fail(
    table: SourceTable,
    column: str,
    problem: str,
    bad: np.ndarray,
    values: pd.Series,
    *,
    hint: str = "",
) -> DataContractError:
    """Build an error naming the table, the column and a sample of bad rows.

    ``bad`` is a boolean mask over rows, shape (n_rows,); ``hint`` (what to do about
    it) goes after the sample.
    """
    positions = np.flatnonzero(bad)
    samples = ", ".join(
        f"{_row_reference(table, int(p))}: {column}={values.iloc[p]!r}"
        for p in positions[:_MAX_SAMPLES]
    )
    return DataContractError(
        f"{table.label}: column '{column}': {problem} in {len(positions)} row(s); "
        f"e.g. {samples}" + (f"; {hint}" if hint else ""),
        field=column,
    )


def require_columns(table: SourceTable, required: tuple[str, ...]) -> None:
    if table.frame.empty:
        raise DataContractError(f"{table.label}: table is empty (no rows)")
    missing = [c for c in required if c not in table.frame.columns]
    if missing:
        raise DataContractError(
            f"{table.label}: missing required column(s) {missing}; "
            f"found columns {list(map(str, table.frame.columns))}"
        )


# --------------------------------------------------------------------------- columns
def as_id(table: SourceTable, column: str, *, categorical: bool = False) -> pd.Series:
    """Normalise an identifier column to text; missing ids are an error.

    Integer ids become their decimal text (``123`` -> ``"123"``, also when read through
    a float column because of NaNs); text ids are stripped of surrounding spaces. All
    in Arrow compute or on the distinct ids, never per row in Python.

    Parameters
    ----------
    categorical : bool
        Return a ``category`` of str (int32 codes + one copy of each distinct id)
        instead of an Arrow-backed ``str`` column: for the large tables that repeat each
        id many times (events), where it saves most of the column's memory.
    """
    values = table.frame[column]
    if pd.api.types.is_float_dtype(values):
        # Integer ids read through a float column (because of NaNs) must not become "1.0".
        integral = values.isna() | (values == np.floor(values))
        if integral.all():
            values = values.astype("Int64")
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniques = values.cat.codes.to_numpy(), pd.Series(values.cat.categories)
        if (codes < 0).any():
            raise fail(table, column, "missing identifier", codes < 0, values)
        # Distinct spellings (" 7", "7") may collapse onto one id once trimmed.
        remap, categories = factorize_text(_id_text(uniques))
        codes = remap[codes]
    elif categorical:
        codes, categories = factorize_text(_id_text(values))
    else:
        codes = None
    if codes is not None:
        missing = codes < 0
        if (categories == "").any():
            missing |= codes == int(np.flatnonzero(categories == "")[0])
        if missing.any():
            raise fail(table, column, "missing identifier", missing, values)
        result = pd.Categorical.from_codes(codes, categories=categories)
        if not categorical:
            result = result.astype("str")
        return pd.Series(result, index=values.index, name=column)
    text = _id_text(values)
    missing = np.asarray(pc.fill_null(pc.equal(pc.utf8_length(text), 0), True), dtype=bool)
    if missing.any():
        raise fail(table, column, "missing identifier", missing, values)
    return pd.Series(pd.array(text, dtype="str"), index=values.index, name=column)


def _id_text(values: pd.Series) -> pa.ChunkedArray | pa.Array:
    """Ids as Arrow text: integers cast, text trimmed (nulls stay null)."""
    if pd.api.types.is_integer_dtype(values):
        return pa.array(values, from_pandas=True).cast(pa.large_string())
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return pc.utf8_trim_whitespace(values.array._pa_array)  # the Arrow data itself
    try:  # object column of Python strings: converted in C
        text = pa.array(values.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: their str(), once each
        text = pa.array(values.astype("str").to_numpy(dtype=object), type=pa.large_string())
        text = pc.if_else(pa.array(values.isna().to_numpy()), None, text)
    return pc.utf8_trim_whitespace(text)


def factorize_text(text: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and distinct values of Arrow text, about 3x faster than Arrow's own.

    Rows are grouped by polars' 64-bit string hash; a second hash with another seed
    must agree within every group, so two different texts can only share a code if they
    collide on both 64-bit hashes at once (probability ~2**-128).

    Returns
    -------
    codes : ndarray of int32, shape (n_rows,)
        -1 for nulls.
    categories : Index of str, shape (n_distinct,)
        In order of first appearance.
    """
    import polars as pl

    series = pl.from_arrow(text.cast(pa.large_string()) if len(text) else pa.array([], pa.string()))
    first_hash = series.hash(seed=0).to_numpy()
    null = series.is_null().to_numpy()
    codes, _ = pd.factorize(first_hash)
    codes = codes.astype(np.int32)
    first_row = np.full(codes.max() + 1 if len(codes) else 0, -1, dtype=np.int64)
    first_row[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    second_hash = series.hash(seed=1).to_numpy()
    if not np.array_equal(second_hash[first_row][codes], second_hash):
        # Astronomically unlikely: fall back to Arrow's exact dictionary encoding.
        encoded = pc.dictionary_encode(pa.chunked_array([text]).combine_chunks())
        codes = np.asarray(encoded.indices.fill_null(-1), dtype=np.int32)
        return codes, pd.Index(pd.array(encoded.dictionary, dtype="str"))
    if null.any():
        # One group holds the nulls: drop it from the categories and code it -1.
        null_code = codes[np.flatnonzero(null)[0]]
        keep = np.arange(len(first_row)) != null_code
        shift = np.cumsum(keep) - 1
        codes = np.where(codes == null_code, -1, shift[codes]).astype(np.int32)
        first_row = first_row[keep]
    categories = (
        series.gather(first_row).to_arrow() if len(first_row) else pa.array([], pa.string())
    )
    return codes, pd.Index(pd.array(categories, dtype="str"))


def duplicated_text(values: pd.Series, *, keep: str | bool = "first") -> np.ndarray:
    """``values.duplicated(keep=keep)`` for a text column, several times faster.

    Rows are grouped by a 64-bit hash of their text first (polars' string hash, about
    20 ns per row); only rows whose hash repeats go through the exact comparison, so
    a hash collision can never merge two different ids.

    Returns
    -------
    ndarray of bool, shape (n_rows,)
    """
    hashes = pd.Series(text_hash(values))
    candidates = hashes.duplicated(keep=False).to_numpy()
    duplicated = np.zeros(len(values), dtype=bool)
    if candidates.any():
        duplicated[candidates] = values[candidates].duplicated(keep=keep).to_numpy()
    return duplicated


def text_hash(values: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """A stable 64-bit hash of each value's text (polars' string hash, seed 0).

    The same text hashes the same in every process and machine running the same
    polars version, whatever the column's dtype (str, object, category: categories are
    hashed once each).

    Returns
    -------
    ndarray of uint64, shape (len(values),)
    """
    import polars as pl

    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        categorical = pd.Categorical(values)
        hashes = text_hash(categorical.categories)
        return hashes[categorical.codes] if len(categorical) else hashes[:0]
    arrow = getattr(getattr(values, "array", None), "_pa_array", None)
    if arrow is None:  # object or numpy values: through Python strings, once
        arrow = pa.array(np.asarray(values, dtype=object).astype(str), from_pandas=True)
    text = pl.from_arrow(arrow.cast(pa.large_string()))
    return text.hash(seed=0).to_numpy().astype(np.uint64, copy=False)


def check_date_format(date_format: str | None) -> str | None:
    """Validate an explicit strftime layout for text timestamps (None: ISO 8601 only).

    Raises
    ------
    DataContractError
        When the layout has no ``%`` directive, an unknown one, or cannot read back a
        timestamp it wrote.
    """
    if date_format is None:
        return None
    sample = pd.Timestamp("2001-02-03 04:05:06")
    problem = None
    if "%" not in date_format:
        problem = "it has no strftime directive such as %d, %m or %Y"
    else:
        try:
            pd.to_datetime(pd.Series([sample.strftime(date_format)]), format=date_format)
        except (ValueError, TypeError) as exc:
            problem = str(exc)
    if problem is not None:
        raise DataContractError(
            f"date_format {date_format!r} is not a usable strftime layout: {problem}",
            field="date_format",
        )
    return date_format


def as_timestamp(table: SourceTable, column: str, *, allow_missing: bool) -> pd.Series:
    """Normalise a timestamp column to tz-naive UTC ``datetime64[ns]``.

    Datetime columns (Parquet) are taken as they are (tz-aware ones converted to UTC).
    Text must be ISO 8601 (``2025-08-13``, ``2025-08-13 14:30``,
    ``2025-08-13T14:30:00+02:00``...), or follow ``table.date_format`` when one is given
    (rows that do not follow it may still be ISO 8601). Nothing else is guessed:
    ``13/08/2025`` is an error, never a silently day-first or month-first date.
    """
    values = table.frame[column]
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(values):
        parsed = values
    elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        # Epoch numbers are ambiguous (s, ms, ns?); refuse rather than guess.
        raise fail(
            table,
            column,
            "expected ISO 8601 text or datetimes, got numbers",
            values.notna().to_numpy(),
            values,
        )
    else:
        parsed = _parse_timestamp_text(values, table.date_format)
    parsed = parsed.astype("datetime64[ns]")
    missing_after = parsed.isna().to_numpy()
    unparsable = missing_after & values.notna().to_numpy()
    if unparsable.any():
        if table.date_format is None:
            raise fail(
                table,
                column,
                "not an ISO 8601 timestamp (YYYY-MM-DD, optionally with a time and a UTC offset)",
                unparsable,
                values,
                hint="for another layout give date_format (CLI: --date-format, e.g. '%d/%m/%Y')",
            )
        problem = f"neither date_format {table.date_format!r} nor ISO 8601"
        raise fail(table, column, problem, unparsable, values)
    if not allow_missing and missing_after.any():
        raise fail(table, column, "missing timestamp", missing_after, values)
    return parsed


def _parse_timestamp_text(values: pd.Series, date_format: str | None) -> pd.Series:
    layout = "ISO8601" if date_format is None else date_format
    parsed = _utc_naive(values, layout)
    retry = np.isnat(parsed) & values.notna().to_numpy()
    if retry.any():
        # Only the (usually no) rows that failed pay for stripping spaces and, with an
        # explicit layout, for ISO 8601, which is year first with four digits and so
        # cannot be read ambiguously.
        text = values[retry].astype("str").str.strip()
        again = _utc_naive(text, layout)
        if date_format is not None:
            again = np.where(np.isnat(again), _utc_naive(text, "ISO8601"), again)
        parsed[retry] = again
    return pd.Series(parsed, index=values.index, name=values.name)


def _utc_naive(values: pd.Series, layout: str) -> np.ndarray:
    """``datetime64[ns]`` UTC wall times of text in ``layout`` (NaT where it does not fit)."""
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format=layout)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[ns]").copy()


def as_number(
    table: SourceTable, column: str, *, allow_missing: bool, fill: float | None = None
) -> pd.Series:
    """Normalise a numeric column to float64."""
    values = table.frame[column]
    if pd.api.types.is_bool_dtype(values):
        raise fail(
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
            raise fail(table, column, "non-numeric value", non_numeric, values)
    missing = numbers.isna().to_numpy()
    if not allow_missing and missing.any():
        raise fail(table, column, "missing (NaN) value", missing, values)
    infinite = np.isinf(numbers.to_numpy())
    if infinite.any():
        raise fail(table, column, "infinite value", infinite, values)
    if fill is not None:
        numbers = numbers.fillna(fill)
    return numbers


def as_label(frame: pd.DataFrame, column: str) -> pd.Series:
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


def as_label_text(frame: pd.DataFrame, column: str) -> pd.Series:
    """Lower-case a (small) name column as plain strings; missing → ``"unknown"``."""
    if column not in frame.columns:
        return pd.Series(MISSING_LABEL, index=frame.index, dtype="str", name=column)
    return as_label(frame, column).astype("str")


def as_optional_text(frame: pd.DataFrame, column: str, *, categorical: bool = False) -> pd.Series:
    """An optional text column (e.g. ``campaign_id``): str, or a ``category`` of str
    when ``categorical`` (few distinct values repeated over many rows); missing stays
    missing (NaN), integers become their decimal text."""
    if column not in frame.columns:
        dtype = pd.CategoricalDtype(pd.Index([], dtype="str")) if categorical else "str"
        return pd.Series(np.nan, index=frame.index, dtype=dtype, name=column)
    values = frame[column]
    if pd.api.types.is_float_dtype(values):
        integral = values.isna() | (values == np.floor(values))
        if integral.all():
            values = values.astype("Int64")
    if not categorical:
        return values.astype("str").where(values.notna())
    if isinstance(values.dtype, pd.CategoricalDtype):  # e.g. a Parquet dictionary column
        remap, categories = factorize_text(_id_text(pd.Series(values.cat.categories)))
        raw = values.cat.codes.to_numpy()
        codes = np.where(raw >= 0, np.append(remap, -1)[raw], -1).astype(np.int32)
    else:
        codes, categories = factorize_text(_id_text(values))
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=categories), index=values.index, name=column
    )


def as_flag(table: SourceTable, column: str, *, allow_missing: bool = True) -> pd.Series:
    """Parse a consent flag: bool, 0/1 or true/false/yes/no text.

    An absent column means consent was not tracked (True); a missing value in a
    present column means no recorded consent (False), or is an error when
    ``allow_missing`` is False.
    """
    frame = table.frame
    if column not in frame.columns:
        return pd.Series(True, index=frame.index, name=column)
    values = frame[column]
    if pd.api.types.is_bool_dtype(values) and not values.isna().any():
        return values.astype(bool)
    missing = values.isna().to_numpy()
    if not allow_missing and missing.any():
        raise fail(table, column, "missing value", missing, values)
    codes, uniques = pd.factorize(values)
    words = [str(u).strip().lower() for u in uniques]
    unknown = [w not in _TRUE_WORDS and w not in _FALSE_WORDS for w in words]
    bad = np.isin(codes, np.flatnonzero(unknown))
    if bad.any():
        raise fail(table, column, "expected a boolean (true/false, yes/no, 1/0)", bad, values)
    truth = np.array([w in _TRUE_WORDS for w in words] + [False], dtype=bool)
    return pd.Series(
        truth[np.where(codes < 0, len(uniques), codes)], index=frame.index, name=column
    )


def vocabulary_check(
    table: SourceTable, column: str, labels: pd.Series, allowed: tuple[str, ...]
) -> None:
    """Refuse normalised ``labels`` outside ``allowed``, listing every unknown value."""
    bad = ~labels.isin(allowed).to_numpy()
    if bad.any():
        unknown = sorted(set(labels[bad].astype(str)))
        raise fail(
            table,
            column,
            f"unknown value(s) {unknown} (expected one of {list(allowed)})",
            bad,
            table.frame[column] if column in table.frame.columns else labels,
        )


def finish(columns: dict[str, pd.Series]) -> pd.DataFrame:
    # Build from arrays, not Series, so a duplicated input index cannot misalign rows.
    return pd.DataFrame({name: col.array for name, col in columns.items()}, copy=False)


def drop_duplicates(
    frame: pd.DataFrame, duplicated: np.ndarray, label: str, what: str
) -> pd.DataFrame:
    """Drop rows flagged in the boolean mask ``duplicated`` (shape (n_rows,))."""
    n_dropped = int(duplicated.sum())
    if n_dropped:
        logger.warning("%s: dropped %d duplicated row(s) (same %s)", label, n_dropped, what)
        frame = frame.loc[~duplicated].reset_index(drop=True)
    frame.attrs["duplicates_dropped"] = n_dropped
    return frame
