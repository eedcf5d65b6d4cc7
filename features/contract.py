"""The fidelite contract, in one place: input tables, vocabularies, features and scores.

Every other module reads names from here instead of spelling them out:

* the **input tables** (:data:`TRANSACTIONS`, :data:`EVENTS`, :data:`CUSTOMERS`,
  :data:`CAMPAIGNS`, :data:`CONSENT_HISTORY`) and their columns, which the loaders in
  :mod:`fidelite.features.data` validate;
* the **vocabularies**: order and engagement channels, which channels are messaging
  (need consent) or owned, the event types that count as engagement;
* the **feature families** (:data:`FEATURE_FAMILIES`): every column that
  :func:`fidelite.features.build_features` produces, with its dtype, whether it is a
  categorical or a model input, and its allowed range. Serving validates request rows
  with these ranges, training picks categoricals and model inputs from them, and the
  reason phrases are keyed by family;
* the **scores frame** (:data:`SCORE_COLUMNS`) written by ``fidelite score``, returned
  by the model and by the service.

This module imports nothing from the rest of the package: it is the bottom layer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CAMPAIGNS",
    "CAMPAIGN_GROUPS",
    "CAMPAIGN_GROUP_ALIASES",
    "CONSENT_COLUMN",
    "CONSENT_HISTORY",
    "CUSTOMERS",
    "ENGAGEMENT_CHANNELS",
    "ENGAGEMENT_EVENT_TYPES",
    "EVENTS",
    "FEATURE_FAMILIES",
    "MESSAGING_CHANNELS",
    "MISSING_LABEL",
    "NON_ENGAGEMENT_EVENT_TYPES",
    "ORDER_CHANNELS",
    "OWNED_CHANNELS",
    "SCORE_COLUMNS",
    "TABLES",
    "TRANSACTIONS",
    "Column",
    "FeatureFamily",
    "ScoreColumn",
    "Table",
    "categorical_features",
    "feature_family",
    "model_input_features",
    "score_column_names",
]

# ---------------------------------------------------------------------- vocabularies
#: Label given to a missing channel or event type.
MISSING_LABEL = "unknown"

#: Channels that sell: every one gets an ``order_share_{channel}`` feature. Any other
#: channel seen in the data gets one too (after these, sorted by name).
ORDER_CHANNELS: tuple[str, ...] = ("web", "app", "store", "phone", "marketplace")

#: Channels we send messages on; contacting a customer there needs their consent.
MESSAGING_CHANNELS: tuple[str, ...] = ("email", "sms", "push")
#: Channels we own (site banners, in-app and in-store offers): no marketing consent needed.
OWNED_CHANNELS: tuple[str, ...] = ("web", "app", "store")
#: Channels that always get ``eng_{channel}_*`` features, even when no event mentions
#: them. Other channels seen in the events (social, call_center...) get them too.
ENGAGEMENT_CHANNELS: tuple[str, ...] = MESSAGING_CHANNELS + OWNED_CHANNELS
#: The customers-table flag that grants consent on each messaging channel.
CONSENT_COLUMN: dict[str, str] = {c: f"{c}_opt_in" for c in MESSAGING_CHANNELS}

#: The two groups of a campaign: contacted, or held out to measure what contact changed.
CAMPAIGN_GROUPS: tuple[str, ...] = ("treatment", "control")
#: Spellings accepted in the campaigns table's ``group`` column (compared stripped and
#: lower-cased), by the group they mean.
CAMPAIGN_GROUP_ALIASES: dict[str, tuple[str, ...]] = {
    "treatment": (
        "treatment",
        "treated",
        "test",
        "target",
        "targeted",
        "contacted",
        "contact",
        "sent",
        "1",
    ),
    "control": (
        "control",
        "control_group",
        "holdout",
        "hold_out",
        "hold-out",
        "holdout_group",
        "held_out",
        "ctrl",
        "not_contacted",
        "0",
    ),
}

#: Event types that are recorded but are not the customer engaging with us.
NON_ENGAGEMENT_EVENT_TYPES: tuple[str, ...] = (
    "sent",
    "delivered",
    "bounce",
    "unsubscribe",
    "complaint",
)
#: Event types that count as the customer engaging (opening, clicking, visiting...).
ENGAGEMENT_EVENT_TYPES: tuple[str, ...] = (
    "open",
    "click",
    "visit",
    "session",
    "page_view",
    "product_view",
    "view",
    "search",
    "add_to_cart",
    "cart",
    "checkout",
    "app_open",
    "login",
    "reply",
    "store_visit",
    "wishlist",
    "review",
    "share",
)

# ---------------------------------------------------------------------- input tables
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

# ------------------------------------------------------------------- feature families
FeatureDtype = Literal["float", "int", "bool", "str"]


@dataclass(frozen=True)
class FeatureFamily:
    """A family of feature columns sharing a meaning, a dtype and a range.

    Attributes
    ----------
    name : str
        Family key (used by the reason phrases and documentation).
    template : str
        Column-name template: ``{window}`` stands for a window in days, ``{channel}``
        for a channel name, e.g. ``"eng_{channel}_events_{window}d"``.
    dtype : {"float", "int", "bool", "str"}
    low, high : float or None
        Inclusive allowed range; None = unbounded on that side. NaN is always allowed
        for numeric families (unknown: LightGBM routes it down a learned branch).
    categorical : bool
        Encoded as a categorical model input (a ``str`` family).
    model_input : bool
        Whether models may learn from it. Current-state snapshots (consent) and free
        text are for targeting and display only.
    description : str
        Meaning and unit.
    """

    name: str
    template: str
    dtype: FeatureDtype
    low: float | None = None
    high: float | None = None
    categorical: bool = False
    model_input: bool = True
    description: str = ""

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """Regular expression matching the family's concrete column names."""
        parts = re.split(r"(\{window\}|\{channel\})", self.template)
        regex = "".join(
            r"\d+" if p == "{window}" else r"[0-9a-z_]+?" if p == "{channel}" else re.escape(p)
            for p in parts
        )
        return re.compile(f"^{regex}$")

    def columns(self, windows: Iterable[int] = (), channels: Iterable[str] = ()) -> list[str]:
        """Concrete column names for the given windows and channels, in template order."""
        names = [self.template]
        if "{channel}" in self.template:
            names = [n.replace("{channel}", c) for n in names for c in channels]
        if "{window}" in self.template:
            names = [n.replace("{window}", str(w)) for n in names for w in windows]
        return names


