"""Unit tests of the churn/CLV model classes, intervals, seasonal level and reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fidelite.training.churn import ChurnModel, FeatureEncoder, choose_calibration
from fidelite.training.clv import (
    ClvModel,
    RatioIntervals,
    SeasonalLevel,
    crossfit_interval_coverage,
)
from fidelite.training.explain import describe, top_reasons


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Synthetic features where churn rises with recency and spend scales with a baseline."""
    rng = np.random.default_rng(seed)
    days = rng.exponential(60, n)
    orders = rng.poisson(4, n).astype(np.int64) + 1
    stage = rng.choice(["active", "at_risk", "lapsed"], n)
    baseline = rng.gamma(2.0, 40.0, n)
    frame = pd.DataFrame(
        {
            "days_since_last_purchase": days,
            "orders_total": orders,
            "email_opt_in": rng.random(n) < 0.5,
            "lifecycle_stage": stage,
            "channel_preference": "email,web",
            "baseline_clv": baseline,
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )
    logit = -1.5 + days / 40 - 0.1 * orders
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    lift = np.where(stage == "active", 1.6, 0.6)
    spend = np.where(rng.random(n) < 0.4, 0.0, rng.gamma(2.0, baseline * lift / 2.0 / 0.6))
    return frame, churned, spend


def test_encoder_freezes_columns_and_levels():
    frame, _, _ = _frame(200, 0)
    encoder = FeatureEncoder().fit(frame)
    assert "channel_preference" not in encoder.feature_names_
    assert encoder.categories_["lifecycle_stage"] == ["active", "at_risk", "lapsed"]

    new = frame.drop(columns=["days_since_last_purchase"]).head(3).copy()
    new["lifecycle_stage"] = ["active", "reactivated", None]
    X = encoder.transform(new)
    assert list(X.columns) == encoder.feature_names_
    assert X["days_since_last_purchase"].isna().all()  # missing optional column → NaN
    assert X["lifecycle_stage"].isna().tolist() == [False, True, True]  # unseen level → NaN
    assert list(X["lifecycle_stage"].cat.categories) == ["active", "at_risk", "lapsed"]
    assert X["email_opt_in"].dtype == np.float64


def test_churn_model_learns_signal_and_stops_early():
    frame, churned, _ = _frame(3000, 1)
    encoder = FeatureEncoder().fit(frame)
    X = encoder.transform(frame)
    model = ChurnModel(n_estimators=400, learning_rate=0.1, n_jobs=1).fit(
        X.iloc[:2000], churned[:2000], X.iloc[2000:], churned[2000:]
    )
    proba = model.predict_proba(X.iloc[2000:])
    assert proba.shape == (1000,) and ((proba >= 0) & (proba <= 1)).all()
    assert roc_auc_score(churned[2000:], proba) > 0.75
    assert model.best_iteration_ < 400
    contributions = model.contributions(X.iloc[:5])
    assert list(contributions.columns) == encoder.feature_names_
    assert contributions.abs().sum(axis=1).gt(0).all()


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


def test_clv_model_keeps_the_aggregate_and_uses_offset():
    frame, _, spend = _frame(4000, 3)
    encoder = FeatureEncoder().fit(frame)
    X = encoder.transform(frame)
    model = ClvModel(n_estimators=200, learning_rate=0.05, n_jobs=1).fit(
        X.iloc[:3000], spend[:3000], X.iloc[3000:], spend[3000:]
    )
    pred = model.predict(X.iloc[3000:])
    assert (pred >= 0).all()
    assert pred.sum() == pytest.approx(spend[3000:].sum(), rel=0.15)
    # Active customers were generated with higher spend than the baseline says.
    active = (frame["lifecycle_stage"].iloc[3000:] == "active").to_numpy()
    assert pred[active].mean() > pred[~active].mean()
    # A log offset scales every prediction by exp(offset).
    np.testing.assert_allclose(model.predict(X.iloc[3000:], offset=np.log(2.0)), 2 * pred)


def test_clv_with_one_tree_stays_near_baseline():
    frame, _, spend = _frame(1000, 4)
    X = FeatureEncoder().fit(frame).transform(frame)
    model = ClvModel(n_estimators=1, early_stopping_rounds=0, n_jobs=1).fit(X, spend)
    ratio = model.predict(X) / model.baseline_level(X)
    assert np.median(np.abs(np.log(ratio))) < 0.1


def test_ratio_intervals_bracket_prediction_and_cover():
    rng = np.random.default_rng(5)
    predicted = rng.gamma(2.0, 50.0, 6000)
    actual = np.where(rng.random(6000) < 0.3, 0.0, predicted * rng.gamma(4.0, 1 / 2.8, 6000))
    intervals = RatioIntervals().fit(predicted[:3000], actual[:3000])
    low, high = intervals.predict(predicted[3000:])
    assert (low <= predicted[3000:]).all() and (predicted[3000:] <= high).all()
    # 30% exact zeros sit at the 10% quantile (0), so [p10, p90] holds ~90% of outcomes.
    coverage = intervals.coverage(predicted[3000:], actual[3000:])
    assert coverage == pytest.approx(0.9, abs=0.03)
    assert crossfit_interval_coverage(predicted, actual) == pytest.approx(0.9, abs=0.03)
    # Without zeros the nominal 80% applies.
    positive = predicted * rng.gamma(4.0, 1 / 4.0, 6000)
    fitted = RatioIntervals().fit(predicted[:3000], positive[:3000])
    assert fitted.coverage(predicted[3000:], positive[3000:]) == pytest.approx(0.8, abs=0.03)


def test_seasonal_level_reuses_same_season_else_pooled():
    starts = pd.to_datetime(["2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01"])
    rows = np.repeat(starts.to_numpy(), 10)
    baseline = np.full(40, 10.0)
    factors = np.repeat([0.5, 1.0, 1.0, 2.0], 10)
    level = SeasonalLevel(horizon_days=90).fit(rows, baseline, baseline * factors)
    np.testing.assert_allclose(level.window_offsets(rows[:1]), [np.log(0.5)])
    assert level.predict(pd.Timestamp("2025-10-03")) == pytest.approx(np.log(2.0))
    assert level.predict(pd.Timestamp("2025-01-02")) == pytest.approx(np.log(0.5))
    far = SeasonalLevel(horizon_days=90).fit(rows[:10], baseline[:10], baseline[:10] * 0.5)
    assert far.predict(pd.Timestamp("2025-07-01")) == pytest.approx(far.pooled_log_ratio_)


def test_reason_phrases():
    row = {"ipt_mean_days": 30.3}
    assert (
        describe("days_since_last_purchase", 94, row)
        == "no order for 94 days, 3.1x their usual gap"
    )
    assert describe("eng_email_events_30d", 0, row) == "no email activity in the last 30 days"
    assert describe("spend_trend", -3 / 7, row) == "spend down 60% vs the prior 90 days"
    assert describe("eng_sms_open_rate", float("nan"), row) == "no sms messages received"
    assert describe("mystery_score", 1.5, row) == "mystery score: 1.50"

    contributions = pd.DataFrame(
        {
            "days_since_last_purchase": [0.8, -0.2],
            "spend_trend": [0.1, -0.5],
            "mystery_score": [-0.3, -0.1],
        }
    )
    features = pd.DataFrame(
        {
            "days_since_last_purchase": [94, 3],
            "spend_trend": [-3 / 7, 0.2],
            "mystery_score": [1.0, 2.0],
            "ipt_mean_days": [30.3, 20],
        }
    )
    reasons = top_reasons(contributions, features, top_k=3)
    assert reasons[0] == [
        "no order for 94 days, 3.1x their usual gap",
        "spend down 60% vs the prior 90 days",
    ]
    # nothing raises this customer's risk: the biggest drivers, worded as plain facts
    assert reasons[1][0] == "spend up 50% vs the prior 90 days"
