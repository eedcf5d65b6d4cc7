"""The simulated customer base behind the demo data: who signs up, buys and refunds.

Latent state (:class:`Population`: purchase rate, dropout, preferred channels,
consent) and the customers and transactions tables drawn from it; the generative story
is told in :mod:`fidelite.features.demo`. Times are days from the first simulated day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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
MONTH_SPEND_LIFT = np.array([0.95, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.1, 1.2])

# Campaign cadence (days between broadcasts) and share of consenting customers targeted.
CAMPAIGN_EVERY_DAYS = {"email": 14, "sms": 30, "push": 10}
CAMPAIGN_REACH = {"email": 0.6, "sms": 0.5, "push": 0.5}
_OPT_IN_RATE = {"email": 0.7, "sms": 0.35, "push": 0.45}
BASE_OPEN_RATE = {"email": 0.25, "sms": 0.0, "push": 0.12}
BASE_CLICK_RATE = {"email": 0.2, "sms": 0.04, "push": 0.0}  # email: given an open

_DECLINE_DAYS = 75.0  # engagement fades over this many days before dropout
_FLOOR_BEFORE_DROPOUT = 0.1
_FLOOR_AFTER_DROPOUT = 0.05


@dataclass
class Population:
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


# --------------------------------------------------------------------------- helpers
def segment_starts(owner: np.ndarray, n_owners: int) -> np.ndarray:
    """Start offset of each owner's run in an array sorted by owner, shape (n_owners,)."""
    return np.searchsorted(owner, np.arange(n_owners))


def poisson_points(
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


def seasonality(calendar: pd.DatetimeIndex, time: np.ndarray) -> np.ndarray:
    day = time.astype(np.int64)
    return (
        _WEEKDAY_LIFT[calendar.dayofweek.to_numpy()[day]]
        * _MONTH_LIFT[calendar.month.to_numpy()[day] - 1]
    )


def engagement_level(time: np.ndarray, dropout: np.ndarray) -> np.ndarray:
    """Engagement multiplier in [0.05, 1]: fades before dropout, stays low after."""
    to_dropout = dropout - time
    fading = _FLOOR_BEFORE_DROPOUT + (1 - _FLOOR_BEFORE_DROPOUT) * np.clip(
        to_dropout / _DECLINE_DAYS, 0.0, 1.0
    )
    return np.where(to_dropout < 0, _FLOOR_AFTER_DROPOUT, fading)


def to_timestamps(origin: pd.Timestamp, days: np.ndarray) -> np.ndarray:
    """Day offsets → datetime64[ns], truncated to whole seconds."""
    seconds = np.floor(days * 86_400).astype(np.int64)
    return np.datetime64(origin.as_unit("ns").to_datetime64()) + seconds.astype(
        "timedelta64[s]"
    ).astype("timedelta64[ns]")


def _prefixed_ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return (prefix + pd.Series(numbers).astype("str").str.zfill(width)).to_numpy(object)


# --------------------------------------------------------------------------- customers
def simulate_population(
    rng: np.random.Generator, n: int, span: float, calendar: pd.DatetimeIndex
) -> tuple[Population, pd.DataFrame]:
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
    population = Population(
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
    owner, time = poisson_points(rng, rate * peak, begin, span)
    keep = rng.random(len(time)) < seasonality(calendar, time) / peak
    owner, time = owner[keep], time[keep]
    buyers = np.flatnonzero(buys)
    owner = np.concatenate([buyers, owner])
    time = np.concatenate([first[buyers], time])
    order = np.lexsort((time, owner))
    owner, time = owner[order], time[order]

    # After each purchase the customer drops out with probability p, so the number of
    # purchases before leaving is geometric: purchase number `allowed` is the last one.
    allowed = rng.geometric(np.clip(dropout_p, 1e-6, 1.0))
    rank = np.arange(len(owner)) - segment_starts(owner, n)[owner] + 1
    alive = rank <= allowed[owner]
    return pd.DataFrame(
        {
            "owner": owner[alive],
            "time": time[alive],
            "last_before_dropout": (rank == allowed[owner])[alive],
        }
    )


def customers_table(
    rng: np.random.Generator, pop: Population, origin: pd.Timestamp
) -> pd.DataFrame:
    cost_mean = _ACQUISITION_COST_MEAN[pop.acquisition]
    cost = np.round(rng.gamma(4.0, cost_mean / 4.0), 2)
    return pd.DataFrame(
        {
            "customer_id": pop.ids,
            "signup_at": to_timestamps(origin, pop.signup),
            "acquisition_channel": ACQUISITION_CHANNELS[pop.acquisition],
            "acquisition_cost": cost,
            # Consent as given at signup; later withdrawals appear as unsubscribe events.
            "email_opt_in": pop.opt_in["email"],
            "sms_opt_in": pop.opt_in["sms"],
            "push_opt_in": pop.opt_in["push"],
        }
    )


# --------------------------------------------------------------------------- transactions
def transactions_table(
    rng: np.random.Generator,
    pop: Population,
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
    amount = rng.gamma(6.0, scale[owner]) * MONTH_SPEND_LIFT[month]
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
            "timestamp": to_timestamps(origin, time),
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
    refunds["timestamp"] = to_timestamps(origin, refund_time[refunded])
    refunds["amount"] = -np.round(refunds["amount"].to_numpy() * share[refunded], 2)
    refunds["discount"] = 0.0
    refunds["items"] = np.nan
    return refunds
