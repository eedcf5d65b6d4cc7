"""Large score responses encoded column by column, byte-identical to encoding one dict
per customer.

:func:`fidelite.serving.responses.predict_body` used to build one dict per customer and
hand the list to ``pydantic_core.to_json``; for 10,000 customers most of the time went
into the dicts and the encoder walking them. Here each column is converted exactly as
before (the same converters of :mod:`fidelite.serving.responses`), encoded with the same
encoder (``pydantic_core.to_json``) into one *cell* per customer (``,"key":value``), and
the rows are put together with one ``str.join``:

- a column of numbers, booleans, dates or nulls is encoded as one JSON array and cut at
  its commas; the cut is used only if it gives exactly one text per customer (a value
  whose text holds a comma, e.g. a string, makes it encode value by value instead);
- a column of strings or of string lists encodes each distinct value once (status,
  segments, channels and reason lists repeat a lot);
- anything else is encoded value by value.

Texts are handled as Latin-1 (one character per byte of the encoder's UTF-8 output), so
joining never widens strings and encoding back gives the encoder's bytes. Keys come in
the same order with the same separators, so the bytes are those of
``pydantic_core.to_json([dict(...), ...])``; tests compare both on mixed batches.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import pydantic_core

#: Column encoders: (values, key prefix) -> one cell per value.
Encoder = Callable[[Sequence[Any], str], list[str]]


def text(value: Any) -> str:
    """``pydantic_core.to_json(value)`` as Latin-1 text."""
    return pydantic_core.to_json(value).decode("latin-1")


def split_array(values: Sequence[Any], prefix: str) -> list[str]:
    """Cells of a column encoded as one JSON array and cut at its commas (value by value
    when a value's text holds a comma)."""
    if not values:
        return []
    inner = text(values)[1:-1]
    if inner.count(",") != len(values) - 1:
        return each_value(values, prefix)
    # compact JSON has no raw newline: it marks the cuts
    return (prefix + inner.replace(",", "\n" + prefix)).split("\n")


def each_distinct(values: Sequence[Any], prefix: str) -> list[str]:
    """Cells of a column of strings (or lists of strings) and nulls, each distinct value
    encoded once; value by value for anything else."""
    kinds = set(map(type, values))
    if kinds <= {str, type(None)}:
        keys: Sequence[Any] = values
    elif kinds == {list} and set(map(type, itertools.chain.from_iterable(values))) <= {str}:
        keys = list(map(tuple, values))
    else:
        return each_value(values, prefix)
    distinct = dict(zip(keys, values, strict=True))
    cells = {key: prefix + text(value) for key, value in distinct.items()}
    return list(map(cells.__getitem__, keys))


def each_value(values: Sequence[Any], prefix: str) -> list[str]:
    return [prefix + text(value) for value in values]


#: How a converted column of each contract dtype is encoded.
ENCODERS: dict[str, Encoder] = {
    "int": split_array,
    "float": split_array,
    "bool": split_array,
    "date": split_array,
    "str": each_distinct,
    "list[str]": each_distinct,
}
#: Text of a missing column's values, by dtype (``list[str]``: empty list, else null).
MISSING = {"list[str]": "[]"}


def key_prefix(name: str, position: int) -> str:
    """What comes before a value in a row: ``{"key":`` for the first, ``,"key":`` after."""
    return ("{" if position == 0 else ",") + text(name) + ":"


def rows_array(cells: Sequence[list[str]], n: int) -> bytes:
    """``[{...},{...}]`` (the encoder's bytes) from each column's cells (n each, built with
    :func:`key_prefix` in column order)."""
    if n == 0:
        return b"[]"
    if not cells:
        return ("[" + ",".join(itertools.repeat("{}", n)) + "]").encode("latin-1")
    width = len(cells) + 1
    flat = ["},"] * (width * n)
    for position, column in enumerate(cells):
        if len(column) != n:
            raise ValueError(f"column {position} has {len(column)} values, expected {n}")
        flat[position::width] = column
    flat[-1] = "}]"
    return ("[" + "".join(flat)).encode("latin-1")
