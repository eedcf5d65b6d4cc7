"""Features (and outcomes) of the same inputs at many cutoffs, the tables encoded once.

Training builds the feature table at every backtest cutoff and at the as-of day.
:func:`fidelite.features.build_features` would re-encode every table each time (hash
the ids, convert the timestamps, mask 50M event rows); :class:`WindowFeatures` does it
once:

* every customer ever seen gets an integer code (sorted ids), every timestamp a day
  number, every channel and event type a small code;
* transactions and events are sorted by day, so the rows visible at a cutoff are a
  *prefix* of the arrays (a view, no copy);
* for each customer, the first day it is known (first transaction or signup) decides
  the cutoff's universe; for each channel, the first day it counts decides the
  cutoff's channel vocabulary.

:meth:`WindowFeatures.features` at a cutoff then equals ``build_features(inputs,
as_of=cutoff)`` (same rows, columns and values up to float summation order): it calls
the very same feature families through
:func:`fidelite.features.build.features_from_arrays`. :meth:`WindowFeatures.outcomes`
gives the purchases of the days after a cutoff through
:func:`fidelite.features.purchases.window_outcomes`, the definition labels use. Once
built, the encoded arrays are all it needs: the caller may drop the events frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.features._arrays import (
    EventArrays,
    TransactionArrays,
    day_number,
    day_numbers,
    encode_labels,
)
from fidelite.features._text import factorize_text
from fidelite.features.build import (
    ChannelVocabulary,
    features_from_arrays,
    population_features,
)
from fidelite.features.contract import NON_ENGAGEMENT_EVENT_TYPES
from fidelite.features.days import parse_day
from fidelite.features.inputs import Inputs
from fidelite.features.params import FeatureParams
from fidelite.features.purchases import window_outcomes

__all__ = ["WindowFeatures"]

logger = logging.getLogger(__name__)

_NEVER = np.iinfo(np.int32).max


@dataclass(frozen=True)
class _Rows:
    """Table rows sorted by day; ``code`` indexes :attr:`WindowFeatures.customers`."""

    code: np.ndarray  # int32
    day: np.ndarray  # int32, non-decreasing

    def visible(self, as_of_day: int) -> int:
        """Number of rows dated on or before ``as_of_day`` (they form a prefix)."""
        return int(np.searchsorted(self.day, as_of_day, side="right"))


def _arrow_text(values: pd.Series | pd.Index):
    """The Arrow text behind a ``str`` column (no copy), else converted once."""
    import pyarrow as pa

    arrow = getattr(getattr(values, "array", None), "_pa_array", None)
    if arrow is None:
        arrow = pa.array(np.asarray(values, dtype=object), type=pa.large_string())
    return arrow.cast(pa.large_string())


def _ids_and_codes(*columns: pd.Series) -> tuple[pd.Index, list[np.ndarray]]:
    """Sorted distinct ids over ``columns`` and each column's codes into them (int32)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = [_arrow_text(c.cat.categories if _is_category(c) else c) for c in columns]
    chunks = [chunk for text in texts for chunk in pa.chunked_array([text]).chunks]
    raw_codes, raw_ids = factorize_text(pa.chunked_array(chunks, type=pa.large_string()))
    order = np.asarray(pc.sort_indices(_arrow_text(raw_ids)))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    ids = pd.Index(raw_ids.take(order), name="customer_id")
    codes, start = [], 0
    for column, text in zip(columns, texts, strict=True):
        local = rank[raw_codes[start : start + len(text)]].astype(np.int32)
        start += len(text)
        codes.append(local[column.cat.codes.to_numpy()] if _is_category(column) else local)
    return ids, codes


def _is_category(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.CategoricalDtype)


