"""Timestamp columns: ISO 8601 text (or an explicit ``date_format``) to UTC datetimes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.errors import DataContractError
from fidelite.features._source import SourceTable, fail

__all__ = ["as_timestamp", "check_date_format"]


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
