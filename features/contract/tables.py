"""The input tables and their columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnKind = Literal["id", "timestamp", "number", "label", "text", "flag"]


@dataclass(frozen=True)
class Column:
    """One column of an input table.

    Attributes
    ----------
    name : str
    kind : {"id", "timestamp", "number", "label", "text", "flag"}
        ``id``: identifier, normalised to str; ``timestamp``: ISO 8601, normalised to
        tz-naive UTC ``datetime64[ns]``; ``number``: float64; ``label``: a small
        vocabulary, lower-cased (``channel``, ``event_type``); ``text``: free text;
        ``flag``: boolean (true/false, yes/no, 1/0).
    required : bool
        The table is refused without this column.
    description : str
        Meaning and unit, as documented in the README.
    """

    name: str
    kind: ColumnKind
    required: bool
    description: str


@dataclass(frozen=True)
class Table:
    """An input table: its name and columns in contract order."""

    name: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in contract order."""
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the required columns."""
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        """The column called ``name`` (KeyError if the table has none)."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")


TRANSACTIONS = Table(
    "transactions",
    (
        Column("customer_id", "id", True, "Customer identifier."),
        Column("order_id", "id", True, "Order identifier; a refund repeats its order's id."),
        Column("timestamp", "timestamp", True, "When the order or refund happened (ISO 8601)."),
        Column("amount", "number", True, "Net amount in currency units; negative = refund."),
        Column("channel", "label", False, "Where it was bought (web, app, store...)."),
        Column("discount", "number", False, "Discount granted on the order (currency)."),
        Column("items", "number", False, "Number of items in the order."),
    ),
)
EVENTS = Table(
    "events",
    (
        Column("customer_id", "id", True, "Customer identifier."),
        Column("timestamp", "timestamp", True, "When the event happened (ISO 8601)."),
        Column("channel", "label", True, "email, sms, push, web, app, store or any other."),
        Column("event_type", "label", True, "sent, open, click, visit, session..."),
        Column("campaign_id", "id", False, "Campaign the event belongs to, if any."),
    ),
)
CUSTOMERS = Table(
    "customers",
    (
        Column("customer_id", "id", True, "Customer identifier."),
        Column("signup_at", "timestamp", False, "When the customer signed up (ISO 8601)."),
        Column("acquisition_channel", "label", False, "How the customer was acquired."),
        Column("acquisition_cost", "number", False, "What acquiring them cost (currency)."),
        Column("email_opt_in", "flag", False, "Current email consent (targeting only)."),
        Column("sms_opt_in", "flag", False, "Current SMS consent (targeting only)."),
        Column("push_opt_in", "flag", False, "Current push consent (targeting only)."),
    ),
)
CAMPAIGNS = Table(
    "campaigns",
    (
        Column("customer_id", "id", True, "Customer contacted or held out."),
        Column("campaign_id", "id", True, "Campaign identifier."),
        Column("sent_at", "timestamp", True, "When the message went out (ISO 8601)."),
        Column(
            "group",
            "label",
            True,
            "treatment or control (aliases in CAMPAIGN_GROUP_ALIASES: holdout, treated...).",
        ),
        Column("channel", "label", False, "Channel the offer was sent on."),
        Column("offer_cost", "number", False, "Cost of the offer to the business (currency)."),
        Column("offer", "text", False, "What was offered."),
    ),
)
CONSENT_HISTORY = Table(
    "consent_history",
    (
        Column("customer_id", "id", True, "Customer identifier."),
        Column("channel", "label", True, "Messaging channel: email, sms or push."),
        Column("opted_in", "flag", True, "Consent after the change."),
        Column("changed_at", "timestamp", True, "When consent changed (ISO 8601)."),
    ),
)
#: Every input table by name.
TABLES: dict[str, Table] = {
    t.name: t for t in (TRANSACTIONS, EVENTS, CUSTOMERS, CAMPAIGNS, CONSENT_HISTORY)
}
