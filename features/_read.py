"""Reading CSV and Parquet tables, column-selectively, without validating them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fidelite.errors import DataContractError

__all__ = ["CSV_SUFFIXES", "read_table"]

CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
# Read as text so that ids such as "00123" keep their leading zeros.
_TEXT_ID_COLUMNS = ("customer_id", "order_id", "campaign_id")
# Low-cardinality names: read straight into categories (no per-row strings).
_LABEL_COLUMNS = ("channel", "event_type", "acquisition_channel")


# --------------------------------------------------------------------------- reading
def _suffix_kind(path: Path) -> str | None:
    name = path.name.lower()
    if path.is_dir():
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    return None


def read_table(
    path: str | Path, columns: Sequence[str] | None = None, *, categories: Sequence[str] = ()
) -> pd.DataFrame:
    """Read a CSV or Parquet table without validating it.

    Parameters
    ----------
    path : str or Path
        A ``.csv``/``.csv.gz`` file, a ``.parquet``/``.pq`` file, or a directory of
        Parquet files (e.g. written by Dask).
    columns : sequence of str, optional
        Read only these columns (those the file has); default: every column. Parquet
        skips the others on disk.
    categories : sequence of str
        Text columns to read from Parquet as categories (besides the label columns):
        ids repeated over many rows, decoded once per distinct value.

    Returns
    -------
    DataFrame
        The raw table, shape (n_rows, n_columns). Text columns are Arrow-backed ``str``;
        Parquet label columns (``channel``, ``event_type``, ``acquisition_channel``) are
        read as categories straight from their dictionary. CSV id columns
        (``customer_id``, ``order_id``, ``campaign_id``) are read as text.

    Raises
    ------
    DataContractError
        If the file is missing, has an unsupported suffix or cannot be parsed.
    """
    path = Path(path)
    if not path.exists():
        raise DataContractError(f"{path}: file not found")
    kind = _suffix_kind(path)
    if kind is None:
        raise DataContractError(
            f"{path}: unsupported file type; expected .csv, .csv.gz, .parquet, .pq "
            "or a directory of Parquet files"
        )
    wanted = None if columns is None else set(columns)
    try:
        if kind == "csv":
            return pd.read_csv(
                path,
                dtype={c: str for c in _TEXT_ID_COLUMNS},
                usecols=None if wanted is None else (lambda c: c in wanted),
            )
        return _read_parquet(path, wanted, (*_LABEL_COLUMNS, *categories))
    except pd.errors.EmptyDataError as exc:
        raise DataContractError(f"{path}: table is empty (no header or rows)") from exc
    except Exception as exc:
        raise DataContractError(
            f"{path}: cannot read {kind.upper()} file ({type(exc).__name__}: {exc})"
        ) from exc


def _read_parquet(path: Path, wanted: set[str] | None, categories: Sequence[str]) -> pd.DataFrame:
    """Only the ``wanted`` columns (all when None), ``categories`` as such, text as ``str``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(next(path.rglob("*.parquet")) if path.is_dir() else path)
    names = [n for n in schema.names if wanted is None or n in wanted]
    labels = [n for n in names if n in categories and _is_text(schema.field(n).type)]
    if not path.is_dir() and set(labels) - set(_LABEL_COLUMNS):
        # Ids with too many distinct values for one dictionary page were written as
        # plain pages; reading those as a dictionary hashes every value again (0.8 s
        # CPU for 5M ids, 6x the plain read): they are read as text instead.
        metadata = pq.read_metadata(path)
        labels = [n for n in labels if n in _LABEL_COLUMNS or _dictionary_pages(metadata, n)]
    table = pq.read_table(path, columns=names, read_dictionary=labels)
    # Dictionary columns are turned into categoricals here: Arrow's conversion unifies
    # the dictionaries of every record batch (each a copy of the row group's whole
    # dictionary: 8 x 82k ids per million rows), 4x slower than one concatenation.
    coded = {n: _categorical(table.column(n)) for n in labels}
    text = pd.StringDtype("pyarrow", na_value=np.nan)
    mapping = {pa.string(): text, pa.large_string(): text}
    # self_destruct frees each Arrow column once converted: one copy in memory, not two.
    frame = table.drop_columns(labels).to_pandas(
        types_mapper=mapping.get, self_destruct=True, split_blocks=True
    )
    for position, name in enumerate(names):
        if name in coded:
            frame.insert(position, name, coded[name])
    return frame


def _dictionary_pages(metadata, name: str) -> bool:
    """Whether column ``name`` looks dictionary-encoded in every row group: under 4
    bytes per value uncompressed (indices of at most 32 bits plus a dictionary page of
    at most 1 MiB per million values); plain pages hold every value's text."""
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for i in range(row_group.num_columns):
            chunk = row_group.column(i)
            plain = chunk.total_uncompressed_size > 4 * chunk.num_values
            if chunk.path_in_schema == name and chunk.num_values and plain:
                return False
    return True


def _categorical(column) -> pd.Categorical:
    """A dictionary-encoded Arrow column as a pandas categorical (nulls as NaN).

    Record batches of one row group share its dictionary; only distinct dictionaries
    (one per row group at most) are merged, by the polars text hash.
    """
    import pyarrow as pa

    from fidelite.features._text import factorize_text

    chunks = column.chunks or [pa.array([], column.type)]
    dictionaries, which = [chunks[0].dictionary], []
    for chunk in chunks:
        if not chunk.dictionary.equals(dictionaries[-1]):
            dictionaries.append(chunk.dictionary)
        which.append(len(dictionaries) - 1)
    indices = [_codes(c.indices) for c in chunks]
    if len(dictionaries) == 1 and _distinct(dictionaries[0]):
        codes = np.concatenate(indices).astype(np.int32, copy=False)
        categories = pd.Index(pd.array(dictionaries[0], dtype="str"))
        # Checked distinct above (a polars hash count, ~7x cheaper than the check
        # pandas would run on the categories).
        fastpath = getattr(pd.CategoricalDtype, "_from_fastpath", None)
        if fastpath is not None:
            dtype = fastpath(categories, False)
            return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
    else:
        merged, categories = factorize_text(pa.chunked_array(dictionaries))
        start = np.cumsum([0] + [len(d) for d in dictionaries])
        # -1 (null) indexes the appended -1: nulls stay missing.
        remap = [np.append(merged[a:b], -1) for a, b in zip(start[:-1], start[1:], strict=True)]
        codes = np.concatenate([remap[w][i] for w, i in zip(which, indices, strict=True)])
    return pd.Categorical.from_codes(
        codes.astype(np.int32, copy=False), categories=categories, validate=False
    )


def _distinct(dictionary) -> bool:
    """Whether an Arrow dictionary holds distinct, non-null values (Arrow writes them
    so; other writers may not, and those dictionaries are merged by hashing)."""
    import polars as pl

    return dictionary.null_count == 0 and pl.from_arrow(dictionary).n_unique() == len(dictionary)


def _codes(indices) -> np.ndarray:
    """Dictionary indices as numpy (no copy without nulls; nulls as -1)."""
    if indices.null_count:
        indices = indices.fill_null(-1)
    return np.asarray(indices)


def _is_text(arrow_type) -> bool:
    import pyarrow as pa

    # pandas 3 writes large_string columns.
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
