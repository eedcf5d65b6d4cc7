"""Score columns as JSON-ready values: what each contract dtype becomes in a response.

Conversions follow each column's contract dtype: dates as ISO strings, missing values
(NaN/NaT/None) as null, ``list[str]`` columns (stored as JSON text in files) as lists,
blank strings as null. :mod:`fidelite.serving.responses` encodes the results;
:mod:`fidelite.serving.column_tables` takes shortcuts that must give the same values.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fidelite.features.contract import SCORE_COLUMNS

DTYPES = {c.name: c.dtype for c in SCORE_COLUMNS}
NAMES = tuple(DTYPES)
#: Columns of at most this many values are converted value by value: numpy's set-up
#: per column costs more than that for the one-customer responses of a CRM integration.
SMALL = 16
_SIMPLE = frozenset({str, bool, int, float, type(None)})


def plain_values(values: Any) -> list[Any]:
    """Python scalars with every kind of missing value as None."""
    array = np.asarray(values)
    if array.dtype.kind == "f":
        out = array.tolist()
        if len(out) <= SMALL:
            return [v if math.isfinite(v) else None for v in out]
        for position in np.flatnonzero(~np.isfinite(array)).tolist():
            out[position] = None
        return out
    if array.dtype.kind in "biu":
        return array.tolist()
    out = list(values)
    if len(out) <= SMALL and all(type(v) in _SIMPLE for v in out):
        # what pd.isna finds among these types: None and NaN (not infinities)
        return [None if v is None or (type(v) is float and v != v) else v for v in out]
    missing = pd.isna(np.asarray(out, dtype=object))
    for position in np.flatnonzero(missing).tolist():
        out[position] = None
    return out


def day_values(values: Any) -> list[Any]:
    array = np.asarray(values)
    if array.dtype.kind != "M":
        array = pd.to_datetime(pd.Series(values), errors="coerce").to_numpy()
    text = np.datetime_as_string(array.astype("datetime64[D]"), unit="D").tolist()
    return [None if value == "NaT" else value for value in text]


def text_values(values: Any) -> list[Any]:
    out = plain_values(values)
    if len(out) > SMALL and set(map(type, out)) <= {str, type(None)}:  # without a loop
        blank = {value for value in set(out) if value is not None and not value.strip()}
        return [None if value in blank else value for value in out] if blank else out
    for position, value in enumerate(out):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            out[position] = None if isinstance(value, str) else str(value)
    return out


def list_values(values: Any) -> list[list[Any]]:
    texts = list(values)
    if texts and all(isinstance(v, str) and v.startswith("[") for v in texts):
        try:
            parsed = json.loads("[" + ",".join(texts) + "]")
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and len(parsed) == len(texts):
            return parsed
    return [_as_list(value) for value in texts]


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        if not value:
            return []
        try:
            parsed = json.loads(value)
        except ValueError:
            return [value]
        return parsed if isinstance(parsed, list) else [parsed]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [str(item) for item in value]


def passthrough_values(values: Any) -> list[Any]:
    """Columns of dtypes added to the contract later: JSON text is decoded."""
    out = plain_values(values)
    for position, value in enumerate(out):
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                out[position] = json.loads(value)
    return out


CONVERT = {
    "date": day_values,
    "list[str]": list_values,
    "str": text_values,
    "int": plain_values,
    "float": plain_values,
    "bool": plain_values,
}


def score_columns(columns: Mapping[str, Any], n: int) -> dict[str, list[Any]]:
    """JSON-ready columns in contract order; a column the source lacks is all null.

    Parameters
    ----------
    columns : mapping of str to array-like
        Scores frame columns (a DataFrame or a dict of arrays/lists), each of length n.
    n : int
        Number of customers.
    """
    out: dict[str, list[Any]] = {}
    for name, dtype in DTYPES.items():
        if name not in columns:
            out[name] = [[] if dtype == "list[str]" else None] * n
            continue
        values = columns[name]
        if isinstance(values, pd.Series):
            values = values.to_numpy()
        if name == "customer_id":
            out[name] = [str(v) for v in values]
        else:
            out[name] = CONVERT.get(dtype, passthrough_values)(values)
    return out
