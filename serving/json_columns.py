"""Large score responses encoded column by column, byte-identical to encoding one dict
per customer.

:func:`fidelite.serving.responses.predict_body` used to build one dict per customer and
hand the list to ``pydantic_core.to_json``; for 10,000 customers most of the time went
into the dicts and the encoder walking them. Here each column becomes a table of values
encoded by that same encoder, one ``pydantic_core.to_json`` call per column, plus one
index into it per row (:mod:`fidelite.serving.column_tables`: repeated values such as
statuses, segments, reason lists and dates are encoded once), and the rows are put
together from byte spans rather than Python strings:

- the varying columns' encoded arrays are joined into one buffer and a compiled scan
  (:func:`fidelite.serving.json_kernels.split_pieces`) finds each value's span; it
  follows strings and nesting, so values whose text holds a comma need no special case;
- a column with one value for every row (``horizon_days``, ``status``, the uplift
  columns of a model without campaigns) goes into the fixed text of the rows, beside
  the keys;
- one compiled pass (:func:`fidelite.serving.json_kernels.write_rows`) writes the rows,
  with whatever comes before and after them, straight into the ``bytes`` returned.

Keys come in the same order with the same separators, and ``pydantic_core`` writes a
value inside a list as it writes it inside a dict, so the bytes are those of
``pydantic_core.to_json([dict(...), ...])``; tests compare both on mixed batches
(tests/serving/test_json_encoding.py).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np
import pydantic_core

from fidelite.serving import json_kernels
from fidelite.serving.column_tables import Table

_COMMA = ord(",")
_NEW_BYTES = ctypes.pythonapi.PyBytes_FromStringAndSize
_NEW_BYTES.restype = ctypes.py_object
_NEW_BYTES.argtypes = (ctypes.c_char_p, ctypes.c_ssize_t)
_BYTES_DATA = ctypes.pythonapi.PyBytes_AsString
_BYTES_DATA.restype = ctypes.c_void_p
_BYTES_DATA.argtypes = (ctypes.py_object,)


def rows_json(tables: Sequence[tuple[str, Table]], n: int, head: bytes, tail: bytes) -> bytes:
    """``head``, the JSON array of one object per row, then ``tail``.

    Parameters
    ----------
    tables : sequence of (key, Table)
        The rows' keys in order and each column's table (``n`` rows each).
    n : int
        Number of rows.
    head, tail : bytes
        Written before and after the array.

    Raises
    ------
    ValueError
        A table does not have ``n`` rows.
    """
    if n == 0:
        return head + b"[]" + tail
    fixed, varying = _fixed_texts(tables, n)
    pieces = [*(table.json for table in varying), *fixed, head + b"[", tail]
    text = np.frombuffer(b"".join([*pieces, bytes(json_kernels.BLOCK)]), np.uint8)
    starts, ends = _spans(text, pieces, [table.size for table in varying])
    cells = np.empty((len(varying), n), np.int64)
    first = 0
    for column, table in enumerate(varying):
        cells[column] = np.arange(n) if table.codes is None else table.codes
        cells[column] += first
        first += table.size
    fixed_spans = np.arange(first, first + len(fixed) + 2)
    body, out = _new_bytes(json_kernels.rows_size(starts, ends, cells, fixed_spans))
    json_kernels.write_rows(text, starts, ends, cells, fixed_spans, out)
    return body


def _fixed_texts(tables: Sequence[tuple[str, Table]], n: int) -> tuple[list[bytes], list[Table]]:
    """The texts between the varying columns' values in a row (keys, separators, the
    values of one-value columns, the closing ``},``) and the varying columns' tables."""
    fixed: list[bytes] = []
    varying: list[Table] = []
    current = b"{"
    for position, (key, table) in enumerate(tables):
        _check(key, table, n)
        current += (b"," if position else b"") + pydantic_core.to_json(key) + b":"
        if table.size == 1:  # every row's value
            current += table.json[1:-1]
            continue
        fixed.append(current)
        varying.append(table)
        current = b""
    fixed.append(current + b"},")
    return fixed, varying


def _check(key: str, table: Table, n: int) -> None:
    if table.codes is None and table.size == 1:
        return  # one value stands for every row
    rows = table.size if table.codes is None else len(table.codes)
    if rows != n:
        raise ValueError(f"column {key!r} has {rows} values, expected {n}")
    # the compiled loops trust the indexes (no bounds checks)
    if table.codes is not None and not 0 <= table.codes.min() <= table.codes.max() < table.size:
        raise RuntimeError(f"column {key!r}: index out of its {table.size} values")


def _spans(text: np.ndarray, pieces: list[bytes], sizes: list[int]) -> tuple[np.ndarray, ...]:
    """Start and end in ``text`` (``pieces`` one after another) of each value of the
    first ``len(sizes)`` pieces (JSON arrays of ``sizes`` values), then of each further
    piece as a whole."""
    bounds = np.cumsum([0, *map(len, pieces)])
    # no string and no nested value: commas are the only separators
    plain = [b'"' not in p and p.find(b"[", 1) < 0 and b"{" not in p for p in pieces[: len(sizes)]]
    starts = np.empty(sum(sizes) + len(pieces) - len(sizes), np.int64)
    ends = np.empty_like(starts)
    wrong = json_kernels.split_pieces(
        text, bounds, np.array(sizes, np.int64), np.array(plain, np.bool_), starts, ends
    )
    if wrong >= 0:  # pydantic_core wrote something unexpected
        raise RuntimeError(f"encoded column {wrong} does not hold {sizes[wrong]} values")
    return starts, ends


def _new_bytes(size: int) -> tuple[bytes, np.ndarray]:
    """A new ``bytes`` object of ``size`` bytes, not yet written, and a writable view of
    its contents: what C code does with ``PyBytes_FromStringAndSize(NULL, size)``, which
    saves copying the body (~8 MB for 10,000 customers) into a ``bytes`` at the end."""
    if size < 2:  # CPython shares its empty bytes object: never write into a shared one
        raise ValueError(f"a body of {size} bytes is not built in place")
    body = _NEW_BYTES(None, size)
    contents = (ctypes.c_uint8 * size).from_address(_BYTES_DATA(body))
    return body, np.ctypeslib.as_array(contents)
