"""Column-level validation and normalisation shared by every table loader.

Each ``as_*`` function takes a :class:`~fidelite.features._source.SourceTable` (the raw
frame plus how to name it in messages) and one column, and returns the normalised column
or raises a :class:`~fidelite.errors.DataContractError` naming the table, the column and
up to five offending rows. Timestamps are in :mod:`~fidelite.features._timestamps`, id
text hashing in :mod:`~fidelite.features._text`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fidelite.features._source import SourceTable, fail
from fidelite.features._text import factorize_text, id_text
from fidelite.features.contract import MISSING_LABEL

__all__ = [
    "IdCodes",
    "as_flag",
    "as_id",
    "as_label",
    "as_label_text",
    "as_number",
    "as_optional_text",
    "coded_id",
    "vocabulary_check",
]

_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})


def as_id(table: SourceTable, column: str, *, categorical: bool = False) -> pd.Series:
    """Normalise an identifier column to text; missing ids are an error.

    Integer ids become their decimal text (``123`` -> ``"123"``, also when read through
    a float column because of NaNs); text ids are stripped of surrounding spaces. All
    in Arrow compute or on the distinct ids, never per row in Python.

    Parameters
    ----------
    categorical : bool
        Return a ``category`` of str (int32 codes + one copy of each distinct id)
        instead of an Arrow-backed ``str`` column: for the large tables that repeat each
        id many times (events), where it saves most of the column's memory.
    """
    values = _integral_ids(table.frame[column])
    if categorical or isinstance(values.dtype, pd.CategoricalDtype):
        return coded_id(table, column, categorical=categorical)[0]
    text = id_text(values)
    # Plain integers are never missing nor empty once written out; other text is
    # checked by one pass over the lengths, the row mask built only when one fails.
    if not (isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu"):
        shortest = pc.min(pc.utf8_length(text)).as_py()
        if text.null_count or shortest == 0:
            missing = np.asarray(pc.fill_null(pc.equal(pc.utf8_length(text), 0), True), bool)
            raise fail(table, column, "missing identifier", missing, values)
    return pd.Series(pd.array(text, dtype="str"), index=values.index, name=column)


class IdCodes(NamedTuple):
    """An id column factorised: ``codes`` (int64, shape (n_rows,)) are positions in
    ``categories`` (Index of str, the distinct ids, not sorted), as ``pd.factorize``."""

    codes: np.ndarray
    categories: pd.Index

    def take(self, rows: np.ndarray) -> IdCodes:
        """The same factorisation for a subset of rows (``rows``: mask or positions)."""
        return IdCodes(self.codes[rows], self.categories)


def coded_id(
    table: SourceTable, column: str, *, categorical: bool = False
) -> tuple[pd.Series, IdCodes]:
    """:func:`as_id` together with the ids' factorisation, computed on the way.

    Integer ids are factorised as numbers (distinct integers have distinct decimal
    texts) and only the distinct ones are written as text; categories (e.g. a Parquet
    dictionary column) are trimmed once per distinct value; other text is grouped by
    :func:`~fidelite.features._text.factorize_text`. No string is hashed twice.

    Returns
    -------
    ids : Series, shape (n_rows,)
        As :func:`as_id` returns it.
    codes : IdCodes
        Their factorisation.
    """
    values = _integral_ids(table.frame[column])
    text = None
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniques = values.cat.codes.to_numpy(), pd.Series(values.cat.categories)
        if (codes < 0).any():
            raise fail(table, column, "missing identifier", codes < 0, values)
        trimmed = id_text(uniques)
        if _same_text(trimmed, uniques):
            # Nothing to trim: the categories are distinct ids already (pandas
            # categories are unique), no hashing needed.
            categories = values.cat.categories
        else:  # distinct spellings (" 7", "7") may collapse onto one id once trimmed
            remap, categories = factorize_text(trimmed)
            codes = remap.astype(np.int64)[codes]
    elif pd.api.types.is_integer_dtype(values):
        codes, uniques = _factorize_integers(values)
        categories = pd.Index(pd.array(id_text(pd.Series(uniques)), dtype="str"))
    else:
        text = id_text(values)
        codes, categories = factorize_text(text)
    missing = codes < 0
    if (categories == "").any():
        missing |= codes == int(np.flatnonzero(categories == "")[0])
    if missing.any():
        raise fail(table, column, "missing identifier", missing, values)
    if categorical:
        result = pd.Categorical.from_codes(codes, categories=categories)
    elif 2 * len(categories) > len(codes) and not isinstance(values.dtype, pd.CategoricalDtype):
        # Mostly distinct ids (order ids): writing each row's text once is cheaper
        # than building categories and then taking every row from them.
        result = pd.array(text if text is not None else id_text(values), dtype="str")
    else:
        # An Arrow take of the distinct texts: ~15x faster than Categorical.astype("str").
        distinct = pd.array(categories, dtype="str")._pa_array  # the Arrow data, no copy
        result = pd.array(distinct.take(pa.array(codes)), dtype="str")
    ids = pd.Series(result, index=values.index, name=column)
    return ids, IdCodes(codes.astype(np.int64, copy=False), categories)


def _same_text(text: pa.Array | pa.ChunkedArray, values: pd.Series) -> bool:
    """Whether Arrow ``text`` equals the Arrow data of the ``str`` column ``values``."""
    arrow = getattr(values.array, "_pa_array", None)
    return arrow is not None and arrow.type == text.type and text.equals(arrow)


def _factorize_integers(values: pd.Series) -> tuple[np.ndarray, np.ndarray | pd.Index]:
    """``pd.factorize`` of integer ids; ids in a short range (``max - min`` under four
    times the rows) by a table over the range instead of a hash table: about 4x faster,
    categories in increasing order."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "i" and len(values):
        ids = values.to_numpy()
        low, high = int(ids.min()), int(ids.max())
        if high - low < 4 * len(ids) + 1024:
            offset = ids - low if low else ids
            present = np.zeros(high - low + 1, dtype=bool)
            present[offset] = True
            position = np.cumsum(present, dtype=np.int64) - 1
            return position[offset], np.flatnonzero(present) + low
    return pd.factorize(values)


