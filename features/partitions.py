"""Input tables co-partitioned by customer on Dask: :func:`partition_by_customer`.

1. **Normalise and cut.** Every input partition goes through the same loaders as the
   single-machine path (:mod:`fidelite.features.data`) and rows dated on or after
   ``as_of + 1 day`` are dropped *before* anything moves between workers, so the
   future never reaches a worker.
2. **Co-partition by customer.** Each row gets ``_bucket = hash(customer_id) % n``
   (``pd.util.hash_pandas_object``: stable across processes and machines) and every
   table is shuffled on it with the same divisions, so partition ``k`` of the
   transactions, events and customers tables all hold bucket ``k``: whole customer
   histories. Rows also carry their original position (``_row``) so each bucket is
   put back in file order (:func:`restore`), which keeps duplicate handling and float
   sums identical to the single-machine path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from fidelite.features._columns import check_date_format
from fidelite.features.data import as_of_bounds, load_customers, load_events, load_transactions

__all__ = [
    "BUCKET_COLUMN",
    "ROW_COLUMN",
    "CustomerPartitions",
    "DaskSource",
    "partition_by_customer",
    "restore",
]

BUCKET_COLUMN = "_bucket"
ROW_COLUMN = "_row"
# Input partitions hold far fewer than 2**40 rows, so (partition, row) packs into an
# int64 that sorts in file order.
_ROWS_PER_PARTITION = 2**40
_CSV_SUFFIXES = (".csv", ".csv.gz")
_ID_COLUMNS = ("customer_id", "order_id", "campaign_id")

DaskSource = dd.DataFrame | pd.DataFrame | str | Path
Loader = Callable[..., pd.DataFrame]

# One placeholder row per table: loading it and keeping zero rows gives the exact
# normalised dtypes for empty partitions (the loaders refuse empty tables).
_PLACEHOLDERS: dict[str, dict[str, list[Any]]] = {
    "transactions": {
        "customer_id": ["_"],
        "order_id": ["_"],
        "timestamp": ["2000-01-01"],
        "amount": [0.0],
    },
    "events": {
        "customer_id": ["_"],
        "timestamp": ["2000-01-01"],
        "channel": ["_"],
        "event_type": ["_"],
    },
    "customers": {"customer_id": ["_"]},
}
_LOADERS: dict[str, Loader] = {
    "transactions": load_transactions,
    "events": load_events,
    "customers": load_customers,
}


def _default_npartitions(*frames: dd.DataFrame | None) -> int:
    """Two buckets per worker thread of the active client, and never fewer than the
    largest input's partitions: shuffling into fewer, larger partitions makes Dask
    concatenate inputs first, which costs memory on every worker."""
    inputs = max(f.npartitions for f in frames if f is not None)
    try:
        from distributed import get_client

        threads = sum(get_client().nthreads().values())
    except (ImportError, ValueError):
        return inputs
    return max(2, 2 * threads, inputs)


# --------------------------------------------------------------------------- inputs
def _read(source: DaskSource, name: str) -> dd.DataFrame:
    """A Dask frame from a Dask/pandas frame, a Parquet path/URL or a CSV path/URL."""
    if isinstance(source, dd.DataFrame):
        return source
    if isinstance(source, pd.DataFrame):
        return dd.from_pandas(
            source, npartitions=max(1, min(8, len(source) // 100_000 + 1)), sort=False
        )
    if not isinstance(source, (str, Path)):
        raise TypeError(
            f"{name}: expected a Dask/pandas DataFrame or a path/URL, got {type(source).__name__}"
        )
    location = str(source)
    if location.lower().endswith(_CSV_SUFFIXES):
        # Gzip is not splittable: one partition per file then.
        blocksize = None if location.lower().endswith(".gz") else "64MB"
        return dd.read_csv(location, dtype={c: str for c in _ID_COLUMNS}, blocksize=blocksize)
    # Parquet file, directory or glob, local or any fsspec URL (s3://, gs://, abfs://).
    return dd.read_parquet(location)


def _empty_normalised(name: str) -> pd.DataFrame:
    """A zero-row frame with the loader's normalised columns and dtypes."""
    return _LOADERS[name](pd.DataFrame(_PLACEHOLDERS[name]), name="placeholder").iloc[:0]


