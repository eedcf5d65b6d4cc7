"""Where a training run's windows come from: one machine, or a Dask cluster.

:func:`window_source` gives the :class:`~fidelite.training.windows.WindowSource` of an
engine:

* ``pandas``: :class:`LocalWindows` encodes the tables once
  (:class:`fidelite.features.windows.WindowFeatures`); every cutoff is then a prefix of
  the encoded rows.
* ``dask``: :class:`DaskWindows` splits the tables into customer buckets on the
  workers (:mod:`fidelite.features.partitions`), encodes each bucket there, and brings
  back only per-customer rows: each cutoff's features, two outcome columns per customer
  for the labels, the additive parts of the data fingerprint. Given
  :class:`DaskTables` (paths), the client never reads the tables at all.

The models' rows (:meth:`model_rows`): on one machine every customer's. On Dask, the
client gathers the feature rows of at most about ``client_customers`` customers per
cutoff (default :data:`CLIENT_CUSTOMERS`): above that, a uniform sample of customers
chosen by a stable hash of the id (:func:`in_sample`: the same customers at every
cutoff), as float32; the baseline (BG/NBD + Gamma-Gamma) is still fitted on the four
RFM columns of *every* purchaser, gathered as float64 (32 bytes a customer), and the
churn and spend trees are fitted on every customer's rows where they live
(:meth:`DaskWindows.worker_rows`, :mod:`fidelite.training.worker_rows`): the sample sets
the encoder, tree count, levels and held-out metrics. Below the budget nothing is
sampled and the windows are those of one machine.

Labels follow :mod:`fidelite.features.purchases` on both engines
(:func:`~fidelite.features.purchases.window_outcomes`), so the engines give the same
windows (``tests/training/test_engine_equality.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fidelite.features._text import text_hash
from fidelite.features.inputs import Inputs
from fidelite.features.params import FeatureParams
from fidelite.features.purchases import is_purchaser
from fidelite.training.baseline.model import RFM_COLUMNS
from fidelite.training.labels import labels_from_outcomes
from fidelite.training.tracking import combine_fingerprints, data_fingerprint, fingerprint_parts
from fidelite.training.windows import WindowSource

if TYPE_CHECKING:
    from fidelite.features.distributed import EncodedPartitions
    from fidelite.training.worker_rows import WorkerRows

__all__ = [
    "CLIENT_CUSTOMERS",
    "DaskTables",
    "DaskWindows",
    "LocalWindows",
    "in_sample",
    "window_source",
]

#: Most customers per cutoff whose feature rows a Dask training run brings to the client:
#: a million customers train in under 8 GB on one machine (BENCHMARKS.md, Scale).
CLIENT_CUSTOMERS = 1_000_000


def in_sample(customer_ids: pd.Index, keep: float) -> np.ndarray:
    """Whether each customer is in a ``keep`` share (0-1] sample, shape (n,) of bool.

    The top 32 bits of the id's stable text hash (``features._text.text_hash``) below
    ``keep * 2**32``: the same customers at every cutoff, in every process, and
    independent of the customer bucket (the hash's low bits modulo the bucket count).
    """
    if keep >= 1:
        return np.ones(len(customer_ids), dtype=bool)
    high = text_hash(customer_ids) >> np.uint64(32)
    return high < np.uint64(int(keep * 2**32))


@dataclass(frozen=True)
class DaskTables:
    """Input tables the Dask workers read themselves: the client never loads them.

    Attributes
    ----------
    transactions, events, customers : path/URL or frame
        Parquet files/directories/globs or CSV files, local or on any fsspec store
        (``s3://...``); ``events`` and ``customers`` optional.
    as_of : Timestamp
        Training day ``D``: rows dated after it are dropped on the workers.
    date_format : str, optional
        strftime layout of text timestamps (ISO 8601 otherwise).
    consent_history : path or frame, optional
        Consent changes: a few rows per customer, read on the client and sent to every
        worker.
    """

    transactions: Any
    as_of: pd.Timestamp
    events: Any = None
    customers: Any = None
    date_format: str | None = None
    consent_history: Any = None

    def cut(self) -> DaskTables:
        """Itself: the workers cut the tables at ``as_of`` when they read them."""
        return self


def window_source(
    engine: str,
    inputs: Inputs | DaskTables,
    params: FeatureParams,
    *,
    npartitions: int | None = None,
    client_customers: int | None = None,
) -> WindowSource:
    """Features and labels at every cutoff up to ``inputs.as_of``, on one engine.

    Parameters
    ----------
    engine : {"pandas", "dask"}
    inputs : Inputs or DaskTables
        Normalised tables cut at the as-of day, or (Dask) tables for the workers to read.
    params : FeatureParams
        Feature windows and thresholds.
    npartitions : int, optional
        Customer buckets on Dask (default: sized to the workers' memory).
    client_customers : int, optional
        Dask: most customers per cutoff whose feature rows come to this process
        (default: the environment variable ``FIDELITE_CLIENT_CUSTOMERS`` if set, else
        :data:`CLIENT_CUSTOMERS`, read when called).
    """
    if engine == "dask":
        from fidelite.features.partitions import current_client

        current_client()  # fail before any work when no cluster is connected
        budget = os.environ.get("FIDELITE_CLIENT_CUSTOMERS")
        client_customers = client_customers or int(budget or CLIENT_CUSTOMERS)
        return DaskWindows.from_tables(
            inputs.transactions,
            inputs.events,
            inputs.customers,
            as_of=inputs.as_of,
            params=params,
            npartitions=npartitions,
            date_format=getattr(inputs, "date_format", None),
            consent_history=inputs.consent_history,
            client_customers=client_customers,
        )
    if isinstance(inputs, DaskTables):
        raise TypeError("DaskTables are read by Dask workers: use engine='dask'")
    return LocalWindows(inputs, params)


class LocalWindows:
    """:class:`~fidelite.training.windows.WindowSource` on one machine.

    The tables are encoded once (:class:`fidelite.features.windows.WindowFeatures`);
    features at a cutoff equal ``build_features(inputs, as_of=cutoff)`` and labels
    follow :func:`fidelite.features.purchases.purchases_between`.
    """

    def __init__(self, inputs: Inputs, params: FeatureParams) -> None:
        from fidelite.features.windows import WindowFeatures

        # Fingerprinted first: its hashing transient then sits on the tables alone, not
        # on the tables and their encoding.
        self._fingerprint = data_fingerprint(inputs)
        self.encoded = WindowFeatures(inputs, params=params)

    def first_day(self) -> pd.Timestamp | None:
        return self.encoded.first_day()

    def fingerprint(self) -> dict:
        return self._fingerprint

    def features(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        return self.encoded.features(cutoff)

    def model_rows(self, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, None]:
        return self.features(cutoff), None

    def worker_rows(self, cutoffs: list, baselines: dict, horizon_days: int) -> None:
        """None: every row is in this process already."""
        return None

    def labels(self, cutoff: pd.Timestamp, horizon_days: int, customers: pd.Index) -> pd.DataFrame:
        return labels_from_outcomes(self.encoded.outcomes(cutoff, horizon_days, customers))


class DaskWindows:
    """:class:`~fidelite.training.windows.WindowSource` on a Dask cluster.

    The tables live on the workers as customer buckets, each encoded once; every
    cutoff's features and outcomes are computed there, and only per-customer rows (the
    features, two outcome columns) come back to the client.

    Attributes
    ----------
    keep : float
        Share of the customers whose feature rows :meth:`model_rows` gathers (1: all).
    """

    def __init__(self, encoded: EncodedPartitions, fingerprint: dict, keep: float = 1.0) -> None:
        self.encoded = encoded
        self._fingerprint = fingerprint
        self.keep = keep

    def first_day(self) -> pd.Timestamp | None:
        return self.encoded.first_day()

    def fingerprint(self) -> dict:
        return self._fingerprint

    @classmethod
    def from_tables(
        cls,
        transactions: Any,
        events: Any = None,
        customers: Any = None,
        *,
        as_of: Any,
        params: FeatureParams,
        npartitions: int | None = None,
        date_format: str | None = None,
        consent_history: Any = None,
        client_customers: int = CLIENT_CUSTOMERS,
    ) -> DaskWindows:
        """Bucket and encode tables (frames or Parquet/CSV paths/URLs) on the cluster.

        ``client_customers``: most customers per cutoff whose feature rows
        :meth:`model_rows` brings to the client (a uniform sample above it).
        """
        from fidelite.features.cluster import wait_for
        from fidelite.features.distributed import (
            EncodedPartitions,
            load_consent_history_before,
            partition_by_customer,
        )

        parts = partition_by_customer(
            transactions,
            events,
            customers,
            as_of=as_of,
            npartitions=npartitions,
            date_format=date_format,
        )
        client = parts.client
        fingerprint = combine_fingerprints(
            wait_for(
                client,
                client.map(fingerprint_parts, parts.buckets),
                what="fingerprinting the inputs",
            )
        )
        history = load_consent_history_before(consent_history, date_format, parts.end)
        encoded = EncodedPartitions.from_partitions(parts, params, history)
        counts = client.map(_n_customers, encoded.buckets)
        n = sum(wait_for(client, counts, what="counting the customers"))
        return cls(encoded, fingerprint, min(1.0, client_customers / max(n, 1)))

    def features(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        return self.encoded.features(cutoff)

    def model_rows(self, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The models' feature rows at ``cutoff`` and, when sampled, the baseline's.

        Returns ``(features, None)`` when every customer's rows fit the client budget
        (``keep`` = 1). Otherwise ``features`` holds the customers :func:`in_sample`
        (floats as float32, sorted by id; population columns ranked within the sample)
        and the second frame the float64 RFM columns of every purchaser, sorted by id.
        """
        if self.keep >= 1:
            return self.features(cutoff), None
        from fidelite.features.build import population_features
        from fidelite.features.cluster import wait_for
        from fidelite.features.data import as_of_bounds

        day, _ = as_of_bounds(cutoff)
        encoded, client = self.encoded, self.encoded.client
        vocabulary = encoded.vocabulary(day)
        tasks = client.map(
            _sampled_rows, encoded.buckets, day=day, vocabulary=vocabulary, keep=self.keep
        )
        parts = wait_for(client, tasks, what=f"sampled features at {day.date()}")
        del tasks  # the workers free each bucket's result once it is here
        rfm = pd.concat([p[1] for p in parts]).sort_index()
        features = pd.concat([p[0] for p in parts])
        parts.clear()
        return population_features(features.sort_index()), rfm

    def worker_rows(
        self, cutoffs: list[pd.Timestamp], baselines: dict, horizon_days: int
    ) -> WorkerRows | None:
        """Every customer's rows at the training ``cutoffs``, left on the workers for the
        trees (``training.worker_rows``); None when nothing is sampled (``keep`` = 1).

        ``baselines`` maps each cutoff to the baseline fitted there on every purchaser.
        """
        if self.keep >= 1 or not cutoffs:
            return None
        from fidelite.training.worker_rows import WorkerRows

        chosen = {c: baselines[c] for c in cutoffs}
        return WorkerRows(self.encoded, list(cutoffs), chosen, horizon_days)

    def labels(self, cutoff: pd.Timestamp, horizon_days: int, customers: pd.Index) -> pd.DataFrame:
        outcomes = self.encoded.outcomes(cutoff, horizon_days)
        outcomes = outcomes.reindex(pd.Index(customers, name="customer_id"))
        outcomes = outcomes.fillna({"purchase_days": 0, "net_spend": 0.0})
        return labels_from_outcomes(outcomes)


def _n_customers(encoded: Any) -> int:
    return len(encoded.customers)


def _sampled_rows(
    encoded: Any, day: pd.Timestamp, vocabulary: Any, keep: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """On a worker: a bucket's sampled feature rows (float32) and its purchasers' RFM."""
    features = encoded.customer_features(day, vocabulary=vocabulary)
    rfm = features.loc[is_purchaser(features).to_numpy(), list(RFM_COLUMNS)]
    rows = features.loc[in_sample(features.index, keep)]
    floats = [c for c, dtype in rows.dtypes.items() if dtype == np.float64]
    return rows.astype(dict.fromkeys(floats, np.float32)), rfm
