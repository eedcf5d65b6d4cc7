"""The churn classifier: boosted from the baseline, held-out window, calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fidelite.training.boosting import Trees
from fidelite.training.calibration import choose_calibration
from fidelite.training.churn import ChurnModel, baseline_log_odds


def _windows(n: int, seed: int, n_windows: int = 3) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Churn = baseline log-odds + a tree-learnable bump on recency; rows in windows."""
    rng = np.random.default_rng(seed)
    p_base = rng.uniform(0.05, 0.95, n)
    days = rng.exponential(60, n)
    X = pd.DataFrame(
        {"baseline_churn_probability": p_base, "days_since_last_purchase": days},
        index=pd.Index([f"c{i % (n // n_windows)}" for i in range(n)], name="customer_id"),
    )
    logit = np.log(p_base / (1 - p_base)) + np.where(days > 90, 1.5, -0.5)
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    cutoffs = pd.date_range("2024-01-01", periods=n_windows, freq="90D").to_numpy()
    window = np.repeat(cutoffs, n // n_windows)
    return X, churned, window


def test_baseline_log_odds_is_the_logit_and_neutral_when_missing():
    X = pd.DataFrame({"baseline_churn_probability": [0.5, 0.8, np.nan]})
    np.testing.assert_allclose(baseline_log_odds(X), [0.0, np.log(4.0), 0.0])
    assert (baseline_log_odds(pd.DataFrame({"x": [1.0, 2.0]})) == 0).all()


def test_starts_from_the_baseline_and_learns_corrections():
    X, churned, _ = _windows(6000, 4)
    # One tiny step: the prediction is still (almost) the baseline itself.
    tiny = Trees(n_estimators=1, learning_rate=1e-6, early_stopping_rounds=0)
    start = ChurnModel(trees=tiny, n_jobs=1).fit(X, churned)
    np.testing.assert_allclose(
        start.predict_raw_proba(X), X["baseline_churn_probability"], atol=1e-4
    )
    flat = ChurnModel(trees=tiny, boost_from_baseline=False, n_jobs=1).fit(X, churned)
    assert np.ptp(flat.predict_raw_proba(X)) < 1e-3  # the churn rate only

    model = ChurnModel(trees=Trees(n_estimators=200, learning_rate=0.1), n_jobs=1)
    p = model.fit(X, churned).predict_raw_proba(X)
    lift = np.log(p / (1 - p)) - baseline_log_odds(X)
    by_recency = pd.Series(lift).groupby(X["days_since_last_purchase"].to_numpy() > 90).mean()
    assert by_recency[True] - by_recency[False] == pytest.approx(2.0, abs=0.5)


def test_newest_window_is_held_out_then_every_window_is_used():
    X, churned, window = _windows(6000, 1)
    model = ChurnModel(trees=Trees(n_estimators=400, learning_rate=0.1), n_jobs=1)
    model.fit(X, churned, window=window)
    held = window == window.max()
    assert model.best_iteration_ < 400  # early-stopped on the held-out window
    assert model.validation_.cutoff == pd.Timestamp(window.max())
    assert list(model.validation_.index) == list(X.index[held])
    assert roc_auc_score(churned[held], model.validation_.predicted) > 0.75
    # The shipped estimator has the chosen tree count and saw every row.
    assert model.estimator_.n_estimators == model.best_iteration_
    proba = model.predict_proba(X.iloc[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X.iloc[:5]), (proba[:, 1] >= 0.5).astype(int))
    assert set(model.calibration_) == {"ece_raw", "ece_isotonic_crossfit", "calibrated"}


def test_numpy_matrix_gives_the_same_probabilities():
    X, churned, window = _windows(3000, 2)
    model = ChurnModel(trees=Trees(n_estimators=50), n_jobs=1).fit(X, churned, window=window)
    np.testing.assert_allclose(
        model.churn_probability(X.to_numpy()), model.churn_probability(X), rtol=1e-12
    )


def test_calibration_adopted_only_when_it_helps():
    rng = np.random.default_rng(2)
    p_true = rng.uniform(0.05, 0.95, 4000)
    y = (rng.random(4000) < p_true).astype(int)
    calibrator, report = choose_calibration(y, p_true)
    assert calibrator is None and report["calibrated"] == 0.0

    distorted = p_true**3  # badly under-confident about churn
    calibrator, report = choose_calibration(y, distorted)
    assert calibrator is not None and report["calibrated"] == 1.0
    assert report["ece_isotonic_crossfit"] < 0.5 * report["ece_raw"]
