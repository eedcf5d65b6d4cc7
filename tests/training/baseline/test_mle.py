"""The shared maximum-likelihood base: scikit-learn contract, penalty, standard errors,
convergence rule and thin-data errors, for every model at once."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from fidelite.errors import InsufficientHistoryError
from fidelite.training.baseline import (
    AUTO_PENALTY,
    BaselineModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)
from fidelite.training.baseline.gamma_gamma import spend_data
from fidelite.training.baseline.inputs import compress_rfm
from fidelite.training.baseline.mle import SUMMARY_COLUMNS
from fidelite.training.baseline.simulate import simulate_beta_geometric
from tests.training.baseline.conftest import rfm

PURCHASE_MODELS = (BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel)
ESTIMATORS = (
    BetaGeoModel(penalizer=0.01, initial_params={"r": 1, "alpha": 2, "a": 1, "b": 1}),
    ModifiedBetaGeoModel(penalizer=0.0),
    ParetoNBDModel(initial_params=(1.0, 2.0, 1.0, 2.0)),
    GammaGammaModel(penalizer="auto"),
    BaselineModel(horizon_days=30, purchase_model="bgnbd", penalizer=0.001),
)

# lifetimes 0.11.3 on the same CDNOW summary (weeks): summary() of BetaGeoFitter,
# ModifiedBetaGeoFitter and GammaGammaFitter, (coef, se(coef)) per parameter.
LIFETIMES = {
    (BetaGeoModel, 0.0): {
        "r": (0.2426, 0.0126),
        "alpha": (4.4135, 0.3782),
        "a": (0.7929, 0.1857),
        "b": (2.4258, 0.7053),
    },
    (BetaGeoModel, 0.1): {
        "r": (0.23095, 0.0112),
        "alpha": (4.21929, 0.34952),
        "a": (0.12865, 0.01604),
        "b": (0.26713, 0.02813),
    },
    (ModifiedBetaGeoModel, 0.0): {
        "r": (0.5248, 0.0833),
        "alpha": (6.1830, 0.6956),
        "a": (0.8914, 0.1548),
        "b": (1.6140, 0.5375),
    },
    (ModifiedBetaGeoModel, 0.01): {
        "r": (0.61524, 0.05561),
        "alpha": (6.73847, 0.58374),
        "a": (0.49908, 0.04504),
        "b": (0.67228, 0.07075),
    },
}


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_clone_and_params_round_trip(estimator) -> None:
    params = estimator.get_params()
    copy = clone(estimator)
    assert copy is not estimator and copy.get_params() == params
    assert type(copy)(**params).get_params() == params
    copy.set_params(**params)
    assert copy.get_params() == params
    copy.set_params(penalizer=0.5)
    assert copy.penalizer == 0.5 and estimator.get_params() == params


def test_clone_of_a_fitted_model_is_unfitted(cdnow) -> None:
    fitted = BetaGeoModel().fit(*rfm(cdnow))
    copy = clone(fitted)
    assert not hasattr(copy, "params_")
    with pytest.raises(NotFittedError):
        copy.summary()


@pytest.mark.parametrize(("cls", "penalizer"), list(LIFETIMES))
def test_estimates_and_standard_errors_match_lifetimes(cdnow, cls, penalizer) -> None:
    model = cls(penalizer=penalizer).fit(*rfm(cdnow))
    table = model.summary()
    assert tuple(table.columns) == SUMMARY_COLUMNS
    assert list(table.index) == list(cls.param_names)
    for name, (coef, se) in LIFETIMES[cls, penalizer].items():
        assert table.loc[name, "coef"] == pytest.approx(coef, rel=2e-3, abs=1e-4), name
        assert table.loc[name, "se(coef)"] == pytest.approx(se, rel=5e-3, abs=1e-4), name
    np.testing.assert_allclose(
        table["lower 95% bound"], table["coef"] - 1.96 * table["se(coef)"], rtol=1e-12
    )
    np.testing.assert_allclose(
        table["upper 95% bound"], table["coef"] + 1.96 * table["se(coef)"], rtol=1e-12
    )


def test_gamma_gamma_standard_errors_match_lifetimes(cdnow) -> None:
    table = GammaGammaModel(penalizer=0).fit(cdnow["frequency"], cdnow["monetary_value"]).summary()
    for name, (coef, se) in {
        "p": (6.2488, 1.1897),
        "q": (3.7446, 0.2902),
        "v": (15.4477, 4.16),
    }.items():
        assert table.loc[name, "coef"] == pytest.approx(coef, rel=2e-3), name
        assert table.loc[name, "se(coef)"] == pytest.approx(se, rel=5e-3), name


def test_standard_errors_shrink_like_one_over_root_n(cdnow) -> None:
    doubled = ModifiedBetaGeoModel(penalizer=0).fit(*rfm(cdnow), weights=np.full(len(cdnow), 2.0))
    single = ModifiedBetaGeoModel(penalizer=0).fit(*rfm(cdnow))
    for name in single.param_names:
        ratio = single.standard_errors_[name] / doubled.standard_errors_[name]
        assert ratio == pytest.approx(np.sqrt(2), rel=1e-3), name


def test_auto_penalty_fades_with_data(cdnow) -> None:
    model = ModifiedBetaGeoModel().fit(*rfm(cdnow))
    assert model.penalizer == "auto"
    assert model.penalizer_ == pytest.approx(AUTO_PENALTY / len(cdnow))
    plain = ModifiedBetaGeoModel(penalizer=0).fit(*rfm(cdnow))
    for name in plain.param_names:  # well inside one standard error on 2,357 customers
        gap = abs(model.params_[name] - plain.params_[name])
        assert gap < 0.5 * plain.standard_errors_[name], name


@pytest.mark.parametrize("penalizer", [-1.0, np.nan, "strong"])
def test_invalid_penalizer_is_refused(cdnow, penalizer) -> None:
    with pytest.raises(ValueError, match="penalizer"):
        BetaGeoModel(penalizer=penalizer).fit(*rfm(cdnow.iloc[:50]))


def test_report_is_json_with_intervals(cdnow) -> None:
    report = ParetoNBDModel().fit(*rfm(cdnow)).report()
    assert json.loads(json.dumps(report)) == report
    assert report["model"] == "Pareto/NBD" and report["converged"] is True
    assert set(report["params"]) == {"r", "alpha", "s", "beta"}
    alpha = report["params"]["alpha"]
    assert alpha["lower 95% bound"] < alpha["coef"] < alpha["upper 95% bound"]


@pytest.mark.parametrize("cls", PURCHASE_MODELS)
def test_every_fit_meets_the_convergence_rule(cdnow, cls) -> None:
    model = cls().fit(*rfm(cdnow))
    assert model.converged_ and model.gradient_norm_ < 1e-5 and model.n_iter_ > 0
    assert np.all(np.isfinite(model.covariance_))
    assert np.all(np.linalg.eigvalsh(model.covariance_) > 0)


def regular_buyers(seed: int, n: int = 300) -> pd.DataFrame:
    """Two years of customers buying at nearly the same rate (BG/NBD with r = 100):
    the unpenalised likelihood keeps rising as r and alpha grow together."""
    params = {"r": 100.0, "alpha": 6000.0, "a": 1.0, "b": 6.0}
    return simulate_beta_geometric(n, params, age_range=(1, 730), horizon=90, seed=seed)


def test_divergent_fit_warns_and_the_default_penalty_settles_it() -> None:
    data = rfm(regular_buyers(seed=0))
    with pytest.warns(ConvergenceWarning, match="did not converge.*penalizer"):
        plain = BetaGeoModel(penalizer=0).fit(*data)
    assert plain.params_["r"] > 1e4 and not plain.converged_
    # Even the degenerate parameters give finite predictions.
    assert np.all(np.isfinite(plain.expected_purchases(90, *data)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        settled = BetaGeoModel().fit(*data)
    assert settled.converged_ and 1 < settled.params_["r"] < 100


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "match"),
    [
        ([0, 0, 0], [0, 0, 0], [5, 9, 12], "none of the 3 customers has a repeat purchase"),
        ([0, 0], [0, 0], [0, 0], r"T = 0"),
        ([], [], [], "no customer"),
    ],
)
@pytest.mark.parametrize("cls", PURCHASE_MODELS)
def test_thin_history_is_named(cls, frequency, recency, T, match) -> None:
    with pytest.raises(InsufficientHistoryError, match=match) as info:
        cls().fit(frequency, recency, T)
    assert info.value.exit_code == 3 and info.value.http_status == 422


def test_gamma_gamma_needs_two_repeat_customers() -> None:
    with pytest.raises(InsufficientHistoryError, match="found 1 among 3"):
        GammaGammaModel().fit([0, 2, 0], [0.0, 10.0, 0.0])


@pytest.mark.parametrize("cls", (BetaGeoModel, ModifiedBetaGeoModel))
def test_analytic_gradient_matches_finite_differences(cdnow, cls) -> None:
    x, t_x, big_t = rfm(cdnow)
    data = compress_rfm(x, t_x / 40, big_t / 40, np.ones(len(x)))
    model = cls(penalizer=0.05)
    objective = model._objective
    args = (data, data.weights, 0.05)
    error = check_grad(
        lambda z: objective(z, *args)[0],
        lambda z: objective(z, *args)[1],
        np.log([0.4, 0.2, 0.7, 2.0]),
    )
    assert error < 1e-6


def test_gamma_gamma_gradient_matches_finite_differences(cdnow) -> None:
    repeat = cdnow.query("frequency > 0")
    data = spend_data(repeat["frequency"].to_numpy(float), repeat["monetary_value"].to_numpy() / 20)
    objective = GammaGammaModel()._objective
    args = (data, np.ones(len(repeat)), 0.02)
    error = check_grad(
        lambda z: objective(z, *args)[0],
        lambda z: objective(z, *args)[1],
        np.log([3.0, 2.0, 0.8]),
    )
    assert error < 1e-6


@pytest.mark.parametrize("cls", PURCHASE_MODELS)
def test_weights_equal_repeated_rows(cdnow, cls) -> None:
    d = cdnow.iloc[:400]
    weights = np.where(np.arange(len(d)) % 3 == 0, 2.0, 1.0)
    repeated = d.loc[d.index.repeat(weights.astype(int))]
    weighted = cls(penalizer=0.01).fit(*rfm(d), weights=weights)
    expanded = cls(penalizer=0.01).fit(*rfm(repeated))
    for name in weighted.params_:
        assert weighted.params_[name] == pytest.approx(expanded.params_[name], rel=1e-4)
    assert weighted.n_customers_ == expanded.n_customers_ == len(repeated)
