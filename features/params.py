"""Documented thresholds and windows used by :func:`features.build.build_features`."""

from __future__ import annotations

from dataclasses import dataclass

#: Channels that always get engagement columns, even when no event mentions them.
KNOWN_CHANNELS: tuple[str, ...] = ("email", "sms", "push", "web", "app", "store")
#: Channels whose messages are sent/delivered, so open and click rates make sense.
MESSAGING_CHANNELS: tuple[str, ...] = ("email", "sms", "push")
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


@dataclass(frozen=True)
class FeatureParams:
    """Windows and thresholds of the point-in-time feature builder (all in days).

    Parameters
    ----------
    windows : tuple of int, default (30, 90, 180, 365)
        Trailing windows for ``orders_{w}d`` / ``spend_{w}d``. Window ``w`` covers the
        ``w`` calendar days ending on (and including) ``as_of``.
    engagement_windows : tuple of int, default (30, 90)
        Trailing windows for ``eng_{channel}_events_{w}d``.
    engagement_share_days : int, default 365
        Engagements older than this are ignored by ``eng_{c}_share``, ``best_channel``
        and ``channel_preference`` (stale engagement says little about today).
    trend_days : int, default 90
        ``spend_trend`` compares gross spend in the last ``trend_days`` with the
        ``trend_days`` before them.
    velocity_days : int, default 90
        ``velocity_90_vs_prior`` compares the order rate in the last ``velocity_days``
        with the rate over the rest of the customer's purchase tenure.
    velocity_min_prior_days : int, default 30
        Velocity is NaN when the earlier part of the tenure is shorter than this.
    new_days : int, default 30
        Lifecycle ``new``: first purchase day within the last ``new_days`` days.
    at_risk_overdue_ratio : float, default 1.5
        Lifecycle ``at_risk``: days since last purchase > ratio x own mean gap.
    at_risk_days : int, default 90
        Lifecycle ``at_risk`` when the rhythm is unknown (fewer than 2 purchase days):
        days since last purchase > ``at_risk_days``.
    lapsed_days : int, default 180
        Lifecycle ``lapsed``: no purchase in the last ``lapsed_days`` days.
    reactivated_days : int, default 30
        Lifecycle ``reactivated``: a purchase in the last ``reactivated_days`` days that
        ended a gap longer than ``lapsed_days``.
    engagement_event_types : tuple of str
        Event types counted as engagement; together with
        :data:`NON_ENGAGEMENT_EVENT_TYPES` they form the known vocabulary. Other
        types are ignored (logged once per build).
    """

    windows: tuple[int, ...] = (30, 90, 180, 365)
    engagement_windows: tuple[int, ...] = (30, 90)
    engagement_share_days: int = 365
    trend_days: int = 90
    velocity_days: int = 90
    velocity_min_prior_days: int = 30
    new_days: int = 30
    at_risk_overdue_ratio: float = 1.5
    at_risk_days: int = 90
    lapsed_days: int = 180
    reactivated_days: int = 30
    engagement_event_types: tuple[str, ...] = ENGAGEMENT_EVENT_TYPES

    def __post_init__(self) -> None:
        day_fields = {
            "windows": self.windows,
            "engagement_windows": self.engagement_windows,
        }
        for name, values in day_fields.items():
            if not values or any(int(v) <= 0 for v in values):
                raise ValueError(f"FeatureParams.{name} must be positive day counts, got {values}")
        for name in (
            "engagement_share_days",
            "trend_days",
            "velocity_days",
            "new_days",
            "at_risk_days",
            "lapsed_days",
            "reactivated_days",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"FeatureParams.{name} must be > 0, got {getattr(self, name)}")
        if self.at_risk_overdue_ratio <= 0:
            raise ValueError(
                f"FeatureParams.at_risk_overdue_ratio must be > 0, got {self.at_risk_overdue_ratio}"
            )
