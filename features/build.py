"""Point-in-time customer features: :func:`build_features`.

Everything dated on or after ``as_of + 1 day`` is dropped before any computation,
so appending future transactions, events or signups never changes the result.
Column families and their exact definitions live in :mod:`fidelite.features.rfm`,
:mod:`fidelite.features.rhythm`, :mod:`fidelite.features.engagement` and
:mod:`fidelite.features.segments`; names, dtypes and ranges in
:data:`fidelite.features.contract.FEATURE_FAMILIES`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.features._arrays import (
    EventArrays,
    TransactionArrays,
    column_frame,
    day_number,
    encode_labels,
    text_labels,
)
from fidelite.features._encode import (
    customer_positions,
    customer_universe,
    event_arrays,
    event_rows,
    first_known_day,
    seen_channels,
    signed_up,
    transaction_arrays,
)
from fidelite.features.consent import consent_features
from fidelite.features.contract import (
    ENGAGEMENT_CHANNELS,
    FEATURE_FAMILIES,
    MISSING_LABEL,
    ORDER_CHANNELS,
)
from fidelite.features.days import ONE_DAY, parse_day
from fidelite.features.engagement import engagement_features
from fidelite.features.inputs import Inputs
from fidelite.features.params import FeatureParams
from fidelite.features.purchases import order_values, purchase_days
from fidelite.features.rfm import bgnbd_features, ml_features
from fidelite.features.rhythm import rhythm_features
from fidelite.features.segments import (
    LIFECYCLE_STAGES,
    RFM_RULES,
    lifecycle_codes,
    rfm_segment_codes,
)

__all__ = [
    "POPULATION_COLUMNS",
    "POPULATION_INPUTS",
    "STRING_COLUMNS",
    "ChannelVocabulary",
    "FeatureParams",
    "build_features",
    "channel_vocabulary",
    "customer_features",
    "features_from_arrays",
    "population_features",
]

#: The only non-numeric columns of the features frame (the contract's ``str`` families).
STRING_COLUMNS: tuple[str, ...] = tuple(f.name for f in FEATURE_FAMILIES if f.dtype == "str")
#: Columns that rank a customer against everyone else (not computable per customer).
POPULATION_COLUMNS = ("rfm_segment",)
#: The per-customer columns :func:`population_features` reads.
POPULATION_INPUTS = ("T", "days_since_last_purchase", "frequency", "spend_total")


@dataclass(frozen=True)
class ChannelVocabulary:
    """Channels that get their own columns (``order_share_{c}`` and ``eng_{c}_*``).

    The contract's channels (:data:`~fidelite.features.contract.ORDER_CHANNELS`,
    :data:`~fidelite.features.contract.ENGAGEMENT_CHANNELS`) come first in their declared
    order, then every other channel seen by ``as_of``, sorted. Fixing it lets a subset
    of the customers (a partition) produce exactly the columns the whole population
    would.

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
            _known_then_seen(ORDER_CHANNELS, order_channels),
            _known_then_seen(ENGAGEMENT_CHANNELS, event_channels),
        )

    @classmethod
    def from_columns(cls, columns: Iterable[str]) -> ChannelVocabulary:
        """The vocabulary a feature table was built with, read off its column names.

        A model keeps the columns it learnt from: features of a few customers built with
        this vocabulary get a 0 count for a channel they never used, as they would in the
        training population, instead of a missing column.
        """
        orders, events = set(), set()
        for column in columns:
            if match := _ORDER_SHARE.match(column):
                orders.add(match.group(1))
            elif match := _EVENT_COUNT.match(column):
                events.add(match.group(1))
        return cls.from_seen(orders, events)

    def union(self, other: ChannelVocabulary) -> ChannelVocabulary:
        """Channels of either vocabulary (the contract's first, then the others sorted)."""
        return ChannelVocabulary.from_seen(
            (*self.order_channels, *other.order_channels),
            (*self.event_channels, *other.event_channels),
        )


_ORDER_SHARE = re.compile(r"^order_share_([0-9a-z_]+)$")
_EVENT_COUNT = re.compile(r"^eng_([0-9a-z_]+?)_events_\d+d$")


