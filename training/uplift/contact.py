"""Contact inputs: how a customer engages with the channel an offer would go out on.

Whether a message changes anything depends on the channel it is sent on: a customer who
reads email but ignores push notifications, or whose engagement on their usual channel
has just faded, reacts differently to the same offer. The feature table describes each
channel separately (``eng_<channel>_events_30d``/``_90d``), so a tree would have to
combine the contact channel with the right channel's columns split by split. These
inputs do it once, from the point-in-time features and the contact channel alone:

* ``contact_events_30d``, ``contact_events_90d``: engagement events on the contact
  channel in the last 30 and 90 days;
* ``contact_engagement_trend``: the daily rate of those events in the last 30 days over
  the rate in the 60 days before (like ``velocity_90_vs_prior`` for orders; NaN without
  events in those 60 days);
* ``contact_is_top_messaging``: the contact channel is the messaging channel the
  customer engaged with most in the last 90 days;
* ``best_channel_engagement_trend``: the same trend on the customer's ``best_channel``
  (whatever the contact channel).

With no contact channel (None) the contact columns are NaN; the best-channel trend is
still filled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.features.contract import MESSAGING_CHANNELS

__all__ = ["CHANNEL_COLUMN", "CONTACTED_ONLY", "CONTACT_INPUTS", "contact_frame"]

#: Column of the uplift inputs holding the contact channel.
CHANNEL_COLUMN = "contact_channel"
#: Inputs derived from the features and the contact channel (model inputs of uplift).
CONTACT_INPUTS: tuple[str, ...] = (
    "contact_events_30d",
    "contact_events_90d",
    "contact_engagement_trend",
    "contact_is_top_messaging",
    "best_channel_engagement_trend",
)
#: Inputs that depend on the contact channel: hidden from the models of the control
#: group, whose outcome no message could have changed.
CONTACTED_ONLY: tuple[str, ...] = (CHANNEL_COLUMN, *CONTACT_INPUTS[:4])


def _events(features: pd.DataFrame, channel: str, days: int) -> np.ndarray:
    column = f"eng_{channel}_events_{days}d"
    if column not in features:
        return np.full(len(features), np.nan)
    return pd.to_numeric(features[column], errors="coerce").to_numpy(dtype=float)


def _per_row(features: pd.DataFrame, channels: np.ndarray, days: int) -> np.ndarray:
    """Events in the last ``days`` on each row's channel, shape (n,) (NaN: unknown)."""
    out = np.full(len(features), np.nan)
    for name in pd.unique(channels[pd.notna(channels)]):
        rows = channels == name
        out[rows] = _events(features, str(name), days)[rows]
    return out


def _trend(recent: np.ndarray, within_90: np.ndarray) -> np.ndarray:
    """Daily rate in the last 30 days over the rate in the 60 days before them."""
    prior = within_90 - recent
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(prior > 0, (recent / 30.0) / (prior / 60.0), np.nan)


def contact_frame(features: pd.DataFrame, channel: object) -> pd.DataFrame:
    """``features`` with the contact channel column and :data:`CONTACT_INPUTS` added.

    Parameters
    ----------
    features : DataFrame, shape (n_rows, ...)
        Uplift inputs (point-in-time features and ``score_*`` columns).
    channel : str, None or array-like of shape (n_rows,)
        The contact channel of every row (one for all, or one per row; None = none).

    Returns
    -------
    DataFrame, shape (n_rows, ...)
        A copy with ``contact_channel`` and the contact inputs.
    """
    n = len(features)
    if channel is None or isinstance(channel, str):
        channels = np.full(n, channel, dtype=object)
    else:
        channels = np.asarray(channel, dtype=object)
    recent, within_90 = _per_row(features, channels, 30), _per_row(features, channels, 90)
    messaging = np.column_stack([_events(features, c, 90) for c in MESSAGING_CHANNELS])
    engaged = np.nan_to_num(messaging, nan=0.0)
    top = np.asarray(MESSAGING_CHANNELS, dtype=object)[engaged.argmax(axis=1)]
    is_top = np.where(engaged.max(axis=1) > 0, top == channels, False).astype(float)
    is_top[pd.isna(channels)] = np.nan
    best = (
        features["best_channel"].astype(object).to_numpy()
        if "best_channel" in features
        else np.full(n, None, dtype=object)
    )
    best_trend = _trend(_per_row(features, best, 30), _per_row(features, best, 90))
    return features.assign(
        **{
            CHANNEL_COLUMN: channels,
            "contact_events_30d": recent,
            "contact_events_90d": within_90,
            "contact_engagement_trend": _trend(recent, within_90),
            "contact_is_top_messaging": is_top,
            "best_channel_engagement_trend": best_trend,
        }
    )
