"""LightGBM's ``predict`` of large batches from the compiled trees: the same bits."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from fidelite.training.booster_outputs import compiled_predict


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3_000, 8))
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 3] = rng.integers(0, 5, len(X))
    y = np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) + rng.normal(size=len(X))
    return X, y


@pytest.mark.parametrize(
    "estimator",
    [
        lgb.LGBMClassifier(n_estimators=60, num_leaves=15, verbose=-1, n_jobs=1),
        lgb.LGBMClassifier(n_estimators=40, num_leaves=7, verbose=-1, n_jobs=1, sigmoid=0.7),
        lgb.LGBMRegressor(n_estimators=60, num_leaves=15, verbose=-1, n_jobs=1),
    ],
    ids=["binary", "binary sigmoid 0.7", "regression"],
)
def test_compiled_predict_has_lightgbms_bits(estimator: lgb.LGBMModel) -> None:
    X, y = _data(1)
    target = (y > 0).astype(int) if isinstance(estimator, lgb.LGBMClassifier) else y
    estimator.fit(X[:2_000], target[:2_000])
    fresh = np.random.default_rng(2).normal(size=(2_500, 8)) * 3
    fresh[::7, 2] = np.nan
    fresh[::11] = 0.0
    for rows in (fresh, X[2_000:], fresh[:64]):
        expected = estimator.booster_.predict(rows)
        got = compiled_predict(estimator.booster_, rows)
        assert got is not None
        assert got.view(np.int64).tolist() == expected.view(np.int64).tolist()


def test_best_iteration_is_used_as_lightgbm_does() -> None:
    X, y = _data(3)
    estimator = lgb.LGBMRegressor(n_estimators=200, verbose=-1, n_jobs=1)
    estimator.fit(
        X[:2_000],
        y[:2_000],
        eval_X=(X[2_000:],),
        eval_y=(y[2_000:],),
        callbacks=[lgb.early_stopping(5, verbose=False)],
    )
    assert 0 < estimator.booster_.best_iteration < 200
    got = compiled_predict(estimator.booster_, X)
    assert got is not None and np.array_equal(got, estimator.booster_.predict(X))


def test_other_objectives_are_left_to_lightgbm() -> None:
    X, y = _data(4)
    booster = lgb.train(
        {"objective": "poisson", "verbose": -1, "num_threads": 1},
        lgb.Dataset(X, np.abs(y)),
        num_boost_round=5,
    )
    assert compiled_predict(booster, X) is None