def _known_then_seen(known: tuple[str, ...], seen: Iterable[str]) -> tuple[str, ...]:
    return tuple(known) + tuple(sorted(set(seen) - set(known)))


def _feature_day(inputs: Inputs, as_of: object) -> pd.Timestamp:
    day = inputs.as_of if as_of is None else parse_day(as_of)
    if day > inputs.as_of:
        raise ValueError(
            f"as_of {day.date()} is after the day these inputs are read at "
            f"({inputs.as_of.date()}); read them there with inputs.at(day)"
        )
    return day


def build_features(
    inputs: Inputs,
    *,
    as_of: object = None,
    params: FeatureParams | None = None,
    vocabulary: ChannelVocabulary | None = None,
) -> pd.DataFrame:
    """Build one feature row per customer known on the as-of day.

    Parameters
    ----------
    inputs : Inputs
        Tables validated once by :func:`fidelite.features.inputs.load_inputs`; they are
        not validated again here.
    as_of : day, optional
        Calendar day D, at most ``inputs.as_of`` (default: ``inputs.as_of``); rows with
        ``timestamp >= D + 1 day`` are ignored, as are signups after D. Backtests pass
        their cutoffs here.
    params : FeatureParams, optional
        Windows and thresholds (defaults documented on :class:`FeatureParams`).
    vocabulary : ChannelVocabulary, optional
        Channels that get their own columns besides the contract's and those seen in the
        inputs by D. Scoring a few customers passes the model's.

    Returns
    -------
    DataFrame, shape (n_customers, n_features)
        Indexed by ``customer_id`` (str, sorted). Customers are those with a
        transaction or a signup on or before D. Columns are the contract's
        :data:`~fidelite.features.contract.FEATURE_FAMILIES`; :data:`STRING_COLUMNS`
        are strings, everything else is numeric or bool. Durations are in days, amounts
        in the transactions' currency. Purchases follow
        :mod:`fidelite.features.purchases` (:func:`~fidelite.features.purchases.is_purchaser`
        picks the purchasers).

    Raises
    ------
    ValueError
        When ``as_of`` is after ``inputs.as_of``.
    """
    day = _feature_day(inputs, as_of)
    return population_features(
        customer_features(inputs, as_of=day, params=params, vocabulary=vocabulary)
    )


def customer_features(
    inputs: Inputs,
    *,
    as_of: object = None,
    params: FeatureParams | None = None,
    vocabulary: ChannelVocabulary | None = None,
) -> pd.DataFrame:
    """Every feature column that depends only on the customer's own rows.

    This is :func:`build_features` without :data:`POPULATION_COLUMNS`: run on any
    subset of whole customer histories (e.g. a Dask partition) it gives those
    customers' rows of the full result, provided ``vocabulary`` is the population's.

    Parameters
    ----------
    inputs : Inputs
        ``inputs.transactions`` may have zero rows here.
    as_of : day, optional
        Calendar day D (default: ``inputs.as_of``).
    params : FeatureParams, optional
    vocabulary : ChannelVocabulary, optional
        Channels that get columns besides those seen in these tables by D: the
        population's for a partition of it, a model's for a few customers scored alone.

    Returns
    -------
    DataFrame, shape (n_customers, n_features - len(POPULATION_COLUMNS))
        Indexed by ``customer_id`` (str, sorted).
    """
    params = params or FeatureParams()
    day = _feature_day(inputs, as_of)
    end, as_of_day = day + ONE_DAY, day_number(day)
    tx, ev, cust = inputs.transactions, inputs.events, inputs.customers

    tx_visible = (tx["timestamp"] < end).to_numpy()
    signups = signed_up(cust, end)
    tx_ids = inputs.customer_ids
    universe, positions = customer_positions(tx_ids, tx_visible, signups)
    tx_channel = encode_labels(tx["channel"])
    ev_rows = event_rows(ev, end, universe, params) if ev is not None else None
    seen = ChannelVocabulary.from_seen(*seen_channels(tx_channel, tx_visible, ev_rows))
    vocabulary = seen if vocabulary is None else vocabulary.union(seen)

    tx_arrays = transaction_arrays(
        tx,
        tx_ids,
        positions,
        tx_visible,
        universe,
        as_of_day,
        tx_channel,
        vocabulary.order_channels,
        inputs.refund_links.refund_of(tx_visible),
    )
    first_day = first_known_day(tx_arrays, signups, universe)
    events = event_arrays(ev_rows, universe, as_of_day, vocabulary.event_channels)
    return features_from_arrays(
        tx_arrays,
        events,
        universe,
        first_day,
        customers=cust,
        consent_history=inputs.consent_history,
        params=params,
    )


