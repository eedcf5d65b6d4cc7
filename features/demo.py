"""Synthetic, realistic demo data for fidelite (retail / e-commerce flavour).

The generative story, all vectorised with numpy:

* **Acquisition.** Customers sign up uniformly over ``[start, end]`` through one of
  several acquisition channels, each with its own cost distribution. Some never buy
  (prospects); the others make a first purchase shortly after signing up.
* **Purchasing (BG/NBD-like).** Each customer has a latent purchase rate
  ``lambda ~ Gamma`` (per day) and a dropout probability ``p ~ Beta``: after every
  purchase the customer leaves for good with probability ``p``. Purchase times follow a
  Poisson process thinned by weekly and yearly seasonality (weekends, Black Friday /
  December peak, January slump), so a good share of customers truly churn within two
  years while others stay loyal.
* **Spend (Gamma-Gamma-like).** Order value ``~ Gamma(shape, scale_i)`` with a
  per-customer scale, lifted in November/December. A few percent of orders are
  refunded later (a negative row that reuses the order id), some orders carry a
  discount, items grow with the order value, and each customer has a preferred
  order channel (web, app, store, phone, marketplace).
* **Engagement.** Broadcast campaigns (email, sms, push) reach a random share of the
  customers who consented at signup; opens, clicks, unsubscribes and bounces follow.
  Web/app sessions (with searches and add-to-carts) and store visits come from a
  Poisson process whose intensity falls over the ~75 days before the customer's
  dropout and stays low afterwards, so engagement carries real churn signal. A few
  events use channels/types outside the documented vocabulary ("social",
  "call_center", "share", "complaint").

Nothing in the output tables encodes the latent dropout directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fidelite.features.data import load_customers, load_events, load_transactions
from fidelite.features.demo_campaigns import (
    LatentCustomers,
    quarterly_send_days,
    simulate_winback_campaigns,
)
from fidelite.features.inputs import Inputs

__all__ = ["DemoData", "generate_demo_data", "write_demo_data"]

_NS_PER_DAY = 86_400 * 10**9

ACQUISITION_CHANNELS = np.array(
    ["paid_search", "paid_social", "organic", "referral", "affiliate", "retail_store"]
)
_ACQUISITION_SHARE = np.array([0.25, 0.20, 0.25, 0.10, 0.08, 0.12])
_ACQUISITION_COST_MEAN = np.array([45.0, 35.0, 5.0, 20.0, 25.0, 10.0])  # currency
# Purchase-rate multipliers: referred and store-acquired customers buy a bit more often.
_ACQUISITION_RATE_LIFT = np.array([1.0, 0.8, 1.1, 1.25, 0.9, 1.2])

ORDER_CHANNELS = np.array(["web", "app", "store", "phone", "marketplace"])
_ORDER_CHANNEL_BASE = np.array([4.0, 3.0, 2.0, 0.4, 1.0])  # Dirichlet concentration
ENGAGEMENT_CHANNELS = np.array(["email", "sms", "push", "web", "app", "store"])

# Seasonality of purchases: Mon..Sun and Jan..Dec multipliers.
_WEEKDAY_LIFT = np.array([0.9, 0.9, 0.95, 1.0, 1.05, 1.15, 1.1])
_MONTH_LIFT = np.array([0.8, 0.85, 0.95, 1.0, 1.0, 0.95, 0.9, 0.95, 1.0, 1.05, 1.5, 1.7])
_MONTH_SPEND_LIFT = np.array([0.95, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.1, 1.2])

# Campaign cadence (days between broadcasts) and share of consenting customers targeted.
_CAMPAIGN_EVERY_DAYS = {"email": 14, "sms": 30, "push": 10}
_CAMPAIGN_REACH = {"email": 0.6, "sms": 0.5, "push": 0.5}
_OPT_IN_RATE = {"email": 0.7, "sms": 0.35, "push": 0.45}
_BASE_OPEN_RATE = {"email": 0.25, "sms": 0.0, "push": 0.12}
_BASE_CLICK_RATE = {"email": 0.2, "sms": 0.04, "push": 0.0}  # email: given an open

_DECLINE_DAYS = 75.0  # engagement fades over this many days before dropout
_FLOOR_BEFORE_DROPOUT = 0.1
_FLOOR_AFTER_DROPOUT = 0.05


@dataclass
class DemoData:
    """Demo tables in normalised contract form (see :mod:`features.data`).

    Attributes
    ----------
    transactions : DataFrame
        Orders and refunds, columns of ``contract.TRANSACTIONS``.
    events : DataFrame
        Engagement events, columns of ``contract.EVENTS``.
    customers : DataFrame
        One row per customer, columns of ``contract.CUSTOMERS``.
    campaigns : DataFrame or None
        Past quarterly win-back campaigns (``contract.CAMPAIGNS`` columns, 20% control);
        their effects are part of ``transactions`` (see :mod:`features.demo_campaigns`).
    campaign_truth : DataFrame or None
        The true effect of every campaign row, for tests and benchmarks only: no
        model may read it (``write_demo_data`` puts it apart, in ``truth/``).
    """

    transactions: pd.DataFrame
    events: pd.DataFrame
    customers: pd.DataFrame
    campaigns: pd.DataFrame | None = None
    campaign_truth: pd.DataFrame | None = None

    def inputs(self, as_of: object, *, cut: bool = False) -> Inputs:
        """These (already normalised) tables as :class:`Inputs` read at ``as_of``."""
        inputs = Inputs(self.transactions, as_of, self.events, self.customers)
        return inputs.cut() if cut else inputs


@dataclass
class _Population:
    """Latent per-customer state, arrays of shape (n_customers,); times in days."""

    ids: np.ndarray
    signup: np.ndarray
    acquisition: np.ndarray
    rate: np.ndarray
    dropout_p: np.ndarray
    dropout_time: np.ndarray  # inf when still active at the end
    order_channel_cdf: np.ndarray  # (n_customers, n_order_channels)
    preferred: np.ndarray  # index into ENGAGEMENT_CHANNELS
    opt_in: dict[str, np.ndarray]
    spend_scale: np.ndarray | None = None  # order value scale, set with the transactions


def generate_demo_data(
    n_customers: int,
    *,
    seed: int = 0,
    start: str = "2024-01-01",
    end: str = "2025-12-31",
    campaigns: bool = True,
) -> DemoData:
    """Generate a deterministic synthetic customer base.

    Parameters
    ----------
    n_customers : int
        Number of customers (signups), >= 1.
    seed : int
        Seed for ``numpy.random.default_rng``; equal seeds give identical frames.
    start, end : str
        First and last calendar day of the simulated period (inclusive).
    campaigns : bool
        Also run the quarterly win-back campaigns (:mod:`features.demo_campaigns`),
        whose effects change the transactions. Without them the other tables are
        exactly those of the same seed with them, minus the campaigns' effects.

    Returns
    -------
    DemoData
        Roughly 3-5 transactions and 20-60 events per customer.
    """
    if n_customers < 1:
        raise ValueError(f"n_customers must be >= 1, got {n_customers}")
    origin = pd.Timestamp(start).floor("D")
    span = float((pd.Timestamp(end).floor("D") - origin).days + 1)
    if span <= 1:
        raise ValueError(f"end ({end}) must be after start ({start})")
    rng = np.random.default_rng(seed)
    # Weekday and month of each day offset, used to look up seasonality quickly.
    calendar = pd.date_range(origin, periods=int(span) + 1, freq="D")
    population, purchases = _simulate_population(rng, n_customers, span, calendar)
    transactions = _transactions_table(rng, population, purchases, span, calendar, origin)
    events = _events_table(rng, population, purchases, span, origin)
    customers = _customers_table(rng, population, origin)
    data = DemoData(
        transactions=load_transactions(transactions, name="demo transactions"),
        events=load_events(events, name="demo events"),
        customers=load_customers(customers, name="demo customers"),
    )
    if campaigns:
        data = _with_campaigns(data, population, calendar, origin, seed)
    return data


def _with_campaigns(
    data: DemoData,
    pop: _Population,
    calendar: pd.DatetimeIndex,
    origin: pd.Timestamp,
    seed: int,
) -> DemoData:
    """Run the win-back programme on its own random stream (other tables unchanged)."""
    latent = LatentCustomers(
        ids=pop.ids,
        origin=origin,
        rate=pop.rate,
        dropout_time=pop.dropout_time,
        spend_scale=pop.spend_scale,
        order_channel_cdf=pop.order_channel_cdf,
        order_channels=ORDER_CHANNELS,
        calendar_lift=_season(calendar, np.arange(len(calendar), dtype=float)),
        spend_lift=_MONTH_SPEND_LIFT[calendar.month.to_numpy() - 1],
    )
    sends = quarterly_send_days(origin, calendar[-2])
    world = simulate_winback_campaigns(
        np.random.default_rng([seed, 11]),
        latent,
        data.transactions,
        data.events,
        data.customers,
        sends,
    )
    return DemoData(
        transactions=load_transactions(world.transactions, name="demo transactions"),
        events=data.events,
        customers=data.customers,
        campaigns=world.campaigns,
        campaign_truth=world.truth,
    )


def write_demo_data(data: DemoData, out_dir: str | Path) -> dict[str, Path]:
    """Write the demo tables as Parquet files.

    The campaigns go to ``campaigns.parquet`` (the campaigns-table format), their true
    effects to ``truth/campaign_truth.parquet``: for benchmarks, never a model input.

    Returns
    -------
    dict of str to Path
        ``{"transactions": .../transactions.parquet, "events": ..., "customers": ...}``
        and, when the demo has campaigns, ``"campaigns"`` and ``"campaign_truth"``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("transactions", "events", "customers", "campaigns"):
        frame = getattr(data, name)
        if frame is not None:
            paths[name] = out / f"{name}.parquet"
            frame.to_parquet(paths[name], index=False)
    if data.campaign_truth is not None:
        (out / "truth").mkdir(exist_ok=True)
        paths["campaign_truth"] = out / "truth" / "campaign_truth.parquet"
        data.campaign_truth.to_parquet(paths["campaign_truth"], index=False)
    return paths


