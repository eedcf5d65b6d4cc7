"""BaselineModel on feature frames: small files, one-time buyers, the churn/P(alive) link."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from fidelite.errors import DataContractError, InsufficientHistoryError
from fidelite.features import build_features
from fidelite.features.demo import generate_demo_data
from fidelite.training.baseline import (
    BASELINE_COLUMNS,
    RFM_COLUMNS,
    BaselineModel,
    ModifiedBetaGeoModel,
)
from fidelite.training.labels import make_labels
from tests.training.baseline.test_mle import regular_buyers

AS_OFS = ("2024-12-31", "2025-06-30", "2025-09-30")


@pytest.fixture(scope="module")
def small_demo_features() -> dict[tuple[int, str], pd.DataFrame]:
    """Feature frames of 300-customer demo files (two years) at three as-of dates."""
    frames = {}
    for seed in (5, 11):
        demo = generate_demo_data(300, seed=seed)
        for as_of in AS_OFS:
            frames[seed, as_of] = build_features(demo.inputs(as_of))
    return frames


@pytest.fixture(scope="module")
def labelled_demo() -> pd.DataFrame:
    """2,000 demo customers at 2025-06-30 with their purchases in the next 90 days."""
    demo = generate_demo_data(2000, seed=3)
    features = build_features(demo.inputs("2025-06-30"))
    labels = make_labels(
        demo.transactions, as_of="2025-06-30", horizon_days=90, customers_index=features.index
    )
    return features.join(labels)


def test_small_files_fit_and_predict_finite_values(small_demo_features) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for features in small_demo_features.values():
            model = BaselineModel(horizon_days=90).fit(features)
            assert model.purchase_model_.converged_ and model.spend_model_.converged_
            scores = model.predict(features)
            buyers = features["T"].notna()
            assert np.isfinite(scores[buyers].to_numpy()).all()
            assert scores[~buyers].isna().all().all()


def test_regular_buyers_file_no_longer_diverges() -> None:
    # Issue 10: a 300-customer, two-year file of regular buyers made BG/NBD run off to
    # r ~ 1e8 and expected_purchases raise FloatingPointError.
    sim = regular_buyers(seed=4)
    features = sim[["frequency", "recency", "T"]].assign(monetary_value=40.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for purchase_model in ("bgnbd", "mbgnbd", "pareto_nbd"):
            model = BaselineModel(purchase_model=purchase_model).fit(features)
            assert model.purchase_model_.params_["r"] < 100, purchase_model
            assert np.isfinite(model.predict(features).to_numpy()).all(), purchase_model


def test_four_columns_are_enough(small_demo_features) -> None:
    features = small_demo_features[5, "2025-06-30"]
    full = BaselineModel().fit(features)
    narrow = BaselineModel().fit(features[list(RFM_COLUMNS)])
    assert narrow.purchase_model_.params_ == full.purchase_model_.params_
    pd.testing.assert_frame_equal(
        narrow.predict(features[list(RFM_COLUMNS)]), full.predict(features)
    )


def test_customers_without_a_purchase_day_get_nan() -> None:
    # A same-day full refund leaves orders but no purchase day: T is NaN.
    sim = regular_buyers(seed=1).assign(monetary_value=30.0)
    extra = pd.DataFrame(
        {"frequency": [0.0], "recency": [np.nan], "T": [np.nan], "monetary_value": [0.0]},
        index=["refunded"],
    )
    features = pd.concat([sim[list(RFM_COLUMNS)], extra])
    scores = BaselineModel().fit(features).predict(features)
    assert list(scores.columns) == list(BASELINE_COLUMNS)
    assert scores.loc["refunded"].isna().all()
    assert np.isfinite(scores.drop(index="refunded").to_numpy()).all()


def test_one_time_buyers_are_not_surely_alive(labelled_demo) -> None:
    scores = BaselineModel(horizon_days=90).fit(labelled_demo).predict(labelled_demo)
    buyers = labelled_demo["T"].notna()
    alive, churn = scores["baseline_p_alive"][buyers], scores["baseline_churn_probability"][buyers]
    one_time = labelled_demo.loc[buyers, "frequency"] == 0
    silent_year = one_time & (labelled_demo.loc[buyers, "T"] > 365)
    assert alive[one_time].max() < 0.9
    assert alive[silent_year].max() < 0.5
    # Of the one-time buyers silent for over a year only a few percent buy again; the
    # model's P(purchase in 90 days) for them is within 3 points of what happened.
    observed = 1 - labelled_demo.loc[buyers, "churned"][silent_year].mean()
    assert observed < 0.1
    assert (1 - churn[silent_year]).mean() == pytest.approx(observed, abs=0.03)
    # Churn counts the chance of having left plus staying quiet while alive.
    assert np.all(churn >= 1 - alive - 1e-12)
    assert not np.any((alive >= 0.99) & (churn >= 0.99))


def test_bgnbd_can_still_be_chosen(labelled_demo) -> None:
    model = BaselineModel(purchase_model="bgnbd").fit(labelled_demo)
    scores = model.predict(labelled_demo)
    one_time = labelled_demo["frequency"] == 0
    assert (scores.loc[one_time & labelled_demo["T"].notna(), "baseline_p_alive"] == 1).all()
    assert isinstance(BaselineModel().fit(labelled_demo).purchase_model_, ModifiedBetaGeoModel)
    with pytest.raises(ValueError, match="purchase_model must be one of"):
        BaselineModel(purchase_model="bg").fit(labelled_demo)


def test_report_holds_both_fits(small_demo_features) -> None:
    report = BaselineModel().fit(small_demo_features[11, "2024-12-31"]).report()
    assert json.loads(json.dumps(report)) == report
    assert report["purchase"]["model"] == "MBG/NBD" and report["spend"]["model"] == "Gamma-Gamma"
    assert report["purchase"]["params"]["r"]["se(coef)"] > 0


def test_missing_column_and_thin_history_are_named() -> None:
    with pytest.raises(DataContractError, match=r"lacks column\(s\) \['monetary_value'\]"):
        BaselineModel().fit(pd.DataFrame({"frequency": [1.0], "recency": [2.0], "T": [3.0]}))
    only_once = pd.DataFrame(
        {"frequency": 0.0, "recency": 0.0, "T": [10.0, 40.0, 90.0], "monetary_value": 0.0}
    )
    with pytest.raises(InsufficientHistoryError, match="none of the 3 customers has a repeat"):
        BaselineModel().fit(only_once)


def test_refund_heavy_and_heavy_tailed_spend_stay_finite(small_demo_features) -> None:
    features = small_demo_features[5, "2025-09-30"].copy()
    model = BaselineModel().fit(features)
    features.loc[features.index[:3], "monetary_value"] = [-20.0, 0.0, 1e6]
    spend = model.predict(features)["baseline_expected_spend"]
    assert np.isfinite(spend[features["T"].notna()]).all()
    # A Gamma-Gamma fit with q <= 1 has no finite population mean: the fallback is used.
    model.spend_model_.params_ = {**model.spend_model_.params_, "q": 0.8}
    spend = model.predict(features)["baseline_expected_spend"]
    buyers = features["T"].notna()
    assert np.isfinite(spend[buyers]).all() and (spend[buyers] > 0).all()
