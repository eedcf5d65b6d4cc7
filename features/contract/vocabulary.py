"""Channel, consent, campaign-group and event-type vocabularies."""

from __future__ import annotations

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