# --------------------------------------------------------------------------- helpers
def _segment_starts(owner: np.ndarray, n_owners: int) -> np.ndarray:
    """Start offset of each owner's run in an array sorted by owner, shape (n_owners,)."""
    return np.searchsorted(owner, np.arange(n_owners))


def _poisson_points(
    rng: np.random.Generator, rate: np.ndarray, begin: np.ndarray, end: float
) -> tuple[np.ndarray, np.ndarray]:
    """Homogeneous Poisson points per customer on ``[begin_i, end)``.

    Returns ``(owner, time)`` arrays of equal length, sorted by owner then time.
    """
    length = np.maximum(end - begin, 0.0)
    counts = rng.poisson(rate * length)
    owner = np.repeat(np.arange(len(rate)), counts)
    time = begin[owner] + rng.random(len(owner)) * length[owner]
    order = np.lexsort((time, owner))
    return owner[order], time[order]


def _season(calendar: pd.DatetimeIndex, time: np.ndarray) -> np.ndarray:
    day = time.astype(np.int64)
    return (
        _WEEKDAY_LIFT[calendar.dayofweek.to_numpy()[day]]
        * _MONTH_LIFT[calendar.month.to_numpy()[day] - 1]
    )


def _engagement_level(time: np.ndarray, dropout: np.ndarray) -> np.ndarray:
    """Engagement multiplier in [0.05, 1]: fades before dropout, stays low after."""
    to_dropout = dropout - time
    fading = _FLOOR_BEFORE_DROPOUT + (1 - _FLOOR_BEFORE_DROPOUT) * np.clip(
        to_dropout / _DECLINE_DAYS, 0.0, 1.0
    )
    return np.where(to_dropout < 0, _FLOOR_AFTER_DROPOUT, fading)


