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
from fidelite.features.demo_events import events_table
from fidelite.features.demo_world import (
    MONTH_SPEND_LIFT,
    ORDER_CHANNELS,
    Population,
    customers_table,
    seasonality,
    simulate_population,
    transactions_table,
)
from fidelite.features.inputs import Inputs

__all__ = ["DemoData", "generate_demo_data", "write_demo_data"]


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
        inputs = Inputs(
            self.transactions, as_of, self.events, self.customers, campaigns=self.campaigns
        )
        return inputs.cut() if cut else inputs


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
    population, purchases = simulate_population(rng, n_customers, span, calendar)
    transactions = transactions_table(rng, population, purchases, span, calendar, origin)
    events = events_table(rng, population, purchases, span, origin)
    customers = customers_table(rng, population, origin)
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
    pop: Population,
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
        calendar_lift=seasonality(calendar, np.arange(len(calendar), dtype=float)),
        spend_lift=MONTH_SPEND_LIFT[calendar.month.to_numpy() - 1],
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
