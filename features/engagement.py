"""Channel engagement features from the events table.

Each event is counted on its channel. *Engagement* is any known event type that is
not a send-side or negative signal (sent, delivered, bounce, unsubscribe,
complaint); see :data:`fidelite.features.contract.ENGAGEMENT_EVENT_TYPES`.

Per channel ``c`` (the known set plus any other channel in the events):
``eng_{c}_events_{w}d`` (all known events in the trailing window),
``eng_{c}_days_since_last`` (days since the last engagement, NaN if none),
``eng_{c}_share`` (share of the customer's engagements over the last
``engagement_share_days``, NaN if none) and, for messaging channels and channels
outside the known set, ``eng_{c}_open_rate`` / ``eng_{c}_click_rate`` (opens and
clicks over delivered messages, or over sent ones when no delivery receipts exist;
clipped to [0, 1]; NaN without messages).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.features._arrays import EventArrays, column_frame, safe_divide, text_labels
from fidelite.features.contract import ENGAGEMENT_CHANNELS, MESSAGING_CHANNELS
from fidelite.features.params import FeatureParams


def engagement_features(events: EventArrays, params: FeatureParams) -> pd.DataFrame:
    """Per-customer, per-channel engagement columns (see module docstring).

    Returns
    -------
    DataFrame, shape (n_customers, ...)
        Also ``days_since_last_engagement``, ``unsubscribes_total``,
        ``bounces_total``, ``best_channel`` (str, "" without engagement) and
        ``channel_preference`` (str, channels with engagement ordered best first,
        comma-separated, "" without engagement).
    """
    n, channels = events.n_customers, events.channel_names
    k = len(channels)
    # 32-bit codes (large event tables) widen only when n * k would overflow them.
    narrow = n * k < 2**31
    code = events.code if narrow else events.code.astype(np.int64)
    channel = events.channel if narrow else events.channel.astype(np.int64)
    # Channel-major (n_channels, n_customers): a channel's column is a contiguous row,
    # and sums over channels add whole rows (reductions along short rows are slow).
    key = channel * n + code
    days_ago = events.as_of_day - events.day

    def per_channel(mask: np.ndarray) -> np.ndarray:
        return np.bincount(key[mask], minlength=n * k).reshape(k, n)

    engaged = events.type_mask(params.engagement_event_types)
    recent_engaged = engaged & (days_ago < params.engagement_share_days)
    engagements = per_channel(recent_engaged).astype(np.float64)
    last_engaged_ago = _days_since_last(key[engaged], days_ago[engaged], n * k).reshape(k, n)
    delivered = per_channel(events.type_mask(("delivered",)))
    sent = per_channel(events.type_mask(("sent",)))
    # Without delivery receipts for a channel, "sent" is the best denominator we have.
    messages = np.where(delivered > 0, delivered, sent)
    opens = per_channel(events.type_mask(("open",)))
    clicks = per_channel(events.type_mask(("click",)))
    share = safe_divide(engagements, engagements.sum(axis=0, keepdims=True))
    window_counts = {w: per_channel(days_ago < w) for w in params.engagement_windows}

    columns: dict[str, np.ndarray] = {}
    for j, channel in enumerate(channels):
        for window, counts in window_counts.items():
            columns[f"eng_{channel}_events_{window}d"] = counts[j].astype(np.int64, copy=False)
        if channel in MESSAGING_CHANNELS or channel not in ENGAGEMENT_CHANNELS:
            columns[f"eng_{channel}_open_rate"] = np.clip(safe_divide(opens[j], messages[j]), 0, 1)
            columns[f"eng_{channel}_click_rate"] = np.clip(
                safe_divide(clicks[j], messages[j]), 0, 1
            )
        columns[f"eng_{channel}_days_since_last"] = last_engaged_ago[j]
        columns[f"eng_{channel}_share"] = share[j]

    any_channel_ago = np.where(np.isnan(last_engaged_ago), np.inf, last_engaged_ago).min(
        axis=0, initial=np.inf
    )
    columns["days_since_last_engagement"] = np.where(
        np.isinf(any_channel_ago), np.nan, any_channel_ago
    )
    columns["unsubscribes_total"] = np.bincount(
        events.code[events.type_mask(("unsubscribe",))], minlength=n
    ).astype(np.int64)
    columns["bounces_total"] = np.bincount(
        events.code[events.type_mask(("bounce",))], minlength=n
    ).astype(np.int64)
    best, preference, codes = ranked_channel_lists(engagements.T, last_engaged_ago.T, channels)
    columns["best_channel"] = text_labels(best, codes)
    columns["channel_preference"] = text_labels(preference, codes)
    return column_frame(columns)


def _days_since_last(key: np.ndarray, days_ago: np.ndarray, size: int) -> np.ndarray:
    """Minimum ``days_ago`` per key (NaN for keys without rows), float64 of shape (size,)."""
    out = np.full(size, np.inf)
    np.minimum.at(out, key, days_ago.astype(np.float64))
    out[np.isinf(out)] = np.nan
    return out


def rank_channels(
    engagements: np.ndarray, last_engaged_ago: np.ndarray, channels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Order each customer's channels by engagement count, ties to the most recent.

    Parameters
    ----------
    engagements : ndarray of float64, shape (n_customers, n_channels)
        Engagement counts (whole numbers).
    last_engaged_ago : ndarray of float64, shape (n_customers, n_channels)
        Days since the last engagement on the channel (NaN if never).
    channels : list of str, length n_channels

    Returns
    -------
    best : ndarray of object (str), shape (n_customers,)
        Top channel, "" when the customer has no engagement.
    preference : ndarray of object (str), shape (n_customers,)
        Engaged channels best first, comma-separated ("" when none).
    """
    best, preference, codes = ranked_channel_lists(engagements, last_engaged_ago, channels)
    return np.array(best, dtype=object)[codes], np.array(preference, dtype=object)[codes]


