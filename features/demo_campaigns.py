"""Past win-back campaigns for the demo data, with known, heterogeneous true effects.

Every quarter the simulated marketing team sends a win-back offer to the customers who
looked at risk the day before (by the rules a CRM would use: overdue against their own
rhythm, or silent for months), keeping a random 20% as a control group. The offer goes
out on one of the customer's consented messaging channels, picked at random.

How a customer reacts depends on what they did before the send, as the features of
:func:`fidelite.features.build_features` at the day before show it:

* **fading engagement on the preferred channel responds** (persuadables): the lift
  grows with how much the customer's engagement on their best channel has dropped in
  the last 30 days against the 60 before, and is larger when the offer arrives on
  the messaging channel they engaged with most in the last 90 days;
* **very active customers buy anyway** (sure things): little lift;
* **long-lapsed customers rarely come back** (lost causes): little lift;
* **recently fatigued or discount-averse customers react negatively** (sleeping
  dogs): a customer who unsubscribed from a channel in the last 180 days, or who never
  used a discount over several orders, may leave for good because of the offer.

A customer with lift ``a`` places an extra order in the response window with
probability ``a``; a sleeping dog with propensity ``b`` leaves at the send with
probability ``b`` (all of their later orders disappear). Both act on treated rows only;
the control group shows what would have happened anyway.

The true effect of each campaign row is returned separately (:class:`CampaignWorld`),
for tests and benchmarks: it is never written into the tables a model reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.features.build import build_features
from fidelite.features.contract import MESSAGING_CHANNELS
from fidelite.features.inputs import Inputs

__all__ = [
    "CampaignSettings",
    "CampaignWorld",
    "LatentCustomers",
    "quarterly_send_days",
    "simulate_winback_campaigns",
]

_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class CampaignSettings:
    """How the demo's win-back programme runs (amounts in currency, times in days).

    Parameters
    ----------
    response_days : int
        Response window after each send.
    control_share : float
        Share of the selected customers held out.
    offer, offer_cost : str, float
        What is offered and what one contact costs the business.
    max_lift : float
        Extra-order probability of a fully fading customer contacted on their best channel.
    other_channel_factor : float
        Lift multiplier when the offer comes on another channel than the customer's
        favourite messaging channel.
    fatigue_leave, averse_leave : float
        Probability that a fatigued / discount-averse customer leaves because contacted.
    """

    response_days: int = 30
    control_share: float = 0.2
    offer: str = "15% off the next order"
    offer_cost: float = 3.0
    max_lift: float = 0.55
    other_channel_factor: float = 0.4
    fatigue_leave: float = 0.35
    averse_leave: float = 0.25


@dataclass(frozen=True)
class LatentCustomers:
    """Latent per-customer state of the demo population, arrays of shape (n_customers,).

    ``ids`` are customer ids; times are days since ``origin``; ``rate`` is the purchase
    rate per day; ``dropout_time`` is the day of the purchase after which the customer
    left (inf when never); ``spend_scale`` the Gamma(6, scale) order value scale.
    """

    ids: np.ndarray
    origin: pd.Timestamp
    rate: np.ndarray
    dropout_time: np.ndarray
    spend_scale: np.ndarray
    order_channel_cdf: np.ndarray
    order_channels: np.ndarray
    calendar_lift: np.ndarray  # purchase-rate season multiplier per day offset
    spend_lift: np.ndarray  # order-value season multiplier per day offset


@dataclass
class CampaignWorld:
    """The campaigns table, the transactions after the campaigns, and the truth.

    Attributes
    ----------
    campaigns : DataFrame
        Campaigns-table rows (``contract.CAMPAIGNS`` columns), one per customer
        contacted (``group="treatment"``) or held out (``"control"``).
    transactions : DataFrame
        The transactions with every campaign's effect applied (extra orders, lost ones).
    truth : DataFrame
        One row per campaign row: ``customer_id``, ``campaign_id``, ``p_untreated``
        (P(purchase in the window) without contact), ``lift`` (a), ``leave`` (b),
        ``true_uplift_purchase``, ``true_uplift_spend`` (expected incremental net spend
        in the window, currency) and the driver flags ``fading``, ``sure_thing``,
        ``lost_cause``, ``fatigued``, ``discount_averse``.
    """

    campaigns: pd.DataFrame
    transactions: pd.DataFrame
    truth: pd.DataFrame


def quarterly_send_days(
    start: pd.Timestamp, end: pd.Timestamp, *, response_days: int = 30, min_history_days: int = 120
) -> list[pd.Timestamp]:
    """The 15th of February, May, August and November with enough history before and
    a full response window before ``end``."""
    days = []
    for year in range(start.year, end.year + 1):
        for month in (2, 5, 8, 11):
            day = pd.Timestamp(year=year, month=month, day=15)
            if (day - start).days >= min_history_days and day + pd.Timedelta(
                days=response_days
            ) <= end:
                days.append(day)
    return days


def simulate_winback_campaigns(
    rng: np.random.Generator,
    latent: LatentCustomers,
    transactions: pd.DataFrame,
    events: pd.DataFrame,
    customers: pd.DataFrame,
    send_days: list[pd.Timestamp],
    settings: CampaignSettings | None = None,
) -> CampaignWorld:
    """Run the quarterly win-back programme over normalised demo tables.

    Campaigns run in time order, each seeing the effects of the earlier ones.
    """
    settings = settings or CampaignSettings()
    left_at = np.full(len(latent.ids), np.inf)  # days: when a sleeping dog left
    position = pd.Series(np.arange(len(latent.ids)), index=pd.Index(latent.ids, dtype=object))
    rows, truths = [], []
    tx = transactions
    for send_day in send_days:
        campaign_id = f"winback-{send_day.year}q{(send_day.month - 1) // 3 + 1}"
        day_before = send_day - pd.Timedelta(days=1)
        features = build_features(Inputs(tx, day_before, events, customers))
        chosen = _select_targets(features)
        who = position.loc[chosen.index].to_numpy()
        channel = _pick_channels(rng, chosen)
        treated = np.ones(len(who), dtype=bool)  # exactly the control share, at random
        treated[rng.permutation(len(who))[: round(len(who) * settings.control_share)]] = False
        sent = (send_day - latent.origin).days + 9.5 / 24 + rng.uniform(0.0, 2 / 24, len(who))
        drivers = _drivers(chosen, channel)
        lift, leave = _reaction(rng, drivers, channel, chosen, settings)
        truth = _truth(latent, who, sent, lift, leave, left_at, settings)
        tx, left_at = _apply(rng, latent, tx, who, sent, lift, leave, treated, left_at, settings)
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": latent.ids[who],
                    "campaign_id": campaign_id,
                    "sent_at": _timestamps(latent.origin, sent),
                    "group": np.where(treated, "treatment", "control"),
                    "channel": channel,
                    "offer_cost": settings.offer_cost,
                    "offer": settings.offer,
                }
            )
        )
        truths.append(
            pd.DataFrame(
                {"customer_id": latent.ids[who], "campaign_id": campaign_id, **truth, **drivers}
            )
        )
    campaigns = pd.concat(rows, ignore_index=True) if rows else _empty_campaigns()
    truth = pd.concat(truths, ignore_index=True) if truths else pd.DataFrame()
    return CampaignWorld(campaigns=campaigns, transactions=tx, truth=truth)


# --------------------------------------------------------------------------- targeting
def _select_targets(features: pd.DataFrame) -> pd.DataFrame:
    """Buyers who look at risk and can be messaged: the marketers' rule of thumb."""
    consented = np.zeros(len(features), dtype=bool)
    for channel in MESSAGING_CHANNELS:
        consented |= features[f"{channel}_opt_in"].to_numpy(dtype=bool)
    stage = features["lifecycle_stage"].astype(str).to_numpy()
    silent = features["days_since_last_purchase"].to_numpy(dtype=float)
    looks_at_risk = np.isin(stage, ("at_risk", "lapsed")) & (silent <= 400)
    looks_at_risk |= (stage == "active") & (features["overdue_ratio"].fillna(0) > 1.0).to_numpy()
    keep = looks_at_risk & consented & (features["orders_total"].to_numpy() > 0)
    return features.loc[keep]


