"""Encoding the input tables as integer arrays at one as-of day.

The feature families (:mod:`~fidelite.features.rfm`, :mod:`~fidelite.features.rhythm`,
:mod:`~fidelite.features.engagement`) work on :class:`TransactionArrays` and
:class:`EventArrays`; this module builds them from normalised tables: the customer
universe, the rows visible at the cut-off, channel and event-type codes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from fidelite.features._arrays import (
    EventArrays,
    TransactionArrays,
    _positions,
    customer_codes,
    day_numbers,
    encode_labels,
)
from fidelite.features._text import sort_order
from fidelite.features.contract import NON_ENGAGEMENT_EVENT_TYPES
from fidelite.features.params import FeatureParams

__all__ = [
    "EventRows",
    "customer_positions",
    "customer_universe",
    "event_arrays",
    "event_rows",
    "first_known_day",
    "seen_channels",
    "signed_up",
    "transaction_arrays",
]

logger = logging.getLogger("fidelite.features.build")


def signed_up(customers: pd.DataFrame | None, end: pd.Timestamp) -> pd.DataFrame | None:
    """Customers-table rows whose signup is before ``end`` (None without a table)."""
    if customers is None:
        return None
    return customers.loc[(customers["signup_at"] < end).to_numpy()]


def customer_universe(
    tx_ids: tuple[np.ndarray, pd.Index], tx_visible: np.ndarray, signed_up: pd.DataFrame | None
) -> pd.Index:
    """Sorted ids of customers with a visible transaction or a signup by ``as_of``.

    ``tx_ids`` is ``pd.factorize`` of the transactions' customer ids.
    """
    return customer_positions(tx_ids, tx_visible, signed_up)[0]


def customer_positions(
    tx_ids: tuple[np.ndarray, pd.Index], tx_visible: np.ndarray, signed_up: pd.DataFrame | None
) -> tuple[pd.Index, np.ndarray]:
    """:func:`customer_universe`, and where each distinct transaction id sits in it.

    Returns
    -------
    universe : Index of str, shape (n_customers,)
        Sorted, named ``customer_id``.
    positions : ndarray of int64, shape (len(tx_ids[1]),)
        Position in ``universe`` of each of the transactions' distinct ids (-1 for ids
        with no visible row). Without signups the sort that orders the universe gives
        them, with no hash lookup of the ids.
    """
    codes, uniques = tx_ids
    seen = np.zeros(len(uniques), dtype=bool)
    seen[codes[tx_visible]] = True
    ids = pd.Index(uniques[seen]).astype(str)
    if signed_up is not None and len(signed_up):
        ids = ids.append(pd.Index(signed_up["customer_id"]).astype(str))
        universe = pd.Index(ids.unique().sort_values(), name="customer_id")
        return universe, _positions(pd.Index(uniques).astype(str), universe)
    # The distinct ids are distinct already: one sort of their text orders them.
    order = sort_order(_arrow_text(ids))
    positions = np.full(len(uniques), -1, dtype=np.int64)
    positions[np.flatnonzero(seen)[order]] = np.arange(order.size)
    return pd.Index(ids.take(order), name="customer_id"), positions


def _arrow_text(values: pd.Index) -> pa.Array | pa.ChunkedArray:
    """The Arrow text of a ``str`` index (no copy), else converted once."""
    arrow = getattr(values.array, "_pa_array", None)
    return arrow if arrow is not None else pa.array(values.to_numpy(dtype=object), pa.string())


def _seen_labels(encoded: tuple[np.ndarray, list[str]], mask: np.ndarray) -> set[str]:
    """Names of the ``encode_labels`` output that occur on rows where ``mask`` holds."""
    codes, names = encoded
    # A count per code, not np.unique: no sort of a million codes.
    return {names[c] for c in np.flatnonzero(np.bincount(codes[mask], minlength=len(names)))}


def seen_channels(
    tx_channel: tuple[np.ndarray, list[str]], tx_visible: np.ndarray, ev_rows: EventRows | None
) -> tuple[set[str], set[str]]:
    """Channel names on the visible transactions and on the kept events."""
    event_seen = set() if ev_rows is None else _seen_labels(ev_rows.channel, ev_rows.keep)
    return _seen_labels(tx_channel, tx_visible), event_seen


def _remap(names: list[str], vocabulary: tuple[str, ...]) -> np.ndarray:
    """Position of each encoded name in ``vocabulary`` (-1 when absent), int64."""
    return np.array([vocabulary.index(c) if c in vocabulary else -1 for c in names], dtype=np.int64)


def transaction_arrays(
    tx: pd.DataFrame,
    tx_ids: tuple[np.ndarray, pd.Index],
    positions: np.ndarray,
    visible: np.ndarray,
    universe: pd.Index,
    as_of_day: int,
    tx_channel: tuple[np.ndarray, list[str]],
    channel_names: tuple[str, ...],
    refund_of: np.ndarray,
) -> TransactionArrays:
    """The visible transactions as arrays; ``refund_of`` is already over visible rows.

    ``positions`` gives the universe position of each of ``tx_ids``' distinct ids
    (:func:`customer_positions`)."""
    channel, names = tx_channel
    # Channel codes stay as narrow as they come (2 bytes a row) when the names fit.
    narrow = channel.dtype if len(channel_names) < np.iinfo(channel.dtype).max else np.int64
    remap = _remap(names, channel_names).astype(narrow)
    discount = tx["discount"].to_numpy(dtype=np.float64)
    n_visible = int(np.count_nonzero(visible))
    return TransactionArrays(
        code=positions.take(np.asarray(tx_ids[0])[visible]),
        day=day_numbers(tx["timestamp"], visible),
        amount=tx["amount"].to_numpy(dtype=np.float64)[visible],
        # The column is optional and filled with 0: a read-only view of one zero
        # instead of a copy of a million.
        discount=discount[visible] if discount.any() else np.broadcast_to(0.0, (n_visible,)),
        channel=remap.take(channel[visible]),
        channel_names=list(channel_names),
        n_customers=len(universe),
        as_of_day=as_of_day,
        refund_of=refund_of,
    )


@dataclass(frozen=True)
class EventRows:
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


def event_rows(
    events: pd.DataFrame, end: pd.Timestamp, universe: pd.Index, params: FeatureParams
) -> EventRows:
    """Events before ``end`` of customers in ``universe`` with a known event type."""
    code = customer_codes(events["customer_id"], universe, dtype=np.int32)
    type_code, type_names = encode_labels(events["event_type"])
    known_types = set(params.engagement_event_types) | set(NON_ENGAGEMENT_EVENT_TYPES)
    type_known = np.array([t in known_types for t in type_names] + [False], dtype=bool)
    in_scope = (events["timestamp"] < end).to_numpy() & (code >= 0)
    keep = in_scope & type_known[type_code]
    return EventRows(
        events, code, in_scope, keep, type_code, type_names, encode_labels(events["channel"])
    )


def event_arrays(
    rows: EventRows | None,
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
    remap = _remap(names, channel_names).astype(np.int32)
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


def first_known_day(
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
