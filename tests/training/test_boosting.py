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


def test_level_choices_are_remembered_per_day_for_the_current_levels_only() -> None:
    import pickle

    import pandas as pd

    from fidelite.training.churn import ChurnModel
    from fidelite.training.levels import WindowLevels

    model = ChurnModel()
    days = [pd.Timestamp("2024-06-30"), pd.Timestamp("2024-12-31"), pd.Timestamp("2025-06-30")]
    model.levels_ = WindowLevels(days, [0.1, 0.2, 0.3])
    for as_of in (None, "2025-12-31", pd.Timestamp("2025-12-31"), "2026-07-01"):
        first = model.level_for(as_of)
        target = days[-1] if as_of is None else pd.Timestamp(as_of)
        assert first == model.levels_.choose(target) and model.level_for(as_of) is first
    assert model.level_for("2025-12-31").offset == 0.2 and model.level_for(None).offset == 0.3
    # new levels (a refit): the old choices are forgotten
    model.levels_ = WindowLevels(days, [1.0, 2.0, 3.0])
    assert model.level_for("2025-12-31").offset == 2.0
    plain = pd.Timestamp("2026-07-01").to_pydatetime()  # not remembered, chosen as usual
    assert model.level_for(plain) == model.levels_.choose(pd.Timestamp(plain))
    assert "_level_cache" not in pickle.loads(pickle.dumps(model)).__dict__
