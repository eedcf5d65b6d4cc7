"""``FideliteModel.predict_arrays`` (no DataFrames) answers exactly what ``predict`` does."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest

from fidelite.errors import DataContractError
from fidelite.features.contract import score_column_names
from tests.training.columns import (
    assert_matches_two_pass_reference,
    serving_columns,
    typed_columns,
)

pytestmark = pytest.mark.slow

AS_OF = "2025-06-30"


def assert_same_scores(frame: pd.DataFrame, arrays: dict[str, np.ndarray]) -> None:
    assert list(arrays) == list(frame.columns) == list(score_column_names())
    for name in frame.columns:
        expected, got = frame[name].to_numpy(), np.asarray(arrays[name])
        assert len(got) == len(expected), name
        if expected.dtype.kind == "M":
            assert got.dtype.kind == "M", name
            np.testing.assert_array_equal(expected, got, err_msg=name)
        elif expected.dtype.kind == "f":
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=name)
        else:
            left = pd.Series(expected, dtype=object)
            right = pd.Series(got, dtype=object)
            assert left.where(left.notna(), None).tolist() == (
                right.where(right.notna(), None).tolist()
            ), name


@pytest.fixture(scope="module")
def sample(trained) -> pd.DataFrame:
    features = trained.features
    buyers = features.loc[features["orders_total"] > 0].head(150)
    prospects = features.loc[features["orders_total"] == 0].head(30)
    assert len(prospects) > 0
    return pd.concat([buyers, prospects]).sample(frac=1.0, random_state=0)


@pytest.mark.parametrize("reasons", [True, False])
@pytest.mark.parametrize("as_columns", [serving_columns, typed_columns])
def test_arrays_equal_frames(trained, sample, reasons, as_columns):
    model = trained.result.model
    params = {"as_of": AS_OF, "reasons": reasons}
    for part in (sample, sample.head(1), sample.tail(1), sample.iloc[[2, -3]]):
        expected = model.predict(None, part, params=params)
        got = model.predict_arrays(as_columns(part), as_of=AS_OF, reasons=reasons)
        assert_same_scores(expected, got)


def test_arrays_equal_frames_with_missing_optional_columns(trained, sample):
    model = trained.result.model
    part = sample.drop(columns=["best_channel", "spend_90d", "lifecycle_stage", "email_opt_in"])
    expected = model.predict(None, part, params={"as_of": AS_OF})
    assert_same_scores(expected, model.predict_arrays(serving_columns(part), as_of=AS_OF))


def test_arrays_equal_frames_for_a_baseline_only_model(trained, sample):
    model = copy.copy(trained.result.model)
    model.purchasers = model.prospects = None
    model.__dict__.pop("_attributions", None)
    expected = model.predict(None, sample, params={"as_of": AS_OF})
    assert_same_scores(expected, model.predict_arrays(serving_columns(sample), as_of=AS_OF))


def test_default_day_and_text_reasons_flag(trained, sample):
    model = trained.result.model
    part = sample.head(5)
    expected = model.predict(None, part, params={"reasons": "false"})
    assert_same_scores(expected, model.predict_arrays(serving_columns(part), reasons="false"))


def test_bad_input_is_named(trained, sample):
    model = trained.result.model
    columns = serving_columns(sample.head(2))
    with pytest.raises(DataContractError, match="recency"):
        model.predict_arrays({k: v for k, v in columns.items() if k != "recency"})
    text = dict(columns, T=np.array(["12", "soon"], dtype=object))
    with pytest.raises(DataContractError, match="'T' is not numeric"):
        model.predict_arrays(text)
    # numeric text is parsed, as by predict
    parsed = dict(columns, T=np.array([str(v) for v in columns["T"]], dtype=object))
    assert_same_scores(
        model.predict(None, sample.head(2), params={"as_of": AS_OF}),
        model.predict_arrays(parsed, as_of=AS_OF),
    )


def test_compiled_hazard_gives_the_whole_boosters_cdf(trained):
    """Large batches walk each hazard tree once per customer (training.forest): the same
    sums, in the same order, as the booster over the customer-bin rows."""
    model = trained.result.model
    timing = model.purchasers.timing
    frame = trained.features.loc[trained.features["orders_total"] > 0].head(400)
    X = model.purchasers.encoder.transform_array(model._augment(frame))
    n_bins = len(timing.edges_) - 1
    matrix = np.column_stack([np.repeat(X, n_bins, axis=0), np.tile(np.arange(n_bins), len(X))])
    raw = timing.estimator_.booster_.predict(
        matrix, raw_score=True, num_iteration=timing.best_iteration_
    )
    hazard = (1.0 / (1.0 + np.exp(-(raw + timing.start_)))).reshape(len(X), n_bins)
    expected = 1.0 - np.cumprod(1.0 - hazard, axis=1)
    np.testing.assert_array_equal(timing.purchase_cdf(X), expected)
    for n in (1, 2, 3, 63):  # few customers: the compiled trees too, the booster's bits
        np.testing.assert_array_equal(timing.purchase_cdf(X[:n]), expected[:n])
        assert timing.purchase_cdf(X[:n]).tobytes() == timing._cdf(X[:n]).tobytes()
    assert "_forest" in timing.__dict__
    # the compiled trees are rebuilt after unpickling, never stored
    assert "_forest" not in pickle.loads(pickle.dumps(timing)).__dict__


def test_compiled_trees_score_large_batches_as_lightgbm(trained):
    """Churn score, contributions and spend of a large batch: LightGBM's bits."""
    model = trained.result.model
    frame = trained.features.loc[trained.features["orders_total"] > 0].head(300)
    X = model.purchasers.encoder.transform_array(model._augment(frame))
    X[::7, 3] = np.nan
    attribution = model.attribution("purchasers")
    leaves = attribution.leaves(X[:1].repeat(2, axis=0))  # LightGBM's leaves, 2 rows
    assert leaves.shape[1] == len(attribution.leaf_offsets_)
    raw, contributions = attribution.score_and_contributions(X)
    booster = attribution.booster_
    lgb_leaves = booster.predict(X, pred_leaf=True, num_iteration=attribution._num_iteration)
    lgb_leaves = lgb_leaves + attribution.leaf_offsets_
    np.testing.assert_array_equal(attribution.leaves(X), lgb_leaves)
    np.testing.assert_array_equal(raw, attribution.raw_score(lgb_leaves))
    np.testing.assert_array_equal(contributions, attribution.contributions_of(lgb_leaves))
    spend = model.purchasers.spend
    np.testing.assert_array_equal(
        spend._raw_score(X),
        spend.estimator_.booster_.predict(X, raw_score=True, num_iteration=spend.best_iteration_),
    )


