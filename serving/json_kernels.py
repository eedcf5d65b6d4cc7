"""The compiled loops behind :mod:`fidelite.serving.json_columns` (numba, GIL released).

Both work on bytes held as ``uint8`` arrays:

- :func:`split_pieces` finds the top-level values of JSON arrays as ``start .. end``
  byte spans. It follows strings (with their backslash escapes) and nesting, so a comma
  inside a string or a nested list does not cut; it expects compact JSON (no whitespace
  between tokens), as ``pydantic_core`` writes it. Arrays of numbers, booleans and
  nulls are cut at their commas, found 8 bytes at a time.
- :func:`write_rows` writes the rows ``{"key":value,...}`` of a scores array: per row,
  fixed texts (keys, separators and the values of constant columns) alternate with one
  span per varying column.

Spans are copied :data:`BLOCK` bytes at a time (one unaligned vector move each, instead
of a byte loop: ~10x faster for the ~20-byte keys and values of a score row), so a copy
may read and write up to ``BLOCK - 1`` bytes past its span's end: the source buffer
needs :data:`BLOCK` bytes of padding after its last span (the comma search reads up to 7
bytes past an array too), and later copies overwrite what a copy wrote past its end.
Nothing is bounds-checked: callers pass spans and indexes that are in range.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

# without numba's reference counting (nothing here allocates): count updates for every
# array handed to a helper cost more than the copies (see json_numbers)
from fidelite.serving.json_numbers import compiled, inlined

#: Bytes moved by one copy step; sources need this much padding (see the module doc).
BLOCK = 16
_QUOTE, _BACKSLASH, _COMMA = ord('"'), ord("\\"), ord(",")
_OPEN_LIST, _CLOSE_LIST, _OPEN_MAP, _CLOSE_MAP = ord("["), ord("]"), ord("{"), ord("}")
# a zero byte in x is found by (x - _ONES) & ~x & _HIGHS; x = word ^ _COMMAS zeroes commas
_ONES, _HIGHS = np.uint64(0x0101010101010101), np.uint64(0x8080808080808080)
_COMMAS = np.uint64(0x2C2C2C2C2C2C2C2C)


@intrinsic
def _copy_block(typingctx, out, out_at, source, source_at):  # pragma: no cover - compiled
    """``out[out_at:out_at + BLOCK] = source[source_at:source_at + BLOCK]``, unchecked."""
    signature = types.void(out, types.intp, source, types.intp)

    def codegen(context, builder, sig, args):
        target = context.make_array(sig.args[0])(context, builder, args[0])
        origin = context.make_array(sig.args[2])(context, builder, args[2])
        size = context.get_constant(types.intp, BLOCK)
        cgutils.raw_memcpy(
            builder,
            builder.gep(target.data, [args[1]]),
            builder.gep(origin.data, [args[3]]),
            size,
            1,
        )
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def _load_word(typingctx, source, at):  # pragma: no cover - compiled
    """The 8 bytes ``source[at:at + 8]`` as a little-endian uint64, unchecked."""
    signature = types.uint64(source, types.intp)

    def codegen(context, builder, sig, args):
        origin = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = builder.bitcast(builder.gep(origin.data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(pointer, align=1)

    return signature, codegen


@inlined  # a call per value would cost more than the copy
def _put(out, at, source, start, end):  # pragma: no cover - compiled
    """Copies ``source[start:end]`` to ``out[at:]``; returns the position after it."""
    size = end - start
    if at + size + BLOCK <= len(out):
        step = 0
        while step < size:  # (a range with a step would divide)
            _copy_block(out, at + step, source, start + step)
            step += BLOCK
    else:  # the end of ``out``: byte by byte
        for step in range(size):
            out[at + step] = source[start + step]
    return at + size


@compiled
def split_pieces(text, bounds, sizes, plain, starts, ends):  # pragma: no cover - compiled
    """Spans of the values of JSON arrays, then of whole texts, one after another.

    Parameters
    ----------
    text : uint8 array
        The pieces one after another: ``text[bounds[p]:bounds[p + 1]]`` is piece ``p``.
    bounds : int64 array, shape (n_pieces + 1,)
    sizes : int64 array, shape (n_arrays,)
        Values of each of the first ``n_arrays`` pieces, compact JSON arrays; the
        further pieces are taken whole.
    plain : bool array, shape (n_arrays,)
        Arrays without strings or nesting: commas are their only separators.
    starts, ends : int64 arrays, shape (sizes.sum() + n_pieces - n_arrays,)
        Filled: value ``k`` is ``text[starts[k]:ends[k]]``, values of the first piece
        first.

    Returns
    -------
    int
        The first array that does not hold its size of values, else -1.
    """
    n_arrays = len(sizes)
    found = 0
    for piece in range(len(bounds) - 1):
        first, last = bounds[piece], bounds[piece + 1]
        if piece >= n_arrays:
            starts[found], ends[found] = first, last
            found += 1
            continue
        limit = found + sizes[piece]
        if plain[piece]:
            found = _split_plain(text, first, last, starts, ends, found, limit)
        else:
            found = _split_nested(text, first, last, starts, ends, found, limit)
        if found != limit:
            return piece
    return -1


@inlined
def _split_plain(text, first, last, starts, ends, found, limit):  # pragma: no cover
    """Values of the array ``text[first:last]`` cut at its commas (at most up to
    ``limit``; one more means too many); returns the values found. Reads 8 bytes at a
    time (past ``last`` within the padding): a number's text is ~18 bytes."""
    if last - first <= 2:  # "[]"
        return found
    start, at, stop = first + 1, first + 1, last - 1
    while at < stop:
        word = _load_word(text, at) ^ _COMMAS
        hits = (word - _ONES) & ~word & _HIGHS  # the lowest is the first comma byte
        if hits == 0:
            at += 8
            continue
        comma = at + np.int64(trailing_zeros(hits) >> 3)
        if comma >= stop:
            break
        if found == limit:
            return found + 1
        starts[found], ends[found] = start, comma
        found += 1
        start = at = comma + 1
    if found == limit:
        return found + 1
    starts[found], ends[found] = start, stop
    return found + 1


