"""Leaf masks (training.forest_masks): the walk's leaves, scores and contributions, to the bit."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from scipy import sparse

from fidelite.training import forest_masks
from fidelite.training.forest import Forest

ZERO = float(np.float32(1e-35))


def _walked(forest: Forest) -> Forest:
    """The same trees, evaluated by the level-by-level walk."""
    walked = Forest.__new__(Forest)
    walked.__dict__.update(forest.__dict__)
    walked.use_masks = False
    walked._bin_clears = {}
    return walked


def _rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    X[:, 3] = rng.integers(-2, 40, n)  # categories, some negative or unseen
    X[: n // 10, 0] = np.nan
    X[n // 10 : n // 5, 1] = 0.0
    X[n // 5 : n // 5 + 7, 2] = 1e-40
    X[n // 5 + 7 : n // 5 + 14, 2] = -ZERO
    X[n // 5 + 14 : n // 5 + 21, 0] = np.inf
    X[n // 5 + 21 : n // 5 + 28, 1] = -np.inf
    X[n // 5 + 28 : n // 5 + 35, :] = np.nan
    return X


def _at_thresholds(forest: Forest, X: np.ndarray) -> np.ndarray:
    """``X`` with some values exactly at a split's threshold (they go left)."""
    X = X.copy()
    n_internal = len(forest._layout.op)
    threshold = forest._trees[2][:n_internal]
    for row, node in enumerate(range(0, n_internal, max(1, n_internal // 200))):
        feature = forest.feature[node]
        if feature != 3:  # not the categorical column
            X[row, feature] = threshold[node]
    return X


@pytest.fixture(scope="module", params=[(15, {}), (63, {"zero_as_missing": True}), (4, {})])
def booster(request) -> lgb.Booster:
    leaves, extra = request.param
    X = _rows(3000, 3)
    y = np.nan_to_num(X[:, 0]) - np.nan_to_num(X[:, 1]) / 2 + (X[:, 3] % 3 == 0)
    data = lgb.Dataset(X, y, categorical_feature=[3], params={"verbose": -1})
    settings = {"num_leaves": leaves, "min_data_in_leaf": 3, "verbose": -1, **extra}
    return lgb.train({**settings, "cat_smooth": 1, "min_data_per_group": 3}, data, 40)


def test_masks_give_the_walks_bits_and_lightgbms(booster):
    forest = Forest.from_booster(booster)
    assert forest.use_masks
    assert forest_masks.SPECIAL in forest._layout.op  # categorical splits at least
    walked = _walked(forest)
    X = _at_thresholds(forest, _rows(1000, 9))
    leaves = forest.leaves(X)
    np.testing.assert_array_equal(leaves, walked.leaves(X))
    np.testing.assert_array_equal(leaves, booster.predict(X, pred_leaf=True) + forest.leaf_offsets)
    np.testing.assert_array_equal(forest.raw_score(X), walked.raw_score(X))
    np.testing.assert_array_equal(forest.raw_score(X), booster.predict(X, raw_score=True))
    # a block's worth, fewer, and one row: partial blocks
    for n in (forest_masks.BLOCK, forest_masks.BLOCK + 1, 1, 0):
        np.testing.assert_array_equal(forest.raw_score(X[:n]), walked.raw_score(X[:n]))
    # the last column (categorical here) as the hazard's bin, including unseen bins
    for n_bins in (1, 13, 45):
        binned = forest.binned_raw(X[:, :3], 3, n_bins)
        np.testing.assert_array_equal(binned, walked.binned_raw(X[:, :3], 3, n_bins))


def test_dense_contributions_equal_the_csr_walk(booster):
    forest = Forest.from_booster(booster)
    n_leaves = len(forest.leaf_value)
    rng = np.random.default_rng(5)
    table = sparse.random(n_leaves, 6, density=0.4, random_state=6, format="csr")
    table.data = rng.normal(size=table.nnz) * 10.0 ** rng.integers(-12, 12, table.nnz)
    table.data[:5] = -0.0  # a stored negative zero adds as the walk adds it
    X = _rows(700, 11)
    raw, got = forest.raw_and_contributions(X, table, 6)
    walked_raw, expected = _walked(forest).raw_and_contributions(X, table, 6)
    np.testing.assert_array_equal(raw, walked_raw)
    assert got.tobytes() == expected.tobytes()  # every bit, signs of zeros too


def test_a_table_repeating_a_column_is_walked():
    indptr = np.array([0, 2, 3])
    assert forest_masks.dense_table(indptr, np.array([1, 1, 0]), np.ones(3), np.array([0])) is None
    dense = forest_masks.dense_table(indptr, np.array([0, 1, 1]), np.ones(3), np.array([0]))
    assert dense is not None


def test_trees_beyond_the_masks_are_walked():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 3))
    y = X[:, 0] * X[:, 1] + rng.normal(size=3000)
    booster = lgb.train(
        {"num_leaves": 100, "min_data_in_leaf": 2, "verbose": -1}, lgb.Dataset(X, y), 3
    )
    forest = Forest.from_booster(booster)
    assert not forest.use_masks
    np.testing.assert_array_equal(forest.raw_score(X), booster.predict(X, raw_score=True))


def test_in_order_leaves_and_cleared_bits_of_a_small_tree():
    # root 0: left leaf A, right node 1; node 1: left node 2, right leaf D; node 2: B, C.
    n_internal = 3
    leaf = {name: n_internal + i for i, name in enumerate("ACBD")}  # LightGBM numbering
    child = np.array([leaf["A"], 1, 2, leaf["D"], leaf["B"], leaf["C"]] + [0] * 8)
    for node in leaf.values():
        child[2 * node : 2 * node + 2] = node
    layout = forest_masks.MaskLayout(
        child, np.array([0]), np.array([0]), n_internal, np.zeros(7, int), np.zeros(7, int)
    )
    # left to right: A B C D, i.e. leaves 0, 2, 1, 3
    np.testing.assert_array_equal(layout.leaf_order, [0, 2, 1, 3])
    bits = [int(c) & 0xF for c in layout.clear]
    assert bits == [0b1110, 0b1001, 0b1101]  # node 0 clears A; node 1 B and C; node 2 B
