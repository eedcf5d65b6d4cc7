"""Every estimator follows the scikit-learn contract: parameters round-trip, clone works."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from fidelite.training.boosting import Trees
from fidelite.training.churn import ChurnModel
from fidelite.training.distributed import DaskChurnModel, DaskSpendModel, DaskTimingModel
from fidelite.training.encoding import FeatureEncoder
from fidelite.training.intervals import MixtureIntervals
from fidelite.training.spend import SpendModel
from fidelite.training.timing import TimingModel

NON_DEFAULT = {
    ChurnModel: {
        "trees": Trees(n_estimators=7, num_leaves=4),
        "n_jobs": 1,
        "random_state": 3,
        "boost_from_baseline": False,
    },
    SpendModel: {
        "trees": Trees(n_estimators=9),
        "n_jobs": 1,
        "random_state": 4,
        "start_from_baseline": False,
        "min_baseline": 2.0,
    },
    TimingModel: {
        "trees": Trees(n_estimators=5),
        "n_jobs": 1,
        "random_state": 5,
        "horizon_days": 30,
        "bin_days": 5,
        "max_rows": 1000,
    },
    MixtureIntervals: {"target": 0.9, "n_bins": 4, "seed": 2},
    FeatureEncoder: {
        "exclude": ("T",),
        "extra_inputs": ("score_x",),
        "extra_categorical": ("channel",),
        "max_unsupported_share": 0.5,
    },
}
NON_DEFAULT[DaskChurnModel] = NON_DEFAULT[ChurnModel]
NON_DEFAULT[DaskSpendModel] = NON_DEFAULT[SpendModel]
NON_DEFAULT[DaskTimingModel] = NON_DEFAULT[TimingModel]


@pytest.mark.parametrize("estimator_class", list(NON_DEFAULT), ids=lambda c: c.__name__)
def test_parameters_round_trip_and_clone(estimator_class):
    params = NON_DEFAULT[estimator_class]
    estimator = estimator_class(**params)
    assert estimator.get_params() == params  # every parameter, n_jobs included
    copy = clone(estimator)
    assert type(copy) is estimator_class and copy.get_params() == params
    reset = estimator_class().set_params(**params)
    assert reset.get_params() == params
    assert estimator_class().get_params() != params


def test_clone_of_a_fitted_model_is_unfitted_and_refits_identically():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"baseline_churn_probability": rng.uniform(0.1, 0.9, 600), "recency": rng.random(600)}
    )
    y = (rng.random(600) < X["baseline_churn_probability"]).astype(int)
    window = np.repeat(np.array(["2024-01-01", "2024-04-01"], dtype="datetime64[ns]"), 300)
    trees = Trees(n_estimators=20, early_stopping_rounds=0)
    model = ChurnModel(trees=trees, n_jobs=1).fit(X, y, window=window)
    copy = clone(model)
    assert not hasattr(copy, "estimator_")
    refit = copy.fit(X, y, window=window)
    np.testing.assert_allclose(refit.churn_probability(X), model.churn_probability(X))
