"""Large ``/predict`` bodies of uniform feature rows, decoded straight into typed columns.

The general path (pydantic's JSON validation into one dict per row, then
:func:`fidelite.serving.rows.feature_batch`) creates a dict per customer and looks at
every value in Python several times: for 10,000 rows of ~90 columns (25 MB) that was
about 300 ms. The common case of a CRM export -- every row carries the same columns --
is handled here in two tiers, both keyed on the first row's columns:

1. the compiled scanner (:mod:`fidelite.serving.bulk_scan`): bytes straight into a
   float64 matrix and text/flag columns, no Python object per value, two threads for
   bodies of a megabyte or more (about 30 ms for those 25 MB). It takes plain bodies
   only: no escaped string, keys in the first row's order in every row;
2. one typed decode (msgspec) for whatever the scanner leaves: a row type built from the
   first row's columns (numbers as ``float | None``, labels ``str | None``, flags ``bool
   | None``, ``customer_id`` a string; every column required, no other column allowed),
   so the decoder itself refuses booleans as numbers, numeric strings, NaN literals,
   missing or extra columns.

Either way the columns then go through the same checks as the general path
(:func:`fidelite.serving.rows.bulk_checks`).

This module only ever *accepts*: whenever anything is unusual (a row with other columns,
a value of another type, a column outside the contract, too few or too many rows, a
long text, a value out of range, anything the envelope's schema would refuse), it
returns None and the caller runs the general path, which gives the answer and the
error message the service always gave. Tests pin all paths to the same batch.
"""

from __future__ import annotations

import functools
import json
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import numpy as np

from fidelite.serving.bulk_scan import RowShape, row_shape, scan
from fidelite.serving.errors import RequestError
from fidelite.serving.rows import (
    ID_COLUMN,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    ROWWISE_MAX_ROWS,
    ColumnRule,
    FeatureBatch,
    bulk_checks,
    column_rule,
)

#: Bytes of the body read to find the first row's columns (a hint: the decode decides).
PROBE_BYTES = 1 << 16
_BLANK = re.compile(r"[ \t\n\r]*")
_TEXT = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_LENGTH)]
_ID = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
_TYPES: dict[str, Any] = {"number": float | None, "text": _TEXT | None, "flag": bool | None}


@dataclass(frozen=True)
class BulkRows:
    """A decoded body: its envelope's raw values and the checked batch."""

    as_of: str
    include_reasons: bool
    batch: FeatureBatch


def first_row_columns(body: bytes) -> tuple[str, ...] | None:
    """The keys of the first object of the body's top-level ``features`` list, read from
    the body's start; None if they cannot be found there."""
    head = body[:PROBE_BYTES].decode("utf-8", "ignore")
    decoder = json.JSONDecoder()
    try:
        position = _BLANK.match(head).end()  # type: ignore[union-attr]
        if head[position] != "{":
            return None
        position += 1
        while True:
            key, position = decoder.raw_decode(head, _BLANK.match(head, position).end())  # type: ignore[union-attr]
            position = _BLANK.match(head, position).end()  # type: ignore[union-attr]
            if head[position] != ":":
                return None
            position = _BLANK.match(head, position + 1).end()  # type: ignore[union-attr]
            if key == "features":
                if head[position] != "[":
                    return None
                row, _ = decoder.raw_decode(head, _BLANK.match(head, position + 1).end())  # type: ignore[union-attr]
                return tuple(row) if isinstance(row, dict) and row else None
            _, position = decoder.raw_decode(head, position)
            position = _BLANK.match(head, position).end()  # type: ignore[union-attr]
            if head[position] != ",":
                return None
            position += 1
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True)
class _Layout:
    """How rows with a given list of columns are decoded and split into columns."""

    decoder: msgspec.json.Decoder
    numeric: tuple[str, ...]
    others: tuple[str, ...]
    #: Picks the numeric columns (in ``numeric``'s order) from a row's field values.
    pick_numeric: operator.itemgetter
    #: The compiled scanner's description of a row (:class:`bulk_scan.RowShape`).
    shape: RowShape


