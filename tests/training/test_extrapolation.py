"""Models that must score an older cohort than they were trained on (e.g. CDNOW)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.training.churn import (
    ChurnModel,
    FeatureEncoder,
    baseline_log_odds,
    unsupported_features,
)
from fidelite.training.clv import ClvModel
from fidelite.training.labels import InsufficientHistoryError
from fidelite.training.train import TrainConfig, _cutoffs


def _cohort(n: int, tenure_range: tuple[float, float], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "T": rng.uniform(*tenure_range, n),
            "days_since_last_purchase": rng.uniform(0, tenure_range[1], n),
            "orders_total": rng.poisson(3, n) + 1,
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )


def test_unsupported_features_flags_only_columns_beyond_the_training_range():
    young, old = _cohort(500, (30, 180), 0), _cohort(500, (280, 360), 1)
    # T: every old customer lies beyond the training maximum; days since last
    # purchase: about half do (it still ranks the rest); orders: all in range.
    columns = ["T", "days_since_last_purchase", "orders_total"]
    assert unsupported_features(young, old, columns, max_share=0.9) == ["T"]
    assert unsupported_features(young, old, columns, max_share=0.3) == [
        "T",
        "days_since_last_purchase",
    ]
    assert unsupported_features(young, young, columns, max_share=0.0) == []


def test_encoder_leaves_out_unsupported_columns_when_given_the_scored_rows():
    young, old = _cohort(300, (30, 180), 2), _cohort(300, (280, 360), 3)
    encoder = FeatureEncoder().fit(young, reference=old)
    assert encoder.unsupported_features_ == ["T"]
    assert "T" not in encoder.transform(old).columns
    assert FeatureEncoder().fit(young).unsupported_features_ == []  # no reference, no drop
    assert "T" not in FeatureEncoder(exclude=("T",)).fit(young).numeric_features_


def _baseline_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Churn driven by the baseline probability plus a tree-learnable bump on ``segment``."""
    rng = np.random.default_rng(seed)
    p_base = rng.uniform(0.05, 0.95, n)
    segment = rng.integers(0, 2, n).astype(float)
    logit = np.log(p_base / (1 - p_base)) + 1.5 * segment
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"baseline_churn_probability": p_base, "segment": segment})
    return X, churned


def test_baseline_log_odds_is_the_logit_and_neutral_when_missing():
    X = pd.DataFrame({"baseline_churn_probability": [0.5, 0.8, np.nan]})
    np.testing.assert_allclose(baseline_log_odds(X), [0.0, np.log(4.0), 0.0])
    assert (baseline_log_odds(pd.DataFrame({"x": [1.0, 2.0]})) == 0).all()


def test_churn_model_starts_from_the_baseline_and_learns_corrections():
    X, churned = _baseline_frame(6000, 4)
    # One tiny step: the prediction is still (almost) the baseline itself.
    start = ChurnModel(n_estimators=1, learning_rate=1e-6, n_jobs=1).fit(X, churned)
    np.testing.assert_allclose(
        start.predict_raw_proba(X), X["baseline_churn_probability"], atol=1e-4
    )
    flat = ChurnModel(n_estimators=1, learning_rate=1e-6, boost_from_baseline=False, n_jobs=1)
    assert np.ptp(flat.fit(X, churned).predict_raw_proba(X)) < 1e-3  # the churn rate only

    model = ChurnModel(n_estimators=200, learning_rate=0.1, n_jobs=1).fit(X, churned)
    lift = np.log(model.predict_raw_proba(X) / (1 - model.predict_raw_proba(X))) - (
        baseline_log_odds(X)
    )
    by_segment = pd.Series(lift).groupby(X["segment"].to_numpy()).mean()
    assert by_segment[1.0] - by_segment[0.0] == pytest.approx(1.5, abs=0.4)


def _history(start: str, end: str) -> pd.DataFrame:
    days = pd.date_range(start, end, freq="7D")
    return pd.DataFrame({"customer_id": "1", "timestamp": days, "amount": 10.0})


def test_train_config_step_and_min_history_reach_the_backtest_cutoffs():
    tx = _history("1997-01-01", "1997-12-31")
    default = TrainConfig(as_of="1997-12-31", horizon_days=182, n_windows=4)
    with pytest.raises(InsufficientHistoryError, match="LightGBM needs 2"):
        _cutoffs(tx, default)
    dense = TrainConfig(
        as_of="1997-12-31", horizon_days=182, n_windows=4, step_days=28, min_history_days=91
    )
    cutoffs = _cutoffs(tx, dense)
    assert [str(c.date()) for c in cutoffs] == [
        "1997-04-09",
        "1997-05-07",
        "1997-06-04",
        "1997-07-02",
    ]


def test_clv_trees_keep_the_level_on_the_scored_rows():
    rng = np.random.default_rng(5)
    n = 3000
    baseline = rng.gamma(2.0, 40.0, n)
    active = rng.random(n) < 0.5
    X = pd.DataFrame({"baseline_clv": baseline, "active": active.astype(float)})
    spend = rng.gamma(2.0, baseline * np.where(active, 1.5, 0.5) / 2.0)
    model = ClvModel(n_estimators=60, n_jobs=1).fit(X, spend)
    # An older cohort where the trees' favourite segment dominates: they would lift its total.
    older = X.assign(active=(rng.random(n) < 0.9).astype(float))
    assert model.predict(older).sum() > 1.1 * older["baseline_clv"].sum()
    model.keep_level_on(older, offset=np.log(1.2))
    pred = model.predict(older, offset=np.log(1.2))
    assert pred.sum() == pytest.approx(1.2 * older["baseline_clv"].sum(), rel=1e-9)
    # Ranking within the cohort is untouched by the constant.
    assert np.corrcoef(pred, older["active"])[0, 1] > 0.3
