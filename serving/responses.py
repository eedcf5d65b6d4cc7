"""Scores as JSON: the columns of the contract's scores frame turned into response bodies.

Bodies are encoded once by pydantic-core from plain columns (no pydantic model per
customer), which matters for 10,000-customer batches; a test checks that they validate
against the response models. Conversions follow each column's contract dtype: dates as
ISO strings, missing values (NaN/NaT/None) as null, ``list[str]`` columns (stored as JSON
text in files) as lists, blank strings as null.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pydantic_core

from fidelite.features.contract import SCORE_COLUMNS
from fidelite.serving import json_columns
from fidelite.serving.schemas import ModelRef

_DTYPES = {c.name: c.dtype for c in SCORE_COLUMNS}
NAMES = tuple(_DTYPES)
#: Columns of at most this many values are converted value by value: numpy's set-up
#: per column costs more than that for the one-customer responses of a CRM integration.
SMALL = 16
_SIMPLE = frozenset({str, bool, int, float, type(None)})


def _plain(values: Any) -> list[Any]:
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


def _days(values: Any) -> list[Any]:
    array = np.asarray(values)
    if array.dtype.kind != "M":
        array = pd.to_datetime(pd.Series(values), errors="coerce").to_numpy()
    text = np.datetime_as_string(array.astype("datetime64[D]"), unit="D").tolist()
    return [None if value == "NaT" else value for value in text]


def _text(values: Any) -> list[Any]:
    out = _plain(values)
    if len(out) > SMALL and set(map(type, out)) <= {str, type(None)}:  # without a loop
        blank = {value for value in set(out) if value is not None and not value.strip()}
        return [None if value in blank else value for value in out] if blank else out
    for position, value in enumerate(out):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            out[position] = None if isinstance(value, str) else str(value)
    return out


def _lists(values: Any) -> list[list[Any]]:
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


def _passthrough(values: Any) -> list[Any]:
    """Columns of dtypes added to the contract later: JSON text is decoded."""
    out = _plain(values)
    for position, value in enumerate(out):
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                out[position] = json.loads(value)
    return out


_CONVERT = {
    "date": _days,
    "list[str]": _lists,
    "str": _text,
    "int": _plain,
    "float": _plain,
    "bool": _plain,
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
    for name, dtype in _DTYPES.items():
        if name not in columns:
            out[name] = [[] if dtype == "list[str]" else None] * n
            continue
        values = columns[name]
        if isinstance(values, pd.Series):
            values = values.to_numpy()
        if name == "customer_id":
            out[name] = [str(v) for v in values]
        else:
            out[name] = _CONVERT.get(dtype, _passthrough)(values)
    return out


def score_dicts(columns: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """One dict per customer (see :func:`score_columns`)."""
    converted = score_columns(columns, n)
    names = list(converted)
    return [dict(zip(names, row, strict=True)) for row in zip(*converted.values(), strict=True)]


def frame_columns(scores: pd.DataFrame) -> dict[str, Any]:
    """A scores DataFrame as columns (``customer_id`` from the index if needed)."""
    frame = scores.reset_index() if "customer_id" not in scores.columns else scores
    return {name: frame[name] for name in frame.columns}


def scores_array(columns: Mapping[str, Any], n: int) -> bytes:
    """``pydantic_core.to_json(score_dicts(columns, n))``, encoded column by column
    (:mod:`fidelite.serving.json_columns`): the same bytes without a dict per customer."""
    cells: list[list[str]] = []
    for position, (name, dtype) in enumerate(_DTYPES.items()):
        prefix = json_columns.key_prefix(name, position)
        if name not in columns:
            cells.append([prefix + json_columns.MISSING.get(dtype, "null")] * n)
            continue
        values = columns[name]
        if isinstance(values, pd.Series):
            values = values.to_numpy()
        if name == "customer_id":
            cells.append(json_columns.split_array([str(v) for v in values], prefix))
            continue
        if dtype == "list[str]":
            cells.append(_list_cells(values, prefix))
            continue
        converted = _CONVERT.get(dtype, _passthrough)(values)
        encode = json_columns.ENCODERS.get(dtype, json_columns.each_value)
        cells.append(encode(converted, prefix))
    return json_columns.rows_array(cells, n)


def _list_cells(values: Any, prefix: str) -> list[str]:
    """Cells of a ``list[str]`` column, each distinct JSON text parsed once when every
    text is one JSON list (then :func:`_lists`' parse of all texts gives these lists)."""
    texts = list(values)
    if texts and all(isinstance(v, str) and v.startswith("[") for v in texts):
        try:
            parsed = {text: json.loads(text) for text in dict.fromkeys(texts)}
        except ValueError:
            parsed = {}
        if parsed and all(type(value) is list for value in parsed.values()):
            cells = {text: prefix + json_columns.text(value) for text, value in parsed.items()}
            return list(map(cells.__getitem__, texts))
    return json_columns.each_distinct(_lists(values), prefix)


def predict_body(model: ModelRef, columns: Mapping[str, Any], n: int) -> bytes:
    """The JSON body of a ``PredictResponse`` (scores encoded column by column above
    :data:`SMALL` customers)."""
    status = columns["status"]
    if n <= SMALL:
        n_insufficient = sum(1 for value in status if value != "ok")
    else:
        n_insufficient = int(np.count_nonzero(np.asarray(status, dtype=object) != "ok"))
    head = {
        "model": model.model_dump(),
        "n_customers": n,
        "n_insufficient_history": n_insufficient,
    }
    if n <= SMALL:
        return pydantic_core.to_json({**head, "scores": score_dicts(columns, n)})
    return pydantic_core.to_json(head)[:-1] + b',"scores":' + scores_array(columns, n) + b"}"


def encode_rows(records: Sequence[dict[str, Any]]) -> list[bytes]:
    """Each record encoded on its own (for pre-encoded snapshot lookups)."""
    return [pydantic_core.to_json(record) for record in records]
