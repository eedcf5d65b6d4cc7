"""The workers' copy of the client's encoder, read off a model matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.training.encoding import FeatureEncoder
from fidelite.training.worker_rows import current_worker_rows, encoder_of, fitting_on


def _features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "frequency": rng.integers(0, 9, n),
            "spend_total": rng.gamma(2.0, 40.0, n).astype(np.float32),
            "acquisition_channel": rng.choice(["paid", "organic", "referral"], n),
            "baseline_clv": rng.gamma(2.0, 10.0, n),
            "email": rng.choice(["a@x", "b@y"], n),  # never a model input
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )


def test_encoder_read_off_a_matrix_transforms_like_the_fitted_one():
    encoder = FeatureEncoder().fit(_features(200, 0))
    schema = encoder.transform(_features(5, 1)).iloc[:0]
    assert any(isinstance(t, pd.CategoricalDtype) for t in schema.dtypes)
    copy = encoder_of(schema)
    new = _features(300, 2)
    new.loc[new.index[:10], "acquisition_channel"] = "unseen"  # unseen levels: NaN both ways
    pd.testing.assert_frame_equal(copy.transform(new), encoder.transform(new))
    assert copy.feature_names_ == encoder.feature_names_


def test_encoder_of_refuses_categoricals_before_numbers():
    schema = pd.DataFrame({"c": pd.Categorical([]), "x": np.array([], dtype=float)})
    with pytest.raises(ValueError, match="numeric columns before"):
        encoder_of(schema)


def test_rows_are_switched_on_for_a_block_only():
    marker = object()
    assert current_worker_rows() is None
    with fitting_on(marker):  # type: ignore[arg-type]
        assert current_worker_rows() is marker
    assert current_worker_rows() is None