class WindowFeatures:
    """Point-in-time features of one set of inputs at any cutoff up to their as-of day.

    Parameters
    ----------
    inputs : Inputs
        Validated tables (:func:`fidelite.features.inputs.load_inputs`); rows dated after
        ``inputs.as_of`` are ignored.
    params : FeatureParams, optional

    Attributes
    ----------
    customers : Index of str
        Every customer known by ``inputs.as_of`` (a transaction or a signup), sorted.
    as_of : Timestamp
        The latest cutoff these features may be built for.
    """

    def __init__(self, inputs: Inputs, *, params: FeatureParams | None = None) -> None:
        self.params = params or FeatureParams()
        self.as_of = inputs.as_of
        last_day = day_number(inputs.as_of)
        tx = inputs.transactions
        tx_day = day_numbers(tx["timestamp"])
        tx_keep = np.flatnonzero(tx_day <= last_day)
        cust = inputs.customers
        signup_day = None
        id_columns = [tx["customer_id"].iloc[tx_keep]]
        if cust is not None:
            stamps = cust["signup_at"]
            signed = (stamps.notna() & (stamps < inputs.end)).to_numpy()
            signup_day = np.where(signed, day_numbers(stamps.fillna(pd.Timestamp(0))), _NEVER)
            id_columns.append(cust["customer_id"])
        self.customers, codes = _ids_and_codes(*id_columns)
        n = len(self.customers)

        # Day a customer enters the universe: first transaction row, or signup.
        self._known_day = np.full(n, _NEVER, dtype=np.int64)
        np.minimum.at(self._known_day, codes[0], tx_day[tx_keep])
        if cust is not None:
            np.minimum.at(self._known_day, codes[1], signup_day)
        self._customers = cust
        self._consent_history = inputs.consent_history

        self._encode_transactions(inputs, tx_keep, codes[0], tx_day[tx_keep])
        self._encode_events(inputs, last_day)

    # ------------------------------------------------------------------ encoding
    def _encode_transactions(
        self, inputs: Inputs, keep: np.ndarray, code: np.ndarray, day: np.ndarray
    ) -> None:
        tx = inputs.transactions
        order = np.argsort(day, kind="stable")
        rows = keep[order]
        self._tx = _Rows(code[order], day[order].astype(np.int32))
        self._amount = tx["amount"].to_numpy(dtype=np.float64)[rows]
        self._discount = tx["discount"].to_numpy(dtype=np.float64)[rows]
        channel, self._tx_channel_names = encode_labels(tx["channel"])
        self._tx_channel = channel[rows].astype(np.int16)
        # Refund links, from original row positions to sorted positions.
        position = np.full(len(tx), -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        links = inputs.refund_links
        refund_of = np.full(len(rows), -1, dtype=np.int64)
        both = (position[links.refund_rows] >= 0) & (position[links.order_rows] >= 0)
        refund_of[position[links.refund_rows[both]]] = position[links.order_rows[both]]
        self._refund_of = refund_of
        first = np.full(len(self._tx_channel_names), _NEVER, dtype=np.int64)
        np.minimum.at(first, self._tx_channel, self._tx.day)
        self._tx_channel_first = first

    def _encode_events(self, inputs: Inputs, last_day: int) -> None:
        ev = inputs.events
        self._has_events = ev is not None
        if ev is None:
            empty = np.empty(0, dtype=np.int32)
            self._ev = _Rows(empty, empty)
            self._ev_channel, self._ev_type = empty.astype(np.int16), empty.astype(np.int16)
            self._ev_channel_names: list[str] = []
            self._ev_type_names: list[str] = []
            self._ev_channel_first = np.empty(0, dtype=np.int64)
            return
        code = self._codes_of(ev["customer_id"])
        day = day_numbers(ev["timestamp"])
        type_code, self._ev_type_names = encode_labels(ev["event_type"])
        known_types = set(self.params.engagement_event_types) | set(NON_ENGAGEMENT_EVENT_TYPES)
        type_known = np.array([t in known_types for t in self._ev_type_names] + [False])
        keep = np.flatnonzero((code >= 0) & (day <= last_day) & type_known[type_code])
        order = keep[np.argsort(day[keep], kind="stable")]
        self._ev = _Rows(code[order].astype(np.int32), day[order].astype(np.int32))
        channel, self._ev_channel_names = encode_labels(ev["channel"])
        self._ev_channel = channel[order].astype(np.int16)
        self._ev_type = type_code[order].astype(np.int16)
        # An event counts once both it and its customer are known.
        counts_from = np.maximum(self._ev.day, self._known_day[self._ev.code])
        first = np.full(len(self._ev_channel_names), _NEVER, dtype=np.int64)
        np.minimum.at(first, self._ev_channel, counts_from)
        self._ev_channel_first = first

    def _codes_of(self, ids: pd.Series) -> np.ndarray:
        """Codes of ``ids`` into :attr:`customers` (-1 for unknown ids), int32."""
        import pyarrow.compute as pc

        if _is_category(ids):
            positions = self._codes_of(pd.Series(ids.cat.categories))
            return np.append(positions, -1)[ids.cat.codes.to_numpy()].astype(np.int32)
        found = pc.index_in(_arrow_text(ids), value_set=_arrow_text(self.customers))
        return np.asarray(found.fill_null(-1), dtype=np.int32)

    # ------------------------------------------------------------------ per cutoff
    def _day(self, cutoff: object) -> int:
        day = parse_day(cutoff)
        if day > self.as_of:
            raise ValueError(
                f"cutoff {day.date()} is after the inputs' as-of day {self.as_of.date()}"
            )
        return day_number(day)

    def vocabulary(self, cutoff: object) -> ChannelVocabulary:
        """Channels seen by ``cutoff`` (what ``build_features`` would give columns to)."""
        as_of_day = self._day(cutoff)
        seen_tx = [
            n
            for n, d in zip(self._tx_channel_names, self._tx_channel_first, strict=True)
            if d <= as_of_day
        ]
        seen_ev = [
            n
            for n, d in zip(self._ev_channel_names, self._ev_channel_first, strict=True)
            if d <= as_of_day
        ]
        return ChannelVocabulary.from_seen(seen_tx, seen_ev)

    def first_day(self) -> pd.Timestamp | None:
        """Day of the earliest transaction (None without transactions)."""
        if not len(self._tx.day):
            return None
        return pd.Timestamp(np.datetime64(int(self._tx.day[0]), "D"))

    def known(self, cutoff: object) -> np.ndarray:
        """Codes of the customers known by ``cutoff`` (sorted), int64."""
        return np.flatnonzero(self._known_day <= self._day(cutoff))

    def customer_features(
        self, cutoff: object, *, vocabulary: ChannelVocabulary | None = None
    ) -> pd.DataFrame:
        """``customer_features(inputs, as_of=cutoff)``: every column but the population ones."""
        as_of_day = self._day(cutoff)
        vocabulary = vocabulary or self.vocabulary(cutoff)
        known = self._known_day <= as_of_day
        position = np.cumsum(known, dtype=np.int64) - 1  # code -> row of the cutoff's universe
        universe = self.customers[known]
        k = self._tx.visible(as_of_day)
        refund_of = self._refund_of[:k]
        transactions = TransactionArrays(
            code=position[self._tx.code[:k]],
            day=self._tx.day[:k].astype(np.int64),
            amount=self._amount[:k],
            discount=self._discount[:k],
            channel=_remap(self._tx_channel_names, vocabulary.order_channels)[self._tx_channel[:k]],
            channel_names=list(vocabulary.order_channels),
            n_customers=len(universe),
            as_of_day=as_of_day,
            refund_of=np.where(refund_of < k, refund_of, -1),
        )
        first_day = self._known_day[known].astype(np.float64)
        return features_from_arrays(
            transactions,
            self._events(as_of_day, known, position, vocabulary, len(universe)),
            universe,
            first_day,
            customers=self._customers,
            consent_history=self._consent_history,
            params=self.params,
        )

    def _events(
        self,
        as_of_day: int,
        known: np.ndarray,
        position: np.ndarray,
        vocabulary: ChannelVocabulary,
        n: int,
    ) -> EventArrays:
        k = self._ev.visible(as_of_day)
        rows = known[self._ev.code[:k]]
        # 32-bit codes and days (same values): 50M events as int64 arrays would add ~2 GB
        # to every cutoff's peak.
        return EventArrays(
            code=position.astype(np.int32)[self._ev.code[:k][rows]],
            day=self._ev.day[:k][rows],
            channel=_remap(self._ev_channel_names, vocabulary.event_channels).astype(np.int32)[
                self._ev_channel[:k][rows]
            ],
            type_code=self._ev_type[:k][rows],
            event_types=list(self._ev_type_names),
            channel_names=list(vocabulary.event_channels),
            n_customers=n,
            as_of_day=as_of_day,
        )

    def features(self, cutoff: object) -> pd.DataFrame:
        """``build_features(inputs, as_of=cutoff)`` from the encoded arrays."""
        return population_features(self.customer_features(cutoff))

    def outcomes(
        self, cutoff: object, horizon_days: int, customers: pd.Index | None = None
    ) -> pd.DataFrame:
        """Purchases over the ``horizon_days`` days after ``cutoff``: days ``(c, c+H]``.

        Parameters
        ----------
        cutoff : day
        horizon_days : int
            ``cutoff + horizon_days`` must not be after the inputs' as-of day (the
            outcome would be cut short).
        customers : Index of str, optional
            Rows wanted, in this order (default: every customer known by ``cutoff``).

        Returns
        -------
        DataFrame, shape (n_customers, 3)
            Indexed by ``customer_id``: ``purchase_days`` (int64) and ``net_spend``
            (float64), as :func:`fidelite.features.purchases.purchases_between` gives them,
            and ``days_to_purchase`` (float64: days from ``cutoff`` to the first purchase
            day, 1..H; NaN without one).
        """
        start = self._day(cutoff) + 1
        end = start + int(horizon_days)
        if end - 1 > day_number(self.as_of):
            raise ValueError(
                f"the {horizon_days}-day window after {parse_day(cutoff).date()} ends after "
                f"the inputs' as-of day {self.as_of.date()}: its outcomes are not known yet"
            )
        k = self._tx.visible(end - 1)
        refund_of = self._refund_of[:k]
        purchase_days, net_spend, first_day = window_outcomes(
            self._tx.code[:k].astype(np.int64),
            self._tx.day[:k].astype(np.int64),
            self._amount[:k],
            np.where(refund_of < k, refund_of, -1),
            start,
            end,
            len(self.customers),
        )
        outcomes = pd.DataFrame(
            {
                "purchase_days": purchase_days,
                "net_spend": net_spend,
                "days_to_purchase": first_day - (start - 1),
            },
            index=self.customers,
        )
        if customers is None:
            return outcomes.iloc[self.known(cutoff)]
        return (
            outcomes.reindex(pd.Index(customers, name="customer_id"))
            .fillna({"purchase_days": 0, "net_spend": 0.0})
            .astype({"purchase_days": np.int64, "net_spend": np.float64})
        )


def _remap(names: list[str], vocabulary: tuple[str, ...]) -> np.ndarray:
    """Position of each encoded name in ``vocabulary`` (-1 when absent), int64."""
    return np.array([vocabulary.index(c) if c in vocabulary else -1 for c in names], dtype=np.int64)
