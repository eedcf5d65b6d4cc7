"""The churn classifier: boosted from the baseline, one level per window, held-out rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fidelite.training.boosting import Trees
from fidelite.training.churn import ChurnModel, baseline_log_odds
from fidelite.training.holdout import RowRoles

CUTOFFS = pd.to_datetime(["2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01", "2025-01-01"])


def _windows(n_per: int, seed: int, shifts=(0.0, 0.5, 0.0, -0.5, 0.0)):
    """Churn = baseline log-odds + a recency bump + the window's own (seasonal) shift."""
    rng = np.random.default_rng(seed)
    n = n_per * len(shifts)
    p_base = rng.uniform(0.05, 0.95, n)
    days = rng.exponential(60, n)
    X = pd.DataFrame(
        {"baseline_churn_probability": p_base, "days_since_last_purchase": days},
        index=pd.Index([f"c{i % n_per}" for i in range(n)], name="customer_id"),
    )
    shift = np.repeat(np.asarray(shifts), n_per)
    logit = np.log(p_base / (1 - p_base)) + np.where(days > 90, 1.5, -0.5) + shift
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    window = np.repeat(CUTOFFS.to_numpy()[: len(shifts)], n_per)
    return X, churned, window


def _roles(window: np.ndarray) -> RowRoles:
    """The newest window held out, the others trained on."""
    newest = window.max()
    role = np.where(window == newest, 1, 0).astype(np.int8)
    return RowRoles(role, pd.Timestamp(newest), "time")


def test_baseline_log_odds_is_the_logit_and_neutral_when_missing():
    X = pd.DataFrame({"baseline_churn_probability": [0.5, 0.8, np.nan]})
    np.testing.assert_allclose(baseline_log_odds(X), [0.0, np.log(4.0), 0.0])
    assert (baseline_log_odds(pd.DataFrame({"x": [1.0, 2.0]})) == 0).all()


def test_starts_from_the_baseline_and_learns_corrections():
    X, churned, window = _windows(1500, 4, shifts=(0.0,) * 4)
    tiny = Trees(n_estimators=1, learning_rate=1e-6, early_stopping_rounds=0)
    start = ChurnModel(trees=tiny, n_jobs=1).fit(X, churned, window=window)
    # One tiny step: the baseline, shifted by one common intercept per window.
    level = start.levels_.offset_of(CUTOFFS[0])
    expected = 1 / (1 + np.exp(-(baseline_log_odds(X) + level)))
    np.testing.assert_allclose(start.churn_probability(X, as_of=CUTOFFS[0]), expected, atol=1e-4)
    model = ChurnModel(trees=Trees(n_estimators=200, learning_rate=0.1), n_jobs=1)
    p = model.fit(X, churned, window=window).churn_probability(X, as_of=CUTOFFS[0])
    lift = np.log(p / (1 - p)) - baseline_log_odds(X)
    by_recency = pd.Series(lift).groupby(X["days_since_last_purchase"].to_numpy() > 90).mean()
    assert by_recency[True] - by_recency[False] == pytest.approx(2.0, abs=0.5)


def test_each_window_gets_its_level_and_a_new_window_reuses_its_season():
    X, churned, window = _windows(3000, 1)
    model = ChurnModel(trees=Trees(n_estimators=100, learning_rate=0.1), n_jobs=1)
    model.fit(X, churned, window=window)
    levels = [model.levels_.offset_of(c) for c in CUTOFFS]
    assert levels[1] - levels[0] == pytest.approx(0.5, abs=0.15)
    assert levels[3] - levels[0] == pytest.approx(-0.5, abs=0.15)
    # The window one year after 2024-04-01 takes its level; predictions are calibrated.
    choice = model.level_for("2025-03-31")
    assert choice.source == CUTOFFS[1] and choice.comparable
    q2 = window == CUTOFFS[1].to_datetime64()
    predicted = model.churn_probability(X.loc[q2], as_of="2025-03-31")
    assert predicted.mean() == pytest.approx(churned[q2].mean(), abs=0.01)


def test_held_out_window_is_never_trained_on():
    X, churned, window = _windows(2000, 2)
    roles = _roles(window)
    model = ChurnModel(trees=Trees(n_estimators=400, learning_rate=0.1), n_jobs=1)
    model.fit(X, churned, window=window, roles=roles)
    held = roles.held
    assert model.estimator_.booster_.num_trees() == model.best_iteration_ < 400
    assert model.validation_.cutoff == CUTOFFS[-1]
    assert list(model.validation_.index) == list(X.index[held])
    assert roc_auc_score(churned[held], model.validation_.predicted) > 0.75
    # The held-out window chose the level of its season (2024-01-01), not its own...
    assert model.holdout_level_.source == CUTOFFS[0]
    # ...and its own level is known afterwards, for later windows.
    assert CUTOFFS[-1] in model.levels_.cutoffs
    proba = model.predict_proba(X.iloc[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X.iloc[:5]), (proba[:, 1] >= 0.5).astype(int))


def test_numpy_matrix_gives_the_same_probabilities():
    X, churned, window = _windows(600, 3)
    model = ChurnModel(trees=Trees(n_estimators=50), n_jobs=1).fit(X, churned, window=window)
    np.testing.assert_allclose(
        model.churn_probability(X.to_numpy(), as_of="2025-02-01"),
        model.churn_probability(X, as_of="2025-02-01"),
        rtol=1e-12,
    )


def test_no_probability_is_clipped():
    X, churned, window = _windows(1000, 5)
    X.iloc[:10, 0] = 0.99999  # baseline nearly sure
    model = ChurnModel(trees=Trees(n_estimators=30), n_jobs=1).fit(X, churned, window=window)
    p = model.churn_probability(X)
    assert len(np.unique(np.round(p, 12))) > 0.9 * len(p)  # no mass at a clip value
    assert (p > 0).all() and (p < 1).all()