def _timestamps(origin: pd.Timestamp, days: np.ndarray) -> np.ndarray:
    """Day offsets → datetime64[ns], truncated to whole seconds."""
    seconds = np.floor(days * 86_400).astype(np.int64)
    return np.datetime64(origin.as_unit("ns").to_datetime64()) + seconds.astype(
        "timedelta64[s]"
    ).astype("timedelta64[ns]")


def _prefixed_ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return (prefix + pd.Series(numbers).astype("str").str.zfill(width)).to_numpy(object)


# --------------------------------------------------------------------------- customers
def _simulate_population(
    rng: np.random.Generator, n: int, span: float, calendar: pd.DatetimeIndex
) -> tuple[_Population, pd.DataFrame]:
    signup = rng.random(n) * span
    acquisition = rng.choice(len(ACQUISITION_CHANNELS), size=n, p=_ACQUISITION_SHARE)
    # Gamma heterogeneity: mean ~0.022 purchases/day (~8 a year), long right tail.
    rate = np.minimum(rng.gamma(0.9, 0.025, n) * _ACQUISITION_RATE_LIFT[acquisition], 0.3)
    dropout_p = rng.beta(0.8, 5.0, n)
    buys = rng.random(n) > 0.12  # the rest stay prospects
    first = signup + np.where(rng.random(n) < 0.5, 0.0, rng.exponential(7.0, n))
    buys &= first < span

    purchases = _simulate_purchases(rng, rate, dropout_p, first, buys, span, calendar)
    dropout_time = np.full(n, np.inf)
    dropped = purchases["last_before_dropout"].to_numpy()
    dropout_time[purchases["owner"].to_numpy()[dropped]] = purchases["time"].to_numpy()[dropped]

    # Per-customer Dirichlet channel mix, sampled through normalised gammas.
    channel_mix = rng.gamma(_ORDER_CHANNEL_BASE * 0.5, 1.0, (n, len(ORDER_CHANNELS)))
    channel_mix /= channel_mix.sum(axis=1, keepdims=True)
    opt_in = {c: rng.random(n) < share for c, share in _OPT_IN_RATE.items()}
    population = _Population(
        ids=_prefixed_ids("C", np.arange(1, n + 1), 7),
        signup=signup,
        acquisition=acquisition,
        rate=rate,
        dropout_p=dropout_p,
        dropout_time=dropout_time,
        order_channel_cdf=np.cumsum(channel_mix, axis=1),
        preferred=rng.choice(len(ENGAGEMENT_CHANNELS), size=n, p=[0.3, 0.1, 0.15, 0.2, 0.15, 0.1]),
        opt_in=opt_in,
    )
    return population, purchases.drop(columns="last_before_dropout")


