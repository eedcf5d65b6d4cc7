"""Integer-coded views of the input tables that every feature family works on.

Customers are mapped to dense integer codes ``0..n_customers-1`` once, timestamps to
integer day numbers (days since 1970-01-01), so each feature family is a handful of
``np.bincount`` calls over boolean masks instead of per-customer Python work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

_UNSAFE_NAME_CHARS = re.compile(r"[^0-9a-z]+")


def day_numbers(timestamps: pd.Series, rows: np.ndarray | None = None) -> np.ndarray:
    """Whole days since 1970-01-01 of each timestamp.

    Parameters
    ----------
    timestamps : Series of datetime64[ns], shape (n,)
        Must not contain NaT (callers filter on ``timestamp < end`` first, which drops
        NaT).
    rows : ndarray of bool, shape (n,), optional
        Only these rows (as ``day_numbers(timestamps)[rows]``, without the full copy).

    Returns
    -------
    ndarray of int64, shape (n,) or (rows.sum(),)
    """
    stamps = timestamps.to_numpy(dtype="datetime64[ns]")
    if rows is None:
        # The day cast makes a fresh array: read it as integers in place, no second copy.
        return stamps.astype("datetime64[D]").view(np.int64)
    # The selected rows are a fresh array: floored to days in place (the day cast
    # floors too).
    days = stamps[rows].view(np.int64)
    np.floor_divide(days, _NS_PER_DAY, out=days)
    return days


_NS_PER_DAY = 86_400 * 10**9


def day_number(day: pd.Timestamp) -> int:
    """Day number (days since 1970-01-01) of a single calendar day."""
    return int(np.datetime64(day.floor("D").to_datetime64(), "D").astype(np.int64))


def safe_name(label: object) -> str:
    """Lower-case ``[0-9a-z_]`` version of a channel label, usable inside a column name."""
    text = "" if label is None or (isinstance(label, float) and np.isnan(label)) else str(label)
    return _UNSAFE_NAME_CHARS.sub("_", text.strip().lower()).strip("_") or "unknown"


def encode_labels(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes of a low-cardinality label column, labels passed through :func:`safe_name`.

    Labels that collide after cleaning (``"E-mail"`` / ``"e mail"``) share one code.

    Returns
    -------
    codes : ndarray of int16 (int64 beyond 32,767 names), shape (n,)
        Narrow: label columns of 50M events would otherwise take 400 MB each.
    names : list of str
        ``names[code]`` is the cleaned label.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        # The loaders hand over categoricals: their codes are already a factorisation.
        raw_codes = values.cat.codes.to_numpy()
        uniques = values.cat.categories
    else:
        raw_codes, uniques = pd.factorize(values, use_na_sentinel=True)
    cleaned = [safe_name(u) for u in uniques]
    if (raw_codes < 0).any():
        cleaned.append("unknown")
    names = sorted(set(cleaned))
    narrow = np.int16 if len(names) < 2**15 else np.int64
    lookup = np.array([names.index(c) for c in cleaned], dtype=narrow)
    # The NaN sentinel -1 indexes the trailing "unknown" entry.
    return lookup[raw_codes], names


def customer_codes(
    ids: pd.Series,
    customers: pd.Index,
    factorized: tuple[np.ndarray, pd.Index] | None = None,
    *,
    dtype: type = np.int64,
) -> np.ndarray:
    """Position of each id in ``customers`` (-1 when absent).

    Factorising first means the string hash lookup runs once per distinct id rather
    than once per row; pass ``factorized=factorize_ids(ids)`` when already computed.

    Returns
    -------
    ndarray of ``dtype`` (int64; int32 for large event tables), shape (len(ids),)
    """
    if factorized is None and isinstance(ids.dtype, pd.CategoricalDtype):
        factorized = (ids.cat.codes.to_numpy(), pd.Index(ids.cat.categories))  # not widened
    raw_codes, uniques = factorized if factorized is not None else factorize_ids(ids)
    return _positions(pd.Index(uniques), customers).astype(dtype)[raw_codes]


def factorize_ids(ids: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize`` of an id column, faster on text: (codes int64, distinct ids).

    Categories give their codes directly; Arrow-backed text is grouped through a
    polars hash (:func:`fidelite.features._text.factorize_text`).
    """
    if isinstance(ids.dtype, pd.CategoricalDtype):
        return ids.cat.codes.to_numpy().astype(np.int64), pd.Index(ids.cat.categories)
    arrow = getattr(ids.array, "_pa_array", None)
    if arrow is None or ids.isna().any():
        codes, uniques = pd.factorize(ids)
        return codes, pd.Index(uniques)
    from fidelite.features._text import factorize_text

    codes, uniques = factorize_text(arrow)
    return codes.astype(np.int64), uniques


