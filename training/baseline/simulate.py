"""Simulated customer bases from the purchase models, for tests and benchmarks.

Each function draws ``n`` customers from a model with known parameters and returns
their RFM summary over their own observation period ``(0, T]`` plus what happened
next: the number of purchases in ``(T, T + horizon]`` and whether they were still
alive at ``T``. Fitting a model to the summary and comparing its predictions with
``holdout`` and ``alive`` checks estimation and prediction against the truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["simulate_beta_geometric", "simulate_pareto_nbd"]


def _ages(rng: np.random.Generator, n: int, age_range: tuple[float, float]) -> np.ndarray:
    """Customer ages T, uniform in ``age_range`` and rounded to whole units (days)."""
    return rng.uniform(*age_range, n).round()


def _last_arrival(
    rng: np.random.Generator, n_arrivals: np.ndarray, x: np.ndarray, span: np.ndarray
) -> np.ndarray:
    """Time of the ``x``-th of ``n_arrivals`` uniform arrivals on (0, span); 0 when x == 0.

    The x-th order statistic of n uniforms is ``Beta(x, n - x + 1)``, so no
    per-customer loop is needed.
    """
    order_stat = rng.beta(np.maximum(x, 1), n_arrivals - x + 1)
    return np.where(x > 0, span * order_stat, 0.0).round()


def simulate_beta_geometric(
    n: int,
    params: dict[str, float],
    *,
    age_range: tuple[float, float],
    horizon: float,
    seed: int,
    first_purchase_dropout: bool = False,
) -> pd.DataFrame:
    """Customers from BG/NBD (or MBG/NBD with ``first_purchase_dropout=True``).

    Parameters
    ----------
    n : int
        Number of customers.
    params : dict
        ``r``, ``alpha`` (in the unit of the ages), ``a``, ``b``.
    age_range : (low, high)
        Range of the customer ages ``T``.
    horizon : float
        Length of the period after ``T`` whose purchases are counted.
    seed : int
        Seed of ``numpy.random.default_rng``.
    first_purchase_dropout : bool
        MBG/NBD: the customer may also leave right after the first purchase.

    Returns
    -------
    DataFrame, shape (n, 5)
        ``frequency``, ``recency``, ``T`` (whole units), ``holdout`` (purchases in
        ``(T, T + horizon]``) and ``alive`` (bool, alive at ``T``).
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    # The customer leaves right after their K-th repeat purchase (K = 0: the first).
    leaves_after = rng.geometric(p) - (1 if first_purchase_dropout else 0)
    big_t = _ages(rng, n, age_range)
    n_arrivals = rng.poisson(lam * big_t)
    x = np.minimum(n_arrivals, leaves_after)
    t_x = _last_arrival(rng, n_arrivals, x, big_t)
    alive = leaves_after > n_arrivals
    holdout = np.where(alive, np.minimum(rng.poisson(lam * horizon), leaves_after - n_arrivals), 0)
    return pd.DataFrame(
        {"frequency": x, "recency": t_x, "T": big_t, "holdout": holdout, "alive": alive}
    )


def simulate_pareto_nbd(
    n: int,
    params: dict[str, float],
    *,
    age_range: tuple[float, float],
    horizon: float,
    seed: int,
) -> pd.DataFrame:
    """Customers from Pareto/NBD: purchase rate ``Gamma(r, alpha)``, exponential
    lifetime with rate ``Gamma(s, beta)``. Same columns as
    :func:`simulate_beta_geometric`."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    mu = rng.gamma(params["s"], 1.0 / params["beta"], n)
    lifetime = rng.exponential(1.0 / mu)
    big_t = _ages(rng, n, age_range)
    active = np.minimum(lifetime, big_t)
    x = rng.poisson(lam * active)
    # All arrivals fall in (0, active); the last one is the maximum of x uniforms.
    t_x = _last_arrival(rng, x, x, active)
    alive = lifetime > big_t
    remaining = np.clip(lifetime - big_t, 0.0, horizon)
    holdout = rng.poisson(lam * remaining)
    return pd.DataFrame(
        {"frequency": x, "recency": t_x, "T": big_t, "holdout": holdout, "alive": alive}
    )
