"""Large ``/predict`` bodies read by the compiled scanner into typed columns.

:func:`scan` runs :func:`fidelite.serving.json_scan.scan_body` over the body's bytes and
turns its arrays into what :mod:`fidelite.serving.bulk_rows` needs: customer ids as
strings, a float64 matrix of the numeric columns, object columns of texts (each distinct
text decoded once) and flags, and the envelope's ``as_of`` and ``include_reasons``.
Numbers the scanner could not round itself are converted here by numpy's correctly
rounded parser. Returns None whenever the scanner gives up or a string is not UTF-8:
the caller then decodes the body another way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fidelite.serving import json_scan
from fidelite.serving.json_numbers import EXACT_POWERS, POWERS, compiled
from fidelite.training.threads import LazyPool

#: Most numbers per body converted outside the scanner (more: the body goes elsewhere).
MAX_SLOW_NUMBERS = 65_536
#: Longest number text converted outside the scanner.
MAX_SLOW_WIDTH = 64
#: Bodies of at least this many bytes are scanned by two threads.
SPLIT_MIN_BYTES = 1 << 20
_KIND_CODES = {
    "id": json_scan.ID,
    "number": json_scan.NUMBER,
    "text": json_scan.TEXT,
    "flag": json_scan.FLAG,
}
_FLAG_VALUES = np.array([None, False, True], dtype=object)  # by flag code + 1


@dataclass(frozen=True)
class RowShape:
    """What the scanner expects of every row: its keys in order and where each goes."""

    keys: np.ndarray
    offsets: np.ndarray
    kinds: np.ndarray
    slots: np.ndarray
    numeric: tuple[str, ...]
    texts: tuple[str, ...]
    flags: tuple[str, ...]
    #: A lower bound on a row's bytes (keys, quotes, colons, one byte per value, comma).
    min_row_bytes: int

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The scanner's row arguments: keys, offsets, kinds, slots."""
        return self.keys, self.offsets, self.kinds, self.slots


@dataclass(frozen=True)
class ScannedRows:
    ids: list[str]
    #: Numeric columns as rows (``RowShape.numeric``'s order), NaN for null.
    numbers: np.ndarray
    others: dict[str, np.ndarray]
    as_of: str
    include_reasons: bool


def row_shape(columns: tuple[str, ...], kinds: Mapping[str, str]) -> RowShape:
    """The shape of rows with ``columns`` in this order (``customer_id`` plus feature
    columns of kind ``number``, ``text`` or ``flag``). Numbers, texts and flags are each
    numbered in sorted name order (the order of the decoded batch's columns)."""
    by_kind: dict[str, list[str]] = {"number": [], "text": [], "flag": []}
    for name in sorted(kinds, key=str):
        by_kind[kinds[name]].append(name)
    codes, slots = [], []
    for name in columns:
        kind = kinds.get(name, "id")
        codes.append(_KIND_CODES[kind])
        slots.append(0 if kind == "id" else by_kind[kind].index(name))
    keys, offsets = json_scan.key_table(columns)
    return RowShape(
        keys=keys,
        offsets=offsets,
        kinds=np.array(codes, np.int64),
        slots=np.array(slots, np.int64),
        numeric=tuple(by_kind["number"]),
        texts=tuple(by_kind["text"]),
        flags=tuple(by_kind["flag"]),
        min_row_bytes=int(len(keys) + 5 * len(columns) + 1),
    )