@inlined
def _split_nested(text, first, last, starts, ends, found, limit):  # pragma: no cover
    """:func:`_split_plain` for arrays that hold strings or nested values: commas cut
    only outside strings (followed with their backslash escapes) at the top level."""
    depth, start = 0, first + 1
    in_string, escaped = False, False
    for at in range(first, last):
        byte = text[at]
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in (_OPEN_LIST, _OPEN_MAP):
            depth += 1
        elif byte in (_COMMA, _CLOSE_LIST, _CLOSE_MAP):
            if depth == 1 and (byte == _COMMA or at > start):  # "[]" has no value
                if found == limit:
                    return found + 1
                starts[found], ends[found] = start, at
                found += 1
                start = at + 1
            if byte != _COMMA:
                depth -= 1
    return found if depth == 0 and not in_string else limit + 1


@compiled
def rows_size(starts, ends, cells, fixed):  # pragma: no cover - compiled
    """Bytes :func:`write_rows` writes (same arguments)."""
    n_varying, n_rows = cells.shape
    head, tail = fixed[n_varying + 1], fixed[n_varying + 2]
    size = ends[head] - starts[head] + ends[tail] - starts[tail]
    for column in range(n_varying + 1):
        size += n_rows * (ends[fixed[column]] - starts[fixed[column]])
    for row in range(n_rows):
        for column in range(n_varying):
            size += ends[cells[column, row]] - starts[cells[column, row]]
    return size


@compiled
def write_rows(text, starts, ends, cells, fixed, out):  # pragma: no cover - compiled
    """Writes the head, the rows, then the tail into ``out``.

    Parameters
    ----------
    text : uint8 array
        Bytes the spans point into, :data:`BLOCK` bytes of padding after the last one.
    starts, ends : int64 arrays
        Spans in ``text``.
    cells : int64 array, shape (n_varying, n_rows), n_rows >= 1
        Span of each row's value of each varying column.
    fixed : int64 array, shape (n_varying + 3,)
        Spans of the fixed texts: the one before each varying column's value, the one
        closing a row (``},``), the head, the tail. The last row's closing text ends
        with ``]`` instead of its last byte (``},`` becomes ``}]``).
    out : uint8 array, shape (rows_size(...),)
        Where to write.
    """
    n_varying, n_rows = cells.shape
    head, tail = fixed[n_varying + 1], fixed[n_varying + 2]
    at = _put(out, 0, text, starts[head], ends[head])
    for row in range(n_rows):
        for column in range(n_varying):
            at = _put(out, at, text, starts[fixed[column]], ends[fixed[column]])
            at = _put(out, at, text, starts[cells[column, row]], ends[cells[column, row]])
        at = _put(out, at, text, starts[fixed[n_varying]], ends[fixed[n_varying]])
    out[at - 1] = _CLOSE_LIST
    _put(out, at, text, starts[tail], ends[tail])