def ranked_channel_lists(
    engagements: np.ndarray, last_engaged_ago: np.ndarray, channels: list[str]
) -> tuple[list[str], list[str], np.ndarray]:
    """:func:`rank_channels` as the distinct rankings and each customer's code into them.

    Returns
    -------
    best, preference : list of str, shape (n_lists,)
        Top channel and ranked channels of each distinct ranking; entry 0 is the empty
        ranking ("", "") of customers without engagement.
    codes : ndarray of int64, shape (n_customers,)
    """
    codes = np.zeros(engagements.shape[0], dtype=np.int64)
    best, preference = [""], [""]
    # Only customers with an engagement have a ranking (often a minority, or none).
    engaged = np.flatnonzero((engagements > 0).any(axis=1))
    if engaged.size:
        more_best, more_preference, inverse = _rank_engaged(
            engagements[engaged], last_engaged_ago[engaged], channels
        )
        best += more_best
        preference += more_preference
        codes[engaged] = inverse + 1
    return best, preference, codes


def _rank_engaged(
    engagements: np.ndarray, last_engaged_ago: np.ndarray, channels: list[str]
) -> tuple[list[str], list[str], np.ndarray]:
    """The distinct rankings of customers with at least one engagement, and their codes."""
    k = engagements.shape[1]
    # Counts are whole numbers, so a recency bonus in [0, 1) only breaks ties.
    recency_bonus = 1.0 / (2.0 + np.nan_to_num(last_engaged_ago, nan=np.inf))
    score = np.where(engagements > 0, engagements + recency_bonus, 0.0)
    # Stable sort on -score keeps the declared channel order for exact ties.
    order = np.argsort(-score, axis=1, kind="stable")
    engaged_sorted = np.take_along_axis(score, order, axis=1) > 0

    # The distinct ranked lists are few, so build each string once, not per customer.
    ranked_codes = np.where(engaged_sorted, order, -1)
    if (k + 1) ** k < 2**62:
        # One integer per ranked list (base k+1 digits): a 1-D unique is much faster.
        combo = (ranked_codes + 1) @ ((k + 1) ** np.arange(k - 1, -1, -1, dtype=np.int64))
        _, first_row, inverse = np.unique(combo, return_index=True, return_inverse=True)
        unique_lists = ranked_codes[first_row]
    else:
        unique_lists, inverse = np.unique(ranked_codes, axis=0, return_inverse=True)
    names = np.array(channels, dtype=object)
    best_strings, pref_strings = [], []
    for row in unique_lists:
        ranked = row[row >= 0]
        best_strings.append(names[ranked[0]] if ranked.size else "")
        pref_strings.append(",".join(names[ranked]))
    return best_strings, pref_strings, inverse.reshape(-1)