def _integral_ids(values: pd.Series) -> pd.Series:
    """Integer ids read through a float column (because of NaNs) as ``Int64``, so they
    do not become ``"1.0"``; any other column as it is."""
    if pd.api.types.is_float_dtype(values):
        integral = values.isna() | (values == np.floor(values))
        if integral.all():
            return values.astype("Int64")
    return values


def as_number(
    table: SourceTable, column: str, *, allow_missing: bool, fill: float | None = None
) -> pd.Series:
    """Normalise a numeric column to float64."""
    values = table.frame[column]
    if pd.api.types.is_bool_dtype(values):
        raise fail(
            table,
            column,
            "expected numbers, got booleans",
            np.ones(len(values), dtype=bool),
            values,
        )
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
    else:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        non_numeric = numbers.isna().to_numpy() & values.notna().to_numpy()
        if non_numeric.any():
            raise fail(table, column, "non-numeric value", non_numeric, values)
    missing = numbers.isna().to_numpy()
    if not allow_missing and missing.any():
        raise fail(table, column, "missing (NaN) value", missing, values)
    infinite = np.isinf(numbers.to_numpy())
    if infinite.any():
        raise fail(table, column, "infinite value", infinite, values)
    if fill is not None:
        numbers = numbers.fillna(fill)
    return numbers


