"""Scores as JSON: the columns of the contract's scores frame turned into response bodies.

Bodies are encoded once by pydantic-core from plain columns (no pydantic model per
customer), which matters for 10,000-customer batches; a test checks that they validate
against the response models. The values follow each column's contract dtype
(:mod:`fidelite.serving.score_values`); above :data:`SMALL` customers the body is
encoded column by column (:mod:`fidelite.serving.json_columns`), with the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pydantic_core

from fidelite.serving import json_columns
from fidelite.serving.column_tables import column_table, missing_table
from fidelite.serving.schemas import ModelRef
from fidelite.serving.score_values import DTYPES, NAMES, SMALL, score_columns

__all__ = [
    "NAMES",
    "SMALL",
    "encode_rows",
    "frame_columns",
    "predict_body",
    "score_columns",
    "score_dicts",
    "scores_array",
]


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
    return _encoded(columns, n, b"", b"")


def _encoded(columns: Mapping[str, Any], n: int, head: bytes, tail: bytes) -> bytes:
    """``head``, the scores array, ``tail``.

    Raises
    ------
    ValueError
        A column does not have ``n`` values.
    """
    tables = []
    for name, dtype in DTYPES.items():
        if name not in columns:
            tables.append((name, missing_table(dtype)))
            continue
        values = columns[name]
        if isinstance(values, pd.Series):
            values = values.to_numpy()
        if len(values) != n:
            raise ValueError(f"column {name!r} has {len(values)} values, expected {n}")
        tables.append((name, column_table(name, dtype, values)))
    return json_columns.rows_json(tables, n, head, tail)


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
    return _encoded(columns, n, pydantic_core.to_json(head)[:-1] + b',"scores":', b"}")


def encode_rows(records: Sequence[dict[str, Any]]) -> list[bytes]:
    """Each record encoded on its own (for pre-encoded snapshot lookups)."""
    return [pydantic_core.to_json(record) for record in records]


def warm_up() -> None:
    """Load (or compile) the large responses' compiled loops now, so the first large
    ``/predict`` answer does not pay for it (~0.4 s from numba's cache, seconds without)."""
    n = 2 * SMALL
    columns = {
        "customer_id": [f"c{i}" for i in range(n)],
        "status": ["ok"] * n,
        "churn_probability": np.linspace(0.0, 1.0, n),
        "reasons": ['["a", "b"]'] * n,
    }
    scores_array(columns, n)