def _pick_channels(rng: np.random.Generator, chosen: pd.DataFrame) -> np.ndarray:
    """One consented messaging channel per customer, uniformly at random."""
    consent = np.column_stack(
        [chosen[f"{c}_opt_in"].to_numpy(dtype=bool) for c in MESSAGING_CHANNELS]
    )
    scores = np.where(consent, rng.random(consent.shape), -1.0)
    return np.asarray(MESSAGING_CHANNELS, dtype=object)[scores.argmax(axis=1)]


def _drivers(chosen: pd.DataFrame, channel: np.ndarray) -> dict[str, np.ndarray]:
    """Observable drivers of the reaction, from the features at the day before."""
    best = chosen["best_channel"].astype(str).to_numpy()
    recent = np.zeros(len(chosen))
    earlier = np.zeros(len(chosen))
    for name in np.unique(best):
        column = f"eng_{name}_events_30d"
        if column not in chosen:
            continue
        rows = best == name
        recent[rows] = chosen.loc[rows, column].to_numpy(dtype=float)
        earlier[rows] = chosen.loc[rows, f"eng_{name}_events_90d"].to_numpy(dtype=float)
    earlier -= recent  # days 31..90 before the send
    with np.errstate(divide="ignore", invalid="ignore"):
        fade = np.where(earlier >= 2, 1.0 - (recent / 30.0) / (earlier / 60.0), 0.0)
    silent = chosen["days_since_last_purchase"].to_numpy(dtype=float)
    orders_90 = chosen["orders_90d"].to_numpy(dtype=float)
    unsubscribed = chosen["unsubscribes_total"].to_numpy(dtype=float) > 0
    # Unsubscribing is what fatigue looks like in the events; "recent" = engaged lately.
    engaged_ago = chosen["days_since_last_engagement"].to_numpy(dtype=float)
    # The messaging channel the customer engages with most lately (opens, clicks).
    messaging = np.column_stack(
        [chosen[f"eng_{c}_events_90d"].to_numpy(dtype=float) for c in MESSAGING_CHANNELS]
    )
    favourite = np.asarray(MESSAGING_CHANNELS, dtype=object)[messaging.argmax(axis=1)]
    favourite[messaging.max(axis=1) <= 0] = None
    return {
        "fading": np.clip(np.nan_to_num(fade), 0.0, 1.0),
        "on_favourite_channel": channel == favourite,
        "sure_thing": (orders_90 >= 2) | (silent <= 21),
        "lost_cause": silent > 270,
        "fatigued": unsubscribed & (np.nan_to_num(engaged_ago, nan=999) <= 180),
        "discount_averse": (chosen["orders_total"].to_numpy() >= 3)
        & (chosen["discount_share"].fillna(0).to_numpy() == 0),
    }


