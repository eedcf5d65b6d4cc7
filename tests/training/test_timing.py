"""The discrete-time hazard of the next purchase, and the median date (given a purchase)."""

from __future__ import annotations

import numpy as np
import pytest

from fidelite.training.boosting import Trees
from fidelite.training.timing import TimingModel, median_days


def test_median_days_is_the_median_given_a_purchase_and_missing_below_one_half():
    edges = np.array([0.0, 30.0, 60.0, 90.0])
    cdf = np.array([[0.5, 0.9, 1.0], [0.2, 0.4, 0.5], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3]])
    days = median_days(np.array([0.9, 0.8, 0.4, 0.5]), cdf, edges)
    # Row 0: F(t) / F(H) = [0.5, 0.9, 1.0] reaches 1/2 at the end of bin 1: day 30
    # (the unconditional 0.9 x [0.5, 0.9, 1.0] = [0.45, 0.81, 0.9] would cross in bin 2).
    assert days[0] == 30
    # Row 1: [0.4, 0.8, 1.0] crosses 1/2 a quarter into bin 2: day 30 + 7.5 -> 38.
    assert days[1] == 38
    # The unconditional median of row 1 (0.8 x shape = [0.32, 0.64, 0.8]) would be day 47:
    # the conditional one does not drift towards H for a customer barely likely to buy.
    assert np.isnan(days[2])  # P(purchase within H) = 0.4 < 1/2: no date
    # Row 3: P = 1/2 exactly is dated; shape [1/3, 2/3, 1] crosses half-way into bin 2.
    assert days[3] == 45


def test_median_days_of_a_flat_curve_is_half_the_horizon():
    # One bin (the baseline-only model: purchases spread evenly) and an all-zero hazard
    # (uniform shape): the median given a purchase is H/2 whatever P(purchase).
    edges = np.array([0.0, 90.0])
    days = median_days(np.array([0.55, 0.99]), np.ones((2, 1)), edges)
    np.testing.assert_array_equal(days, [45, 45])
    edges = np.array([0.0, 30.0, 60.0, 90.0])
    assert median_days(np.array([0.7]), np.zeros((1, 3)), edges)[0] == 45


def test_hazard_learns_who_buys_early_and_censors_at_the_horizon():
    rng = np.random.default_rng(0)
    n = 4000
    fast = rng.random(n) < 0.5
    # Fast customers buy within ~10 days, slow ones after ~60; a third never (censored).
    days = np.where(fast, rng.integers(1, 20, n), rng.integers(40, 90, n)).astype(float)
    days[rng.random(n) < 0.3] = np.nan
    X = np.column_stack([fast.astype(float), rng.normal(size=n)])
    trees = Trees(n_estimators=100, learning_rate=0.2)
    model = TimingModel(trees=trees, n_jobs=1, horizon_days=90, bin_days=7)
    model.fit(X, days)
    cdf = model.purchase_cdf(X)
    assert cdf.shape == (n, 13) and (np.diff(cdf, axis=1) >= 0).all()
    # On average over each group, the curve matches what happened: fast customers have
    # bought by day 21 (bin 3), slow ones not yet; a third never buys (censored at H).
    for group in (fast, ~fast):
        observed = [np.mean(np.nan_to_num(days[group], nan=999) <= d) for d in (21, 49, 90)]
        assert cdf[group][:, [2, 6, 12]].mean(axis=0) == pytest.approx(observed, abs=0.06)


def test_row_cap_samples_customers():
    rng = np.random.default_rng(1)
    n = 3000
    days = np.full(n, np.nan)
    model = TimingModel(
        trees=Trees(n_estimators=5, early_stopping_rounds=0), n_jobs=1, max_rows=5000
    )
    model.fit(rng.normal(size=(n, 2)), days)
    # 3,000 censored customers x 13 bins = 39,000 rows, sampled down to about 5,000.
    assert 4000 < model.n_training_rows_ < 6000


def test_purchase_cdf_in_chunks_and_float32_matrices_change_nothing(monkeypatch):
    import fidelite.training.timing as timing

    rng = np.random.default_rng(2)
    n = 2000
    X = np.column_stack([rng.integers(0, 5, n), rng.normal(size=n)]).astype(np.float32)
    days = np.where(rng.random(n) < 0.4, np.nan, rng.integers(1, 90, n)).astype(float)
    trees = Trees(n_estimators=30, learning_rate=0.2)
    wide = TimingModel(trees=trees, n_jobs=1).fit(X.astype(np.float64), days)
    narrow = TimingModel(trees=trees, n_jobs=1).fit(X, days)  # same values, half the bytes
    whole = wide.purchase_cdf(X.astype(np.float64))
    np.testing.assert_array_equal(narrow.purchase_cdf(X), whole)
    monkeypatch.setattr(timing, "_CDF_CHUNK_ROWS", 13 * 7)  # 7 customers per chunk
    np.testing.assert_array_equal(wide.purchase_cdf(X.astype(np.float64)), whole)


def test_early_stopping_rows_are_capped_like_the_training_rows():
    from fidelite.training.holdout import HOLDOUT, TRAIN, RowRoles

    rng = np.random.default_rng(3)
    n = 3000
    role = np.where(np.arange(n) < 1500, TRAIN, HOLDOUT).astype(np.int8)
    model = TimingModel(trees=Trees(n_estimators=5), n_jobs=1, max_rows=5000)
    sampled = []
    original = model._expand
    monkey = lambda X, days: (sampled.append(len(X)), original(X, days))[1]  # noqa: E731
    model._expand = monkey
    model.fit(rng.normal(size=(n, 2)), np.full(n, np.nan), roles=RowRoles(role, None, "time"))
    # 1,500 censored customers x 13 bins each side: both sampled down to ~5,000 rows.
    assert len(sampled) == 2 and all(300 < k < 480 for k in sampled)


def test_next_purchase_days_builds_the_hazard_rows_of_dated_customers_only(monkeypatch):
    rng = np.random.default_rng(4)
    n = 300
    X = np.column_stack([rng.integers(0, 5, n), rng.normal(size=n)]).astype(float)
    days = np.where(rng.random(n) < 0.4, np.nan, rng.integers(1, 90, n)).astype(float)
    model = TimingModel(trees=Trees(n_estimators=30, learning_rate=0.2), n_jobs=1).fit(X, days)
    p_purchase = rng.random(n)
    p_purchase[:3] = [0.5, np.nan, 0.4999999]
    expected = median_days(p_purchase, model.purchase_cdf(X), model.edges_)
    seen = []
    cdf = model.purchase_cdf
    monkeypatch.setattr(model, "purchase_cdf", lambda rows: seen.append(len(rows)) or cdf(rows))
    np.testing.assert_array_equal(model.next_purchase_days(X, p_purchase), expected)
    assert seen == [int((p_purchase >= 0.5).sum())] and 0 < seen[0] < n
    # nobody likelier to buy than not: no hazard at all
    seen.clear()
    assert np.isnan(model.next_purchase_days(X, np.full(n, 0.2))).all() and seen == []
