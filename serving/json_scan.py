"""A compiled reader for the one JSON shape large ``/predict`` bodies have.

``{"as_of": "...", "features": [{row}, {row}, ...], "include_reasons": true}``, every row
with the same keys in the same order (a CRM export). :func:`scan_body` reads such a body
byte by byte (numba, no Python object per value) and writes each row's values straight
into preallocated arrays: numbers into a float64 matrix (correctly rounded by
:mod:`fidelite.serving.json_numbers`, NaN for ``null``), strings as byte spans with a
hash, flags as codes.

It is strict and only ever accepts: it follows JSON's grammar (RFC 8259) for the values
it knows, and gives up (status :data:`UNSUPPORTED`) on anything else -- a string with an
escape or a control character, a row whose keys differ from the first row's in name or
order, a key outside the envelope, a duplicate envelope key, a value of the wrong type,
trailing bytes. The caller then reads the body with a general decoder, which accepts or
names whatever was unusual. Whatever the scanner accepts is valid JSON with the same
meaning as a general decoder gives it, with one caveat left to the caller: string bytes
are not checked to be UTF-8 here (decoding them in Python does it).
"""

from __future__ import annotations

import numpy as np

from fidelite.serving.json_numbers import compiled, decimal_to_float, inlined
from fidelite.serving.rows import MAX_ID_LENGTH, MAX_TEXT_LENGTH

#: Scan results.
OK, UNSUPPORTED, TOO_MANY_ROWS, PAUSED = 0, 1, 2, 3
#: Column kinds (``kinds`` argument).
ID, NUMBER, TEXT, FLAG = 0, 1, 2, 3
#: Flag codes.
FLAG_NULL, FLAG_FALSE, FLAG_TRUE = -1, 0, 1
#: Envelope keys, in the order of the ``envelope`` array's rows.
ENVELOPE_KEYS = ("as_of", "features", "include_reasons", "history")
_SPACE, _TAB, _LF, _CR = 32, 9, 10, 13
_QUOTE, _BACKSLASH, _COLON, _COMMA = 34, 92, 58, 44
_FNV_OFFSET, _FNV_PRIME = np.uint64(0xCBF29CE484222325), np.uint64(0x100000001B3)
_NULL, _TRUE, _FALSE = (np.frombuffer(word, np.uint8) for word in (b"null", b"true", b"false"))


