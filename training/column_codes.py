"""Column arrays to model-matrix parts: the array path of ``FeatureEncoder.transform_columns``.

The HTTP service scores a few customers per request from column arrays; these helpers
build the numeric block and the category codes of the model matrix without a frame, with
the same values as the frame path (``FeatureEncoder.transform_array``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["array_codes", "numeric_block", "object_arrays_to_float", "series_codes"]


def numeric_block(columns: Mapping[str, np.ndarray], names: list[str], n: int) -> np.ndarray:
    """The numeric features ``names`` of column arrays as float64, shape (n, len(names)).

    Absent columns are NaN; numeric and boolean arrays are cast, object arrays (numbers,
    text, None) parsed as ``encoding._objects_to_float`` does.
    """
    out = np.full((n, len(names)), np.nan)
    slow: list[tuple[int, np.ndarray]] = []
    floats: list[np.ndarray] = []
    float_targets: list[int] = []
    for target, name in enumerate(names):
        values = columns.get(name)
        if values is None:
            continue
        values = np.asarray(values)
        if values.dtype == np.float64 and values.shape == (n,):
            floats.append(values)  # the service's numbers: copied as one block below
            float_targets.append(target)
        elif values.dtype.kind in "biuf":
            out[:, target] = values
        else:
            slow.append((target, values))
    if floats:
        # One fancy assignment instead of one per column (~90 of them cost more than the
        # rest of the matrix for one customer); the same float64 values.
        out[:, float_targets] = np.concatenate(floats).reshape(len(floats), n).T
    if slow:
        targets = [target for target, _ in slow]
        out[:, targets] = object_arrays_to_float([values for _, values in slow], n)
    return out


def series_codes(raw: pd.Series, levels: pd.Index) -> np.ndarray:
    """Position of each value of ``raw`` in ``levels``, shape (n,); -1 if missing/unseen."""
    if raw.dtype == object or not pd.api.types.is_string_dtype(raw.dtype):
        # Anything but a text column (e.g. ints from JSON) is compared as text,
        # like the levels; missing values stay missing.
        raw = raw.where(raw.isna(), raw.astype(str))
    return levels.get_indexer(raw.to_numpy(dtype=object, na_value=None))


#: Up to this many rows, category codes are dictionary look-ups (a pandas hash lookup
#: costs more than the whole model for one customer); above it, the frame path's.
_DICT_CODES_MAX_ROWS = 64
#: Element types of a column whose values are their own category keys.
_TEXT_TYPES = frozenset({str, type(None)})


def array_codes(
    values: np.ndarray | None, n: int, levels: pd.Index, lookup: dict[str, int]
) -> np.ndarray:
    """``encoding._category_codes`` of one column array, shape (n,); -1 if missing/unseen."""
    if values is None:
        return np.full(n, -1, dtype=np.int64)
    values = np.asarray(values)
    if n > _DICT_CODES_MAX_ROWS:
        # Only text and None (JSON's usual): look-ups cost a tenth of pandas' conversion.
        items = values.tolist() if values.dtype == object else [0]
        if set(map(type, items)) <= _TEXT_TYPES:
            return np.fromiter(map(lookup.get, items, itertools.repeat(-1)), np.int64, count=n)
        return series_codes(pd.Series(values, copy=False), levels)
    items = values.tolist()
    if set(map(type, items)) <= _TEXT_TYPES:  # pd.isna would find exactly the None values
        return np.array([-1 if v is None else lookup.get(v, -1) for v in items], dtype=np.int64)
    missing = pd.isna(values).tolist()
    # compared as text, like the levels (str(5.0) == "5.0", as pandas' astype(str))
    keys = [v if type(v) is str else str(v) for v in values.tolist()]
    return np.array(
        [-1 if gone else lookup.get(key, -1) for key, gone in zip(keys, missing, strict=True)],
        dtype=np.int64,
    ).reshape(n)


def object_arrays_to_float(arrays: list[np.ndarray], n: int) -> np.ndarray:
    """``encoding._objects_to_float`` of column arrays, shape (n, len(arrays))."""
    values = np.empty((n, len(arrays)), dtype=object)
    for j, array in enumerate(arrays):
        values[:, j] = array
    values[pd.isna(values)] = np.nan
    try:
        return values.astype("float64")
    except (TypeError, ValueError):
        return np.column_stack(
            [
                pd.to_numeric(pd.Series(array, copy=False), errors="coerce").to_numpy(
                    dtype="float64", na_value=np.nan
                )
                for array in arrays
            ]
        ).reshape(n, len(arrays))