def _prepare_partition(
    part: pd.DataFrame,
    name: str,
    end: pd.Timestamp,
    date_format: str | None = None,
    partition_info: dict | None = None,
) -> pd.DataFrame:
    """Normalise one input partition, cut it at ``end`` and tag rows with bucket and position.

    Category columns become plain strings so partitions with different category sets
    concatenate cleanly in the shuffle; ``_bucket`` is filled in by the caller.
    """
    number = partition_info["number"] if partition_info else 0
    if len(part):
        label = f"{name} (partition {number})"
        frame = _LOADERS[name](part, name=label, date_format=date_format)
    else:
        frame = _empty_normalised(name)
    if "timestamp" in frame.columns:
        frame = frame.loc[(frame["timestamp"] < end).to_numpy()]
    frame = frame.astype(
        {c: "str" for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    )
    positions = np.arange(len(frame), dtype=np.int64) + number * _ROWS_PER_PARTITION
    return frame.assign(**{ROW_COLUMN: positions}).reset_index(drop=True)


def _with_bucket(frame: pd.DataFrame, npartitions: int) -> pd.DataFrame:
    hashes = pd.util.hash_pandas_object(frame["customer_id"], index=False).to_numpy()
    return frame.assign(**{BUCKET_COLUMN: (hashes % np.uint64(npartitions)).astype(np.int64)})


def _cut_and_bucket(
    part: pd.DataFrame,
    name: str,
    end: pd.Timestamp,
    npartitions: int,
    date_format: str | None,
    partition_info: dict | None = None,
) -> pd.DataFrame:
    prepared = _prepare_partition(part, name, end, date_format, partition_info)
    return _with_bucket(prepared, npartitions)


def _co_partition(
    source: DaskSource,
    name: str,
    end: pd.Timestamp,
    npartitions: int,
    date_format: str | None = None,
) -> dd.DataFrame:
    """Normalise, cut at ``end`` and shuffle so partition k holds bucket k exactly."""
    frame = _read(source, name)
    meta = _with_bucket(_prepare_partition(frame._meta, name, end), npartitions)
    tagged = frame.map_partitions(_cut_and_bucket, name, end, npartitions, date_format, meta=meta)
    # Explicit divisions 0, 1, ..., n-1 (n-1 closes the last one): a range shuffle
    # with no sampling pass, and the same bucket -> partition map for every table.
    divisions = [*range(npartitions), npartitions - 1]
    return tagged.set_index(BUCKET_COLUMN, divisions=divisions)


@dataclass(frozen=True)
class CustomerPartitions:
    """Input tables co-partitioned by customer: partition k of each holds bucket k.

    Attributes
    ----------
    transactions : dask DataFrame
        Normalised transactions with ``timestamp < end``, indexed by ``_bucket``.
    events, customers : dask DataFrame or None
        Same partitioning; customers are not cut (consent applies whenever known).
    end : Timestamp
        Exclusive upper bound on timestamps kept (``as_of + 1 day``); features may be
        built for any ``as_of`` up to the day before it.
    """

    transactions: dd.DataFrame
    events: dd.DataFrame | None
    customers: dd.DataFrame | None
    end: pd.Timestamp

    @property
    def npartitions(self) -> int:
        return self.transactions.npartitions

    def persist(self) -> CustomerPartitions:
        """Run the shuffles once and keep the result in cluster memory (spilling to disk)."""
        tx, ev, cu = dask.persist(self.transactions, self.events, self.customers)
        return CustomerPartitions(tx, ev, cu, self.end)


def partition_by_customer(
    transactions: DaskSource,
    events: DaskSource | None = None,
    customers: DaskSource | None = None,
    *,
    as_of: Any,
    npartitions: int | None = None,
    date_format: str | None = None,
) -> CustomerPartitions:
    """Normalise, cut at ``as_of`` and co-partition the input tables by customer (lazy).

    Parameters
    ----------
    transactions, events, customers : dask/pandas DataFrame or path/URL
        Raw or normalised tables; paths may be Parquet files/directories/globs or
        CSV files, local or any fsspec URL (``s3://bucket/tx/*.parquet``).
    as_of : date-like
        Latest calendar day anything will be computed for; later rows are dropped
        before the shuffle.
    npartitions : int, optional
        Customer buckets (default: 2 per worker thread of the active client, at least
        the largest input's partition count).
    date_format : str, optional
        strftime layout of text timestamps; default ISO 8601 only (see
        :mod:`fidelite.features.data`).

    Returns
    -------
    CustomerPartitions
    """
    _, end = as_of_bounds(as_of)
    check_date_format(date_format)  # a bad layout fails here, not on every worker
    frames = {
        "transactions": _read(transactions, "transactions"),
        "events": None if events is None else _read(events, "events"),
        "customers": None if customers is None else _read(customers, "customers"),
    }
    n = int(npartitions or _default_npartitions(*frames.values()))
    if n < 1:
        raise ValueError(f"npartitions must be >= 1, got {npartitions}")
    shuffled = {
        name: None if frame is None else _co_partition(frame, name, end, n, date_format)
        for name, frame in frames.items()
    }
    return CustomerPartitions(
        shuffled["transactions"], shuffled["events"], shuffled["customers"], end
    )


# --------------------------------------------------------------------------- back
def restore(frame: pd.DataFrame | None, name: str) -> pd.DataFrame | None:
    """File order back, helper columns off, loader re-run (drops in-customer duplicates)."""
    if frame is None:
        return None
    frame = frame.sort_values(ROW_COLUMN, kind="stable").reset_index(drop=True)
    frame = frame.drop(columns=[ROW_COLUMN])
    if frame.empty:
        return frame
    return _LOADERS[name](frame, name=name)