def as_label(frame: pd.DataFrame, column: str) -> pd.Series:
    """Lower-case a name column through its (few) distinct values.

    Returns a ``category`` Series with sorted, stripped, lower-case categories; missing
    values (and an absent column) become ``"unknown"``.
    """
    if column not in frame.columns:
        return pd.Series(
            pd.Categorical.from_codes(
                np.zeros(len(frame), dtype=np.int8), categories=[MISSING_LABEL]
            ),
            index=frame.index,
            name=column,
        )
    values = frame[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        uniques = values.cat.categories.to_numpy()
    else:
        codes, uniques = pd.factorize(values)
    names = [str(u).strip().lower() for u in uniques]
    if (codes < 0).any():
        names.append(MISSING_LABEL)
        codes = np.where(codes < 0, len(uniques), codes)
    # Distinct raw spellings ("Email", " email") may collapse onto one name.
    categories, remap = np.unique(np.array(names, dtype=object), return_inverse=True)
    # Gathered straight into the codes' final width (int8 for under 128 names).
    narrow = pd.Categorical.from_codes([], categories=categories).codes.dtype
    return pd.Series(
        pd.Categorical.from_codes(remap.astype(narrow)[codes], categories=categories),
        index=frame.index,
        name=column,
    )


def as_label_text(frame: pd.DataFrame, column: str) -> pd.Series:
    """Lower-case a (small) name column as plain strings; missing → ``"unknown"``."""
    if column not in frame.columns:
        return pd.Series(MISSING_LABEL, index=frame.index, dtype="str", name=column)
    return as_label(frame, column).astype("str")


def as_optional_text(frame: pd.DataFrame, column: str, *, categorical: bool = False) -> pd.Series:
    """An optional text column (e.g. ``campaign_id``): str, or a ``category`` of str
    when ``categorical`` (few distinct values repeated over many rows); missing stays
    missing (NaN), integers become their decimal text."""
    if column not in frame.columns:
        dtype = pd.CategoricalDtype(pd.Index([], dtype="str")) if categorical else "str"
        return pd.Series(np.nan, index=frame.index, dtype=dtype, name=column)
    values = _integral_ids(frame[column])
    if not categorical:
        return values.astype("str").where(values.notna())
    if isinstance(values.dtype, pd.CategoricalDtype):  # e.g. a Parquet dictionary column
        remap, categories = factorize_text(id_text(pd.Series(values.cat.categories)))
        raw = values.cat.codes.to_numpy()
        codes = np.where(raw >= 0, np.append(remap, -1)[raw], -1).astype(np.int32)
    else:
        codes, categories = factorize_text(id_text(values))
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=categories), index=values.index, name=column
    )


def as_flag(table: SourceTable, column: str, *, allow_missing: bool = True) -> pd.Series:
    """Parse a consent flag: bool, 0/1 or true/false/yes/no text.

    An absent column means consent was not tracked (True); a missing value in a
    present column means no recorded consent (False), or is an error when
    ``allow_missing`` is False.
    """
    frame = table.frame
    if column not in frame.columns:
        return pd.Series(True, index=frame.index, name=column)
    values = frame[column]
    if pd.api.types.is_bool_dtype(values) and not values.isna().any():
        return values.astype(bool)
    missing = values.isna().to_numpy()
    if not allow_missing and missing.any():
        raise fail(table, column, "missing value", missing, values)
    codes, uniques = pd.factorize(values)
    words = [str(u).strip().lower() for u in uniques]
    unknown = [w not in _TRUE_WORDS and w not in _FALSE_WORDS for w in words]
    bad = np.isin(codes, np.flatnonzero(unknown))
    if bad.any():
        raise fail(table, column, "expected a boolean (true/false, yes/no, 1/0)", bad, values)
    truth = np.array([w in _TRUE_WORDS for w in words] + [False], dtype=bool)
    return pd.Series(
        truth[np.where(codes < 0, len(uniques), codes)], index=frame.index, name=column
    )


def vocabulary_check(
    table: SourceTable, column: str, labels: pd.Series, allowed: tuple[str, ...]
) -> None:
    """Refuse normalised ``labels`` outside ``allowed``, listing every unknown value."""
    bad = ~labels.isin(allowed).to_numpy()
    if bad.any():
        unknown = sorted(set(labels[bad].astype(str)))
        raise fail(
            table,
            column,
            f"unknown value(s) {unknown} (expected one of {list(allowed)})",
            bad,
            table.frame[column] if column in table.frame.columns else labels,
        )
