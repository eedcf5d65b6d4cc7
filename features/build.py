"""Point-in-time customer features: :func:`build_features`.

Everything dated on or after ``as_of + 1 day`` is dropped before any computation,
so appending future transactions, events or signups never changes the result.
Column families and their exact definitions live in :mod:`features.rfm`,
:mod:`features.rhythm`, :mod:`features.engagement` and :mod:`features.segments`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fidelite.features._arrays import (
    EventArrays,
    TransactionArrays,
    customer_codes,
    day_number,
    day_numbers,
    encode_labels,
)
from fidelite.features.data import as_of_bounds, load_customers, load_events, load_transactions
from fidelite.features.engagement import engagement_features
from fidelite.features.params import (
    KNOWN_CHANNELS,
    NON_ENGAGEMENT_EVENT_TYPES,
    FeatureParams,
)
from fidelite.features.purchases import link_refunds, order_values, purchase_days
from fidelite.features.rfm import bgnbd_features, ml_features
from fidelite.features.rhythm import rhythm_features
from fidelite.features.segments import lifecycle_stage, rfm_segment

__all__ = [
    "CONSENT_COLUMNS",
    "POPULATION_COLUMNS",
    "POPULATION_INPUTS",
    "STRING_COLUMNS",
    "ChannelVocabulary",
    "FeatureParams",
    "build_features",
    "channel_vocabulary",
    "customer_features",
    "population_features",
]

logger = logging.getLogger(__name__)

#: The only non-numeric columns of the features frame.
STRING_COLUMNS = (
    "best_channel",
    "channel_preference",
    "lifecycle_stage",
    "rfm_segment",
    "acquisition_channel",
)
CONSENT_COLUMNS = ("email_opt_in", "sms_opt_in", "push_opt_in")
#: Transaction channels that always get an ``order_share_{channel}`` column.
KNOWN_ORDER_CHANNELS = ("web", "app", "store")
#: Columns that rank a customer against everyone else (not computable per customer).
POPULATION_COLUMNS = ("rfm_segment",)
#: The per-customer columns :func:`population_features` reads.
POPULATION_INPUTS = ("T", "days_since_last_purchase", "frequency", "spend_total")

TableSource = pd.DataFrame | str | Path


@dataclass(frozen=True)
class ChannelVocabulary:
    """Channels that get their own columns (``order_share_{c}`` and ``eng_{c}_*``).

    Known channels come first in their declared order, then every other channel seen
    by ``as_of``, sorted. Fixing it lets a subset of the customers (a partition)
    produce exactly the columns the whole population would.

    Attributes
    ----------
    order_channels : tuple of str
        Transaction channels.
    event_channels : tuple of str
        Event channels.
    """

    order_channels: tuple[str, ...]
    event_channels: tuple[str, ...]

    @classmethod
    def from_seen(
        cls, order_channels: Iterable[str], event_channels: Iterable[str]
    ) -> ChannelVocabulary:
        """Vocabulary from the (cleaned) channel names seen in each table."""
        return cls(
            _known_then_seen(KNOWN_ORDER_CHANNELS, order_channels),
            _known_then_seen(KNOWN_CHANNELS, event_channels),
        )


def _known_then_seen(known: tuple[str, ...], seen: Iterable[str]) -> tuple[str, ...]:
    return tuple(known) + tuple(sorted(set(seen) - set(known)))


def build_features(
    transactions: TableSource,
    events: TableSource | None = None,
    customers: TableSource | None = None,
    *,
    as_of: Any,
    params: FeatureParams | None = None,
) -> pd.DataFrame:
    """Build one feature row per customer known on ``as_of``.

    Parameters
    ----------
    transactions, events, customers : DataFrame or path
        Raw or normalised tables (see :mod:`features.data`); ``events`` and
        ``customers`` are optional.
    as_of : date-like
        Calendar day D; rows with ``timestamp >= D + 1 day`` are ignored, as are
        signups after D.
    params : FeatureParams, optional
        Windows and thresholds (defaults documented on :class:`FeatureParams`).

    Returns
    -------
    DataFrame, shape (n_customers, n_features)
        Indexed by ``customer_id`` (str, sorted). Customers are those with a
        transaction or a signup on or before D. Columns follow ARCHITECTURE.md;
        :data:`STRING_COLUMNS` are strings, everything else is numeric or bool.
        Durations are in days, amounts in the transactions' currency.

    Raises
    ------
    features.data.DataContractError
        When an input table breaks the data contract or ``as_of`` is unparsable.
    """
    params = params or FeatureParams()
    as_of_bounds(as_of)  # a bad as_of fails before the (slow) loading
    tx = load_transactions(transactions)
    ev = load_events(events) if events is not None else None
    cust = load_customers(customers) if customers is not None else None
    return population_features(customer_features(tx, ev, cust, as_of=as_of, params=params))


def customer_features(
    transactions: pd.DataFrame,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    *,
    as_of: Any,
    params: FeatureParams | None = None,
    vocabulary: ChannelVocabulary | None = None,
) -> pd.DataFrame:
    """Every feature column that depends only on the customer's own rows.

    This is :func:`build_features` without :data:`POPULATION_COLUMNS`: run on any
    subset of whole customer histories (e.g. a Dask partition) it gives those
    customers' rows of the full result, provided ``vocabulary`` is the population's.

    Parameters
    ----------
    transactions, events, customers : DataFrame
        Already normalised by the :mod:`features.data` loaders (``transactions`` may
        have zero rows here); ``events`` and ``customers`` are optional.
    as_of : date-like
        Calendar day D.
    params : FeatureParams, optional
    vocabulary : ChannelVocabulary, optional
        Channels that get columns; default: those seen in these tables by D.

    Returns
    -------
    DataFrame, shape (n_customers, n_features - len(POPULATION_COLUMNS))
        Indexed by ``customer_id`` (str, sorted).
    """
    params = params or FeatureParams()
    day, end = as_of_bounds(as_of)
    as_of_day = day_number(day)
    tx, ev, cust = transactions, events, customers

    tx_visible = (tx["timestamp"] < end).to_numpy()
    signed_up = _signed_up(cust, end)
    tx_ids = pd.factorize(tx["customer_id"])
    universe = _customer_universe(tx_ids, tx_visible, signed_up)
    tx_channel = encode_labels(tx["channel"])
    ev_rows = _event_rows(ev, end, universe, params) if ev is not None else None
    if vocabulary is None:
        vocabulary = _seen_vocabulary(tx_channel, tx_visible, ev_rows)

    tx_arrays = _transaction_arrays(
        tx, tx_ids, tx_visible, universe, as_of_day, tx_channel, vocabulary.order_channels
    )
    values = order_values(tx_arrays.amount, tx_arrays.refund_of)
    days = purchase_days(tx_arrays.code, tx_arrays.day, values, len(universe))
    first_known_day = _first_known_day(tx_arrays, signed_up, universe)
    event_arrays = _event_arrays(ev_rows, universe, as_of_day, vocabulary.event_channels)
    parts = [
        bgnbd_features(days, as_of_day),
        ml_features(tx_arrays, values, days, first_known_day, params),
        rhythm_features(days, as_of_day, params),
        engagement_features(event_arrays, params),
        _consent(cust, universe),
    ]
    features = pd.concat(parts, axis=1)
    features["lifecycle_stage"] = lifecycle_stage(features, params)
    features.index = universe
    for column in STRING_COLUMNS:
        if column not in POPULATION_COLUMNS:
            features[column] = features[column].astype(str)
    return features


def population_features(features: pd.DataFrame) -> pd.DataFrame:
    """Add :data:`POPULATION_COLUMNS`, ranking each row against all rows given.

    Parameters
    ----------
    features : DataFrame, shape (n_customers, ...)
        The whole population's :data:`POPULATION_INPUTS` (e.g. the output of
        :func:`customer_features`); modified in place and returned.

    Returns
    -------
    DataFrame, shape (n_customers, ... + len(POPULATION_COLUMNS))
    """
    features["rfm_segment"] = rfm_segment(features)
    features["rfm_segment"] = features["rfm_segment"].astype(str)
    return features


def channel_vocabulary(
    transactions: pd.DataFrame,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    *,
    as_of: Any,
    params: FeatureParams | None = None,
) -> ChannelVocabulary:
    """Channels seen by ``as_of`` in normalised tables (what :func:`customer_features` uses).

    The vocabulary of a population is the union over any split of it into whole
    customer histories (:meth:`ChannelVocabulary.from_seen` of the union of names).
    """
    params = params or FeatureParams()
    _, end = as_of_bounds(as_of)
    tx_visible = (transactions["timestamp"] < end).to_numpy()
    tx_ids = pd.factorize(transactions["customer_id"])
    universe = _customer_universe(tx_ids, tx_visible, _signed_up(customers, end))
    ev_rows = _event_rows(events, end, universe, params) if events is not None else None
    return _seen_vocabulary(encode_labels(transactions["channel"]), tx_visible, ev_rows)


def _signed_up(customers: pd.DataFrame | None, end: pd.Timestamp) -> pd.DataFrame | None:
    """Customers-table rows whose signup is before ``end`` (None without a table)."""
    if customers is None:
        return None
    return customers.loc[(customers["signup_at"] < end).to_numpy()]


def _customer_universe(
    tx_ids: tuple[np.ndarray, pd.Index], tx_visible: np.ndarray, signed_up: pd.DataFrame | None
) -> pd.Index:
    """Sorted ids of customers with a visible transaction or a signup by ``as_of``.

    ``tx_ids`` is ``pd.factorize`` of the transactions' customer ids.
    """
    codes, uniques = tx_ids
    seen = np.zeros(len(uniques), dtype=bool)
    seen[codes[tx_visible]] = True
    ids = pd.Index(uniques[seen]).astype(str)
    if signed_up is not None:
        ids = ids.append(pd.Index(signed_up["customer_id"]).astype(str))
    return pd.Index(ids.unique().sort_values(), name="customer_id")


def _seen_labels(encoded: tuple[np.ndarray, list[str]], mask: np.ndarray) -> set[str]:
    """Names of the ``encode_labels`` output that occur on rows where ``mask`` holds."""
    codes, names = encoded
    return {names[c] for c in np.unique(codes[mask])}


def _seen_vocabulary(
    tx_channel: tuple[np.ndarray, list[str]], tx_visible: np.ndarray, ev_rows: _EventRows | None
) -> ChannelVocabulary:
    # Known channels always exist as columns; others only once seen by as_of.
    event_seen = set() if ev_rows is None else _seen_labels(ev_rows.channel, ev_rows.keep)
    return ChannelVocabulary.from_seen(_seen_labels(tx_channel, tx_visible), event_seen)


def _remap(names: list[str], vocabulary: tuple[str, ...]) -> np.ndarray:
    """Position of each encoded name in ``vocabulary`` (-1 when absent), int64."""
    return np.array([vocabulary.index(c) if c in vocabulary else -1 for c in names], dtype=np.int64)


def _transaction_arrays(
    tx: pd.DataFrame,
    tx_ids: tuple[np.ndarray, pd.Index],
    visible: np.ndarray,
    universe: pd.Index,
    as_of_day: int,
    tx_channel: tuple[np.ndarray, list[str]],
    channel_names: tuple[str, ...],
) -> TransactionArrays:
    channel, names = tx_channel
    all_names = list(channel_names)
    remap = _remap(names, channel_names)
    return TransactionArrays(
        code=customer_codes(tx["customer_id"], universe, tx_ids)[visible],
        day=day_numbers(tx["timestamp"])[visible],
        amount=tx["amount"].to_numpy(dtype=np.float64)[visible],
        discount=tx["discount"].to_numpy(dtype=np.float64)[visible],
        channel=remap[channel[visible]],
        channel_names=all_names,
        n_customers=len(universe),
        as_of_day=as_of_day,
        refund_of=link_refunds(tx).refund_of(visible),
    )


@dataclass(frozen=True)
class _EventRows:
    """Encoded events table; ``in_scope``: before the cut-off and of a known customer,
    ``keep``: also of a known event type (the rows features use). Masks of shape (n_rows,).
    """

    events: pd.DataFrame
    code: np.ndarray
    in_scope: np.ndarray
    keep: np.ndarray
    type_code: np.ndarray
    type_names: list[str]
    channel: tuple[np.ndarray, list[str]]


def _event_rows(
    events: pd.DataFrame, end: pd.Timestamp, universe: pd.Index, params: FeatureParams
) -> _EventRows:
    """Events before ``end`` of customers in ``universe`` with a known event type."""
    code = customer_codes(events["customer_id"], universe)
    type_code, type_names = encode_labels(events["event_type"])
    known_types = set(params.engagement_event_types) | set(NON_ENGAGEMENT_EVENT_TYPES)
    type_known = np.array([t in known_types for t in type_names] + [False], dtype=bool)
    in_scope = (events["timestamp"] < end).to_numpy() & (code >= 0)
    keep = in_scope & type_known[type_code]
    return _EventRows(
        events, code, in_scope, keep, type_code, type_names, encode_labels(events["channel"])
    )


def _event_arrays(
    rows: _EventRows | None,
    universe: pd.Index,
    as_of_day: int,
    channel_names: tuple[str, ...],
) -> EventArrays:
    n = len(universe)
    if rows is None:
        empty = np.empty(0, dtype=np.int64)
        return EventArrays(empty, empty, empty, empty, [], list(channel_names), n, as_of_day)
    keep, type_code, type_names = rows.keep, rows.type_code, rows.type_names
    unknown = rows.in_scope & ~keep
    if unknown.any():
        counts = np.bincount(type_code[unknown], minlength=len(type_names))
        sample = {type_names[i]: int(counts[i]) for i in np.flatnonzero(counts)[:5]}
        logger.info("events: ignored %d row(s) with unknown event_type %s", unknown.sum(), sample)

    channel, names = rows.channel
    remap = _remap(names, channel_names)
    return EventArrays(
        code=rows.code[keep],
        day=day_numbers(rows.events["timestamp"])[keep],
        channel=remap[channel[keep]],
        type_code=type_code[keep],
        event_types=type_names,
        channel_names=list(channel_names),
        n_customers=n,
        as_of_day=as_of_day,
    )


def _first_known_day(
    tx: TransactionArrays, signed_up: pd.DataFrame | None, universe: pd.Index
) -> np.ndarray:
    """Earliest of signup day and first transaction day, float64 of shape (n_customers,)."""
    first = np.full(len(universe), np.inf)
    np.minimum.at(first, tx.code, tx.day.astype(np.float64))
    if signed_up is not None and len(signed_up):
        positions = universe.get_indexer(pd.Index(signed_up["customer_id"]).astype(str))
        np.minimum.at(first, positions, day_numbers(signed_up["signup_at"]).astype(np.float64))
    first[np.isinf(first)] = np.nan
    return first


def _consent(customers: pd.DataFrame | None, universe: pd.Index) -> pd.DataFrame:
    """Consent flags and acquisition fields; defaults for customers not in the table."""
    out = pd.DataFrame(
        {
            "email_opt_in": np.ones(len(universe), dtype=bool),
            "sms_opt_in": np.ones(len(universe), dtype=bool),
            "push_opt_in": np.ones(len(universe), dtype=bool),
            "acquisition_channel": np.full(len(universe), "unknown", dtype=object),
            "acquisition_cost": np.full(len(universe), np.nan),
        }
    )
    if customers is None or len(customers) == 0:
        return out
    positions = pd.Index(customers["customer_id"]).astype(str).get_indexer(universe)
    found = positions >= 0
    rows = customers.iloc[positions[found]]
    for column in (*CONSENT_COLUMNS, "acquisition_channel", "acquisition_cost"):
        values = out[column].to_numpy().copy()
        values[found] = rows[column].to_numpy()
        out[column] = values
    return out
