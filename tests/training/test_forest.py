"""Compiled tree evaluation (training.forest): LightGBM's own leaves and scores, to the bit."""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

import fidelite.training.forest as forest_module
from fidelite.training.attribution import PathAttribution
from fidelite.training.forest import Forest

ZERO = float(np.float32(1e-35))


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.poisson(2, n).astype(float),
            "c": rng.uniform(0, 1, n),
            "segment": pd.Categorical(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789"), n)),
            "z": np.where(rng.random(n) < 0.3, 0.0, rng.normal(size=n)),
        }
    )
    frame.loc[frame.index[:300], "b"] = np.nan
    frame.loc[frame.index[100:400], "segment"] = np.nan
    return frame


def _numeric(frame: pd.DataFrame) -> np.ndarray:
    codes = frame["segment"].cat.codes.astype(float).where(frame["segment"].notna())
    return frame.assign(segment=codes).to_numpy(dtype=float)


def _edge_rows(X: np.ndarray) -> np.ndarray:
    """Rows with the values LightGBM treats specially: NaN, zeros and near-zeros, negative,
    fractional, unseen and huge categories, infinities."""
    X = X.copy()
    X[:40, 0] = np.nan
    X[40:50, 4] = 1e-40
    X[50:60, 4] = -ZERO
    X[60:70, 4] = 0.0
    X[70:80, 3] = -0.5
    X[80:90, 3] = -3.0
    X[90:100, 3] = 99.0
    X[100:110, 3] = 2.7
    X[110:120, 0] = np.inf
    X[120:130, 2] = -np.inf
    X[130:140, :] = np.nan
    return X


