"""Feature families: every column build_features produces, with dtype, range and role."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

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
        # Quintiles of the customers scored together: one customer sent alone to /predict
        # would get another segment than in a batch, so models learn from its
        # ingredients (recency, frequency, spend), never from the segment itself.
        model_input=False,
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
