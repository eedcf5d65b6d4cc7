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

Labels follow :mod:`fidelite.features.purchases` on both engines
(:func:`~fidelite.features.purchases.window_outcomes`), so the engines give the same
windows (``tests/training/test_engine_equality.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from fidelite.features.inputs import Inputs
from fidelite.features.params import FeatureParams
from fidelite.training.labels import labels_from_outcomes
from fidelite.training.tracking import combine_fingerprints, data_fingerprint, fingerprint_parts
from fidelite.training.windows import WindowSource

if TYPE_CHECKING:
    from fidelite.features.distributed import EncodedPartitions

__all__ = ["DaskTables", "DaskWindows", "LocalWindows", "window_source"]


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
    """
    if engine == "dask":
        from fidelite.features.partitions import current_client

        current_client()  # fail before any work when no cluster is connected
        return DaskWindows.from_tables(
            inputs.transactions,
            inputs.events,
            inputs.customers,
            as_of=inputs.as_of,
            params=params,
            npartitions=npartitions,
            date_format=getattr(inputs, "date_format", None),
            consent_history=inputs.consent_history,
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

        self.encoded = WindowFeatures(inputs, params=params)
        self._fingerprint = data_fingerprint(inputs)

    def first_day(self) -> pd.Timestamp | None:
        return self.encoded.first_day()

    def fingerprint(self) -> dict:
        return self._fingerprint

    def features(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        return self.encoded.features(cutoff)

    def labels(self, cutoff: pd.Timestamp, horizon_days: int, customers: pd.Index) -> pd.DataFrame:
        return labels_from_outcomes(self.encoded.outcomes(cutoff, horizon_days, customers))


class DaskWindows:
    """:class:`~fidelite.training.windows.WindowSource` on a Dask cluster.

    The tables live on the workers as customer buckets, each encoded once; every
    cutoff's features and outcomes are computed there, and only per-customer rows (the
    features, two outcome columns) come back to the client.
    """

    def __init__(self, encoded: EncodedPartitions, fingerprint: dict) -> None:
        self.encoded = encoded
        self._fingerprint = fingerprint

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
    ) -> DaskWindows:
        """Bucket and encode tables (frames or Parquet/CSV paths/URLs) on the cluster."""
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
        return cls(EncodedPartitions.from_partitions(parts, params, history), fingerprint)

    def features(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        return self.encoded.features(cutoff)

    def labels(self, cutoff: pd.Timestamp, horizon_days: int, customers: pd.Index) -> pd.DataFrame:
        outcomes = self.encoded.outcomes(cutoff, horizon_days)
        outcomes = outcomes.reindex(pd.Index(customers, name="customer_id"))
        outcomes = outcomes.fillna({"purchase_days": 0, "net_spend": 0.0})
        return labels_from_outcomes(outcomes)