def test_one_leaf_pass_and_dated_hazard_equal_the_two_pass_reference(trained, sample):
    assert_matches_two_pass_reference(trained.result.model, sample, AS_OF)


def test_compiled_trees_change_no_score(trained, monkeypatch):
    """Purchasers and prospects of batches large enough for the compiled trees get the
    scores, reasons and next-purchase days LightGBM's own predictors give them."""
    import fidelite.training.attribution as attribution
    import fidelite.training.boosting as boosting
    import fidelite.training.timing as timing

    features = trained.features
    buyers = features.loc[features["orders_total"] > 0].head(400).copy()
    prospects = features.loc[features["orders_total"] == 0].head(100)
    assert len(prospects) >= attribution.FOREST_MIN_ROWS
    buyers.iloc[::9, buyers.columns.get_loc("days_since_last_purchase")] = np.nan
    rows = serving_columns(pd.concat([buyers, prospects]))
    model = trained.result.model
    got = model.predict_arrays(rows, as_of=AS_OF)
    assert "_forest" in model.purchasers.timing.__dict__  # the compiled path ran
    for module in (attribution, boosting):
        monkeypatch.setattr(module, "FOREST_MIN_ROWS", 10**9)
    monkeypatch.setattr(timing, "_COMPILED_HAZARD_MIN_ROWS", 10**9)
    expected = model.predict_arrays(rows, as_of=AS_OF)
    assert list(got) == list(expected)
    for name, values in expected.items():
        if values.dtype.kind in "fM":
            np.testing.assert_array_equal(got[name], values, err_msg=name)
        else:
            assert got[name].tolist() == values.tolist(), name
    days = expected["expected_next_purchase"]
    assert pd.isna(days).any() and not pd.isna(days).all()


