"""Input tables as customer buckets on a Dask cluster: whole histories per bucket.

Every input partition (a Parquet row group, a CSV block, a slice of a DataFrame) goes
through the single-machine loaders (:mod:`fidelite.features.data`) on a worker, rows
dated on or after ``as_of + 1 day`` are dropped, and the rest is split by
``hash(customer_id) % n`` (:func:`bucket_of`, stable across processes and machines).
Bucket ``k`` then concatenates piece ``k`` of every input partition of every table and
is kept in cluster memory as one :class:`~fidelite.features.inputs.Inputs`
(transactions back in file order, duplicates dropped, ids as categories). No Dask
shuffle is involved: the pieces move once, straight to their bucket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.sizeof import sizeof

from fidelite.features._bucket_ids import id_codes, merge_ids, split_ids
from fidelite.features._partition_read import ParquetPart, parquet_parts
from fidelite.features._source import drop_duplicates
from fidelite.features._text import text_hash
from fidelite.features._timestamps import check_date_format
from fidelite.features.cluster import check_worker_headroom, plan_buckets, wait_for
from fidelite.features.contract import CUSTOMERS, EVENTS, TRANSACTIONS
from fidelite.features.data import (
    as_of_bounds,
    duplicated_orders,
    load_coded_transactions,
    load_customers,
    load_events,
    load_transactions,
)
from fidelite.features.inputs import Inputs

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = [
    "CustomerPartitions",
    "bucket_of",
    "current_client",
    "empty_normalised",
    "partition_by_customer",
]

logger = logging.getLogger(__name__)

ROW_COLUMN = "_row"
# Input partitions hold far fewer than 2**40 rows, so (partition, row) packs into an
# int64 that sorts in file order.
_ROWS_PER_PARTITION = 2**40
_CSV_SUFFIXES = (".csv", ".csv.gz")
_ID_COLUMNS = ("customer_id", "order_id", "campaign_id")
_TABLES = ("transactions", "events", "customers")

DaskSource = dd.DataFrame | pd.DataFrame | str | Path
Loader = Callable[..., pd.DataFrame]

_COLUMNS = {
    "transactions": TRANSACTIONS.names,
    "events": EVENTS.names,
    "customers": CUSTOMERS.names,
}
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


@sizeof.register_lazy("fidelite")
def _register_sizes() -> None:
    """Let Dask size the customer buckets (``Inputs``) and their encodings.

    Without this Dask sizes them with ``sys.getsizeof`` (a few dozen bytes): their
    memory counts as "unmanaged", so a worker under pressure cannot spill them.
    """
    from fidelite.features.windows import WindowFeatures

    sizeof.register(Inputs)(_attribute_bytes)
    sizeof.register(WindowFeatures)(_attribute_bytes)


def _attribute_bytes(value: Any, depth: int = 0) -> int:
    """Bytes of an object's attributes (arrays, frames, nested plain objects)."""
    total = 0
    for item in vars(value).values():
        plain = hasattr(item, "__dict__") and not hasattr(item, "nbytes")
        if depth < 2 and plain and not isinstance(item, (pd.DataFrame, pd.Series, type)):
            total += _attribute_bytes(item, depth + 1)
        else:
            total += sizeof(item)
    return total


def current_client() -> Client:
    """The active Dask client; a clear error when none is connected."""
    from distributed import get_client

    try:
        return get_client()
    except ValueError as exc:
        raise RuntimeError(
            "engine 'dask' needs a running Dask client: use features.cluster.dask_client() "
            "(or `fidelite ... --engine dask --scheduler ADDRESS`)"
        ) from exc


