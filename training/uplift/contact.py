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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fidelite.features.contract import MESSAGING_CHANNELS

__all__ = [
    "CHANNEL_COLUMN",
    "CONTACTED_ONLY",
    "CONTACT_INPUTS",
    "contact_columns",
    "contact_columns_by_channel",
    "contact_frame",
]

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

#: Feature rows: a frame, or column arrays of one length (the frame-free path).
Columns = pd.DataFrame | Mapping[str, Any]


def _numbers(values: object) -> np.ndarray:
    """A column (Series or array) as float64, unparsable values NaN."""
    if isinstance(values, pd.Series):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        return values.astype(float)
    return pd.to_numeric(pd.Series(values, dtype=object, copy=False), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )


def _events(features: Columns, channel: str, days: int, n: int) -> np.ndarray:
    column = f"eng_{channel}_events_{days}d"
    if column not in features:
        return np.full(n, np.nan)
    return _numbers(features[column])


def _per_row(features: Columns, channels: np.ndarray, days: int) -> np.ndarray:
    """Events in the last ``days`` on each row's channel, shape (n,) (NaN: unknown)."""
    n = len(channels)
    out = np.full(n, np.nan)
    # dict.fromkeys: the distinct channels in a few microseconds (pd.unique costs ~20)
    for name in dict.fromkeys(channels[pd.notna(channels)].tolist()):
        rows = channels == name
        out[rows] = _events(features, str(name), days, n)[rows]
    return out


def _trend(recent: np.ndarray, within_90: np.ndarray) -> np.ndarray:
    """Daily rate in the last 30 days over the rate in the 60 days before them."""
    prior = within_90 - recent
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(prior > 0, (recent / 30.0) / (prior / 60.0), np.nan)


def contact_columns(features: Columns, channel: object, n: int) -> dict[str, np.ndarray]:
    """The contact channel column and :data:`CONTACT_INPUTS`, each of shape (n,).

    Parameters
    ----------
    features : DataFrame or mapping of str -> ndarray, shape (n, ...)
        Uplift inputs (point-in-time features and ``score_*`` columns), as a frame or as
        column arrays (the frame-free scoring path).
    channel : str, None or array-like of shape (n,)
        The contact channel of every row (one for all, or one per row; None = none).
    n : int
        Number of rows.
    """
    return contact_columns_by_channel(features, [channel], n)[0]


def contact_columns_by_channel(
    features: Columns, channels: Sequence[object], n: int
) -> list[dict[str, np.ndarray]]:
    """:func:`contact_columns` at each of ``channels``, the channel-free parts computed once.

    Scoring a customer at every channel of the uplift model costs one pass over the
    engagement columns instead of one per channel.
    """
    messaging = np.column_stack([_events(features, c, 90, n) for c in MESSAGING_CHANNELS])
    engaged = np.nan_to_num(messaging, nan=0.0)
    top = np.asarray(MESSAGING_CHANNELS, dtype=object)[engaged.argmax(axis=1)]
    active = engaged.max(axis=1) > 0
    if "best_channel" not in features:
        best = np.full(n, None, dtype=object)
    elif isinstance(features, pd.DataFrame):
        best = features["best_channel"].astype(object).to_numpy()
    else:
        best = np.asarray(features["best_channel"], dtype=object)
    best_trend = _trend(_per_row(features, best, 30), _per_row(features, best, 90))
    out = []
    for channel in channels:
        if isinstance(channel, str):  # one channel for every row
            names = np.full(n, channel, dtype=object)
            recent, within_90 = _events(features, channel, 30, n), _events(features, channel, 90, n)
        else:
            names = np.asarray(np.full(n, None) if channel is None else channel, dtype=object)
            recent, within_90 = _per_row(features, names, 30), _per_row(features, names, 90)
        is_top = np.where(active, top == names, False).astype(float)
        is_top[pd.isna(names)] = np.nan
        out.append(
            {
                CHANNEL_COLUMN: names,
                "contact_events_30d": recent,
                "contact_events_90d": within_90,
                "contact_engagement_trend": _trend(recent, within_90),
                "contact_is_top_messaging": is_top,
                "best_channel_engagement_trend": best_trend,
            }
        )
    return out


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
    return features.assign(**contact_columns(features, channel, len(features)))
