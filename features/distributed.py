"""Point-in-time features on a Dask cluster, identical to :func:`features.build_features`.

How it scales out without a second implementation of the features:

1. **Normalise and cut.** Every input partition goes through the same loaders as the
   single-machine path (:mod:`features.data`) and rows dated on or after
   ``as_of + 1 day`` are dropped *before* anything moves between workers, so the
   future never reaches a worker.
2. **Co-partition by customer.** Each row gets ``_bucket = hash(customer_id) % n``
   (``pd.util.hash_pandas_object``: stable across processes and machines) and every
   table is shuffled on it with the same divisions, so partition ``k`` of the
   transactions, events and customers tables all hold bucket ``k``: whole customer
   histories. Rows also carry their original position (``_row``) so each bucket is
   put back in file order, which keeps duplicate handling and float sums identical.
3. **Per-customer step.** :func:`features.build.customer_features`, the very code
   ``build_features`` runs, is mapped over the aligned partitions. The only
   population-wide inputs of that step, the channel vocabularies (which channels get
   ``order_share_*`` / ``eng_*`` columns), are gathered first in a cheap pass so
   every partition emits the same columns.
4. **Population step.** Columns that rank a customer against everyone
   (:data:`features.build.POPULATION_COLUMNS`: the RFM quintiles) are computed once
   on the gathered inputs (:data:`features.build.POPULATION_INPUTS`, 4 floats per
   customer) with :func:`features.build.population_features` and joined back.

Known, documented differences from the single-machine path (both are broken input
data): duplicate ``order_id`` rows are dropped within a customer's history only (the
single-machine loader also drops repeats across customers), and duplicates are
dropped after the ``as_of`` cut rather than before it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from fidelite.features._columns import check_date_format
from fidelite.features.build import (
    POPULATION_COLUMNS,
    POPULATION_INPUTS,
    ChannelVocabulary,
    channel_vocabulary,
    customer_features,
    population_features,
)
from fidelite.features.consent import load_consent_history
from fidelite.features.data import as_of_bounds, load_customers, load_events, load_transactions
from fidelite.features.inputs import Inputs
from fidelite.features.params import FeatureParams

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "CustomerPartitions",
    "build_features_dask",
    "compute_features",
    "dask_client",
    "features_from_partitions",
    "partition_by_customer",
]

logger = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------- client
def dask_client(
    scheduler: str | None = None,
    workers: int | None = None,
    *,
    threads_per_worker: int = 2,
    memory_limit: str | float = "auto",
) -> Client:
    """Connect to a Dask scheduler, or start a local cluster of worker processes.

    Parameters
    ----------
    scheduler : str, optional
        Scheduler address (``tcp://host:8786``). When given, ``workers`` and the sizing
        arguments are ignored: the cluster is sized by whoever runs it.
    workers : int, optional
        Worker processes of the local cluster (default: half the CPU cores, >= 1).
    threads_per_worker : int, default 2
        LightGBM and pandas both release the GIL, so 2 threads per process pay off.
    memory_limit : str or float, default "auto"
        Per-worker memory limit of the local cluster (e.g. ``"2GB"``); above 60-70 %
        of it workers spill to disk.

    Returns
    -------
    distributed.Client
        Closing it also shuts down a local cluster it started.
    """
    from distributed import Client

    if scheduler:
        return Client(scheduler)
    n_workers = workers or max(1, (os.cpu_count() or 2) // 2)
    return Client(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=":0",  # any free port: several clusters may share a machine
    )


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


# --------------------------------------------------------------------------- features
def _gather(frame: dd.DataFrame) -> pd.DataFrame:
    """Compute partitions straight to the client and concatenate them here.

    ``DataFrame.compute()`` first concatenates every partition on a single worker,
    which needs the whole result in one worker's memory.
    """
    return pd.concat(dask.compute(*frame.to_delayed()))


def _restore(frame: pd.DataFrame | None, name: str) -> pd.DataFrame | None:
    """File order back, helper columns off, loader re-run (drops in-customer duplicates)."""
    if frame is None:
        return None
    frame = frame.sort_values(ROW_COLUMN, kind="stable").reset_index(drop=True)
    frame = frame.drop(columns=[ROW_COLUMN])
    if frame.empty:
        return frame
    return _LOADERS[name](frame, name=name)


def _partition_vocabulary(
    tx: pd.DataFrame,
    ev: pd.DataFrame | None,
    cu: pd.DataFrame | None,
    *,
    as_of: Any,
    params: FeatureParams,
) -> pd.DataFrame:
    """Channels seen in one partition, as rows of (``table``, ``channel``)."""
    vocabulary = channel_vocabulary(_partition_inputs(tx, ev, cu, as_of), params=params)
    rows = [("transactions", c) for c in vocabulary.order_channels]
    rows += [("events", c) for c in vocabulary.event_channels]
    return pd.DataFrame(rows, columns=["table", "channel"], dtype=object)


def _partition_features(
    tx: pd.DataFrame,
    ev: pd.DataFrame | None,
    cu: pd.DataFrame | None,
    *,
    as_of: Any,
    params: FeatureParams,
    vocabulary: ChannelVocabulary,
    consent_history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    inputs = _partition_inputs(tx, ev, cu, as_of, consent_history)
    return customer_features(inputs, params=params, vocabulary=vocabulary)


def _partition_inputs(
    tx: pd.DataFrame,
    ev: pd.DataFrame | None,
    cu: pd.DataFrame | None,
    as_of: Any,
    consent_history: pd.DataFrame | None = None,
) -> Inputs:
    """One partition's whole customer histories as :class:`Inputs` read at ``as_of``.

    The consent history is the whole (small) table, shared by every partition: each
    customer reads only their own rows.
    """
    return Inputs(
        _restore(tx, "transactions"),
        as_of,
        _restore(ev, "events"),
        _restore(cu, "customers"),
        consent_history,
    )


def _global_vocabulary(
    parts: CustomerPartitions, as_of: Any, params: FeatureParams
) -> ChannelVocabulary:
    meta = pd.DataFrame({"table": pd.Series(dtype=object), "channel": pd.Series(dtype=object)})
    seen = _gather(
        dd.map_partitions(
            _partition_vocabulary,
            parts.transactions,
            parts.events,
            parts.customers,
            as_of=as_of,
            params=params,
            meta=meta,
            align_dataframes=False,
        )
    )
    return ChannelVocabulary.from_seen(
        order_channels=seen.loc[seen["table"] == "transactions", "channel"].astype(str),
        event_channels=seen.loc[seen["table"] == "events", "channel"].astype(str),
    )


def _attach_population(part: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    values = population.reindex(part.index)
    return part.assign(**{c: values[c].to_numpy() for c in POPULATION_COLUMNS})


def features_from_partitions(
    parts: CustomerPartitions,
    *,
    as_of: Any,
    params: FeatureParams | None = None,
    consent_history: pd.DataFrame | None = None,
) -> dd.DataFrame:
    """Features as of ``as_of`` from co-partitioned inputs (one per customer).

    Eager: the channel vocabulary and the population columns' inputs (4 floats per
    customer, gathered on the client) are computed here, and the per-customer
    features are persisted on the cluster; attaching the population columns is lazy.

    Parameters
    ----------
    parts : CustomerPartitions
        From :func:`partition_by_customer`, ideally ``.persist()``-ed when building
        several as-of days from the same partitions.
    as_of : date-like
        Must be before ``parts.end``.
    params : FeatureParams, optional
    consent_history : DataFrame, optional
        Normalised by :func:`fidelite.features.consent.load_consent_history`; shipped
        whole to every worker once (it holds a few rows per customer).

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
    vocabulary = _global_vocabulary(parts, day, params)
    meta = _partition_features(
        parts.transactions._meta,
        None if parts.events is None else parts.events._meta,
        None if parts.customers is None else parts.customers._meta,
        as_of=day,
        params=params,
        vocabulary=vocabulary,
        consent_history=None if consent_history is None else consent_history.iloc[:0],
    )
    per_customer = dd.map_partitions(
        _partition_features,
        parts.transactions,
        parts.events,
        parts.customers,
        as_of=day,
        params=params,
        vocabulary=vocabulary,
        consent_history=(
            None if consent_history is None else dask.delayed(consent_history, pure=True)
        ),
        meta=meta,
        align_dataframes=False,
    ).persist()  # read twice below; one row per customer is small next to the inputs
    # Ranks against the whole population: gather the few inputs once, compute with the
    # single-machine function, and ship the result back as one shared graph key.
    population = population_features(_gather(per_customer[list(POPULATION_INPUTS)]))
    shared = dask.delayed(population[list(POPULATION_COLUMNS)], pure=True)
    full_meta = population_features(meta.copy())
    return per_customer.map_partitions(_attach_population, shared, meta=full_meta)