@functools.lru_cache(maxsize=16)
def _layout(columns: tuple[str, ...]) -> _Layout | None:
    """The decoder for rows with exactly these columns (key order kept: msgspec decodes
    fastest when the fields come in the body's order); None if one is not a feature."""
    if ID_COLUMN not in columns:
        return None
    rules: dict[str, ColumnRule] = {}
    for name in columns:
        if name == ID_COLUMN:
            continue
        rule = column_rule(name) if name.isidentifier() else None
        if rule is None:
            return None
        rules[name] = rule
    fields = [(name, _ID if name == ID_COLUMN else _TYPES[rules[name].kind]) for name in columns]
    try:
        row = msgspec.defstruct("FeatureRow", fields, forbid_unknown_fields=True, gc=False)
    except (TypeError, ValueError):
        return None
    envelope = msgspec.defstruct(
        "FeatureRows",
        [
            ("as_of", str),
            ("features", list[row]),  # type: ignore[valid-type]
            ("include_reasons", bool, True),
            ("history", None, None),
        ],
        forbid_unknown_fields=True,
    )
    ordered = sorted(rules, key=str)
    numeric = tuple(n for n in ordered if rules[n].kind == "number")
    return _Layout(
        decoder=msgspec.json.Decoder(envelope),
        numeric=numeric,
        others=tuple(n for n in ordered if rules[n].kind != "number"),
        pick_numeric=operator.itemgetter(*(columns.index(n) for n in numeric)),
        shape=row_shape(columns, {name: rule.kind for name, rule in rules.items()}),
    )


def bulk_rows(body: bytes, *, required: Sequence[str], max_rows: int) -> BulkRows | None:
    """The body's envelope and checked feature batch, or None for the general path.

    The batch equals what :func:`fidelite.serving.rows.feature_batch` returns for the
    same rows (same ids, columns, column order and values); the envelope's ``as_of``
    is left to the caller to validate with the request schema.
    """
    columns = first_row_columns(body)
    layout = _layout(columns) if columns is not None else None
    if layout is None or len(layout.numeric) < 2:
        return None
    scanned = scan(body, layout.shape, max_rows=max_rows)
    if scanned is None:
        return _decoded(body, layout, required=required, max_rows=max_rows)
    others = {name: scanned.others[name] for name in layout.others}
    checked = _checked(scanned.ids, layout.numeric, scanned.numbers, others, required, max_rows)
    return None if checked is None else BulkRows(scanned.as_of, scanned.include_reasons, checked)


def _checked(
    ids: list[str],
    numeric: Sequence[str],
    matrix: np.ndarray,
    others: dict[str, np.ndarray],
    required: Sequence[str],
    max_rows: int,
) -> FeatureBatch | None:
    """The decoded columns through the general path's checks; None for a row count the
    general path handles (row-wise or refused), repeated ids or anything it refuses."""
    if not ROWWISE_MAX_ROWS < len(ids) <= max_rows or len(set(ids)) != len(ids):
        return None
    try:
        return bulk_checks(ids, numeric, matrix, others, required)
    except RequestError:
        return None


def _decoded(
    body: bytes, layout: _Layout, *, required: Sequence[str], max_rows: int
) -> BulkRows | None:
    """:func:`bulk_rows` by msgspec's typed decode (bodies the scanner does not take:
    escaped strings, other key orders...)."""
    try:
        envelope = layout.decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    rows = envelope.features
    if not ROWWISE_MAX_ROWS < len(rows) <= max_rows:
        return None
    ids = list(map(operator.attrgetter(ID_COLUMN), rows))  # 1..256 characters each
    others: dict[str, np.ndarray] = {}
    for name in layout.others:  # texts of at most 256 characters, flags
        others[name] = np.empty(len(rows), dtype=object)
        others[name][:] = list(map(operator.attrgetter(name), rows))
    table = list(map(layout.pick_numeric, map(msgspec.structs.astuple, rows)))
    matrix = np.array(table, dtype=np.float64).T.copy()
    batch = _checked(ids, layout.numeric, matrix, others, required, max_rows)
    return None if batch is None else BulkRows(envelope.as_of, envelope.include_reasons, batch)