def _simulate_purchases(
    rng: np.random.Generator,
    rate: np.ndarray,
    dropout_p: np.ndarray,
    first: np.ndarray,
    buys: np.ndarray,
    span: float,
    calendar: pd.DatetimeIndex,
) -> pd.DataFrame:
    """Purchase times (days) of every buyer, up to and including their dropout purchase.

    Returns a frame with ``owner`` (customer index), ``time`` (days since start) and
    ``last_before_dropout`` (True on the purchase after which the customer left).
    """
    n = len(rate)
    peak = _WEEKDAY_LIFT.max() * _MONTH_LIFT.max()
    # Thinning: candidates at the peak rate, kept with probability season / peak.
    begin = np.where(buys, first, span)
    owner, time = _poisson_points(rng, rate * peak, begin, span)
    keep = rng.random(len(time)) < _season(calendar, time) / peak
    owner, time = owner[keep], time[keep]
    buyers = np.flatnonzero(buys)
    owner = np.concatenate([buyers, owner])
    time = np.concatenate([first[buyers], time])
    order = np.lexsort((time, owner))
    owner, time = owner[order], time[order]

    # After each purchase the customer drops out with probability p, so the number of
    # purchases before leaving is geometric: purchase number `allowed` is the last one.
    allowed = rng.geometric(np.clip(dropout_p, 1e-6, 1.0))
    rank = np.arange(len(owner)) - _segment_starts(owner, n)[owner] + 1
    alive = rank <= allowed[owner]
    return pd.DataFrame(
        {
            "owner": owner[alive],
            "time": time[alive],
            "last_before_dropout": (rank == allowed[owner])[alive],
        }
    )


