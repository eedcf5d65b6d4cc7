"""The uplift component's array path (``predict_arrays`` of a model trained with
campaigns) answers exactly what its frame path (``predict``) does."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from fidelite.features.contract import score_column_names
from fidelite.training.uplift import UPLIFT_SCORE_COLUMNS
from tests.training.columns import (
    assert_matches_two_pass_reference,
    serving_columns,
    typed_columns,
)

pytestmark = pytest.mark.slow

AS_OF = "2025-11-14"


def assert_same(frame: pd.DataFrame, arrays: dict[str, np.ndarray]) -> None:
    assert list(arrays) == list(frame.columns)
    assert list(frame.columns) == list(score_column_names())
    assert set(UPLIFT_SCORE_COLUMNS) <= set(frame.columns)
    for name in frame.columns:
        expected, got = frame[name].to_numpy(), np.asarray(arrays[name])
        assert len(got) == len(expected), name
        if expected.dtype.kind == "M":
            np.testing.assert_array_equal(expected, got, err_msg=name)
        elif expected.dtype.kind == "f":
            assert got.dtype.kind == "f", name
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=name)
        else:
            left, right = pd.Series(expected, dtype=object), pd.Series(got, dtype=object)
            assert left.where(left.notna(), None).tolist() == (
                right.where(right.notna(), None).tolist()
            ), name


@pytest.fixture(scope="module")
def model(campaign_trained):
    result, *_ = campaign_trained
    assert result.model.uplift is not None and result.model.uplift.channels
    return result.model


@pytest.fixture(scope="module")
def sample(campaign_trained, model) -> pd.DataFrame:
    """Buyers (with and without messaging consent) and prospects, shuffled."""
    features = model.build_features(campaign_trained[2])
    buyers = features.loc[features["orders_total"] > 0]
    silent = buyers.loc[~buyers[["email_opt_in", "sms_opt_in", "push_opt_in"]].any(axis=1)]
    prospects = features.loc[features["orders_total"] == 0].head(20)
    assert len(silent) > 0 and len(prospects) > 0
    parts = [buyers.head(200), silent.head(10), prospects]
    return pd.concat(parts).drop_duplicates().sample(frac=1.0, random_state=0)


@pytest.mark.parametrize("as_columns", [serving_columns, typed_columns])
def test_uplift_arrays_equal_frames(model, sample, as_columns):
    params = {"as_of": AS_OF, "reasons": False}
    ok = sample["orders_total"].to_numpy() > 0
    one_buyer = sample.iloc[[int(np.flatnonzero(ok)[0])]]
    one_prospect = sample.iloc[[int(np.flatnonzero(~ok)[0])]]
    for part in (sample, one_buyer, one_prospect, sample.iloc[[2, -3]]):
        expected = model.predict(None, part, params=params)
        got = model.predict_arrays(as_columns(part), as_of=AS_OF, reasons=False)
        assert_same(expected, got)
    scored = model.predict(None, sample, params=params)
    # the sample exercises both branches of the channel choice
    ok = scored["status"] == "ok"
    assert scored.loc[ok, "uplift_channel"].isna().any()
    assert scored.loc[ok, "uplift_channel"].notna().any()


def test_uplift_arrays_equal_frames_on_the_response_spend_basis(model, sample):
    """A component valuing the response spend scores the response-value model too."""
    other = copy.copy(model)
    other.uplift = copy.copy(model.uplift)
    other.uplift.value_basis = "response_spend"
    expected = other.predict(None, sample, params={"as_of": AS_OF})
    got = other.predict_arrays(serving_columns(sample), as_of=AS_OF)
    assert_same(expected, got)
    values = expected.loc[expected["status"] == "ok", "response_value"]
    assert values.notna().all() and values.gt(0).any()


def test_uplift_arrays_without_consent_columns(model, sample):
    part = sample.drop(columns=["email_opt_in", "sms_opt_in", "best_channel"])
    expected = model.predict(None, part, params={"as_of": AS_OF})
    assert_same(expected, model.predict_arrays(serving_columns(part), as_of=AS_OF))


def test_one_leaf_pass_and_dated_hazard_equal_the_two_pass_reference(model, sample):
    assert_matches_two_pass_reference(model, sample, AS_OF)
