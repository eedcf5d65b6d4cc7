"""The spend-given-purchase regressor of the hurdle CLV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.training.boosting import Trees
from fidelite.training.spend import SpendModel, baseline_spend_if_buying

CUTOFFS = pd.to_datetime(["2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01"])


def _buyers(n_per: int, seed: int, factors=(0.8, 1.0, 1.0, 1.5)):
    """Spend if buying = baseline x the window's season x a segment lift (2x for 5 orders)."""
    rng = np.random.default_rng(seed)
    n = n_per * len(factors)
    p_none = rng.uniform(0.2, 0.8, n)
    if_buying = rng.gamma(3.0, 30.0, n)
    orders = rng.choice([1.0, 5.0], n)
    X = pd.DataFrame(
        {
            "baseline_clv": if_buying * (1 - p_none),
            "baseline_churn_probability": p_none,
            "orders_total": orders,
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )
    mean = if_buying * np.repeat(np.asarray(factors), n_per) * np.where(orders == 5, 2.0, 1.0)
    spend = rng.gamma(4.0, mean / 4.0)
    return X, spend, np.repeat(CUTOFFS.to_numpy()[: len(factors)], n_per)


def test_baseline_spend_if_buying_is_clv_over_purchase_probability():
    X = pd.DataFrame(
        {"baseline_clv": [30.0, 0.0, np.nan], "baseline_churn_probability": [0.7, 1.0, 0.5]}
    )
    np.testing.assert_allclose(baseline_spend_if_buying(X, [], 1.0), [100.0, 1.0, 1.0])


def test_learns_the_segment_and_each_window_level():
    X, spend, window = _buyers(2000, 0)
    model = SpendModel(trees=Trees(n_estimators=150, learning_rate=0.1), n_jobs=1)
    model.fit(X, spend, window=window)
    q4 = window == CUTOFFS[3].to_datetime64()
    predicted = model.predict(X.loc[q4], as_of="2025-10-02")
    assert predicted.sum() == pytest.approx(spend[q4].sum(), rel=0.03)
    ratio = (
        predicted[X.loc[q4, "orders_total"] == 5].mean()
        / predicted[X.loc[q4, "orders_total"] == 1].mean()
    )
    assert ratio == pytest.approx(2.0, rel=0.15)
    assert np.exp(model.levels_.offset_of(CUTOFFS[3]) - model.levels_.offset_of(CUTOFFS[1])) == (
        pytest.approx(1.5, rel=0.05)
    )


def test_prospects_start_from_the_window_mean():
    X, spend, window = _buyers(500, 1, factors=(1.0, 1.0))
    model = SpendModel(
        trees=Trees(n_estimators=1, early_stopping_rounds=0), start_from_baseline=False
    )
    predicted = model.fit(X[["orders_total"]], spend, window=window).predict(X[["orders_total"]])
    assert predicted.mean() == pytest.approx(spend[window == window.max()].mean(), rel=0.02)
