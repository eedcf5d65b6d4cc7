"""Every estimator follows the scikit-learn contract: parameters round-trip, clone works."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from fidelite.training.boosting import Trees
from fidelite.training.churn import ChurnModel
from fidelite.training.clv import ClvModel
from fidelite.training.distributed import DaskChurnModel, DaskClvModel
from fidelite.training.encoding import FeatureEncoder

NON_DEFAULT = {
    ChurnModel: {
        "trees": Trees(n_estimators=7, num_leaves=4),
        "boost_from_baseline": False,
        "calibration": "none",
        "n_jobs": 1,
        "random_state": 3,
    },
    ClvModel: {
        "trees": Trees(n_estimators=9),
        "tweedie_variance_power": 1.3,
        "min_baseline": 2.0,
        "horizon_days": 30,
        "n_jobs": 1,
        "random_state": 4,
    },
    FeatureEncoder: {
        "exclude": ("T",),
        "extra_inputs": ("score_x",),
        "extra_categorical": ("channel",),
        "max_unsupported_share": 0.5,
    },
}
NON_DEFAULT[DaskChurnModel] = NON_DEFAULT[ChurnModel]
NON_DEFAULT[DaskClvModel] = NON_DEFAULT[ClvModel]


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
    model = ChurnModel(trees=Trees(n_estimators=20, early_stopping_rounds=0), n_jobs=1).fit(X, y)
    copy = clone(model)
    assert not hasattr(copy, "estimator_")
    np.testing.assert_allclose(copy.fit(X, y).churn_probability(X), model.churn_probability(X))
