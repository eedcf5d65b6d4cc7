"""Point-in-time features on a Dask cluster, identical to :func:`features.build_features`.

How it scales out without a second implementation of the features:

1. **Normalise and cut**, 2. **co-partition by customer**: every table is loaded by
   the single-machine loaders on the workers, cut at ``as_of + 1 day`` before any
   shuffle, and bucketed by a stable hash of ``customer_id`` so partition ``k`` of
   every table holds whole customer histories (:mod:`fidelite.features.partitions`).
3. **Per-customer step.** :func:`features.build.customer_features`, the very code
   ``build_features`` runs, is mapped over the aligned partitions. The only
   population-wide inputs of that step, the channel vocabularies (which channels get
   ``order_share_*`` / ``eng_*`` columns), are gathered first in a cheap pass so
   every partition emits the same columns.
   The consent history, a few rows per customer, is shipped whole to every worker.
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.dataframe as dd
import pandas as pd

from fidelite.features.build import (
    POPULATION_COLUMNS,
    POPULATION_INPUTS,
    ChannelVocabulary,
    channel_vocabulary,
    customer_features,
    population_features,
)
from fidelite.features.consent import load_consent_history
from fidelite.features.data import as_of_bounds
from fidelite.features.inputs import Inputs
from fidelite.features.params import FeatureParams
from fidelite.features.partitions import (
    BUCKET_COLUMN,
    ROW_COLUMN,
    CustomerPartitions,
    DaskSource,
    partition_by_customer,
    restore,
)

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "BUCKET_COLUMN",
    "ROW_COLUMN",
    "CustomerPartitions",
    "build_features_dask",
    "compute_features",
    "dask_client",
    "features_from_partitions",
    "partition_by_customer",
]

logger = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------- features
def _gather(frame: dd.DataFrame) -> pd.DataFrame:
    """Compute partitions straight to the client and concatenate them here.

    ``DataFrame.compute()`` first concatenates every partition on a single worker,
    which needs the whole result in one worker's memory.
    """
    return pd.concat(dask.compute(*frame.to_delayed()))


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
        restore(tx, "transactions"),
        as_of,
        restore(ev, "events"),
        restore(cu, "customers"),
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
