"""Booster predictions: the single-thread path for small batches gives the same answers."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from fidelite.training.boosting import SMALL_BATCH_ROWS, booster_predict, small_batch_threads


@pytest.fixture(scope="module")
def fitted() -> tuple[lgb.LGBMClassifier, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2_000, 8))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=len(X)) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=40, n_jobs=2, verbose=-1).fit(X, y)
    return model, X


def test_small_batches_run_on_one_thread_and_large_ones_keep_the_booster_setting() -> None:
    assert small_batch_threads(1) == {"num_threads": 1}
    assert small_batch_threads(SMALL_BATCH_ROWS - 1) == {"num_threads": 1}
    assert small_batch_threads(SMALL_BATCH_ROWS) == {}


@pytest.mark.parametrize("rows", [1, 14, SMALL_BATCH_ROWS - 1, SMALL_BATCH_ROWS, 2_000])
def test_booster_predict_equals_the_estimator_on_either_side_of_the_threshold(
    fitted: tuple[lgb.LGBMClassifier, np.ndarray], rows: int
) -> None:
    model, X = fitted
    expected = model.predict(X[:rows], raw_score=True)
    np.testing.assert_array_equal(booster_predict(model, X[:rows], raw_score=True), expected)
    # The thread setting is per call: the booster keeps its own for later large batches.
    assert model.booster_.params.get("num_threads") == 2


def test_a_callers_own_thread_count_wins(fitted: tuple[lgb.LGBMClassifier, np.ndarray]) -> None:
    model, X = fitted
    expected = model.predict(X[:3], raw_score=True)
    np.testing.assert_array_equal(
        booster_predict(model, X[:3], raw_score=True, num_threads=2), expected
    )