def key_table(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Names as one byte array and their offsets (``offsets[j]..offsets[j + 1]``)."""
    encoded = [name.encode() for name in names]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    offsets[1:] = np.cumsum([len(item) for item in encoded])
    return np.frombuffer(b"".join(encoded), np.uint8).copy(), offsets


@inlined
def skip_space(buf, pos):
    while pos < len(buf) and (
        buf[pos] == _SPACE or buf[pos] == _LF or buf[pos] == _CR or buf[pos] == _TAB
    ):
        pos += 1
    return pos


@inlined
def literal(buf, pos, word):
    """Position after ``word`` if it starts at ``pos``, else -1."""
    if pos + len(word) > len(buf):
        return -1
    for i in range(len(word)):
        if buf[pos + i] != word[i]:
            return -1
    return pos + len(word)


@inlined
def string_end(buf, pos):
    """``(end, characters, hash)`` of the string opening at ``pos`` (``buf[pos]`` is a
    quote): ``end`` is the closing quote's position, -1 if the string has an escape or a
    control character or does not close. Characters are counted as UTF-8 lead bytes."""
    h = _FNV_OFFSET
    chars = 0
    pos += 1
    while pos < len(buf):
        byte = buf[pos]
        if byte == _QUOTE:
            return pos, chars, h
        if byte == _BACKSLASH or byte < 32:
            return -1, 0, h
        if byte & 0xC0 != 0x80:
            chars += 1
        h = (h ^ np.uint64(byte)) * _FNV_PRIME
        pos += 1
    return -1, 0, h


@inlined
def key_at(buf, pos, keys, start, stop):
    """Position after ``"<key>"`` when ``keys[start:stop]`` is at ``pos``, else -1."""
    n = stop - start
    if pos < 0 or pos + n + 2 > len(buf) or buf[pos] != _QUOTE or buf[pos + n + 1] != _QUOTE:
        return -1
    # unsigned indices: numba then drops the negative-index handling (2-3x faster here)
    at, key, end = np.uint64(pos + 1), np.uint64(start), np.uint64(stop)
    while key < end:
        if buf[at] != keys[key]:
            return -1
        at += np.uint64(1)
        key += np.uint64(1)
    return pos + n + 2


@inlined
def number_at(buf, pos, powers, exact):
    """``(value, end, state)`` of the JSON number at ``pos``: state 0 = exact value,
    1 = a valid number this function cannot round (the caller converts ``buf[pos:end]``),
    -1 = not a JSON number."""
    end = len(buf)
    negative = pos < end and buf[pos] == 45  # '-'
    if negative:
        pos += 1
    if pos >= end or not 48 <= buf[pos] <= 57:
        return 0.0, pos, -1
    mantissa = np.uint64(0)
    digits = 0
    exp10 = 0
    if buf[pos] == 48:  # a leading 0 stands alone
        pos += 1
    else:
        while pos < end and 48 <= buf[pos] <= 57:
            if digits < 19:
                mantissa = mantissa * np.uint64(10) + np.uint64(buf[pos] - 48)
            digits += 1
            pos += 1
    plain_integer = True
    if pos < end and buf[pos] == 46:  # '.'
        plain_integer = False
        pos += 1
        if pos >= end or not 48 <= buf[pos] <= 57:
            return 0.0, pos, -1
        while pos < end and 48 <= buf[pos] <= 57:
            if mantissa != np.uint64(0) or buf[pos] != 48:
                if digits < 19:
                    mantissa = mantissa * np.uint64(10) + np.uint64(buf[pos] - 48)
                digits += 1
            exp10 -= 1
            pos += 1
    if pos < end and (buf[pos] == 101 or buf[pos] == 69):  # 'e' / 'E'
        plain_integer = False
        pos += 1
        sign = 1
        if pos < end and (buf[pos] == 43 or buf[pos] == 45):
            sign = -1 if buf[pos] == 45 else 1
            pos += 1
        if pos >= end or not 48 <= buf[pos] <= 57:
            return 0.0, pos, -1
        written = 0
        while pos < end and 48 <= buf[pos] <= 57:
            written = min(written * 10 + (buf[pos] - 48), 100_000)
            pos += 1
        exp10 += sign * written
    if digits > 19:
        return 0.0, pos, 1
    if plain_integer and mantissa == np.uint64(0):
        return 0.0, pos, 0  # "-0" is the integer 0, as a general decoder reads it
    value, ok = decimal_to_float(mantissa, exp10, negative, powers, exact)
    return value, pos, 0 if ok else 1


@inlined
def value_at(
    buf, pos, kind, row, slot, numbers, id_spans, text_spans, text_hashes, flags, slow, counts,
    powers, exact,
):  # fmt: skip
    """Reads the value of a ``kind`` column at ``pos`` into the output arrays (see
    :func:`scan_rows`); the position after it, or -1."""
    if kind == NUMBER:
        after = literal(buf, pos, _NULL)
        if after >= 0:
            numbers[slot, row] = np.nan
            return after
        value, after, state = number_at(buf, pos, powers, exact)
        if state < 0:
            return -1
        numbers[slot, row] = value
        if state == 1:  # converted by the caller
            if counts[0] == len(slow):
                return -1
            slow[counts[0], 0], slow[counts[0], 1] = slot, row
            slow[counts[0], 2], slow[counts[0], 3] = pos, after
            counts[0] += 1
        return after
    if kind == FLAG:
        for code, word in ((FLAG_NULL, _NULL), (FLAG_TRUE, _TRUE), (FLAG_FALSE, _FALSE)):
            after = literal(buf, pos, word)
            if after >= 0:
                flags[slot, row] = code
                return after
        return -1
    if kind == TEXT:
        after = literal(buf, pos, _NULL)
        if after >= 0:
            text_spans[slot, row, 0], text_spans[slot, row, 1] = -1, -1
            text_hashes[slot, row] = np.uint64(0)
            return after
    if pos >= len(buf) or buf[pos] != _QUOTE:
        return -1
    close, chars, h = string_end(buf, pos)
    longest = MAX_ID_LENGTH if kind == ID else MAX_TEXT_LENGTH
    if close < 0 or chars > longest or (kind == ID and chars == 0):
        return -1
    if kind == ID:
        id_spans[row, 0], id_spans[row, 1] = pos + 1, close
    else:
        text_spans[slot, row, 0], text_spans[slot, row, 1] = pos + 1, close
        text_hashes[slot, row] = h
    return close + 1


@compiled
def scan_rows(buf, pos, stop, keys, offsets, kinds, slots, out, powers, exact):
    """Rows of a ``features`` array from the row opening at ``pos``: ``(status, rows,
    end)``.

    Row ``i``'s value of column ``j`` (the ``j``-th key, of kind ``kinds[j]``) goes to
    ``numbers[slots[j], i]`` (NaN for null), ``id_spans[i]`` (start, stop), ``text_spans
    [slots[j], i]`` with ``text_hashes`` (-1, -1 for null) or ``flags[slots[j], i]``.
    Numbers needing the caller's conversion are listed in ``slow`` (slot, row, start,
    stop; ``counts[0]`` of them). The scan ends after the array's ``]`` (status
    :data:`OK`, ``end`` the position after it) or at the comma at ``stop`` between two
    rows (:data:`PAUSED`, ``end == stop``; the rest is scanned from the next row on).
    """
    numbers, id_spans, text_spans, text_hashes, flags, slow, counts = out
    capacity = id_spans.shape[0]
    rows = 0
    while True:
        if rows == capacity:
            return TOO_MANY_ROWS, rows, pos
        if pos >= len(buf) or buf[pos] != 123:  # '{'
            return UNSUPPORTED, rows, pos
        for j in range(len(kinds)):
            pos = key_at(buf, skip_space(buf, pos + 1), keys, offsets[j], offsets[j + 1])
            if pos < 0:
                return UNSUPPORTED, rows, pos
            pos = skip_space(buf, pos)
            if pos >= len(buf) or buf[pos] != _COLON:
                return UNSUPPORTED, rows, pos
            pos = skip_space(buf, pos + 1)
            pos = value_at(
                buf, pos, kinds[j], rows, slots[j], numbers, id_spans, text_spans, text_hashes,
                flags, slow, counts, powers, exact,
            )  # fmt: skip
            if pos < 0:
                return UNSUPPORTED, rows, pos
            pos = skip_space(buf, pos)
            closing = _COMMA if j < len(kinds) - 1 else 125  # '}'
            if pos >= len(buf) or buf[pos] != closing:
                return UNSUPPORTED, rows, pos
        rows += 1
        pos = skip_space(buf, pos + 1)
        if pos == stop:
            return PAUSED, rows, pos
        if pos < len(buf) and buf[pos] == 93:  # ']'
            return OK, rows, pos + 1
        if pos >= len(buf) or buf[pos] != _COMMA:
            return UNSUPPORTED, rows, pos
        pos = skip_space(buf, pos + 1)


@compiled
def scan_body(buf, pos, split, keys, offsets, kinds, slots, out, envelope, powers, exact):
    """The body from ``pos``: ``(status, rows, end)``.

    From ``pos == 0``, the whole body; ``envelope`` receives, per key of
    :data:`ENVELOPE_KEYS`, ``(start, stop)`` of its value (-1 if absent). A key outside
    those, a repeated key, ``as_of`` not a plain string, ``include_reasons`` not a
    boolean, ``history`` not null or an empty ``features`` are :data:`UNSUPPORTED`.
    When the features' rows reach the comma at ``split`` the scan returns
    :data:`PAUSED` (``end == split``, ``envelope[1, 0]`` set); once the other rows are
    scanned, calling again from the position after the array's ``]`` finishes it.
    """
    rows = 0
    if pos == 0:
        envelope[:, :] = -1
        pos = skip_space(buf, 0)
        if pos >= len(buf) or buf[pos] != 123:
            return UNSUPPORTED, 0, pos
        pos = skip_space(buf, pos + 1)
    else:
        pos = _after_value(buf, pos)
    while pos >= 0 and pos < len(buf) and buf[pos] == _QUOTE:
        close, _, _ = string_end(buf, pos)
        which = _envelope_key(buf, pos + 1, close) if close >= 0 else -1
        if which < 0 or envelope[which, 0] >= 0:
            return UNSUPPORTED, 0, pos
        pos = skip_space(buf, close + 1)
        if pos >= len(buf) or buf[pos] != _COLON:
            return UNSUPPORTED, 0, pos
        start = skip_space(buf, pos + 1)
        envelope[which, 0] = start
        if which == 1:
            if start >= len(buf) or buf[start] != 91:  # '['
                return UNSUPPORTED, 0, start
            first = skip_space(buf, start + 1)
            status, rows, pos = scan_rows(
                buf, first, split, keys, offsets, kinds, slots, out, powers, exact
            )
            if status != OK:
                return status, rows, pos
        else:
            pos = _envelope_value(buf, start, which)
            if pos < 0:
                return UNSUPPORTED, 0, start
        envelope[which, 1] = pos
        pos = _after_value(buf, pos)
    if pos != len(buf) or envelope[0, 0] < 0 or envelope[1, 0] < 0:
        return UNSUPPORTED, rows, pos
    return OK, rows, pos


@inlined
def _after_value(buf, pos):
    """After an envelope value: the next key's position, ``len(buf)`` after the closing
    brace and trailing space, -1 for anything else."""
    pos = skip_space(buf, pos)
    if pos < len(buf) and buf[pos] == _COMMA:
        return skip_space(buf, pos + 1)
    if pos < len(buf) and buf[pos] == 125:  # '}'
        end = skip_space(buf, pos + 1)
        return end if end == len(buf) else -1
    return -1


_KEY_BYTES, _KEY_OFFSETS = key_table(ENVELOPE_KEYS)


@compiled
def _envelope_key(buf, start, stop):
    """Index in :data:`ENVELOPE_KEYS` of the key ``buf[start:stop]``, -1 if none."""
    for k in range(len(_KEY_OFFSETS) - 1):
        if key_at(buf, start - 1, _KEY_BYTES, _KEY_OFFSETS[k], _KEY_OFFSETS[k + 1]) == stop + 1:
            return k
    return -1


@compiled
def _envelope_value(buf, pos, which):
    """Position after the value of envelope key ``which`` (not ``features``), or -1."""
    if which == 0:
        if pos >= len(buf) or buf[pos] != _QUOTE:
            return -1
        close, _, _ = string_end(buf, pos)
        return close + 1 if close >= 0 else -1
    if which == 2:
        after = literal(buf, pos, _TRUE)
        return after if after >= 0 else literal(buf, pos, _FALSE)
    return literal(buf, pos, _NULL)