def scan(body: bytes, shape: RowShape, *, max_rows: int) -> ScannedRows | None:
    """The body's rows as columns, or None if the scanner does not take the body or it
    holds more than ``max_rows`` rows.

    A body of at least :data:`SPLIT_MIN_BYTES` is scanned by two threads: the rows from
    a row boundary near the middle (:func:`split_point`) in a worker thread while the
    calling thread scans the envelope and the rows before it.
    """
    buf = np.frombuffer(body, np.uint8)
    split = split_point(body, shape) if len(body) >= SPLIT_MIN_BYTES else -1
    head = _outputs(shape, split if split > 0 else len(body), max_rows)
    envelope = np.empty((len(json_scan.ENVELOPE_KEYS), 2), np.int64)
    tail_job = None
    if split > 0:
        tail = _outputs(shape, len(body) - split, max_rows)
        first = json_scan.skip_space(buf, split + 1)
        tail_job = _TAIL.get().submit(
            json_scan.scan_rows, buf, first, -1, *shape.arrays(), tail, POWERS, EXACT_POWERS
        )
    status, n, end = json_scan.scan_body(
        buf, 0, split, *shape.arrays(), head, envelope, POWERS, EXACT_POWERS
    )
    parts = [(head, n)]
    if tail_job is not None:
        tail_status, tail_n, tail_end = tail_job.result()
        if status == json_scan.PAUSED and tail_status == json_scan.OK:
            envelope[1, 1] = tail_end
            status, _, end = json_scan.scan_body(
                buf, tail_end, -1, *shape.arrays(), head, envelope, POWERS, EXACT_POWERS
            )
            parts.append((tail, tail_n))
    if status != json_scan.OK or sum(rows for _, rows in parts) > max_rows:
        return None
    return _columns(body, buf, shape, parts, envelope)


