"""The demo events table: campaigns, browsing, purchase journeys and a few oddities.

Engagement fades before a customer's (latent) dropout, so it carries churn signal; see
:mod:`fidelite.features.demo` for the whole generative story.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.features.demo_world import (
    BASE_CLICK_RATE,
    BASE_OPEN_RATE,
    CAMPAIGN_EVERY_DAYS,
    CAMPAIGN_REACH,
    ENGAGEMENT_CHANNELS,
    Population,
    engagement_level,
    poisson_points,
    segment_starts,
    to_timestamps,
)

__all__ = ["events_table"]


def events_table(
    rng: np.random.Generator,
    pop: Population,
    purchases: pd.DataFrame,
    span: float,
    origin: pd.Timestamp,
) -> pd.DataFrame:
    parts = [_campaign_events(rng, pop, channel, span) for channel in CAMPAIGN_EVERY_DAYS]
    parts.append(_browsing_events(rng, pop, span))
    parts.append(_purchase_journey_events(rng, pop, purchases))
    parts.append(_unusual_events(rng, pop, span))
    owner, time, channel, event_type, campaign = _concat_parts(parts)
    inside = (time >= pop.signup[owner]) & (time < span)
    order = np.lexsort((owner[inside], time[inside]))
    pick = np.flatnonzero(inside)[order]
    # Integer codes + arrow `take` avoid materialising millions of Python strings.
    campaign_codes, campaign_index = np.unique(campaign[pick], return_inverse=True)
    campaign_names = [
        None
        if code < 0
        else f"{_EVENT_CHANNELS[code // _CAMPAIGN_CODE_BASE]}-{code % _CAMPAIGN_CODE_BASE:03d}"
        for code in campaign_codes
    ]
    names = pd.array([n or "" for n in campaign_names], dtype="str")
    campaign_index = np.where(campaign[pick] < 0, -1, campaign_index)
    return pd.DataFrame(
        {
            "customer_id": pd.array(pop.ids, dtype="str").take(owner[pick]),
            "timestamp": to_timestamps(origin, time[pick]),
            "channel": pd.Categorical.from_codes(channel[pick], categories=_EVENT_CHANNELS),
            "event_type": pd.Categorical.from_codes(event_type[pick], categories=_EVENT_TYPES),
            "campaign_id": names.take(campaign_index, allow_fill=True),
        }
    )


_EVENT_CHANNELS = ("email", "sms", "push", "web", "app", "store", "social", "call_center")
_EVENT_TYPES = (
    "sent",
    "delivered",
    "open",
    "click",
    "unsubscribe",
    "bounce",
    "session",
    "search",
    "add_to_cart",
    "visit",
    "share",
    "complaint",
)
_CAMPAIGN_CODE_BASE = 10_000  # campaign code = channel index * base + campaign number
_EventParts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _event_parts(
    owner: np.ndarray,
    time: np.ndarray,
    channel: str,
    event_type: str,
    campaign: np.ndarray | None = None,
) -> _EventParts:
    """Bundle events of one (channel, event_type) as (owner, time, codes...) arrays."""
    size = len(owner)
    return (
        owner,
        time,
        np.full(size, _EVENT_CHANNELS.index(channel), dtype=np.int8),
        np.full(size, _EVENT_TYPES.index(event_type), dtype=np.int8),
        campaign if campaign is not None else np.full(size, -1, dtype=np.int64),
    )


def _concat_parts(parts: list[_EventParts]) -> _EventParts:
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(5))  # type: ignore


def _campaign_events(
    rng: np.random.Generator, pop: Population, channel: str, span: float
) -> _EventParts:
    """Broadcast campaigns to consenting customers, with their responses.

    Sending stops after a customer unsubscribes; opens/clicks depend on engagement.
    """
    every = CAMPAIGN_EVERY_DAYS[channel]
    send_days = np.arange(rng.uniform(0, every), span, every) + 9.5 / 24  # ~09:30 UTC
    n, n_campaigns = len(pop.ids), len(send_days)
    targeted = rng.random((n, n_campaigns)) < CAMPAIGN_REACH[channel]
    targeted &= pop.opt_in[channel][:, None] & (send_days[None, :] >= pop.signup[:, None])
    owner, campaign = np.nonzero(targeted)  # sorted by owner, then by time
    time = send_days[campaign] + rng.exponential(0.02, len(owner))
    level = engagement_level(time, pop.dropout_time[owner])
    preferred = ENGAGEMENT_CHANNELS[pop.preferred[owner]] == channel
    affinity = np.where(preferred, 1.8, 1.0) * level

    # Unsubscribing is likelier when engagement has faded; nothing is sent afterwards.
    unsubscribed = rng.random(len(owner)) < 0.002 + 0.01 * (1 - level)
    earlier = np.cumsum(unsubscribed) - unsubscribed
    earlier -= earlier[segment_starts(owner, n)[owner]]
    sent = earlier == 0
    owner, campaign, time = owner[sent], campaign[sent], time[sent]
    affinity, unsubscribed = affinity[sent], unsubscribed[sent]
    campaign_ids = _EVENT_CHANNELS.index(channel) * _CAMPAIGN_CODE_BASE + campaign

    parts = [_event_parts(owner, time, channel, "sent", campaign_ids)]
    bad_address = rng.random(n) < (0.03 if channel == "email" else 0.01)
    bounced = bad_address[owner]
    if channel == "email":
        parts.append(
            _event_parts(
                owner[bounced], time[bounced] + 0.001, channel, "bounce", campaign_ids[bounced]
            )
        )
    else:
        delivered = ~bounced
        if channel == "sms":
            parts.append(
                _event_parts(
                    owner[delivered],
                    time[delivered] + 0.0005,
                    channel,
                    "delivered",
                    campaign_ids[delivered],
                )
            )
    reached = ~bounced
    opened = reached & (rng.random(len(owner)) < BASE_OPEN_RATE[channel] * affinity)
    open_time = time + rng.exponential(0.3, len(owner))
    parts.append(
        _event_parts(owner[opened], open_time[opened], channel, "open", campaign_ids[opened])
    )
    clickable = opened if channel == "email" else reached
    clicked = clickable & (rng.random(len(owner)) < BASE_CLICK_RATE[channel] * affinity)
    click_time = open_time + rng.exponential(0.005, len(owner))
    parts.append(
        _event_parts(owner[clicked], click_time[clicked], channel, "click", campaign_ids[clicked])
    )
    unsub = unsubscribed & reached
    parts.append(
        _event_parts(owner[unsub], open_time[unsub], channel, "unsubscribe", campaign_ids[unsub])
    )
    return _concat_parts(parts)


def _browsing_events(rng: np.random.Generator, pop: Population, span: float) -> _EventParts:
    """Web/app sessions (some with searches and add-to-carts) and store visits."""
    web_share = pop.order_channel_cdf[:, 0]
    app_share = pop.order_channel_cdf[:, 1] - pop.order_channel_cdf[:, 0]
    store_share = pop.order_channel_cdf[:, 2] - pop.order_channel_cdf[:, 1]
    preferred = ENGAGEMENT_CHANNELS[pop.preferred]
    parts = []
    for channel, share, base in (
        ("web", web_share, 0.02),
        ("app", app_share, 0.02),
        ("store", store_share, 0.006),
    ):
        boost = np.where(preferred == channel, 2.0, 1.0)
        rate = (base + 0.8 * pop.rate) * share * boost * 1.6
        owner, time = poisson_points(rng, rate, pop.signup, span)
        keep = rng.random(len(owner)) < engagement_level(time, pop.dropout_time[owner])
        owner, time = owner[keep], time[keep]
        if channel == "store":
            parts.append(_event_parts(owner, time, channel, "visit"))
            continue
        parts.append(_event_parts(owner, time, channel, "session"))
        searched = rng.random(len(owner)) < 0.35
        parts.append(_event_parts(owner[searched], time[searched] + 0.002, channel, "search"))
        carted = rng.random(len(owner)) < 0.15
        parts.append(_event_parts(owner[carted], time[carted] + 0.004, channel, "add_to_cart"))
    return _concat_parts(parts)


def _purchase_journey_events(
    rng: np.random.Generator, pop: Population, purchases: pd.DataFrame
) -> _EventParts:
    """Most orders are preceded by a session and an add-to-cart on web or app."""
    owner = purchases["owner"].to_numpy()
    time = purchases["time"].to_numpy()
    online = rng.random(len(owner)) < 0.7
    on_app = rng.random(len(owner)) < (
        pop.order_channel_cdf[owner, 1] - pop.order_channel_cdf[owner, 0]
    ) / np.maximum(pop.order_channel_cdf[owner, 1], 1e-9)
    lead = rng.exponential(0.01, len(owner)) + 0.001
    parts = []
    for channel, mask in (("web", online & ~on_app), ("app", online & on_app)):
        parts.append(_event_parts(owner[mask], time[mask] - lead[mask], channel, "session"))
        parts.append(_event_parts(owner[mask], time[mask] - lead[mask] / 2, channel, "add_to_cart"))
    return _concat_parts(parts)


def _unusual_events(rng: np.random.Generator, pop: Population, span: float) -> _EventParts:
    """A sprinkle of channels/types outside the documented vocabulary."""
    n = len(pop.ids)
    social_rate = np.where(rng.random(n) < 0.05, 0.02, 0.0)
    owner, time = poisson_points(rng, social_rate, pop.signup, span)
    parts = [_event_parts(owner, time, "social", "share")]
    complaint_rate = np.full(n, 0.0008)
    owner, time = poisson_points(rng, complaint_rate, pop.signup, span)
    parts.append(_event_parts(owner, time, "call_center", "complaint"))
    return _concat_parts(parts)