def build_features_dask(
    transactions: DaskSource,
    events: DaskSource | None = None,
    customers: DaskSource | None = None,
    *,
    as_of: Any,
    params: FeatureParams | None = None,
    npartitions: int | None = None,
    date_format: str | None = None,
    consent_history: str | Path | pd.DataFrame | None = None,
) -> dd.DataFrame:
    """:func:`features.build_features` on Dask: same rows, columns and values.

    Parameters
    ----------
    transactions, events, customers : dask/pandas DataFrame or path/URL
        As for :func:`partition_by_customer`.
    as_of : date-like
        Calendar day D; nothing dated on or after D + 1 day is read past the first
        map step.
    params : FeatureParams, optional
    npartitions : int, optional
        Customer buckets (default: 2 per worker thread of the active client).
    date_format : str, optional
        strftime layout of text timestamps; default ISO 8601 only.
    consent_history : path or DataFrame, optional
        Consent changes; read and validated here, on the client.

    Returns
    -------
    dask DataFrame, shape (n_customers, n_features)
        Indexed by ``customer_id``; ``compute_features(result)`` (or
        ``result.compute().sort_index()``) equals ``build_features(...)``.

    Raises
    ------
    features.data.DataContractError
        When a partition breaks the data contract (the message names the partition).
    """
    parts = partition_by_customer(
        transactions,
        events,
        customers,
        as_of=as_of,
        npartitions=npartitions,
        date_format=date_format,
    ).persist()
    history = None
    if consent_history is not None:
        history = load_consent_history(consent_history, date_format=date_format)
    return features_from_partitions(parts, as_of=as_of, params=params, consent_history=history)


def compute_features(features: dd.DataFrame) -> pd.DataFrame:
    """Compute a Dask features frame into the single-machine layout (sorted by customer)."""
    return _gather(features).sort_index()
