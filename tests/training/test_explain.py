"""Path attributions of LightGBM models and vectorised reason phrases."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from training.explain import PathAttribution, describe, describe_many, top_reasons


@pytest.fixture(scope="module")
def fitted() -> tuple[lgb.LGBMClassifier, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 600
    X = pd.DataFrame(
        {
            "days_since_last_purchase": rng.uniform(0, 300, n),
            "orders_90d": rng.poisson(2, n).astype(float),
            "noise": rng.normal(size=n),
            "segment": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        }
    )
    X.loc[X.index[:40], "orders_90d"] = np.nan  # missing values take the default branch
    logit = X["days_since_last_purchase"] / 60 - X["orders_90d"].fillna(0) - 1
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=8, verbose=-1, n_jobs=1)
    return model.fit(X, y), X


def test_path_contributions_add_up_to_the_raw_score(fitted):
    model, X = fitted
    attribution = PathAttribution(num_iteration=30).fit(model)
    contributions = attribution.contributions(X)
    assert contributions.shape == (len(X), X.shape[1])
    raw = model.predict(X, raw_score=True, num_iteration=30)
    np.testing.assert_allclose(contributions.sum(axis=1) + attribution.expected_value_, raw)
    # Same baseline as TreeSHAP's bias column.
    shap = model.predict(X, pred_contrib=True, num_iteration=30)
    assert attribution.expected_value_ == pytest.approx(shap[0, -1])


def test_path_contributions_rank_features_like_treeshap(fitted):
    model, X = fitted
    contributions = PathAttribution().fit(model).contributions(X)
    shap = model.predict(X, pred_contrib=True)[:, :-1]
    # The two informative features outrank noise and segment, as in SHAP.
    for values in (contributions, shap):
        assert set(np.argsort(-np.abs(values).mean(axis=0))[:2]) == {0, 1}
    agree = (contributions.argmax(axis=1) == shap.argmax(axis=1)).mean()
    assert agree > 0.8


def test_empty_input_gives_empty_contributions(fitted):
    model, X = fitted
    assert PathAttribution().fit(model).contributions(X.iloc[:0]).shape == (0, X.shape[1])


def test_top_reasons_orders_by_contribution_and_skips_non_positive():
    features = pd.DataFrame(
        {
            "days_since_last_purchase": [94.0, 10.0, 5.0],
            "ipt_mean_days": [30.3, np.nan, 20.0],
            "orders_90d": [0.0, 4.0, 1.0],
            "eng_email_open_rate": [np.nan, 0.25, 0.0],
            "lifecycle_stage": ["at_risk", None, "active"],
        }
    )
    names = ["days_since_last_purchase", "orders_90d", "eng_email_open_rate", "lifecycle_stage"]
    contributions = np.array(
        [
            [0.9, 0.5, 0.1, -0.2],
            [0.2, -0.1, 0.3, 0.4],
            [-0.1, -0.2, -0.3, -0.4],
        ]
    )
    reasons = top_reasons(contributions, features, top_k=3, feature_names=names)
    assert reasons == [
        [
            "no order for 94 days, 3.1x their usual gap",
            "0 orders in the last 90 days",
            "no email activity on record",
        ],
        ["lifecycle stage: unknown", "email open rate 25%", "no order for 10 days"],
        [],
    ]
    frame = pd.DataFrame(contributions, columns=names)
    assert top_reasons(frame, features, top_k=1) == [[reasons[0][0]], [reasons[1][0]], []]


def test_describe_many_matches_describe_row_by_row():
    values = np.array([94.0, np.nan, 0.0], dtype=object)
    gaps = np.array([30.3, 10.0, np.nan])
    many = describe_many("days_since_last_purchase", values, lambda column: gaps)
    assert many == [
        describe("days_since_last_purchase", 94.0, {"ipt_mean_days": 30.3}),
        describe("days_since_last_purchase", np.nan, {"ipt_mean_days": 10.0}),
        describe("days_since_last_purchase", 0.0, {}),
    ]
    assert many == [
        "no order for 94 days, 3.1x their usual gap",
        "days_since_last_purchase = unknown",
        "no order for 0 days",
    ]
    opt_in = describe_many("sms_opt_in", np.array([True, False]), lambda column: gaps)
    assert opt_in == ["opted in to sms", "not opted in to sms"]