def _customers_table(
    rng: np.random.Generator, pop: _Population, origin: pd.Timestamp
) -> pd.DataFrame:
    cost_mean = _ACQUISITION_COST_MEAN[pop.acquisition]
    cost = np.round(rng.gamma(4.0, cost_mean / 4.0), 2)
    return pd.DataFrame(
        {
            "customer_id": pop.ids,
            "signup_at": _timestamps(origin, pop.signup),
            "acquisition_channel": ACQUISITION_CHANNELS[pop.acquisition],
            "acquisition_cost": cost,
            # Consent as given at signup; later withdrawals appear as unsubscribe events.
            "email_opt_in": pop.opt_in["email"],
            "sms_opt_in": pop.opt_in["sms"],
            "push_opt_in": pop.opt_in["push"],
        }
    )


# --------------------------------------------------------------------------- transactions
def _transactions_table(
    rng: np.random.Generator,
    pop: _Population,
    purchases: pd.DataFrame,
    span: float,
    calendar: pd.DatetimeIndex,
    origin: pd.Timestamp,
) -> pd.DataFrame:
    owner = purchases["owner"].to_numpy()
    time = purchases["time"].to_numpy()
    n_orders = len(owner)
    month = calendar.month.to_numpy()[time.astype(np.int64)] - 1
    # Gamma-Gamma: order value ~ Gamma(6, scale_i) with scale_i = 1 / Gamma(4, rate 30).
    scale = 1.0 / rng.gamma(4.0, 1.0 / 30.0, len(pop.ids))
    pop.spend_scale = scale
    amount = rng.gamma(6.0, scale[owner]) * _MONTH_SPEND_LIFT[month]
    amount = np.round(np.maximum(amount, 1.0), 2)  # mean ~60 currency units
    discounted = rng.random(n_orders) < np.where(month >= 10, 0.45, 0.2)
    discount = np.round(np.where(discounted, amount * rng.uniform(0.05, 0.3, n_orders), 0.0), 2)
    items = 1 + rng.poisson(amount / 40.0)
    channel_index = (rng.random(n_orders)[:, None] > pop.order_channel_cdf[owner]).sum(axis=1)
    order_ids = _prefixed_ids("O", np.arange(1, n_orders + 1), 8)
    orders = pd.DataFrame(
        {
            "customer_id": pd.array(pop.ids, dtype="str").take(owner),
            "order_id": order_ids,
            "timestamp": _timestamps(origin, time),
            "amount": amount,
            "channel": ORDER_CHANNELS[np.minimum(channel_index, len(ORDER_CHANNELS) - 1)],
            "discount": discount,
            "items": items.astype(float),
        }
    )
    refunds = _refunds(rng, orders, time, span, origin)
    table = pd.concat([orders, refunds], ignore_index=True)
    return table.sort_values(["timestamp", "order_id"], kind="stable", ignore_index=True)


def _refunds(
    rng: np.random.Generator,
    orders: pd.DataFrame,
    time: np.ndarray,
    span: float,
    origin: pd.Timestamp,
) -> pd.DataFrame:
    """About 4% of orders come back: full or partial refunds 1-30 days later."""
    refund_time = time + 1.0 + rng.exponential(8.0, len(time))
    refunded = (rng.random(len(time)) < 0.04) & (refund_time < span)
    share = np.where(rng.random(len(time)) < 0.6, 1.0, rng.uniform(0.2, 0.9, len(time)))
    refunds = orders.loc[refunded].copy()
    refunds["timestamp"] = _timestamps(origin, refund_time[refunded])
    refunds["amount"] = -np.round(refunds["amount"].to_numpy() * share[refunded], 2)
    refunds["discount"] = 0.0
    refunds["items"] = np.nan
    return refunds


