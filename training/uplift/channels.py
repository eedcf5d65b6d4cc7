"""Which channel a campaign may use for each customer, and the best one by uplift.

A messaging channel (email, sms, push) needs the customer's opt-in (a missing flag or
column means no consent); an owned channel (web, app, store) needs none. Only channels
the campaign lists are ever used.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from fidelite.features.contract import CONSENT_COLUMN, OWNED_CHANNELS

__all__ = [
    "has_uplift",
    "preferred_channel",
    "uplift_by_channel",
    "uplift_choice",
    "usable_channels",
]


def usable_channels(frame: pd.DataFrame, channels: tuple[str, ...]) -> np.ndarray:
    """May each customer be reached on each allowed channel? Shape (n, len(channels)).

    Messaging channels need the opt-in flag (a missing flag or column = no consent);
    owned channels need none.
    """
    usable = np.zeros((len(frame), len(channels)), dtype=bool)
    for j, channel in enumerate(channels):
        if channel in OWNED_CHANNELS:
            usable[:, j] = True
            continue
        column = CONSENT_COLUMN[channel]
        if column in frame:
            flags = frame[column]
            usable[:, j] = flags.where(flags.notna(), False).astype(bool).to_numpy()
    return usable


def preferred_channel(
    frame: pd.DataFrame, usable: np.ndarray, channels: tuple[str, ...]
) -> np.ndarray:
    """First usable channel of ``channel_preference``, else of ``channels``; None if none."""
    rank = np.full(usable.shape, len(channels) + 1000.0)
    rank[:, :] = np.arange(len(channels)) + 1000.0  # request order after preferences
    if "channel_preference" in frame:
        position = {c: j for j, c in enumerate(channels)}
        preferences = frame["channel_preference"].fillna("").astype(str).str.lower()
        for i, text in enumerate(preferences):
            for order, name in enumerate(p.strip() for p in text.split(",")):
                j = position.get(name)
                if j is not None and rank[i, j] >= 1000:
                    rank[i, j] = order
    rank = np.where(usable, rank, np.inf)
    best = rank.argmin(axis=1)
    names = np.asarray(channels, dtype=object)[best]
    return np.where(usable.any(axis=1), names, None)


def uplift_by_channel(frame: pd.DataFrame, channels: tuple[str, ...]) -> np.ndarray:
    """Incremental P(purchase) per allowed channel, NaN without history, shape (n, k)."""
    out = np.full((len(frame), len(channels)), np.nan)
    for i, text in enumerate(frame["uplift_by_channel"]):
        if isinstance(text, str) and text:
            estimates = json.loads(text)
            for j, channel in enumerate(channels):
                value = estimates.get(channel)
                if value is not None:
                    out[i, j] = value
    return out


def uplift_choice(
    frame: pd.DataFrame, usable: np.ndarray, channels: tuple[str, ...], preferred: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Channel and incremental P(purchase) per customer under the uplift policy.

    Among usable channels with history, the highest estimate wins. A customer reachable
    only on channels without history gets the average over the history channels (the
    best guess there is) on their preferred channel.
    """
    by_channel = uplift_by_channel(frame, channels)
    known = usable & ~np.isnan(by_channel)
    masked = np.where(known, by_channel, -np.inf)
    best = masked.argmax(axis=1)
    purchase = np.take_along_axis(masked, best[:, None], axis=1)[:, 0]
    channel = np.asarray(channels, dtype=object)[best]
    average = np.array(
        [
            np.mean(list(json.loads(t).values())) if isinstance(t, str) and t != "{}" else np.nan
            for t in frame["uplift_by_channel"]
        ]
    )
    fallback = ~known.any(axis=1)
    purchase = np.where(fallback, average, purchase)
    channel = np.where(fallback, preferred, channel)
    return channel, purchase


def has_uplift(scores: pd.DataFrame) -> bool:
    """Whether a scores frame carries uplift estimates (scored by a model with campaigns)."""
    return "uplift_by_channel" in scores and scores["uplift_by_channel"].notna().any()
