"""Path attributions of LightGBM models: they add up to the raw score and rank like SHAP."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from fidelite.training.attribution import PathAttribution


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


def test_numpy_matrix_gives_the_same_contributions(fitted):
    model, X = fitted
    attribution = PathAttribution().fit(model)
    numeric = X.assign(segment=X["segment"].cat.codes.astype(float)).to_numpy(dtype=float)
    np.testing.assert_allclose(attribution.contributions(numeric), attribution.contributions(X))


def test_one_leaf_pass_gives_the_boosters_raw_score_to_the_bit(fitted):
    model, X = fitted
    for trees in (30, None):
        attribution = PathAttribution(num_iteration=trees).fit(model)
        raw = model.booster_.predict(X, raw_score=True, num_iteration=trees)
        np.testing.assert_array_equal(attribution.raw_score(attribution.leaves(X)), raw)
        first = attribution.leaves(X.iloc[:1])
        np.testing.assert_array_equal(attribution.raw_score(first), raw[:1])
    assert attribution.raw_score(attribution.leaves(X.iloc[:0])).shape == (0,)


def test_few_rows_dense_path_gives_the_sparse_products_bits(fitted):
    import fidelite.training.attribution as module

    model, X = fitted
    attribution = PathAttribution().fit(model)
    leaves = attribution.leaves(X)
    whole = attribution.contributions_of(leaves)  # 600 rows: the sparse product
    assert len(X) > module._DENSE_MAX_ROWS
    for rows in (slice(0, 1), slice(5, 5 + module._DENSE_MAX_ROWS), slice(40, 43)):
        np.testing.assert_array_equal(attribution.contributions_of(leaves[rows]), whole[rows])
    np.testing.assert_allclose(
        whole.sum(axis=1) + attribution.expected_value_, attribution.raw_score(leaves)
    )