def test_loading_the_model_builds_the_compiled_trees(trained):
    """MLflow's load hook compiles and builds the large-batch scoring up front."""
    from fidelite.training import forest

    fresh = pickle.loads(pickle.dumps(trained.result.model))
    hurdle = fresh.purchasers
    assert "_forest" not in hurdle.churn.__dict__ and "_attributions" not in fresh.__dict__
    fresh.load_context(None)
    assert forest._WARM.is_set()
    for part in (hurdle.churn, hurdle.spend, hurdle.timing, fresh.prospects.timing):
        assert "_forest" in part.__dict__
    assert "_forest_cache" in fresh.attribution("purchasers").__dict__


def test_score_columns_beside_the_reasons_give_the_same_bytes(trained, sample, monkeypatch):
    """From arrays.OVERLAP_MIN_ROWS rows the score columns are computed on a helper thread
    while the reasons are phrased: the same columns, bit for bit, as one after the other."""
    import fidelite.training.arrays as arrays_module

    model = trained.result.model
    columns = serving_columns(sample)
    monkeypatch.setattr(arrays_module, "OVERLAP_MIN_ROWS", 10**9)
    serial = model.predict_arrays(columns, as_of=AS_OF)
    monkeypatch.setattr(arrays_module, "OVERLAP_MIN_ROWS", 1)
    seen, values_of = [], model._purchaser_values

    def spy(*args):
        seen.append(np.geterr()["over"])
        return values_of(*args)

    monkeypatch.setattr(model, "_purchaser_values", spy)
    with np.errstate(over="raise"):  # the caller's error state goes along to the helper
        beside = model.predict_arrays(columns, as_of=AS_OF)
    assert seen == ["raise"]
    assert list(beside) == list(serial)
    for name in serial:
        left, right = pd.Series(serial[name]), pd.Series(beside[name])
        assert left.to_numpy().tobytes() == right.to_numpy().tobytes() or left.equals(right), name


def _same_bytes(left: dict, right: dict) -> None:
    assert list(left) == list(right)
    for name in left:
        a, b = pd.Series(left[name]), pd.Series(right[name])
        assert a.to_numpy().tobytes() == b.to_numpy().tobytes() or a.equals(b), name


def test_few_rows_score_as_the_booster_hazard_did(trained, sample, monkeypatch):
    """1, 2 and 63 rows (prospects among them, NaN and None in optional columns, optional
    columns missing): the compiled hazard trees give the bytes the booster's customer-bin
    rows gave, in every score column."""
    import fidelite.training.timing as timing_module

    model = trained.result.model
    blanked = sample.copy()
    blanked.iloc[::3, blanked.columns.get_loc("spend_90d")] = np.nan
    blanked.iloc[::4, blanked.columns.get_loc("best_channel")] = None
    parts = [sample.head(1), sample.tail(1), sample.head(2), sample.head(63), blanked.head(63)]
    parts.append(sample.head(5).drop(columns=["best_channel", "lifecycle_stage", "spend_90d"]))
    parts.append(sample.loc[sample["orders_total"] == 0].head(3))  # prospects only
    dated = 0
    for part in parts:
        columns = serving_columns(part)
        monkeypatch.setattr(timing_module, "_COMPILED_HAZARD_MIN_ROWS", 10**9)
        booster = model.predict_arrays(columns, as_of=AS_OF)
        monkeypatch.setattr(timing_module, "_COMPILED_HAZARD_MIN_ROWS", 1)
        _same_bytes(booster, model.predict_arrays(columns, as_of=AS_OF))
        dated += int(pd.notna(booster["expected_next_purchase"]).sum())
    assert dated > 0  # some rows did get a next-purchase day from the hazard