def _f(
    name: str,
    dtype: FeatureDtype,
    low: float | None,
    high: float | None,
    text: str,
    template: str | None = None,
    **kwargs: bool,
) -> FeatureFamily:
    return FeatureFamily(name, template or name, dtype, low, high, description=text, **kwargs)


_DAYS, _SHARE, _BALANCE = (0.0, None), (0.0, 1.0), (-1.0, 1.0)

#: Every feature column of :func:`fidelite.features.build_features`, by family, in the
#: order the builder emits them. More specific templates come before looser ones that
#: could also match (``eng_{channel}_open_rate`` before ``eng_{channel}_share``).
FEATURE_FAMILIES: tuple[FeatureFamily, ...] = (
    # BG/NBD form (lifetimes conventions, days)
    _f(
        "frequency",
        "float",
        0,
        None,
        "Repeat purchase days (purchase days - 1; see features.purchases).",
    ),
    _f("recency", "float", *_DAYS, "Days from the first to the last purchase day."),
    _f("T", "float", *_DAYS, "Days from the first purchase day to as-of."),
    _f(
        "monetary_value",
        "float",
        None,
        None,
        "Mean net value of the purchases per repeat purchase day.",
    ),
    # ML form
    _f("days_since_last_purchase", "float", *_DAYS, "Days since the last purchase day."),
    _f("orders_total", "int", 0, None, "Purchases (orders kept after their refunds) so far."),
    _f("spend_total", "float", None, None, "Net spend so far (every refund subtracted)."),
    _f(
        "orders_window",
        "int",
        0,
        None,
        "Purchases placed in the last {window} days.",
        template="orders_{window}d",
    ),
    _f(
        "spend_window",
        "float",
        None,
        None,
        "Net value of the orders placed in the last {window} days.",
        template="spend_{window}d",
    ),
    _f("avg_order_value", "float", 0, None, "Mean net value per purchase."),
    _f(
        "spend_trend",
        "float",
        *_BALANCE,
        "Purchase value of the last 90 days against the 90 before.",
    ),
    _f("refund_share", "float", 0, None, "Refunded amount / gross ordered amount."),
    _f("discount_share", "float", *_SHARE, "Discount / (gross spend + discount)."),
    _f("tenure_days", "float", *_DAYS, "Days since signup or first purchase."),
    _f(
        "velocity_90_vs_prior",
        "float",
        *_BALANCE,
        "Purchase rate of the last 90 days against the earlier rate (-1 fading, +1 rising).",
    ),
    _f(
        "order_share",
        "float",
        *_SHARE,
        "Share of purchases placed on {channel}.",
        template="order_share_{channel}",
    ),
    # rhythm (replenishment timing)
    _f("ipt_mean_days", "float", 0, None, "Mean gap between purchase days."),
    _f("ipt_std_days", "float", 0, None, "Standard deviation of the gaps."),
    _f("overdue_ratio", "float", 0, None, "Days since last purchase / mean gap."),
    _f("longest_gap_days", "float", 0, None, "Longest gap between purchase days."),
    _f("return_gap_days", "float", 0, None, "Gap ended by a recent comeback purchase."),
    # engagement per channel
    _f(
        "eng_events",
        "int",
        0,
        None,
        "Engagement events on {channel} in {window} days.",
        template="eng_{channel}_events_{window}d",
    ),
    _f(
        "eng_open_rate",
        "float",
        *_SHARE,
        "Opens / messages delivered on {channel}.",
        template="eng_{channel}_open_rate",
    ),
    _f(
        "eng_click_rate",
        "float",
        *_SHARE,
        "Clicks / messages delivered on {channel}.",
        template="eng_{channel}_click_rate",
    ),
    _f(
        "eng_days_since_last",
        "float",
        *_DAYS,
        "Days since the last {channel} engagement.",
        template="eng_{channel}_days_since_last",
    ),
    _f(
        "eng_share",
        "float",
        *_SHARE,
        "Share of the customer's engagement on {channel}.",
        template="eng_{channel}_share",
    ),
    _f("days_since_last_engagement", "float", *_DAYS, "Days since any engagement."),
    _f("unsubscribes_total", "int", 0, None, "Unsubscribe events so far."),
    _f("bounces_total", "int", 0, None, "Bounced messages so far."),
    _f("best_channel", "str", None, None, "Channel with the most engagement.", categorical=True),
    _f(
        "channel_preference",
        "str",
        None,
        None,
        "Channels by engagement, comma-separated (display and targeting).",
        model_input=False,
    ),
    # customers table
    _f(
        "consent",
        "bool",
        None,
        None,
        "Current consent on {channel} (targeting only).",
        template="{channel}_opt_in",
        model_input=False,
    ),
    # consent history (point-in-time, so a model input)
    _f(
        "consent_at_as_of",
        "float",
        *_SHARE,
        "Consent on {channel} on day D from the consent history (1 opted in, 0 opted "
        "out; NaN without a recorded change by D).",
        template="consented_{channel}",
    ),
    _f(
        "consent_change_age",
        "float",
        *_DAYS,
        "Days since the last recorded consent change on {channel} (NaN without one).",
        template="consent_{channel}_days_since_change",
    ),
    _f(
        "acquisition_channel", "str", None, None, "How the customer was acquired.", categorical=True
    ),
    _f("acquisition_cost", "float", 0, None, "What acquiring the customer cost."),
    # segments
    _f(
        "lifecycle_stage",
        "str",
        None,
        None,
        "prospect, new, active, at_risk, lapsed or reactivated.",
        categorical=True,
    ),
    _f(
        "rfm_segment",
        "str",
        None,
        None,
        "RFM segment (champions, loyal, at risk...).",
        categorical=True,
    ),
)

