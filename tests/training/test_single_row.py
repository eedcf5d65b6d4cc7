"""One-row predictions through LightGBM's fast single-row API equal ``Booster.predict``."""

from __future__ import annotations

import gc
import pickle
from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np
import pytest

import fidelite.training.single_row as single_row
from fidelite.training.single_row import predict_one


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(500, 6))
    X[:20, 2] = np.nan  # missing values take the default branch
    return X


def _fit(X: np.ndarray, kind: str) -> lgb.Booster:
    y = X[:, 0] + np.nan_to_num(X[:, 2]) + np.random.default_rng(1).normal(size=len(X))
    if kind == "binary":
        model = lgb.LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1, n_jobs=2)
        return model.fit(X, (y > 0).astype(int)).booster_
    model = lgb.LGBMRegressor(objective="gamma", n_estimators=25, verbose=-1, n_jobs=2)
    return model.fit(X, np.exp(y / 3)).booster_


@pytest.mark.parametrize("kind", ["binary", "gamma"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"raw_score": True},
        {"raw_score": True, "num_iteration": 12, "num_threads": 1},
        {"pred_leaf": True, "num_iteration": 20},
        {"pred_leaf": True},
    ],
)
def test_one_row_equals_booster_predict(data, kind, kwargs):
    booster = _fit(data, kind)
    assert single_row._AVAILABLE
    for i in (0, 1, 7, 499):
        row = data[i : i + 1]
        expected = booster.predict(row, **kwargs)
        got = predict_one(booster, row, **kwargs)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
    assert single_row._COPIES[booster]  # the fast path was taken


def test_tree_counts_get_their_own_copy_and_other_inputs_take_booster_predict(data):
    booster = _fit(data, "binary")
    first = predict_one(booster, data[:1], raw_score=True, num_iteration=10)
    np.testing.assert_array_equal(
        first, booster.predict(data[:1], raw_score=True, num_iteration=10)
    )
    # another tree count: its own private copy (a copy's predictor keeps one tree count)
    other = predict_one(booster, data[:1], raw_score=True, num_iteration=20)
    np.testing.assert_array_equal(
        other, booster.predict(data[:1], raw_score=True, num_iteration=20)
    )
    assert other[0] != first[0]
    np.testing.assert_array_equal(
        predict_one(booster, data[3:4], raw_score=True, num_iteration=10),
        booster.predict(data[3:4], raw_score=True, num_iteration=10),
    )
    for X in (data[:2], data[:1].astype(np.float32), data[:1, :5]):
        kwargs = {"raw_score": True, "predict_disable_shape_check": True}
        np.testing.assert_array_equal(
            predict_one(booster, X, **kwargs), booster.predict(X, **kwargs)
        )


def test_batch_predictions_in_between_and_threads_change_nothing(data):
    booster = _fit(data, "binary")
    expected = booster.predict(data, raw_score=True)
    predict_one(booster, data[:1], raw_score=True)
    booster.predict(data, raw_score=True, num_iteration=5)  # a batch with other settings
    with ThreadPoolExecutor(4) as pool:
        got = list(
            pool.map(lambda i: predict_one(booster, data[i : i + 1], raw_score=True)[0], range(500))
        )
    np.testing.assert_array_equal(np.array(got), expected)


def test_configurations_go_with_their_booster_and_are_never_pickled(data):
    booster = _fit(data, "gamma")
    predict_one(booster, data[:1])
    copy = pickle.loads(pickle.dumps(booster))
    np.testing.assert_array_equal(predict_one(copy, data[:1]), booster.predict(data[:1]))
    before = len(single_row._COPIES)
    del booster, copy
    gc.collect()
    assert len(single_row._COPIES) == before - 2
