"""Point-in-time features on a Dask cluster, identical to :func:`features.build_features`.

How it scales out without a second implementation of the features:

1. **Normalise, cut and split.** Every input partition (a Parquet row group, a CSV
   block, a slice of a DataFrame) goes through the single-machine loaders
   (:mod:`features.data`) on a worker, rows dated on or after ``as_of + 1 day`` are
   dropped, and the rest is split into customer buckets
   (``hash(customer_id) % n``, stable across processes and machines). Only the
   columns of the data contract are read.
2. **Gather whole histories.** Bucket ``k`` concatenates piece ``k`` of every input
   partition of every table: it holds whole customer histories, kept in cluster
   memory (spilled to disk under memory pressure) as one
   :class:`~fidelite.features.inputs.Inputs`.
   Transactions are put back in file order, so duplicate handling and float sums
   match the single-machine path.
3. **Per-customer step.** :func:`features.build.customer_features`, the very code
   ``build_features`` runs, is mapped over the buckets, with the population's
   channel vocabulary (gathered first, a few names) so every bucket emits the same
   columns.
4. **Population step.** :data:`features.build.POPULATION_COLUMNS` (RFM quintiles) rank
   a customer against everyone: their inputs (4 floats per customer) are gathered,
   ranked once with :func:`features.build.population_features`, and sent back.

The number of buckets follows the workers' memory (:func:`features.cluster.plan_buckets`)
so stored buckets spill rather than overflow, and every wait goes through
:func:`features.cluster.wait_for`, which fails with a message naming the memory setting
instead of hanging.

Known, documented differences from the single-machine path (both are broken input
data): duplicate ``order_id`` rows are dropped within a customer's history only (the
single-machine loader also drops repeats across customers), and duplicates are dropped
after the ``as_of`` cut rather than before it.
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

from fidelite.features._columns import check_date_format, drop_duplicates, text_hash
from fidelite.features.build import (
    POPULATION_COLUMNS,
    POPULATION_INPUTS,
    ChannelVocabulary,
    channel_vocabulary,
    customer_features,
    population_features,
)
from fidelite.features.cluster import (
    check_worker_headroom,
    dask_client,
    plan_buckets,
    wait_for,
)
from fidelite.features.contract import CUSTOMERS, EVENTS, TRANSACTIONS
from fidelite.features.data import (
    _duplicated_orders,
    as_of_bounds,
    load_customers,
    load_events,
    load_transactions,
)
from fidelite.features.inputs import Inputs
from fidelite.features.params import FeatureParams

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = [
    "CustomerPartitions",
    "build_features_dask",
    "bucket_of",
    "compute_features",
    "current_client",
    "dask_client",
    "features_from_partitions",
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


def _empty_normalised(name: str) -> pd.DataFrame:
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
    part: pd.DataFrame,
    name: str,
    end: pd.Timestamp,
    n_buckets: int,
    number: int,
    date_format: str | None = None,
) -> tuple[pd.DataFrame, ...]:
    """Normalise one input partition, cut it at ``end`` and split it into buckets."""
    if len(part):
        label = f"{name} (partition {number})"
        frame = _LOADERS[name](part, name=label, date_format=date_format)
    else:
        frame = _empty_normalised(name)
    if "timestamp" in frame.columns:
        frame = frame.loc[(frame["timestamp"] < end).to_numpy()]
    if name != "events":  # their duplicates are dropped in file order
        positions = np.arange(len(frame), dtype=np.int64) + number * _ROWS_PER_PARTITION
        frame = frame.assign(**{ROW_COLUMN: positions})
    buckets = bucket_of(frame["customer_id"], n_buckets)
    order = np.argsort(buckets, kind="stable")
    bounds = np.searchsorted(buckets[order], np.arange(n_buckets + 1))
    return tuple(
        frame.take(order[bounds[k] : bounds[k + 1]]).reset_index(drop=True)
        for k in range(n_buckets)
    )


def _concat(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate pieces, merging category columns' categories (no object fallback)."""
    frame = pd.concat(pieces, ignore_index=True)
    for column in pieces[0].columns:
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
    """One bucket's whole histories as :class:`Inputs` (read at the partitions' as-of)."""
    transactions = _concat(tx).sort_values(ROW_COLUMN, kind="stable", ignore_index=True)
    transactions = transactions.drop(columns=[ROW_COLUMN])
    duplicated = _duplicated_orders(
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
    return Inputs(
        _categorical_ids(transactions),
        as_of,
        _categorical_ids(events),
        _categorical_ids(customers),
    )


def _categorical_ids(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """``customer_id`` as a category: every later pass over the bucket (each cutoff's
    vocabulary and features) reads its codes instead of hashing the ids again."""
    if frame is None:
        return None
    return frame.assign(customer_id=frame["customer_id"].astype("category"))


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
    frames = {name: _read(s, name) for name, s in sources.items() if s is not None}
    largest = max(f.npartitions for f in frames.values())
    n = int(npartitions or plan_buckets(client, list(sources.values()), at_least=largest))
    if n < 1:
        raise ValueError(f"npartitions must be >= 1, got {npartitions}")
    split = dask.delayed(_split, nout=n, pure=True)
    pieces: dict[str, list[Any]] = {}
    for name, frame in frames.items():
        parts = [
            split(part, name, end, n, i, date_format) for i, part in enumerate(frame.to_delayed())
        ]
        pieces[name] = [[p[k] for p in parts] for k in range(n)]
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


# --------------------------------------------------------------------------- features
def _bucket_vocabulary(bucket: Inputs, as_of: pd.Timestamp, params: FeatureParams):
    if bucket.transactions.empty and bucket.customers is None:
        return set(), set()
    vocabulary = channel_vocabulary(bucket, as_of=as_of, params=params)
    return set(vocabulary.order_channels), set(vocabulary.event_channels)


def _bucket_features(
    bucket: Inputs,
    as_of: pd.Timestamp,
    params: FeatureParams,
    vocabulary: ChannelVocabulary,
) -> pd.DataFrame:
    return customer_features(bucket, as_of=as_of, params=params, vocabulary=vocabulary)


def _population_inputs(features: pd.DataFrame) -> pd.DataFrame:
    return features[list(POPULATION_INPUTS)]


def _attach_population(features: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    return features.assign(**{c: population[c].array for c in POPULATION_COLUMNS})


def vocabulary_at(
    parts: CustomerPartitions, as_of: pd.Timestamp, params: FeatureParams
) -> ChannelVocabulary:
    """The channels the whole population has seen by ``as_of`` (gathers a few names)."""
    client = parts.client
    seen = wait_for(
        client,
        client.map(_bucket_vocabulary, parts.buckets, as_of=as_of, params=params, pure=False),
        what=f"channel vocabulary at {as_of.date()}",
    )
    return ChannelVocabulary.from_seen(
        set().union(*(s[0] for s in seen)), set().union(*(s[1] for s in seen))
    )


def features_from_partitions(
    parts: CustomerPartitions, *, as_of: Any, params: FeatureParams | None = None
) -> dd.DataFrame:
    """Features as of ``as_of`` from customer buckets, computed and kept on the cluster.

    The channel vocabulary and the population columns' inputs (4 floats per customer)
    are gathered on the client; the feature rows stay on the workers.

    Parameters
    ----------
    parts : CustomerPartitions
    as_of : date-like
        Must be before ``parts.end``.
    params : FeatureParams, optional

    Returns
    -------
    dask DataFrame
        Same columns and dtypes as :func:`features.build_features`, indexed by
        ``customer_id``; partitions are customer buckets, not sorted by id (use
        :func:`compute_features` for the sorted pandas frame).
    """
    params = params or FeatureParams()
    day, end = as_of_bounds(as_of)
    if end > parts.end:
        raise ValueError(
            f"as_of {day.date()} is after the partitions' cut "
            f"({(parts.end - pd.Timedelta(days=1)).date()}): later rows were dropped"
        )
    client = parts.client
    vocabulary = vocabulary_at(parts, day, params)
    per_customer = client.map(
        _bucket_features, parts.buckets, as_of=day, params=params, vocabulary=vocabulary
    )
    inputs = wait_for(
        client,
        client.map(_population_inputs, per_customer),
        what=f"features at {day.date()}",
    )
    sizes = [len(part) for part in inputs]
    population = population_features(pd.concat(inputs))[list(POPULATION_COLUMNS)]
    slices = np.split(np.arange(len(population)), np.cumsum(sizes)[:-1])
    shared = client.scatter([population.iloc[rows] for rows in slices])
    full = client.map(_attach_population, per_customer, shared)
    meta = _attach_population(
        _bucket_features(Inputs(_empty_normalised("transactions"), day), day, params, vocabulary),
        population.iloc[:0],
    )
    # The partitions already have the single-machine dtypes: no conversion to
    # dask's preferred string dtype on the way out.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_delayed(full, meta=meta, verify_meta=False)


def build_features_dask(
    transactions: DaskSource,
    events: DaskSource | None = None,
    customers: DaskSource | None = None,
    *,
    as_of: Any,
    params: FeatureParams | None = None,
    npartitions: int | None = None,
    date_format: str | None = None,
) -> dd.DataFrame:
    """:func:`features.build_features` on Dask: same rows, columns and values.

    Parameters
    ----------
    transactions, events, customers : dask/pandas DataFrame or path/URL
        As for :func:`partition_by_customer`.
    as_of : date-like
        Calendar day D; nothing dated on or after D + 1 day leaves the first map step.
    params : FeatureParams, optional
    npartitions : int, optional
        Customer buckets (default: sized to the workers' memory).
    date_format : str, optional
        strftime layout of text timestamps; default ISO 8601 only.

    Returns
    -------
    dask DataFrame, shape (n_customers, n_features)
        Indexed by ``customer_id``; ``compute_features(result)`` equals
        ``build_features(...)``.
    """
    parts = partition_by_customer(
        transactions,
        events,
        customers,
        as_of=as_of,
        npartitions=npartitions,
        date_format=date_format,
    )
    return features_from_partitions(parts, as_of=as_of, params=params)


def compute_features(features: dd.DataFrame) -> pd.DataFrame:
    """Gather a Dask features frame into the single-machine layout (sorted by customer).

    Partitions go straight to the client (``DataFrame.compute()`` would first
    concatenate them on one worker, which needs the whole result in its memory).
    """
    client = current_client()
    parts = wait_for(client, client.compute(features.to_delayed()), what="gathering the features")
    return pd.concat(parts).sort_index()