_FAMILY_BY_NAME = {f.name: f for f in FEATURE_FAMILIES}


@functools.cache
def feature_family(column: str) -> FeatureFamily | None:
    """The family a feature column belongs to, or None for a column outside the contract.

    Exact names win over templates, then templates are tried in declaration order.
    """
    exact = _FAMILY_BY_NAME.get(column)
    if exact is not None and exact.template == exact.name:
        return exact
    for family in FEATURE_FAMILIES:
        if family.pattern.match(column):
            return family
    return None


def categorical_features() -> tuple[str, ...]:
    """Names of the categorical model inputs."""
    return tuple(f.name for f in FEATURE_FAMILIES if f.categorical and f.model_input)


def model_input_features(columns: Iterable[str]) -> list[str]:
    """The columns (of a features frame) that models may learn from, in the given order.

    Columns outside the contract are left out: a model learns only from documented
    features.
    """
    out = []
    for column in columns:
        family = feature_family(column)
        if family is not None and family.model_input:
            out.append(column)
    return out


# ---------------------------------------------------------------------- scores frame
ScoreDtype = Literal["str", "date", "int", "float", "bool", "list[str]"]


@dataclass(frozen=True)
class ScoreColumn:
    """One column of the scores frame.

    Attributes
    ----------
    name : str
    dtype : {"str", "date", "int", "float", "bool", "list[str]"}
        ``list[str]`` is stored as a JSON list in files and returned as a list by the API.
    nullable : bool
        Whether the value may be missing (null in JSON, NaN/NaT/None in the frame).
    description : str
        Meaning and unit; shown in the OpenAPI schema and the README.
    """

    name: str
    dtype: ScoreDtype
    nullable: bool
    description: str


