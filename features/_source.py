"""The raw table being loaded, and the errors that name it.

Every loader wraps its raw frame in a :class:`SourceTable`; :func:`fail` builds a
:class:`~fidelite.errors.DataContractError` naming the table, the column and up to five
offending rows (data rows counted from 0; for CSV files the 1-based file line too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.errors import DataContractError

__all__ = ["SourceTable", "drop_duplicates", "fail", "finish", "require_columns"]

logger = logging.getLogger("fidelite.features.data")

_MAX_SAMPLES = 5


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