def features_from_arrays(
    transactions: TransactionArrays,
    events: EventArrays,
    universe: pd.Index,
    first_known_day: np.ndarray,
    *,
    customers: pd.DataFrame | None = None,
    consent_history: pd.DataFrame | None = None,
    params: FeatureParams | None = None,
) -> pd.DataFrame:
    """:func:`customer_features` after the encoding: every family from the arrays.

    Parameters
    ----------
    transactions : TransactionArrays
        The rows visible on day D (``transactions.as_of_day``), coded against
        ``universe``, with their refund links.
    events : EventArrays
        Same customers and day.
    universe : Index of str, shape (n_customers,)
        Customer ids, sorted; the result's index.
    first_known_day : ndarray of float64, shape (n_customers,)
        Day number of the signup or first transaction, whichever is first.
    customers, consent_history : DataFrame, optional
        Normalised tables (consent flags, acquisition, point-in-time consent).
    params : FeatureParams, optional

    Returns
    -------
    DataFrame, shape (n_customers, n_features - len(POPULATION_COLUMNS))
    """
    params = params or FeatureParams()
    as_of_day = transactions.as_of_day
    day = pd.Timestamp(np.datetime64(as_of_day, "D")).as_unit("ns")
    values = order_values(transactions.amount, transactions.refund_of)
    days = purchase_days(transactions.code, transactions.day, values, len(universe))
    parts = [
        bgnbd_features(days, as_of_day),
        ml_features(transactions, values, days, first_known_day, params),
        rhythm_features(days, as_of_day, params),
        engagement_features(events, params),
        consent_features(customers, consent_history, universe, day),
        _acquisition_columns(customers, universe),
    ]
    features = pd.concat(parts, axis=1)
    features["lifecycle_stage"] = text_labels(LIFECYCLE_STAGES, lifecycle_codes(features, params))
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
    features["rfm_segment"] = text_labels(RFM_RULES, rfm_segment_codes(features))
    return features


def channel_vocabulary(
    inputs: Inputs, *, as_of: object = None, params: FeatureParams | None = None
) -> ChannelVocabulary:
    """Channels seen by ``as_of`` in the inputs (what :func:`customer_features` uses).

    The vocabulary of a population is the union over any split of it into whole
    customer histories (:meth:`ChannelVocabulary.from_seen` of the union of names).
    """
    params = params or FeatureParams()
    end = _feature_day(inputs, as_of) + ONE_DAY
    tx = inputs.transactions
    tx_visible = (tx["timestamp"] < end).to_numpy()
    tx_ids = inputs.customer_ids
    universe = customer_universe(tx_ids, tx_visible, signed_up(inputs.customers, end))
    events = inputs.events
    ev_rows = event_rows(events, end, universe, params) if events is not None else None
    seen = seen_channels(encode_labels(tx["channel"]), tx_visible, ev_rows)
    return ChannelVocabulary.from_seen(*seen)


def _acquisition_columns(customers: pd.DataFrame | None, universe: pd.Index) -> pd.DataFrame:
    """Acquisition channel and cost; defaults for customers not in the table."""
    n = len(universe)
    if customers is None or len(customers) == 0:
        return column_frame(
            {
                "acquisition_channel": text_labels([MISSING_LABEL], np.zeros(n, np.int64)),
                "acquisition_cost": np.full(n, np.nan),
            }
        )
    out = pd.DataFrame(
        {
            "acquisition_channel": np.full(n, MISSING_LABEL, dtype=object),
            "acquisition_cost": np.full(n, np.nan),
        }
    )
    positions = pd.Index(customers["customer_id"]).get_indexer(universe)
    found = positions >= 0
    for column in out.columns:
        values = out[column].to_numpy().copy()
        values[found] = customers[column].to_numpy()[positions[found]]
        out[column] = values
    return out