#: The scores frame, in column order (written by ``fidelite score``, returned by
#: ``FideliteModel.predict`` and by the service).
SCORE_COLUMNS: tuple[ScoreColumn, ...] = (
    ScoreColumn("customer_id", "str", False, "Customer identifier."),
    ScoreColumn("as_of", "date", False, "Day the features were built at (D)."),
    ScoreColumn("horizon_days", "int", False, "Prediction horizon H in days."),
    ScoreColumn(
        "status",
        "str",
        False,
        "ok: a purchaser, scored from their purchase history; prospect: no purchase yet "
        "(signed up, or only refunded or zero-value orders), scored by the first-purchase "
        "model; insufficient_history: no purchase yet and no first-purchase model (too "
        "few prospects in the training data), so the predictions are missing.",
    ),
    ScoreColumn(
        "churn_probability",
        "float",
        True,
        "P(no purchase in the days (D, D + H]); calibrated for the season of that window. "
        "1 - churn_probability is P(at least one purchase), for a prospect P(first purchase).",
    ),
    ScoreColumn(
        "p_alive",
        "float",
        True,
        "P(the customer has not left for good): the MBG/NBD baseline's P(alive) (which "
        "falls with silence, one-time buyers included) scaled by the ratio of the model's "
        "to the baseline's P(purchase within H), at most 1; never below 1 - "
        "churn_probability. Missing for prospects.",
    ),
    ScoreColumn(
        "expected_purchases",
        "float",
        True,
        "Expected purchase days in (D, D + H], consistent with churn_probability.",
    ),
    ScoreColumn(
        "predicted_clv",
        "float",
        True,
        "Expected net spend in (D, D + H] (currency): (1 - churn_probability) x value_if_retained.",
    ),
    ScoreColumn(
        "predicted_clv_p10",
        "float",
        True,
        "Lower end of an 80% interval of the spend in (D, D + H], calibrated on held-out "
        "data (0 when no purchase is about as likely as the lower tail).",
    ),
    ScoreColumn(
        "predicted_clv_p90", "float", True, "Upper end of the same 80% interval (currency)."
    ),
    ScoreColumn(
        "value_if_retained",
        "float",
        True,
        "Expected net spend in (D, D + H] if the customer stays, i.e. given at least one "
        "purchase in it (currency).",
    ),
    ScoreColumn(
        "expected_next_purchase",
        "date",
        True,
        "Median date of the next purchase: the day P(a purchase by then) reaches 1/2. "
        "Missing when that never happens within the horizon (churn_probability > 0.5).",
    ),
    ScoreColumn(
        "lifecycle_stage", "str", True, "prospect, new, active, at_risk, lapsed or reactivated."
    ),
    ScoreColumn(
        "churn_percentile",
        "float",
        True,
        "Percentile (0-100) of the churn probability among held-out purchasers.",
    ),
    ScoreColumn("risk_band", "str", True, "low (< 0.25), medium, high or critical (>= 0.75)."),
    ScoreColumn(
        "value_at_risk",
        "float",
        True,
        "churn_probability x value_if_retained: the spend expected if the customer stays, "
        "weighted by the risk they do not (currency).",
    ),
    ScoreColumn("reasons", "list[str]", False, "Top drivers of the churn risk, strongest first."),
    ScoreColumn("best_channel", "str", True, "Channel with the most engagement."),
    ScoreColumn(
        "channel_preference", "str", True, "Channels ordered by engagement, comma-separated."
    ),
    ScoreColumn("email_opt_in", "bool", True, "Current email consent."),
    ScoreColumn("sms_opt_in", "bool", True, "Current SMS consent."),
    ScoreColumn("push_opt_in", "bool", True, "Current push consent."),
    # Uplift (null unless the model was trained with campaign history: train --campaigns).
    ScoreColumn(
        "uplift_channel",
        "str",
        True,
        "Consented messaging channel with the highest estimated uplift (null: none).",
    ),
    ScoreColumn(
        "uplift_purchase",
        "float",
        True,
        "Change in P(purchase within the response window) if contacted on uplift_channel "
        "(negative: the contact drives the customer away).",
    ),
    ScoreColumn(
        "response_value",
        "float",
        True,
        "What winning the customer back is worth (currency): value_if_retained when the "
        "uplift model was trained with it, else (older models) the expected net spend in "
        "the response window given a purchase.",
    ),
    ScoreColumn(
        "uplift_value",
        "float",
        True,
        "uplift_purchase x response_value: expected incremental net value of a contact "
        "(currency, before the offer's cost).",
    ),
    ScoreColumn(
        "uplift_by_channel",
        "str",
        True,
        'JSON object: uplift_purchase per channel with campaign history, e.g. {"email": 0.04}.',
    ),
)


def score_column_names() -> tuple[str, ...]:
    """Names of :data:`SCORE_COLUMNS`, in order."""
    return tuple(c.name for c in SCORE_COLUMNS)