@pytest.fixture(scope="module", params=["nan", "zero", "none"])
def fitted(request) -> tuple[lgb.Booster, np.ndarray]:
    """Boosters whose splits have each missing type (NaN, zero as missing, none)."""
    rng = np.random.default_rng(7)
    n = 4000
    frame = _frame(rng, n)
    logit = frame["a"] - frame["b"].fillna(0) / 2 + (frame["segment"].cat.codes % 3 == 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    settings = {"nan": {}, "zero": {"zero_as_missing": True}, "none": {"use_missing": False}}
    model = lgb.LGBMClassifier(
        n_estimators=60,
        num_leaves=15,
        min_child_samples=5,
        cat_smooth=1,
        min_data_per_group=5,
        verbose=-1,
        n_jobs=1,
        **settings[request.param],
    ).fit(frame, y)
    return model.booster_, _edge_rows(_numeric(_frame(np.random.default_rng(8), 3000)))


def test_leaves_and_raw_scores_are_lightgbms_bits(fitted):
    booster, X = fitted
    for trees in (None, 25):
        forest = Forest.from_booster(booster, trees)
        expected = booster.predict(X, raw_score=True, num_iteration=trees)
        np.testing.assert_array_equal(forest.raw_score(X), expected)
        leaves = booster.predict(X, pred_leaf=True, num_iteration=trees)
        np.testing.assert_array_equal(forest.leaves(X), leaves + forest.leaf_offsets)
        # float32 matrices read as LightGBM reads them
        X32 = X.astype(np.float32)
        np.testing.assert_array_equal(
            forest.raw_score(X32), booster.predict(X32, raw_score=True, num_iteration=trees)
        )


def test_the_models_have_categorical_and_default_direction_splits(fitted):
    booster, _ = fitted
    forest = Forest.from_booster(booster)
    kinds = forest._trees[3]
    assert (kinds & 1).any()  # categorical
    assert (kinds[(kinds & 1) == 0] >> 2).max() in (0, 1, 2)


def test_threads_and_one_thread_give_the_same_bits(fitted, monkeypatch):
    booster, X = fitted
    forest = Forest.from_booster(booster)
    one = forest.raw_score(X)
    monkeypatch.setattr(forest_module, "PARALLEL_MIN_ROWS", 10)
    np.testing.assert_array_equal(forest.raw_score(X), one)
    assert forest.raw_score(X[:0]).shape == (0,)


def test_contributions_equal_the_sparse_product(fitted):
    booster, X = fitted
    attribution = PathAttribution().fit(booster)
    leaves = booster.predict(X, pred_leaf=True) + attribution.leaf_offsets_
    raw, contributions = attribution.score_and_contributions(X)
    np.testing.assert_array_equal(raw, booster.predict(X, raw_score=True))
    np.testing.assert_array_equal(raw, attribution.raw_score(leaves))
    np.testing.assert_array_equal(contributions, attribution.contributions_of(leaves))
    # few rows take LightGBM's leaves and the dense table: the same bits
    small_raw, small = attribution.score_and_contributions(X[:5])
    np.testing.assert_array_equal(small, contributions[:5])
    np.testing.assert_array_equal(small_raw, raw[:5])
    np.testing.assert_array_equal(attribution.leaves(X), leaves)


def test_single_leaf_trees_are_their_leaf():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    y = X[:, 0] + rng.normal(size=300)
    model = lgb.LGBMRegressor(n_estimators=5, min_child_samples=1000, verbose=-1).fit(X, y)
    booster = model.booster_
    assert "num_leaves=1\n" in booster.model_to_string()  # nothing could be split
    forest = Forest.from_booster(booster)
    np.testing.assert_array_equal(forest.raw_score(X), booster.predict(X, raw_score=True))
    trees = booster.num_trees()
    np.testing.assert_array_equal(forest.leaves(X), np.arange(trees)[None, :].repeat(300, 0))


def test_binned_raw_equals_the_customer_bin_rows():
    rng = np.random.default_rng(2)
    n, n_bins = 3000, 13
    X = rng.normal(size=(n, 3))
    bins = rng.integers(0, n_bins, n)
    X[:100, 1] = np.nan
    logit = X[:, 0] + np.where(bins > 6, 1.0, -1.0) * (X[:, 2] > 0) + (bins % 4 == 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    rows = np.column_stack([X, bins])
    booster = lgb.LGBMClassifier(n_estimators=80, num_leaves=15, verbose=-1).fit(rows, y).booster_
    forest = Forest.from_booster(booster)
    uses_bin = {int(f) for f in forest.feature}
    assert 3 in uses_bin and len(uses_bin) > 1
    customers = rng.normal(size=(500, 3))
    customers[:40, 1] = np.nan
    customers[40:50, 2] = 1e-40
    customers[50:60, 2] = 0.0
    customers[60:70] = np.nan
    expanded = np.column_stack(
        [np.repeat(customers, n_bins, axis=0), np.tile(np.arange(n_bins), len(customers))]
    )
    expected = booster.predict(expanded, raw_score=True).reshape(len(customers), n_bins)
    np.testing.assert_array_equal(forest.binned_raw(customers, 3, n_bins), expected)
    with pytest.raises(ValueError, match="last column"):
        forest.binned_raw(customers, 2, n_bins)


def test_forests_are_rebuilt_after_unpickling():
    from fidelite.training.spend import SpendModel

    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(400, 4)), columns=["a", "b", "baseline_clv", "c"])
    X["baseline_churn_probability"] = rng.uniform(0.1, 0.9, 400)
    X["baseline_clv"] = np.abs(X["baseline_clv"]) * 50
    y = np.abs(rng.normal(100, 30, 400))
    window = np.repeat(np.datetime64("2025-01-01"), 400)
    model = SpendModel().fit(X, y, window=window)
    matrix = X.to_numpy()
    expected = model.estimator_.booster_.predict(
        matrix, raw_score=True, num_iteration=model.best_iteration_
    )
    np.testing.assert_array_equal(model._raw_score(matrix), expected)
    assert "_forest" in model.__dict__
    copy = pickle.loads(pickle.dumps(model))
    assert "_forest" not in copy.__dict__
    np.testing.assert_array_equal(copy._raw_score(matrix), expected)


def test_a_forked_child_scores_with_its_own_threads(fitted, monkeypatch):
    import multiprocessing

    booster, X = fitted
    monkeypatch.setattr(forest_module, "PARALLEL_MIN_ROWS", 10)
    forest = Forest.from_booster(booster)
    expected = forest.raw_score(X)  # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        got = pool.apply_async(forest.raw_score, (X,)).get(timeout=60)
    np.testing.assert_array_equal(got, expected)
