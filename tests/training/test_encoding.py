"""The model matrix: contract-driven columns, frozen levels, the numpy fast path."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fidelite.training.encoding import FeatureEncoder, unsupported_features


def _features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "days_since_last_purchase": rng.exponential(60, n),
            "orders_total": rng.poisson(4, n).astype(np.int64) + 1,
            "email_opt_in": rng.random(n) < 0.5,
            "lifecycle_stage": rng.choice(["active", "at_risk", "lapsed"], n),
            "channel_preference": "email,web",
            "mystery_score": rng.normal(size=n),
            "baseline_clv": rng.gamma(2.0, 40.0, n),
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )


def test_columns_come_from_the_contract_and_levels_are_frozen():
    frame = _features(200, 0)
    encoder = FeatureEncoder().fit(frame)
    # Consent (a current-state snapshot), free text and columns outside the contract
    # are never model inputs; the baseline columns are.
    assert encoder.feature_names_ == [
        "days_since_last_purchase",
        "orders_total",
        "baseline_clv",
        "lifecycle_stage",
    ]
    assert encoder.categories_["lifecycle_stage"] == ["active", "at_risk", "lapsed"]

    new = frame.drop(columns=["days_since_last_purchase"]).head(3).copy()
    new["lifecycle_stage"] = ["active", "reactivated", None]
    X = encoder.transform(new)
    assert list(X.columns) == encoder.feature_names_
    assert X["days_since_last_purchase"].isna().all()  # missing optional column -> NaN
    assert X["lifecycle_stage"].isna().tolist() == [False, True, True]  # unseen level -> NaN
    assert list(X["lifecycle_stage"].cat.categories) == ["active", "at_risk", "lapsed"]


def test_numpy_matrix_matches_the_frame():
    frame = _features(50, 1)
    encoder = FeatureEncoder().fit(frame)
    matrix = encoder.transform_array(frame)
    X = encoder.transform(frame)
    np.testing.assert_allclose(matrix[:, :3], X.iloc[:, :3].to_numpy(dtype=float))
    np.testing.assert_array_equal(matrix[:, 3], X["lifecycle_stage"].cat.codes.to_numpy())
    # JSON-like object columns (numbers as text or None) convert too.
    loose = frame.head(2).astype({"orders_total": object})
    loose.loc[loose.index[0], "orders_total"] = None
    assert np.isnan(encoder.transform_array(loose)[0, 1])


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


def test_large_text_columns_code_as_the_frame_path():
    """Above the dictionary path's row limit, text-and-None columns take dictionary
    look-ups and other objects pandas' text conversion: the frame's codes either way."""
    encoder = FeatureEncoder().fit(_features(200, 3))
    n = 500
    rng = np.random.default_rng(4)
    texts = rng.choice(np.array(["active", "at_risk", "lapsed", "new", "", None], object), n)
    mixed = texts.copy()
    mixed[:6] = [1, 1.0, True, np.nan, "active", None]
    for stage in (texts, mixed, np.array(["lapsed"] * n)):
        frame = _features(n, 5).assign(lifecycle_stage=stage)
        columns = {name: frame[name].to_numpy() for name in frame.columns}
        expected = encoder.transform_array(frame)
        np.testing.assert_array_equal(encoder.transform_columns(columns, n), expected)
        small = {name: values[:40] for name, values in columns.items()}
        np.testing.assert_array_equal(encoder.transform_columns(small, 40), expected[:40])


def _per_column_matrix(encoder: FeatureEncoder, columns: dict, n: int) -> np.ndarray:
    """The numeric block as one assignment per column (transform_columns before the float
    block), shape (n, len(numeric_features_))."""
    out = np.full((n, len(encoder.numeric_features_)), np.nan)
    for target, name in enumerate(encoder.numeric_features_):
        values = columns.get(name)
        if values is not None and np.asarray(values).dtype.kind in "biuf":
            out[:, target] = values
    return out


def test_small_batches_code_as_the_frame_path_bit_for_bit():
    """1, 2 and 63 rows (the dictionary look-up path): float64 columns copied as one
    block, text-and-None categories by look-up; NaN, missing columns, unseen levels, ints,
    bools, pandas NA and numpy text take the same values as the frame path."""
    encoder = FeatureEncoder().fit(_features(200, 3))
    for n in (1, 2, 63):
        frame = _features(n, 7)
        frame.iloc[0, 0] = np.nan  # a NaN float
        frame["baseline_clv"] = -0.0 if n == 1 else frame["baseline_clv"]
        columns = {name: frame[name].to_numpy() for name in frame.columns}
        texts = np.array(["active", None, "nope", "lapsed"] * 16, dtype=object)[:n]
        others = np.array([np.nan, "active", pd.NA, 3] * 16, dtype=object)[:n]
        for stage in (texts, others, texts.astype(str), None):
            cols = dict(columns, lifecycle_stage=stage)
            if stage is None:
                del cols["lifecycle_stage"]
            got = encoder.transform_columns(cols, n)
            expected = encoder.transform_array(frame.assign(lifecycle_stage=stage))
            assert got.tobytes() == expected.tobytes() or np.array_equal(got, expected, True)
            numeric = got[:, : len(encoder.numeric_features_)]
            assert numeric.tobytes() == _per_column_matrix(encoder, cols, n).tobytes()
        # a column of another length is broadcast as before (assignment, not the block)
        one = dict(columns, days_since_last_purchase=np.array([1.5]))
        position = encoder.feature_names_.index("days_since_last_purchase")
        assert (encoder.transform_columns(one, n)[:, position] == 1.5).all()