def split_point(body: bytes, shape: RowShape) -> int:
    """Position of a comma between two rows near the middle of the body, -1 if none.

    The first row's first key (``{"customer_id"``, say) preceded by a comma and space
    can only be a row's start in a body the scanner accepts: inside a string a quote
    would end the string there. Each half's scan then checks it.
    """
    opening = b'{"' + shape.keys[: shape.offsets[1]].tobytes() + b'"'
    at = body.find(opening, len(body) // 2)
    if at < 0:
        return -1
    before = at - 1
    while before > 0 and body[before] in b" \t\r\n":
        before -= 1
    return before if before > 0 and body[before] == ord(",") else -1


def _outputs(shape: RowShape, n_bytes: int, max_rows: int) -> tuple[np.ndarray, ...]:
    """The scanner's output arrays for at most the rows that fit in ``n_bytes``."""
    capacity = max(1, min(max_rows + 1, n_bytes // shape.min_row_bytes + 1))
    return (
        np.empty((len(shape.numeric), capacity)),
        np.empty((capacity, 2), np.int64),
        np.empty((len(shape.texts), capacity, 2), np.int64),
        np.empty((len(shape.texts), capacity), np.uint64),
        np.empty((len(shape.flags), capacity), np.int8),
        np.empty((min(MAX_SLOW_NUMBERS, capacity * len(shape.numeric)), 4), np.int64),
        np.zeros(1, np.int64),
    )


def _columns(
    body: bytes, buf: np.ndarray, shape: RowShape, parts: list, envelope: np.ndarray
) -> ScannedRows | None:
    """The scanned parts' arrays as one set of columns (None: a string is not UTF-8,
    two texts share a hash, or a number is too long)."""
    numbers = _joined([out[0][:, :n] for out, n in parts], axis=1)
    for offset, (out, _) in zip(_starts(parts), parts, strict=True):
        slow = out[5][: out[6][0]]
        if len(slow) and not _convert_slow(buf, numbers, slow + [0, offset, 0, 0]):
            return None
    id_spans = _joined([out[1][:n] for out, n in parts], axis=0)
    text_spans = _joined([out[2][:, :n] for out, n in parts], axis=1)
    text_hashes = _joined([out[3][:, :n] for out, n in parts], axis=1)
    flags = _joined([out[4][:, :n] for out, n in parts], axis=1)
    try:
        ids = _joined_texts(buf, id_spans).decode().split("\x00")
        others = {
            name: _texts(body, buf, text_spans[j], text_hashes[j])
            for j, name in enumerate(shape.texts)
        }
        as_of = body[envelope[0, 0] + 1 : envelope[0, 1] - 1].decode()
    except UnicodeDecodeError:
        return None
    if any(column is None for column in others.values()):
        return None
    others.update({name: _FLAG_VALUES[flags[j] + 1] for j, name in enumerate(shape.flags)})
    reasons = envelope[2, 0] < 0 or body[envelope[2, 0] : envelope[2, 1]] == b"true"
    return ScannedRows(ids, numbers, others, as_of, bool(reasons))


def _joined(arrays: list[np.ndarray], axis: int) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=axis)


def _starts(parts: list) -> list[int]:
    return [0, *np.cumsum([n for _, n in parts[:-1]]).tolist()]


#: The thread scanning the second half of a large body.
_TAIL = LazyPool(1, "fidelite-scan")


def _texts(
    body: bytes, buf: np.ndarray, spans: np.ndarray, hashes: np.ndarray
) -> np.ndarray | None:
    """A text column (None for null) from its spans in ``body`` (``buf``: its bytes as an
    array), each distinct text decoded once; None if two different texts share a hash."""
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    if not _same_texts(buf, spans, first[inverse]):
        return None
    distinct = np.empty(len(first), dtype=object)
    distinct[:] = [
        None if spans[row, 0] < 0 else body[spans[row, 0] : spans[row, 1]].decode()
        for row in first.tolist()
    ]
    return distinct[inverse]


def _joined_texts(buf: np.ndarray, spans: np.ndarray) -> bytes:
    """The texts at ``spans`` (rows of start, stop) joined with NUL, which the scanner
    never accepts inside a string: one decode and one split give them all, far faster
    than one decode each."""
    out = np.zeros(int((spans[:, 1] - spans[:, 0]).sum()) + len(spans) - 1, np.uint8)
    _copy_joined(buf, spans, out)
    return out.tobytes()


@compiled
def _copy_joined(buf, spans, out):
    at = 0
    for row in range(len(spans)):
        for i in range(spans[row, 0], spans[row, 1]):
            out[at] = buf[i]
            at += 1
        at += 1  # the separator (out starts as zeros)


@compiled
def _same_texts(buf, spans, representative):
    """Whether every row's bytes equal its representative row's (null equals null)."""
    for row in range(len(spans)):
        other = representative[row]
        start, stop = spans[row, 0], spans[row, 1]
        o_start, o_stop = spans[other, 0], spans[other, 1]
        if stop - start != o_stop - o_start or (start < 0) != (o_start < 0):
            return False
        for i in range(stop - start):
            if buf[start + i] != buf[o_start + i]:
                return False
    return True


def _convert_slow(buf: np.ndarray, numbers: np.ndarray, slow: np.ndarray) -> bool:
    """Numbers the scanner left (rows of ``slow``: slot, row, start, stop) converted by
    numpy's parser, which rounds as Python's ``float`` does."""
    width = int((slow[:, 3] - slow[:, 2]).max())
    if width > MAX_SLOW_WIDTH:
        return False
    at = slow[:, 2, None] + np.arange(width)
    text = np.where(at < slow[:, 3, None], buf[np.minimum(at, len(buf) - 1)], 0)
    values = text.astype(np.uint8).view(f"S{width}").ravel().astype(np.float64)
    numbers[slow[:, 0], slow[:, 1]] = values
    return True


def warm_up() -> None:
    """Compile the scanner now (a second or so from numba's disk cache; without one,
    several seconds), with the argument types of real requests, so the first large
    request does not pay for it."""
    kinds = {"a": "number", "b": "text", "c": "flag"}
    shape = row_shape(("customer_id", "a", "b", "c"), kinds)
    rows = ",".join(
        f'{{"customer_id":"c{i}","a":{i * 0.25 + 1e-300},"b":"x","c":true}}' for i in range(40_000)
    )
    body = f'{{"as_of":"2025-01-01","features":[{rows}],"include_reasons":false}}'.encode()
    assert len(body) >= SPLIT_MIN_BYTES
    scanned = scan(body, shape, max_rows=len(body))
    assert scanned is not None and len(scanned.ids) == 40_000
