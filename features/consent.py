"""Consent: today's flags for targeting, the consent history for point-in-time features.

Two sources, two uses:

* The customers table's ``email_opt_in``/``sms_opt_in``/``push_opt_in`` are a snapshot
  of *today's* consent. Applied at a past cutoff they would leak later opt-outs, so they
  are for targeting only and never model inputs (``model_input=False`` in the contract).
* The optional **consent history** (:data:`~fidelite.features.contract.CONSENT_HISTORY`:
  ``customer_id``, ``channel``, ``opted_in``, ``changed_at``) records each change. The
  consent on day D is the state set by the customer's last change on or before D, so it
  is point-in-time and may be a model input: the ``consented_{channel}`` (1 opted in,
  0 opted out, NaN when no change is recorded by D or no history is given) and
  ``consent_{channel}_days_since_change`` feature families.

With a history, the targeting flags ``{channel}_opt_in`` on day D also come from it
where a change is recorded by D, and from the customers table (or True: not tracked)
otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.features._arrays import column_frame, customer_codes, day_number, day_numbers
from fidelite.features._columns import as_flag, as_id, as_label_text, vocabulary_check
from fidelite.features._source import drop_duplicates, finish, require_columns
from fidelite.features._timestamps import as_timestamp
from fidelite.features.contract import CONSENT_COLUMN, CONSENT_HISTORY, MESSAGING_CHANNELS
from fidelite.features.data import TableSource, source_table
from fidelite.features.days import ONE_DAY

__all__ = ["ConsentAtDay", "consent_at", "consent_features", "load_consent_history"]


def load_consent_history(
    source: TableSource, *, name: str = "consent_history", date_format: str | None = None
) -> pd.DataFrame:
    """Load, validate and normalise the consent-history table.

    Parameters are those of :func:`fidelite.features.data.load_transactions`; the
    table has the columns of ``contract.CONSENT_HISTORY``.

    Returns
    -------
    DataFrame, shape (n_changes, 4)
        ``customer_id`` (str), ``channel`` (str, one of the contract's
        ``MESSAGING_CHANNELS``), ``opted_in`` (bool), ``changed_at`` (datetime64[ns]
        UTC), sorted by customer, channel and time (ties keep file order). Rows
        repeating an earlier row exactly are dropped (count in
        ``df.attrs["duplicates_dropped"]``).

    Raises
    ------
    DataContractError
        Missing column, empty table, missing id, channel outside email/sms/push (every
        unknown value is listed), missing or unreadable ``opted_in``, unparsable or
        missing ``changed_at``.
    """
    table = source_table(source, name, date_format=date_format)
    require_columns(table, CONSENT_HISTORY.required)
    channel = as_label_text(table.frame, "channel")
    vocabulary_check(table, "channel", channel, MESSAGING_CHANNELS)
    frame = finish(
        {
            "customer_id": as_id(table, "customer_id"),
            "channel": channel,
            "opted_in": as_flag(table, "opted_in", allow_missing=False),
            "changed_at": as_timestamp(table, "changed_at", allow_missing=False),
        }
    )
    duplicated = frame.duplicated(keep="first").to_numpy()
    frame = drop_duplicates(frame, duplicated, table.label, "customer, channel, value and time")
    dropped = frame.attrs["duplicates_dropped"]
    frame = frame.sort_values(
        ["customer_id", "channel", "changed_at"], kind="stable", ignore_index=True
    )
    frame.attrs["duplicates_dropped"] = dropped
    return frame


@dataclass(frozen=True)
class ConsentAtDay:
    """Consent of a list of customers on one day, per messaging channel.

    Attributes
    ----------
    opted_in : dict of str to ndarray of float64, shape (n_customers,)
        1.0 / 0.0 as set by the last change on or before the day; NaN without one.
    days_since_change : dict of str to ndarray of float64, shape (n_customers,)
        Days from that change to the day; NaN without one.
    """

    opted_in: dict[str, np.ndarray]
    days_since_change: dict[str, np.ndarray]


def consent_at(history: pd.DataFrame, customers: pd.Index, day: pd.Timestamp) -> ConsentAtDay:
    """The state each customer's consent history gives on ``day`` (changes dated < day + 1).

    Parameters
    ----------
    history : DataFrame
        Normalised by :func:`load_consent_history`.
    customers : Index of str, shape (n_customers,)
    day : Timestamp
        Midnight of day D.
    """
    n = len(customers)
    end, as_of_day = day + ONE_DAY, day_number(day)
    code = customer_codes(history["customer_id"], customers)
    stamps = history["changed_at"]
    known = (code >= 0) & (stamps < end).to_numpy()
    # Latest change first wins below; ties on the timestamp keep the later file row.
    order = np.lexsort((np.arange(len(history)), stamps.to_numpy()))
    rank = np.empty(len(history), dtype=np.int64)
    rank[order] = np.arange(len(history))
    opted, since = {}, {}
    for channel in MESSAGING_CHANNELS:
        rows = np.flatnonzero(known & (history["channel"] == channel).to_numpy())
        last_rank = np.full(n, -1, dtype=np.int64)
        np.maximum.at(last_rank, code[rows], rank[rows])
        has = last_rank >= 0
        last_row = order[last_rank[has]]
        state, age = np.full(n, np.nan), np.full(n, np.nan)
        state[has] = history["opted_in"].to_numpy()[last_row].astype(np.float64)
        age[has] = as_of_day - day_numbers(stamps.iloc[last_row])
        opted[channel], since[channel] = state, age
    return ConsentAtDay(opted, since)


def consent_features(
    customers: pd.DataFrame | None,
    history: pd.DataFrame | None,
    universe: pd.Index,
    day: pd.Timestamp,
) -> pd.DataFrame:
    """Targeting flags and point-in-time consent columns for the customers known on ``day``.

    Returns
    -------
    DataFrame, shape (n_customers, 3 * len(MESSAGING_CHANNELS))
        ``{channel}_opt_in`` (bool; history state on ``day`` where a change is recorded,
        else the customers table's flag, True when not tracked), then
        ``consented_{channel}`` and ``consent_{channel}_days_since_change`` (float64,
        NaN without a consent history or a change by ``day``).
    """
    n = len(universe)
    flags = {column: np.ones(n, dtype=bool) for column in CONSENT_COLUMN.values()}
    if customers is not None and len(customers):
        positions = pd.Index(customers["customer_id"]).get_indexer(universe)
        found = positions >= 0
        for column, values in flags.items():
            values[found] = customers[column].to_numpy(dtype=bool)[positions[found]]
    nan = np.full(n, np.nan)
    state = {c: nan for c in MESSAGING_CHANNELS}
    since = dict(state)
    if history is not None:
        at_day = consent_at(history, universe, day)
        state, since = at_day.opted_in, at_day.days_since_change
        for channel, column in CONSENT_COLUMN.items():
            known = ~np.isnan(state[channel])
            flags[column][known] = state[channel][known] == 1.0
    columns: dict[str, np.ndarray] = dict(flags)
    columns.update({f"consented_{c}": state[c] for c in MESSAGING_CHANNELS})
    columns.update({f"consent_{c}_days_since_change": since[c] for c in MESSAGING_CHANNELS})
    return column_frame(columns)