# --------------------------------------------------------------------------- inputs
def _read(source: DaskSource, name: str) -> dd.DataFrame:
    """A Dask frame of the contract columns from a frame or a Parquet/CSV path or URL."""
    if isinstance(source, dd.DataFrame):
        frame = source
    elif isinstance(source, pd.DataFrame):
        frame = dd.from_pandas(
            source, npartitions=max(1, min(8, len(source) // 100_000 + 1)), sort=False
        )
    elif isinstance(source, (str, Path)):
        location = str(source)
        if location.lower().endswith(_CSV_SUFFIXES):
            # Gzip is not splittable: one partition per file then.
            blocksize = None if location.lower().endswith(".gz") else "64MB"
            frame = dd.read_csv(location, dtype={c: str for c in _ID_COLUMNS}, blocksize=blocksize)
        else:
            # Parquet file, directory or glob, local or any fsspec URL (s3://, gs://...):
            # read the footer first, then only the contract's columns.
            available = dd.read_parquet(location).columns
            wanted = [c for c in _COLUMNS[name] if c in available]
            return dd.read_parquet(location, columns=wanted or None)
    else:
        raise TypeError(
            f"{name}: expected a Dask/pandas DataFrame or a path/URL, got {type(source).__name__}"
        )
    wanted = [c for c in _COLUMNS[name] if c in frame.columns]
    return frame[wanted] if wanted else frame


def _input_parts(source: DaskSource, name: str) -> list[Any]:
    """The input partitions of one table: local Parquet row groups (read inside the
    splitting task, :mod:`~fidelite.features._partition_read`), else Dask partitions."""
    local = parquet_parts(source)
    return local if local is not None else list(_read(source, name).to_delayed())


def empty_normalised(name: str) -> pd.DataFrame:
    """A zero-row frame with the loader's normalised columns and dtypes."""
    return _LOADERS[name](pd.DataFrame(_PLACEHOLDERS[name]), name="placeholder").iloc[:0]


def bucket_of(customer_id: pd.Series, n_buckets: int) -> np.ndarray:
    """Customer bucket of each row: :func:`text_hash` of the id modulo ``n_buckets``.

    Returns
    -------
    ndarray of int64, shape (n_rows,)
    """
    return (text_hash(customer_id) % np.uint64(n_buckets)).astype(np.int64)


def _split(
    part: pd.DataFrame | ParquetPart,
    name: str,
    end: pd.Timestamp,
    n_buckets: int,
    number: int,
    date_format: str | None = None,
) -> tuple[pd.DataFrame, ...]:
    """Normalise one input partition, cut it at ``end`` and split it into buckets.

    Each piece's ``customer_id`` is a category over the ids it holds
    (:func:`~fidelite.features._bucket_ids.piece_ids`): the partition's ids are hashed
    once here, and a bucket's merge only groups the pieces' dictionaries.
    """
    if isinstance(part, ParquetPart):
        part = part.read(_COLUMNS[name])
    known = None
    if not len(part):
        frame = empty_normalised(name)
    elif name == "transactions":  # the loader factorises the ids anyway: keep its codes
        label = f"{name} (partition {number})"
        frame, known, _ = load_coded_transactions(part, name=label, date_format=date_format)
    else:
        frame = _LOADERS[name](part, name=f"{name} (partition {number})", date_format=date_format)
    keep = np.ones(len(frame), dtype=bool)
    if "timestamp" in frame.columns:
        keep &= (frame["timestamp"] < end).to_numpy()
    if "signup_at" in frame.columns:  # customers who do not exist yet (as Inputs.cut)
        keep &= (frame["signup_at"].isna() | (frame["signup_at"] < end)).to_numpy()
    if not keep.all():
        frame = frame.loc[keep].reset_index(drop=True)
        known = None if known is None else known.take(keep)
    codes, categories = id_codes(frame["customer_id"], known)
    if name != "events":  # their duplicates are dropped in file order
        positions = np.arange(len(frame), dtype=np.int64) + number * _ROWS_PER_PARTITION
        frame = frame.assign(**{ROW_COLUMN: positions})
    order, bounds, ids = split_ids(codes, categories, n_buckets)
    # One take of every other column, then zero-copy slices (a piece pickles as its slice).
    ordered = frame.drop(columns=["customer_id"]).take(order)
    pieces = []
    for k in range(n_buckets):
        piece = ordered.iloc[bounds[k] : bounds[k + 1]].reset_index(drop=True)
        piece.insert(0, "customer_id", ids[k])
        pieces.append(piece)
    return tuple(pieces)


def _concat(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate pieces, merging category columns' categories (no object fallback).

    ``customer_id`` is merged through the pieces' dictionaries (:func:`merge_ids`).
    """
    frame = pd.concat([p.drop(columns=["customer_id"]) for p in pieces], ignore_index=True)
    frame.insert(0, "customer_id", merge_ids([p["customer_id"] for p in pieces]))
    for column in pieces[0].columns.drop("customer_id"):
        if isinstance(pieces[0][column].dtype, pd.CategoricalDtype):
            frame[column] = pd.api.types.union_categoricals(
                [p[column] for p in pieces], sort_categories=True
            )
    return frame


def _merge(
    tx: list[pd.DataFrame],
    ev: list[pd.DataFrame] | None,
    cu: list[pd.DataFrame] | None,
    as_of: pd.Timestamp,
) -> Inputs:
    """One bucket's whole histories as :class:`Inputs` (read at the partitions' as-of).

    ``customer_id`` is a category in every table (sorted categories): every later pass
    over the bucket (each cutoff's vocabulary and features) reads its codes.
    """
    transactions = _concat(tx).sort_values(ROW_COLUMN, kind="stable", ignore_index=True)
    transactions = transactions.drop(columns=[ROW_COLUMN])
    duplicated = duplicated_orders(
        transactions["order_id"], transactions["timestamp"], transactions["amount"]
    )
    transactions = drop_duplicates(
        transactions, duplicated, "transactions", "order, or identical refund"
    )
    customers = None
    if cu is not None:
        customers = _concat(cu).sort_values(ROW_COLUMN, kind="stable", ignore_index=True)
        customers = customers.drop(columns=[ROW_COLUMN])
        duplicated = customers["customer_id"].duplicated(keep="first").to_numpy()
        customers = drop_duplicates(customers, duplicated, "customers", "customer_id")
    events = None if ev is None else _concat(ev)
    return Inputs(transactions, as_of, events, customers)


@dataclass(frozen=True)
class CustomerPartitions:
    """The inputs as customer buckets held in cluster memory (one future per bucket).

    Attributes
    ----------
    buckets : list of Future
        Each resolves to the :class:`~fidelite.features.inputs.Inputs` of bucket ``k``:
        every customer whose id hashes to ``k`` (:func:`bucket_of`), whole histories.
    end : Timestamp
        Exclusive upper bound on timestamps kept (``as_of + 1 day``); features may be
        built for any ``as_of`` up to the day before it.
    client : distributed.Client
    """

    buckets: list[Future]
    end: pd.Timestamp
    client: Client

    @property
    def npartitions(self) -> int:
        return len(self.buckets)


def partition_by_customer(
    transactions: DaskSource,
    events: DaskSource | None = None,
    customers: DaskSource | None = None,
    *,
    as_of: Any,
    npartitions: int | None = None,
    date_format: str | None = None,
    client: Client | None = None,
) -> CustomerPartitions:
    """Normalise, cut at ``as_of`` and bucket the input tables by customer, on the cluster.

    Parameters
    ----------
    transactions, events, customers : dask/pandas DataFrame or path/URL
        Raw or normalised tables; paths may be Parquet files/directories/globs or
        CSV files, local or any fsspec URL (``s3://bucket/tx/*.parquet``).
    as_of : date-like
        Latest calendar day anything will be computed for; later rows are dropped
        before anything moves between workers.
    npartitions : int, optional
        Customer buckets (default: :func:`features.cluster.plan_buckets`, from the
        inputs' size and the workers' memory).
    date_format : str, optional
        strftime layout of text timestamps; default ISO 8601 only (see
        :mod:`fidelite.features.data`).
    client : distributed.Client, optional
        Default: the current client.

    Returns
    -------
    CustomerPartitions
        Computed (the buckets are in cluster memory when this returns).

    Raises
    ------
    features.data.DataContractError
        When a partition breaks the data contract (the message names the partition).
    features.cluster.WorkerMemoryError
        When the workers are too small for their share (names the setting to raise).
    """
    day, end = as_of_bounds(as_of)
    check_date_format(date_format)  # a bad layout fails here, not on every worker
    client = client or current_client()
    check_worker_headroom(client)
    sources = {"transactions": transactions, "events": events, "customers": customers}
    inputs = {name: _input_parts(s, name) for name, s in sources.items() if s is not None}
    largest = max(len(parts) for parts in inputs.values())
    n = int(npartitions or plan_buckets(client, list(sources.values()), at_least=largest))
    if n < 1:
        raise ValueError(f"npartitions must be >= 1, got {npartitions}")
    split = dask.delayed(_split, nout=n, pure=True)
    pieces: dict[str, list[Any]] = {}
    for name, parts in inputs.items():
        split_parts = [split(part, name, end, n, i, date_format) for i, part in enumerate(parts)]
        pieces[name] = [[p[k] for p in split_parts] for k in range(n)]
    merge = dask.delayed(_merge, pure=True)
    buckets = [
        merge(
            pieces["transactions"][k],
            pieces["events"][k] if "events" in pieces else None,
            pieces["customers"][k] if "customers" in pieces else None,
            day,
        )
        for k in range(n)
    ]
    futures = client.compute(buckets)
    wait_for(client, futures, what="partitioning the inputs by customer", gather=False)
    return CustomerPartitions(list(futures), end, client)
