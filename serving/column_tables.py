"""Each score column as a *table* of JSON-encoded values plus one index into it per row.

A table holds the values of :mod:`fidelite.serving.score_values` (the response's values),
but a column that repeats values lists each distinct value once: statuses, segments,
channels, reason lists and dates repeat a lot, and converting (or parsing) each distinct
value once is what makes large responses cheap. The shortcuts below are taken only for
plain inputs (numpy numbers and dates, columns of ``str``/``None``); anything else goes
through the converters of :mod:`fidelite.serving.score_values` value by value, so the
values are always those of :func:`fidelite.serving.score_values.score_columns`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import numpy as np
import pandas as pd
import pydantic_core

from fidelite.serving.score_values import (
    CONVERT,
    day_values,
    list_values,
    passthrough_values,
    plain_values,
    text_values,
)

_NONE = type(None)
_REASONS = msgspec.json.Decoder(list[str])


class Table(NamedTuple):
    """A column's values as one JSON array (``pydantic_core.to_json(values)``) of
    ``size`` values: row ``i`` is value ``codes[i]``.

    ``codes`` None: row ``i`` is value ``i``; one value: every row is that value.
    """

    json: bytes
    size: int
    codes: np.ndarray | None


def _table(values: list[Any], codes: np.ndarray | None = None) -> Table:
    # encoded at once: a list of 10,000 values is not kept for the collector to walk
    return Table(pydantic_core.to_json(values), len(values), codes)


def column_table(name: str, dtype: str, values: Any) -> Table:
    """The table of a column of the scores frame (``values``: numpy array or list)."""
    if name == "customer_id":
        return _ids(values)
    if dtype in ("float", "int", "bool"):
        return _numbers(values)
    shortcut = {"date": _dates, "str": _texts, "list[str]": _lists}.get(dtype)
    if shortcut is not None:
        return shortcut(values)
    return _table(CONVERT.get(dtype, passthrough_values)(values))


def missing_table(dtype: str) -> Table:
    """A column the scores lack: an empty list (``list[str]``) or null for every row."""
    return _table([[]] if dtype == "list[str]" else [None])


def _ids(values: Any) -> Table:
    if set(map(type, values)) <= {str}:
        return _table(list(values))
    return _table([str(value) for value in values])


def _numbers(values: Any) -> Table:
    """Numbers and booleans; a numpy column of one value (``horizon_days``, all-NaN
    uplift columns) becomes a single value."""
    array = np.asarray(values)
    if len(array) == 0 or array.dtype.kind not in "biuf":
        return _table(plain_values(values))
    if array.dtype.kind == "f":
        if array.dtype.itemsize == 8 and _same_bits(array.view(np.int64)):  # -0.0 != 0.0
            return _table(plain_values(array[:1]))
        if not np.isfinite(array).any():
            return _table([None])
    elif _same_bits(array):
        return _table(plain_values(array[:1]))
    elif array.dtype.kind == "b":
        return _table([False, True], array.astype(np.int64))
    return _table(plain_values(array))


def _same_bits(array: np.ndarray) -> bool:
    return bool((array == array[0]).all())


def _dates(values: Any) -> Table:
    """Dates of a ``datetime64`` column, each distinct day converted once."""
    array = np.asarray(values)
    if len(array) == 0 or array.dtype.kind != "M":
        return _table(day_values(values))
    days = array.astype("datetime64[D]")
    numbers = days.view(np.int64)
    if _same_bits(numbers):
        return _table(day_values(days[:1]))
    distinct, codes = np.unique(numbers, return_inverse=True)
    return _table(day_values(distinct.view("datetime64[D]")), codes.reshape(-1))


def _texts(values: Any) -> Table:
    """Strings, blank ones as null, each distinct string once (a column of ``str`` and
    missing values; anything else is converted value by value)."""
    if isinstance(values, list):
        values = np.asarray(values, dtype=object)
    if values.dtype != object:
        return _table(text_values(values))
    # pandas' missing values (None, NaN, NaT, NA) are those of its isna (the converter)
    codes, distinct = pd.factorize(values)
    if not all(type(value) is str for value in distinct):
        return _table(text_values(values))
    table = [value if value.strip() else None for value in distinct]
    if codes.size and codes.min() < 0:
        codes[codes < 0] = len(table)
        table.append(None)
    return _table(table, codes if len(table) > 1 else None)


def _lists(values: Any) -> Table:
    """``list[str]`` cells stored as JSON text (``reasons``), each distinct text parsed
    once. Only texts that each parse as a list of strings are taken this way: then the
    converter's parse of all texts joined gives the same lists."""
    try:
        distinct, codes = _distinct(values)
    except TypeError:  # unhashable: lists, not texts
        return _table(list_values(values))
    # (texts not starting with "[" would fail to parse as lists: not tried)
    if all(type(text) is str and text.startswith("[") for text in distinct):
        try:
            return _table([_REASONS.decode(text) for text in distinct], codes)
        except msgspec.DecodeError:
            pass
    return _table(list_values(values))


def _distinct(values: Sequence[Any]) -> tuple[list[Any], np.ndarray | None]:
    """Distinct values in order of appearance and each value's position among them
    (None when all values are one). Values are told apart by ``==``: a value equal to
    a ``str`` (a ``str`` subclass) counts as that string."""
    first = dict.fromkeys(values)
    if len(first) <= 1:
        return list(first), None
    positions = dict(zip(first, range(len(first)), strict=True))
    codes = np.fromiter(map(positions.__getitem__, values), np.int64, len(values))
    return list(first), codes