def _reaction(
    rng: np.random.Generator,
    drivers: dict[str, np.ndarray],
    channel: np.ndarray,
    chosen: pd.DataFrame,
    settings: CampaignSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Lift ``a`` (extra-order probability) and leave propensity ``b`` per row."""
    del channel, chosen
    n = len(drivers["fading"])
    # Unobserved taste: lognormal around 1, so the observable drivers explain most of it.
    taste = rng.lognormal(-0.5 * 0.35**2, 0.35, n)
    match = np.where(drivers["on_favourite_channel"], 1.0, settings.other_channel_factor)
    lift = settings.max_lift * drivers["fading"] * match * taste
    lift *= np.where(drivers["sure_thing"], 0.1, 1.0) * np.where(drivers["lost_cause"], 0.15, 1.0)
    # Sleeping dogs do not warm to the offer, whatever else they show.
    lift *= ~(drivers["fatigued"] | drivers["discount_averse"])
    leave = (
        settings.fatigue_leave * drivers["fatigued"]
        + settings.averse_leave * drivers["discount_averse"]
    )
    return np.clip(lift, 0.0, 0.9), np.clip(leave, 0.0, 0.5)


# --------------------------------------------------------------------------- effects
def _truth(
    latent: LatentCustomers,
    who: np.ndarray,
    sent: np.ndarray,
    lift: np.ndarray,
    leave: np.ndarray,
    left_at: np.ndarray,
    settings: CampaignSettings,
) -> dict[str, np.ndarray]:
    """Expected outcomes in the window with and without the contact (latent state)."""
    window = settings.response_days
    first = np.floor(sent).astype(np.int64)
    offsets = first[:, None] + np.arange(window)[None, :]
    offsets = np.minimum(offsets, len(latent.calendar_lift) - 1)
    season = latent.calendar_lift[offsets].mean(axis=1)
    value_lift = latent.spend_lift[offsets].mean(axis=1)
    alive = (latent.dropout_time[who] > sent) & (left_at[who] > sent)
    expected_orders = np.where(alive, latent.rate[who] * season * window, 0.0)
    p0 = 1.0 - np.exp(-expected_orders)
    basket = 6.0 * latent.spend_scale[who] * value_lift
    spend0 = expected_orders * basket
    p1 = (1.0 - leave) * (p0 + lift * (1.0 - p0))
    spend1 = (1.0 - leave) * (spend0 + lift * basket)
    return {
        "p_untreated": p0,
        "lift": lift,
        "leave": leave,
        "true_uplift_purchase": p1 - p0,
        "true_uplift_spend": spend1 - spend0,
    }


def _apply(
    rng: np.random.Generator,
    latent: LatentCustomers,
    tx: pd.DataFrame,
    who: np.ndarray,
    sent: np.ndarray,
    lift: np.ndarray,
    leave: np.ndarray,
    treated: np.ndarray,
    left_at: np.ndarray,
    settings: CampaignSettings,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Treated rows react: extra orders for responders, lost orders for leavers."""
    n = len(who)
    leaves = treated & (rng.random(n) < leave)
    responds = treated & ~leaves & (rng.random(n) < lift)
    left_at = left_at.copy()
    left_at[who[leaves]] = np.minimum(left_at[who[leaves]], sent[leaves])
    if leaves.any():
        gone = pd.Series(_timestamps(latent.origin, sent[leaves]), index=latent.ids[who[leaves]])
        placed = tx.groupby("order_id", sort=False)["timestamp"].transform("min")
        cutoff = tx["customer_id"].astype(object).map(gone)
        drop = cutoff.notna().to_numpy() & (placed.to_numpy() > cutoff.to_numpy())
        tx = tx.loc[~drop]
    if responds.any():
        tx = pd.concat([tx, _extra_orders(rng, latent, who[responds], sent[responds], settings)])
    return tx.sort_values(["timestamp", "order_id"], kind="stable", ignore_index=True), left_at


def _extra_orders(
    rng: np.random.Generator,
    latent: LatentCustomers,
    who: np.ndarray,
    sent: np.ndarray,
    settings: CampaignSettings,
) -> pd.DataFrame:
    """One order per responder in the window, paid with the offer's discount."""
    time = sent + 0.2 + rng.random(len(who)) * (settings.response_days - 0.3)
    day = np.minimum(time.astype(np.int64), len(latent.spend_lift) - 1)
    amount = rng.gamma(6.0, latent.spend_scale[who]) * latent.spend_lift[day]
    amount = np.round(np.maximum(amount, 1.0), 2)
    channel_index = (rng.random(len(who))[:, None] > latent.order_channel_cdf[who]).sum(axis=1)
    channel_index = np.minimum(channel_index, len(latent.order_channels) - 1)
    numbers = pd.Series(np.round(time * 1e4).astype(np.int64)).astype(str).str.zfill(8)
    return pd.DataFrame(
        {
            "customer_id": latent.ids[who],
            "order_id": ("W" + numbers + "-" + pd.Series(latent.ids[who])).to_numpy(object),
            "timestamp": _timestamps(latent.origin, time),
            "amount": amount,
            "channel": latent.order_channels[channel_index],
            "discount": np.round(amount * 0.15 / 0.85, 2),
            "items": (1 + rng.poisson(amount / 40.0)).astype(float),
        }
    )


def _timestamps(origin: pd.Timestamp, days: np.ndarray) -> np.ndarray:
    seconds = np.floor(np.asarray(days) * 86_400).astype(np.int64)
    return np.datetime64(origin.as_unit("ns").to_datetime64()) + seconds.astype(
        "timedelta64[s]"
    ).astype("timedelta64[ns]")


def _empty_campaigns() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series(dtype=object),
            "campaign_id": pd.Series(dtype=object),
            "sent_at": pd.Series(dtype="datetime64[ns]"),
            "group": pd.Series(dtype=object),
            "channel": pd.Series(dtype=object),
            "offer_cost": pd.Series(dtype=float),
            "offer": pd.Series(dtype=object),
        }
    )