def _positions(values: pd.Index, customers: pd.Index) -> np.ndarray:
    """``customers.get_indexer(values)`` (int64, -1 when absent), by an Arrow hash lookup
    when both are text: pandas' lookup on Arrow strings is several times slower."""
    left = getattr(values.array, "_pa_array", None)
    right = getattr(customers.array, "_pa_array", None)
    if left is None or right is None:
        return customers.get_indexer(values).astype(np.int64)
    import pyarrow.compute as pc

    found = pc.index_in(left, value_set=right.combine_chunks())
    return np.asarray(found.fill_null(-1), dtype=np.int64)


def is_in(values: pd.Series, wanted: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``values`` found in ``wanted``, shape (len(values),).

    Arrow-backed string columns (the pandas 3 default) go through ``pyarrow.compute``,
    several times faster than ``Series.isin`` on them.
    """
    arrow = getattr(values.array, "_pa_array", None)
    if arrow is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        value_set = pa.array(wanted, type=arrow.type)
        return pc.is_in(arrow, value_set=value_set).to_numpy(zero_copy_only=False).astype(bool)
    return values.isin(wanted).to_numpy(dtype=bool)


def keys_in(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Boolean mask of the integer ``keys`` found in ``wanted``, shape (len(keys),).

    Keys in a short range (integer order ids) are looked up in a table over the range;
    others (hashes) by a polars hash lookup: about 3x less CPU than ``Series.isin``
    for 1M keys, the table another 4x less.
    """
    offsets = short_range_offsets(keys)
    if offsets is not None:
        offset, low = offsets
        table = np.zeros(int(offset.max()) + 1 if offset.size else 0, dtype=bool)
        inside = wanted[(wanted >= low) & (wanted <= low + table.size - 1)]
        table[(inside - low).astype(np.int64)] = True
        return table[offset]
    if keys.size < _SMALL_KEYS:
        # A few rows (a customer served alone): numpy's sort-based lookup takes
        # microseconds; polars' query engine ~0.5 ms to start.
        return np.isin(keys, wanted)
    import polars as pl

    return pl.Series(keys).is_in(pl.Series(wanted).implode()).to_numpy()


_SMALL_KEYS = 4096


def short_range_offsets(keys: np.ndarray) -> tuple[np.ndarray, int] | None:
    """``(keys - low, low)`` (offsets int64, shape (n,)) when the integer ``keys`` span
    under four times their number (dense ids: a table over the range is cheaper than
    a sort or a hash), else None (e.g. 64-bit hashes)."""
    if keys.size == 0 or keys.dtype.kind not in "iu":
        return None
    low, high = int(keys.min()), int(keys.max())
    if high - low >= 4 * keys.size + 1024:
        return None
    offset = keys - keys.dtype.type(low)
    if offset.dtype == np.uint64:  # under 2**63 now: the same numbers as int64
        return offset.view(np.int64), low
    return offset.astype(np.int64, copy=False), low


def group_sum(codes: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-customer sum of ``weights`` (count when None), float64 of shape (n,)."""
    return np.bincount(codes, weights=weights, minlength=n).astype(np.float64)


def stable_key_order(keys: np.ndarray, *, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Stable sort of non-negative integer keys: ``(order, keys[order])``.

    ``order`` is ``np.argsort(keys, kind="stable")``: equal keys keep their row order,
    so sums over a group of equal keys add the same numbers in the same order as a
    ``np.bincount`` over the unsorted rows would (bit-identical results). Each key is
    packed with its row number into one int64 and those integers are sorted: numpy's
    (SIMD) sort of plain integers is several times faster than a stable argsort (10 ms
    against 90 ms for 1M keys). Keys too wide to pack fall back to the argsort.

    Parameters
    ----------
    keys : ndarray of int, shape (n,)
        Non-negative.
    overwrite : bool
        ``keys`` (int64) may be overwritten: the sort then works in its memory.

    Returns
    -------
    order : ndarray of int64, shape (n,)
    sorted_keys : ndarray of int64, shape (n,)
    """
    keys = np.asarray(keys, dtype=np.int64)
    n = keys.size
    row_bits = max(int(n - 1).bit_length(), 1)
    if n and int(keys.min()) >= 0 and int(keys.max()).bit_length() + row_bits <= 63:
        packed = keys if overwrite else keys.copy()
        packed <<= row_bits
        order = np.arange(n, dtype=np.int64)
        packed |= order
        packed.sort()
        np.bitwise_and(packed, (1 << row_bits) - 1, out=order)
        packed >>= row_bits
        return order, packed
    order = np.argsort(keys, kind="stable")
    return order, keys[order]


def group_starts(sorted_codes: np.ndarray) -> np.ndarray:
    """True where a sorted code differs from the previous one, bool of shape (n,)."""
    starts = np.ones(sorted_codes.shape, dtype=bool)
    np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=starts[1:])
    return starts


def column_frame(columns: dict[str, np.ndarray | pd.api.extensions.ExtensionArray]) -> pd.DataFrame:
    """A DataFrame of fresh 1-D columns, taken as they are (no copy).

    By default pandas copies every column into one 2-D block per dtype (about 14 ms for
    the 80k x 80 float columns of a 1M-row feature table); the families build each
    column anew, so the frame can hold them directly. An array object given for more
    than one column is copied, so no two columns share memory. Tables under 2,048 rows
    are consolidated as usual.

    Parameters
    ----------
    columns : dict of str to array, each of shape (n_rows,)

    Returns
    -------
    DataFrame, shape (n_rows, len(columns))
    """
    seen: set[int] = set()
    fresh = {}
    for name, values in columns.items():
        fresh[name] = values.copy() if id(values) in seen else values
        seen.add(id(values))
    # Small tables (a customer scored by the service) are consolidated: the copy costs
    # next to nothing there, and each later column access is cheaper on few blocks.
    n_rows = len(next(iter(fresh.values()))) if fresh else 0
    return pd.DataFrame(fresh, copy=n_rows < _CONSOLIDATE_BELOW_ROWS)


_CONSOLIDATE_BELOW_ROWS = 2048


def text_labels(
    names: list[str] | tuple[str, ...], codes: np.ndarray
) -> pd.api.extensions.ExtensionArray:
    """``names[codes]`` as a ``str`` column: an Arrow take of the few distinct labels,
    not one Python string object per row (~4x cheaper than ``astype(str)``).

    Parameters
    ----------
    names : sequence of str, shape (n_labels,)
    codes : ndarray of int, shape (n_rows,)
        Positions in ``names``, all valid.

    Returns
    -------
    ExtensionArray of ``str`` dtype, shape (n_rows,)
    """
    import pyarrow as pa

    distinct = pa.array(list(names), type=pa.large_string())
    return pd.array(distinct.take(pa.array(np.asarray(codes, dtype=np.int64))), dtype="str")


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ratio, NaN where the denominator is 0 (the ratio is unknown there)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def balance(recent: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """``(recent - earlier) / (recent + earlier)``: -1 faded away ... +1 appeared.

    Bounded, symmetric and defined when one side is zero, unlike a plain ratio. NaN
    when both are zero.
    """
    return safe_divide(recent - earlier, recent + earlier)


@dataclass(frozen=True)
class TransactionArrays:
    """Transactions before the cut-off, as aligned numpy arrays.

    Attributes
    ----------
    code : ndarray of int64, shape (n_rows,)
        Customer code.
    day : ndarray of int64, shape (n_rows,)
        Day number of the transaction.
    amount, discount : ndarray of float64, shape (n_rows,)
        Currency units; negative ``amount`` is a refund. ``discount`` may be a
        read-only broadcast of 0.0 (no discount anywhere).
    channel : ndarray of int16 or int64, shape (n_rows,)
        Code into ``channel_names``.
    channel_names : list of str
    n_customers : int
    as_of_day : int
        Day number of ``as_of`` (the last day the features may see).
    refund_of : ndarray of int64, shape (n_rows,)
        Row (in these arrays) of the order each refund is attributed to, -1 for orders
        and unattributed refunds (see :mod:`fidelite.features.purchases`).
    """

    code: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    discount: np.ndarray
    channel: np.ndarray
    channel_names: list[str]
    n_customers: int
    as_of_day: int
    refund_of: np.ndarray

    @property
    def days_ago(self) -> np.ndarray:
        """Days between each transaction and ``as_of`` (0 = on the as-of day)."""
        return self.as_of_day - self.day


@dataclass(frozen=True)
class EventArrays:
    """Events before the cut-off of known customers with a known event type.

    Attributes
    ----------
    code, day : ndarray of int32 or int64, shape (n_rows,)
    channel : ndarray of int32 or int64, shape (n_rows,)
        Code into ``channel_names``.
    event_type : ndarray of object (str), shape (n_types,)
        Distinct event types; ``type_code`` indexes into it.
    type_code : ndarray of int (16 to 64 bits), shape (n_rows,)
    channel_names : list of str
    n_customers, as_of_day : int
    """

    code: np.ndarray
    day: np.ndarray
    channel: np.ndarray
    type_code: np.ndarray
    event_types: list[str]
    channel_names: list[str]
    n_customers: int
    as_of_day: int

    def type_mask(self, types: tuple[str, ...] | list[str]) -> np.ndarray:
        """Boolean mask of rows whose event type is in ``types``."""
        wanted = np.array([t in set(types) for t in self.event_types], dtype=bool)
        if wanted.size == 0:
            return np.zeros(self.code.shape, dtype=bool)
        return wanted[self.type_code]
