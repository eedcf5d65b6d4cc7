"""Customer ids of the Dask customer buckets, hashed once per input partition.

An input partition's ids are factorised once (by the loader, or from its Parquet
dictionary); each bucket piece then carries them as a category over only the ids it
holds, and a bucket's merge groups the pieces' small dictionaries instead of every row's
text. The bucket's ``customer_id`` ends up a category with sorted categories, as
``astype("category")`` would give, so every later pass reads codes, never text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fidelite.features._arrays import factorize_ids
from fidelite.features._columns import IdCodes
from fidelite.features._text import factorize_text

__all__ = ["id_codes", "merge_ids", "split_ids"]


def id_codes(ids: pd.Series, known: IdCodes | None = None) -> IdCodes:
    """Codes (int64, shape (n_rows,)) and distinct ids of a normalised id column.

    ``known`` (the loader's own factorisation of these rows) is used as is; categories
    (events, Parquet dictionaries) give their codes; other text is hashed once.
    """
    if known is not None:
        return IdCodes(np.asarray(known.codes, dtype=np.int64), pd.Index(known.categories))
    codes, categories = factorize_ids(ids)
    return IdCodes(np.asarray(codes, dtype=np.int64), pd.Index(categories))


def split_ids(
    codes: np.ndarray, categories: pd.Index, n_buckets: int
) -> tuple[np.ndarray, np.ndarray, list[pd.Categorical]]:
    """Rows grouped by customer bucket, and each group's ids as a small category.

    A customer's bucket is :func:`bucket_of` of their id, so the partition's distinct
    ids split into disjoint per-bucket lists: everything is computed per distinct id
    and then looked up per row (no sort or search of the rows beyond one radix sort).

    Parameters
    ----------
    codes : ndarray of int64, shape (n_rows,)
        Positions in ``categories`` (the input partition's distinct ids).
    categories : Index of str, shape (n_ids,)
    n_buckets : int

    Returns
    -------
    order : ndarray of int64, shape (n_rows,)
        Rows sorted by bucket (stable: file order within a bucket).
    bounds : ndarray of int64, shape (n_buckets + 1,)
        Bucket ``k`` is ``order[bounds[k]:bounds[k + 1]]``.
    ids : list of Categorical
        ``ids[k]``: the ids of those rows, over only the ids bucket ``k`` holds.
    """
    from fidelite.features.partitions import bucket_of

    small = np.int16 if n_buckets < 2**15 - 1 else np.int32
    id_bucket = bucket_of(pd.Series(categories), n_buckets).astype(small)
    # Ids without rows (cut at the as-of day) go to a bucket past the last.
    id_bucket[np.bincount(codes, minlength=len(categories)) == 0] = n_buckets
    rows = id_bucket[codes]
    # Small integer keys: numpy's stable sort is then a radix sort, O(n).
    order = np.argsort(rows, kind="stable")
    bounds = np.searchsorted(rows[order], np.arange(n_buckets + 1))
    id_order = np.argsort(id_bucket, kind="stable")
    id_bounds = np.searchsorted(id_bucket[id_order], np.arange(n_buckets + 2))
    local = np.empty(len(categories), dtype=np.int64)
    local[id_order] = np.arange(len(categories)) - id_bounds[id_bucket[id_order]]
    sorted_codes = local[codes[order]]
    ids = [
        _categorical(
            sorted_codes[bounds[k] : bounds[k + 1]],
            categories.take(id_order[id_bounds[k] : id_bounds[k + 1]]),
        )
        for k in range(n_buckets)
    ]
    return order, bounds, ids


def merge_ids(pieces: list[pd.Series]) -> pd.Categorical:
    """The pieces' categorical ids concatenated, as one category with sorted categories.

    Only the pieces' dictionaries are grouped (:func:`factorize_text`: polars hash,
    checked by a second hash), not every row's text.
    """
    chunks = [_arrow_text(p.cat.categories) for p in pieces]
    remap, distinct = factorize_text(pa.chunked_array(chunks, type=pa.large_string()))
    offsets = np.cumsum([0, *(len(c) for c in chunks)])
    codes = np.concatenate(
        [np.zeros(0, dtype=np.int64)]
        + [remap[offsets[k] + p.cat.codes.to_numpy()] for k, p in enumerate(pieces)]
    ).astype(np.int64)
    order = np.asarray(pc.sort_indices(_arrow_text(distinct)), dtype=np.int64)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return _categorical(rank[codes] if len(codes) else codes, distinct.take(order))


def _arrow_text(index: pd.Index) -> pa.Array:
    arrow = getattr(index.array, "_pa_array", None)
    if arrow is None:
        arrow = pa.array(np.asarray(index, dtype=object), type=pa.large_string())
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    return arrow.cast(pa.large_string())


def _categorical(codes: np.ndarray, categories: pd.Index) -> pd.Categorical:
    """``Categorical.from_codes`` over categories known to be distinct."""
    categories = pd.Index(categories, dtype="str")
    # Distinct by construction: skip CategoricalDtype's uniqueness check (a pandas hash
    # of every id, slower than the whole merge) where pandas offers that path.
    fastpath = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    dtype = fastpath(categories, False) if fastpath else pd.CategoricalDtype(categories)
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