# --------------------------------------------------------------------------- events
def _events_table(
    rng: np.random.Generator,
    pop: _Population,
    purchases: pd.DataFrame,
    span: float,
    origin: pd.Timestamp,
) -> pd.DataFrame:
    parts = [_campaign_events(rng, pop, channel, span) for channel in _CAMPAIGN_EVERY_DAYS]
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
            "timestamp": _timestamps(origin, time[pick]),
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
    rng: np.random.Generator, pop: _Population, channel: str, span: float
) -> _EventParts:
    """Broadcast campaigns to consenting customers, with their responses.

    Sending stops after a customer unsubscribes; opens/clicks depend on engagement.
    """
    every = _CAMPAIGN_EVERY_DAYS[channel]
    send_days = np.arange(rng.uniform(0, every), span, every) + 9.5 / 24  # ~09:30 UTC
    n, n_campaigns = len(pop.ids), len(send_days)
    targeted = rng.random((n, n_campaigns)) < _CAMPAIGN_REACH[channel]
    targeted &= pop.opt_in[channel][:, None] & (send_days[None, :] >= pop.signup[:, None])
    owner, campaign = np.nonzero(targeted)  # sorted by owner, then by time
    time = send_days[campaign] + rng.exponential(0.02, len(owner))
    level = _engagement_level(time, pop.dropout_time[owner])
    preferred = ENGAGEMENT_CHANNELS[pop.preferred[owner]] == channel
    affinity = np.where(preferred, 1.8, 1.0) * level

    # Unsubscribing is likelier when engagement has faded; nothing is sent afterwards.
    unsubscribed = rng.random(len(owner)) < 0.002 + 0.01 * (1 - level)
    earlier = np.cumsum(unsubscribed) - unsubscribed
    earlier -= earlier[_segment_starts(owner, n)[owner]]
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
    opened = reached & (rng.random(len(owner)) < _BASE_OPEN_RATE[channel] * affinity)
    open_time = time + rng.exponential(0.3, len(owner))
    parts.append(
        _event_parts(owner[opened], open_time[opened], channel, "open", campaign_ids[opened])
    )
    clickable = opened if channel == "email" else reached
    clicked = clickable & (rng.random(len(owner)) < _BASE_CLICK_RATE[channel] * affinity)
    click_time = open_time + rng.exponential(0.005, len(owner))
    parts.append(
        _event_parts(owner[clicked], click_time[clicked], channel, "click", campaign_ids[clicked])
    )
    unsub = unsubscribed & reached
    parts.append(
        _event_parts(owner[unsub], open_time[unsub], channel, "unsubscribe", campaign_ids[unsub])
    )
    return _concat_parts(parts)


def _browsing_events(rng: np.random.Generator, pop: _Population, span: float) -> _EventParts:
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
        owner, time = _poisson_points(rng, rate, pop.signup, span)
        keep = rng.random(len(owner)) < _engagement_level(time, pop.dropout_time[owner])
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
    rng: np.random.Generator, pop: _Population, purchases: pd.DataFrame
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


def _unusual_events(rng: np.random.Generator, pop: _Population, span: float) -> _EventParts:
    """A sprinkle of channels/types outside the documented vocabulary."""
    n = len(pop.ids)
    social_rate = np.where(rng.random(n) < 0.05, 0.02, 0.0)
    owner, time = _poisson_points(rng, social_rate, pop.signup, span)
    parts = [_event_parts(owner, time, "social", "share")]
    complaint_rate = np.full(n, 0.0008)
    owner, time = _poisson_points(rng, complaint_rate, pop.signup, span)
    parts.append(_event_parts(owner, time, "call_center", "complaint"))
    return _concat_parts(parts)
