"""Inputs normalised once, at the boundary: the as-of day and the validated tables.

Front ends (the CLI, the service, the Python API) turn what users give them into an
:class:`Inputs` with :func:`load_inputs`; feature, label, backtest and model code take
that object and never re-validate or re-parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from fidelite.features._arrays import factorize_ids
from fidelite.features._columns import IdCodes
from fidelite.features.campaigns import load_campaigns
from fidelite.features.consent import load_consent_history
from fidelite.features.contract import (
    CAMPAIGNS,
    CONSENT_HISTORY,
    CUSTOMERS,
    EVENTS,
    TRANSACTIONS,
    Table,
)
from fidelite.features.data import (
    TableSource,
    load_coded_transactions,
    load_customers,
    load_events,
)
from fidelite.features.days import ONE_DAY, parse_day
from fidelite.features.purchases import RefundLinks, link_refunds

__all__ = ["Inputs", "TableSource", "load_inputs"]


@dataclass(frozen=True)
class Inputs:
    """Validated, normalised input tables and the as-of day they are read at.

    Build it with :func:`load_inputs` (which validates); the constructor only checks
    that the tables have the normalised columns, so wrapping frames that already went
    through the loaders (demo data, Dask partitions) costs nothing.

    Attributes
    ----------
    transactions : DataFrame
        Normalised by :func:`fidelite.features.data.load_transactions`.
    as_of : Timestamp
        Day D (tz-naive midnight). Features see rows with ``timestamp < end``; nothing
        may be built for a day after D from these inputs.
    events, customers : DataFrame or None
        Normalised optional tables. The customers table's consent flags are today's
        state: targeting only (see :mod:`fidelite.features.consent`).
    consent_history : DataFrame or None
        Normalised by :func:`fidelite.features.consent.load_consent_history`: consent
        changes, from which point-in-time consent is read.
    campaigns : DataFrame or None
        Normalised by :func:`fidelite.features.campaigns.load_campaigns`: past sends and
        hold-outs, from which uplift is learnt.
    """

    transactions: pd.DataFrame
    as_of: pd.Timestamp
    events: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    consent_history: pd.DataFrame | None = None
    campaigns: pd.DataFrame | None = None
    # Derived once per set of tables and shared by every .at(day) view of them.
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "as_of", parse_day(self.as_of))
        for table, frame in (
            (TRANSACTIONS, self.transactions),
            (EVENTS, self.events),
            (CUSTOMERS, self.customers),
            (CONSENT_HISTORY, self.consent_history),
            (CAMPAIGNS, self.campaigns),
        ):
            _check_normalised(table, frame)

    @property
    def end(self) -> pd.Timestamp:
        """Exclusive end of what features may see: D + 1 day."""
        return self.as_of + ONE_DAY

    @property
    def refund_links(self) -> RefundLinks:
        """:func:`~fidelite.features.purchases.link_refunds` of the transactions (cached)."""
        if "refund_links" not in self._cache:
            orders = self._cache.get("order_keys")
            self._cache["refund_links"] = link_refunds(
                self.transactions,
                keys=None if orders is None else (self.customer_ids.codes, orders),
            )
        return self._cache["refund_links"]

    @property
    def customer_ids(self) -> IdCodes:
        """The transactions' ``customer_id`` factorised (cached; the loader's own codes
        when :func:`load_inputs` built these inputs, so ids are hashed once)."""
        if "customer_ids" not in self._cache:
            self._cache["customer_ids"] = IdCodes(*factorize_ids(self.transactions["customer_id"]))
        return self._cache["customer_ids"]

    def cut(self) -> Inputs:
        """These inputs without anything dated after D (signups, consent changes, sends).

        The customers table's consent flags stay as given: they are today's state, for
        targeting only, never read by models. Tables with nothing after D are kept as
        they are (no copy), and so is the whole object when no table changes.
        """
        customers = self.customers
        if customers is not None:
            known = customers["signup_at"].isna() | (customers["signup_at"] < self.end)
            if not known.all():
                customers = customers.loc[known.to_numpy()].reset_index(drop=True)
        transactions = self._before_end(self.transactions, "timestamp")
        cut = {
            "transactions": transactions,
            "events": self._before_end(self.events, "timestamp"),
            "customers": customers,
            "consent_history": self._before_end(self.consent_history, "changed_at"),
            "campaigns": self._before_end(self.campaigns, "sent_at"),
        }
        if all(frame is getattr(self, name) for name, frame in cut.items()):
            return self
        cache = {}
        if transactions is self.transactions:
            cache = {k: v for k, v in self._cache.items() if k in ("customer_ids", "order_keys")}
        elif "order_keys" in self._cache:  # the loader's codes, over the kept rows
            keep = (self.transactions["timestamp"] < self.end).to_numpy()
            customers, orders = self._cache["customer_ids"], self._cache["order_keys"]
            cache = {"customer_ids": customers.take(keep), "order_keys": orders[keep]}
        return replace(self, **cut, _cache=cache)

    def _before_end(self, frame: pd.DataFrame | None, column: str) -> pd.DataFrame | None:
        if frame is None:
            return None
        keep = (frame[column] < self.end).to_numpy()
        if keep.all():
            return frame  # nothing after D: no copy
        kept = frame.loc[keep].reset_index(drop=True)
        kept.attrs = dict(frame.attrs)
        return kept

    def at(self, as_of: object) -> Inputs:
        """The same tables read at another day (for backtest cutoffs before D)."""
        return replace(self, as_of=parse_day(as_of))


def _check_normalised(table: Table, frame: pd.DataFrame | None) -> None:
    if frame is None:
        return
    if not isinstance(frame, pd.DataFrame) or tuple(frame.columns) != table.names:
        found = list(frame.columns) if isinstance(frame, pd.DataFrame) else type(frame).__name__
        raise TypeError(
            f"Inputs.{table.name}: expected a frame normalised by the {table.name} loader "
            f"(columns {list(table.names)}), got {found}; build Inputs with load_inputs()"
        )


def load_inputs(
    transactions: TableSource,
    events: TableSource | None = None,
    customers: TableSource | None = None,
    *,
    as_of: object,
    consent_history: TableSource | None = None,
    campaigns: TableSource | None = None,
    cut: bool = False,
    date_format: str | None = None,
) -> Inputs:
    """Validate and normalise the input tables once.

    Parameters
    ----------
    transactions, events, customers : path or DataFrame
        See :mod:`fidelite.features.data`; ``events`` and ``customers`` are optional.
    as_of : day
        Day D, parsed by :func:`parse_day` (before any table is read, so a typo fails
        fast).
    consent_history : path or DataFrame, optional
        Consent changes (:func:`fidelite.features.consent.load_consent_history`).
    campaigns : path or DataFrame, optional
        Past campaigns (:func:`fidelite.features.campaigns.load_campaigns`).
    cut : bool
        Drop everything dated after D (training); keep it for evaluation, whose
        labels come from after D.
    date_format : str, optional
        strftime layout of text timestamps in every table; default ISO 8601 only.

    Raises
    ------
    DataContractError
        Naming the table, column and rows at fault.
    """
    day = parse_day(as_of)
    transactions, customer_ids, order_keys = load_coded_transactions(
        transactions, date_format=date_format
    )
    inputs = Inputs(
        transactions=transactions,
        as_of=day,
        events=None if events is None else load_events(events, date_format=date_format),
        customers=(
            None if customers is None else load_customers(customers, date_format=date_format)
        ),
        consent_history=(
            None
            if consent_history is None
            else load_consent_history(consent_history, date_format=date_format)
        ),
        campaigns=None if campaigns is None else load_campaigns(campaigns, date_format=date_format),
        _cache={"customer_ids": customer_ids, "order_keys": order_keys},
    )
    return inputs.cut() if cut else inputs
