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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from fidelite.features.build import (
    POPULATION_COLUMNS,
    POPULATION_INPUTS,
    ChannelVocabulary,
    channel_vocabulary,
    customer_features,
    population_features,
)
from fidelite.features.cluster import dask_client, wait_for
from fidelite.features.data import as_of_bounds
from fidelite.features.inputs import Inputs
from fidelite.features.params import FeatureParams
from fidelite.features.partitions import (
    CustomerPartitions,
    DaskSource,
    bucket_of,
    current_client,
    empty_normalised,
    partition_by_customer,
)

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = [
    "CustomerPartitions",
    "EncodedPartitions",
    "build_features_dask",
    "bucket_of",
    "compute_features",
    "current_client",
    "dask_client",
    "features_from_partitions",
    "partition_by_customer",
]

logger = logging.getLogger(__name__)


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
    consent_history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    inputs = _with_history(bucket, consent_history)
    return customer_features(inputs, as_of=as_of, params=params, vocabulary=vocabulary)


def _with_history(bucket: Inputs, consent_history: pd.DataFrame | None) -> Inputs:
    """The bucket with the (small, shared) consent history: each customer reads their rows."""
    if consent_history is None:
        return bucket
    return replace(bucket, consent_history=consent_history)


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
    parts: CustomerPartitions,
    *,
    as_of: Any,
    params: FeatureParams | None = None,
    consent_history: pd.DataFrame | None = None,
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
    consent_history : DataFrame, optional
        Normalised by :func:`fidelite.features.consent.load_consent_history`; sent to
        every worker once (it holds a few rows per customer).

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
    history = None if consent_history is None else client.scatter(consent_history, broadcast=True)
    per_customer = client.map(
        _bucket_features,
        parts.buckets,
        as_of=day,
        params=params,
        vocabulary=vocabulary,
        consent_history=history,
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
    empty = Inputs(empty_normalised("transactions"), day)
    meta = _attach_population(
        _bucket_features(
            empty,
            day,
            params,
            vocabulary,
            None if consent_history is None else consent_history.iloc[:0],
        ),
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
    consent_history: str | Path | pd.DataFrame | None = None,
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
    consent_history : path or DataFrame, optional
        Consent changes; read and validated here, on the client (a few rows per
        customer), then sent to every worker.

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
    history = load_consent_history_before(consent_history, date_format, parts.end)
    return features_from_partitions(parts, as_of=as_of, params=params, consent_history=history)


def load_consent_history_before(
    source: str | Path | pd.DataFrame | None, date_format: str | None, end: pd.Timestamp
) -> pd.DataFrame | None:
    """The consent history loaded here, without changes dated on or after ``end``."""
    if source is None:
        return None
    from fidelite.features.consent import load_consent_history

    history = load_consent_history(source, date_format=date_format)
    return history.loc[(history["changed_at"] < end).to_numpy()].reset_index(drop=True)


def compute_features(features: dd.DataFrame) -> pd.DataFrame:
    """Gather a Dask features frame into the single-machine layout (sorted by customer).

    Partitions go straight to the client (``DataFrame.compute()`` would first
    concatenate them on one worker, which needs the whole result in its memory).
    """
    client = current_client()
    parts = wait_for(client, client.compute(features.to_delayed()), what="gathering the features")
    return _sorted_concat(parts)


def _sorted_concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat(parts).sort_index()``, emptying ``parts`` once concatenated.

    The client then holds two copies of the frame at most, not three (the gathered
    parts, the concatenation and the sorted frame): at 5M customers one window's
    features are ~3 GB, and the client holds every window until the fit.
    """
    frame = pd.concat(parts)
    parts.clear()
    return frame.sort_index()


# --------------------------------------------------------------------------- many cutoffs
@dataclass(frozen=True)
class EncodedPartitions:
    """Customer buckets encoded once on the workers (one ``WindowFeatures`` per bucket).

    Every cutoff up to the partitions' as-of day is then a cheap map over the buckets;
    only per-customer rows come back to the client.

    Attributes
    ----------
    buckets : list of Future
        Each resolves to a :class:`fidelite.features.windows.WindowFeatures`.
    as_of : Timestamp
    client : distributed.Client
    """

    buckets: list[Future]
    as_of: pd.Timestamp
    client: Client

    @classmethod
    def from_partitions(
        cls,
        parts: CustomerPartitions,
        params: FeatureParams | None = None,
        consent_history: pd.DataFrame | None = None,
    ) -> EncodedPartitions:
        """Encode every bucket where it lives; the buckets' tables are then released.

        ``consent_history`` (normalised, cut at the partitions' as-of day) is shared by
        every bucket.
        """
        client = parts.client
        history = (
            None if consent_history is None else client.scatter(consent_history, broadcast=True)
        )
        encoded = client.map(
            _encode, parts.buckets, params=params or FeatureParams(), consent_history=history
        )
        wait_for(client, encoded, what="encoding the customer buckets", gather=False)
        as_of = parts.end - pd.Timedelta(days=1)
        return cls(encoded, as_of, client)

    def vocabulary(self, day: pd.Timestamp) -> ChannelVocabulary:
        """The channels the whole population has seen by ``day`` (gathers a few names)."""
        seen = wait_for(
            self.client,
            self.client.map(_encoded_vocabulary, self.buckets, day=day),
            what=f"channel vocabulary at {day.date()}",
        )
        return ChannelVocabulary.from_seen(
            set().union(*(v.order_channels for v in seen)),
            set().union(*(v.event_channels for v in seen)),
        )

    def features(self, as_of: Any) -> pd.DataFrame:
        """``build_features`` at ``as_of`` (sorted by customer), gathered on the client."""
        day, _ = as_of_bounds(as_of)
        client = self.client
        vocabulary = self.vocabulary(day)
        parts = wait_for(
            client,
            client.map(_encoded_features, self.buckets, day=day, vocabulary=vocabulary),
            what=f"features at {day.date()}",
        )
        return population_features(_sorted_concat(parts))

    def outcomes(self, cutoff: Any, horizon_days: int) -> pd.DataFrame:
        """``purchases_between`` over ``(c, c+H]`` of every customer known by ``cutoff``."""
        day, _ = as_of_bounds(cutoff)
        client = self.client
        parts = wait_for(
            client,
            client.map(_encoded_outcomes, self.buckets, day=day, horizon_days=horizon_days),
            what=f"outcomes after {day.date()}",
        )
        return pd.concat(parts).sort_index()

    def first_day(self) -> pd.Timestamp | None:
        """Day of the earliest transaction over all buckets (None without any)."""
        days = wait_for(
            self.client, self.client.map(_first_day, self.buckets), what="first transaction day"
        )
        known = [d for d in days if d is not None]
        return min(known) if known else None


def _encode(bucket: Inputs, params: FeatureParams, consent_history: pd.DataFrame | None):
    from fidelite.features.windows import WindowFeatures

    return WindowFeatures(_with_history(bucket, consent_history), params=params)


def _encoded_vocabulary(encoded: Any, day: pd.Timestamp) -> ChannelVocabulary:
    return encoded.vocabulary(day)


def _encoded_features(
    encoded: Any, day: pd.Timestamp, vocabulary: ChannelVocabulary
) -> pd.DataFrame:
    return encoded.customer_features(day, vocabulary=vocabulary)


def _encoded_outcomes(encoded: Any, day: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    return encoded.outcomes(day, horizon_days)


def _first_day(encoded: Any) -> pd.Timestamp | None:
    return encoded.first_day()
