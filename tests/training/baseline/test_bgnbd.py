"""BG/NBD: CDNOW parity with the published estimates, simulation recovery, invariants."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.integrate import quad
from sklearn.exceptions import NotFittedError

from fidelite.training.baseline.bgnbd import (
    BetaGeoModel,
    _integrated_expectation,
    expected_purchases_if_alive,
)
from fidelite.training.baseline.simulate import simulate_beta_geometric
from tests.training.baseline.conftest import load_cdnow

TRUE_PARAMS = {"r": 0.5, "alpha": 20.0, "a": 0.8, "b": 3.0}  # alpha in days


@pytest.fixture(scope="module")
def cdnow_model() -> BetaGeoModel:
    d = load_cdnow()
    return BetaGeoModel(penalizer=0).fit(d["frequency"], d["recency"], d["T"])


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_beta_geometric(20_000, TRUE_PARAMS, age_range=(90, 540), horizon=180, seed=7)


@pytest.fixture(scope="module")
def simulated_model(simulated: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(simulated["frequency"], simulated["recency"], simulated["T"])


def test_cdnow_parity_with_published_estimates(cdnow_model: BetaGeoModel) -> None:
    # Fader, Hardie & Lee (2005), CDNOW 1/10 sample, weeks.
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert cdnow_model.params_[name] == pytest.approx(value, rel=5e-3, abs=1e-3), name
    assert cdnow_model.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)
    assert cdnow_model.n_customers_ == 2357


def test_cdnow_unconditional_expectation_matches_paper(cdnow_model: BetaGeoModel) -> None:
    # Expected repeat purchases in the 39-week calibration period for a new customer,
    # computed from eq. 9 at the published parameters: ~1.195 (lifetimes agrees).
    assert cdnow_model.expected_purchases_new_customer(39.0)[0] == pytest.approx(1.195, abs=2e-3)


def test_cdnow_conditional_expectations_match_reference(cdnow_model: BetaGeoModel) -> None:
    # Sum over customers of eq. 10 for the 39-week holdout. Reference value from
    # lifetimes 0.11.3 (BetaGeoFitter.conditional_expected_number_of_purchases_up_to_time),
    # which agrees with this implementation to ~1e-6 per customer. The raw
    # CDNOW_sample.txt has 1882 holdout purchase days: BG/NBD underpredicts by ~12%.
    d = load_cdnow()
    predicted = cdnow_model.expected_purchases(39.0, d["frequency"], d["recency"], d["T"])
    assert predicted.sum() == pytest.approx(1653.42, abs=0.5)
    # A customer with x=2, t_x=30.43, T=38.86 (customer 1 of the sample).
    assert predicted[0] == pytest.approx(
        cdnow_model.expected_purchases(39.0, 2, 30.43, 38.86)[0], rel=1e-12
    )


def test_cdnow_parity_is_invariant_to_time_unit() -> None:
    d = load_cdnow()
    days = BetaGeoModel(penalizer=0).fit(d["frequency"], d["recency"] * 7, d["T"] * 7)
    assert days.params_["alpha"] == pytest.approx(4.414 * 7, rel=5e-3)
    assert days.params_["r"] == pytest.approx(0.243, rel=5e-3)


def test_log_likelihood_per_customer_sums_to_total(cdnow_model: BetaGeoModel) -> None:
    d = load_cdnow()
    per_customer = cdnow_model.log_likelihood(d["frequency"], d["recency"], d["T"])
    assert per_customer.shape == (len(d),)
    assert np.all(per_customer <= 0)
    assert per_customer.sum() == pytest.approx(cdnow_model.log_likelihood_)


def test_fit_recovers_simulation_parameters(simulated_model: BetaGeoModel) -> None:
    for name, value in TRUE_PARAMS.items():
        assert simulated_model.params_[name] == pytest.approx(value, rel=0.12), name


def test_expected_purchases_match_simulated_holdout(
    simulated: pd.DataFrame, simulated_model: BetaGeoModel
) -> None:
    rfm = simulated[["frequency", "recency", "T"]].to_numpy().T
    truth = BetaGeoModel()
    truth.params_ = dict(TRUE_PARAMS)  # score with the generating parameters
    for model in (truth, simulated_model):
        expected = model.expected_purchases(180, *rfm)
        assert expected.mean() == pytest.approx(simulated["holdout"].mean(), rel=0.04)
        # Calibration also holds within frequency groups, not only overall.
        grouped = (
            pd.DataFrame(
                {
                    "e": expected,
                    "h": simulated["holdout"],
                    "g": np.minimum(simulated["frequency"], 3),
                }
            )
            .groupby("g")
            .mean()
        )
        np.testing.assert_allclose(grouped["e"], grouped["h"], rtol=0.1)
        zero = model.prob_no_purchase(180, *rfm)
        assert zero.mean() == pytest.approx((simulated["holdout"] == 0).mean(), abs=0.01)
        alive = model.p_alive(*rfm)
        assert alive.mean() == pytest.approx(simulated["alive"].mean(), abs=0.015)


def test_p_alive_is_one_without_repeat_purchases(cdnow_model: BetaGeoModel) -> None:
    np.testing.assert_array_equal(cdnow_model.p_alive([0, 0, 0], [0, 0, 0], [1, 10, 39]), 1.0)


def test_p_alive_decreases_as_last_purchase_ages(cdnow_model: BetaGeoModel) -> None:
    recency = np.linspace(30, 0, 31)
    alive = cdnow_model.p_alive(np.full(31, 4), recency, np.full(31, 30.0))
    assert np.all(np.diff(alive) < 0)
    assert 0 < alive[-1] < alive[0] <= 1


def test_expected_purchases_increase_with_horizon(cdnow_model: BetaGeoModel) -> None:
    horizons = np.array([0.0, 1, 5, 10, 39, 100, 520])
    values = cdnow_model.expected_purchases(horizons, 3, 20, 35)
    assert values[0] == 0
    assert np.all(np.diff(values) > 0)
    new = cdnow_model.expected_purchases_new_customer(horizons)
    assert new[0] == 0 and np.all(np.diff(new) > 0)


def test_expected_purchases_stable_for_extreme_inputs(cdnow_model: BetaGeoModel) -> None:
    values = cdnow_model.expected_purchases(
        [1e-6, 52, 5000], [300, 0, 29], [38.9, 0, 38.4], [38.9, 38.9, 38.9]
    )
    assert np.all(np.isfinite(values)) and np.all(values >= 0)


def test_prob_no_purchase_bounded_and_decreasing(cdnow_model: BetaGeoModel) -> None:
    horizons = np.array([0.0, 1, 10, 39, 200])
    for x, t_x in [(0, 0), (2, 30), (10, 5)]:
        probs = cdnow_model.prob_no_purchase(horizons, x, t_x, 38)
        assert probs[0] == pytest.approx(1.0)
        assert np.all((probs >= 0) & (probs <= 1))
        assert np.all(np.diff(probs) < 0)
        # As t grows, the only way to see no purchase is having dropped out.
        dead = 1 - cdnow_model.p_alive(x, t_x, 38)[0]
        assert probs[-1] >= dead - 1e-12


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "match"),
    [
        ([1, -1], [1, 1], [2, 2], "frequency"),
        ([1, 1], [1, np.nan], [2, 2], "recency"),
        ([1, 1], [1, 1], [2, -2], "T"),
        ([1, 1], [1, 3], [2, 2], "recency.*greater than T"),
        ([1, 1, 1], [1, 1], [2, 2], "length mismatch"),
        ([0], [1], [2], "frequency 0 but recency"),
        (["a"], [1], [2], "frequency"),
    ],
)
def test_invalid_inputs_name_the_argument(frequency, recency, T, match) -> None:
    with pytest.raises(ValueError, match=match):
        BetaGeoModel().fit(frequency, recency, T)


def test_invalid_horizon_and_weights(cdnow_model: BetaGeoModel) -> None:
    with pytest.raises(ValueError, match="^t:"):
        cdnow_model.expected_purchases(-1, 1, 1, 2)
    with pytest.raises(ValueError, match="weights"):
        BetaGeoModel().fit([1, 2], [1, 1], [2, 2], weights=[1.0])


def test_methods_require_fit() -> None:
    model = BetaGeoModel()
    with pytest.raises(NotFittedError):
        model.p_alive([1], [1], [2])
    with pytest.raises(NotFittedError):
        model.expected_purchases(10, [1], [1], [2])


def test_penalizer_shrinks_parameters() -> None:
    d = load_cdnow()
    plain = BetaGeoModel(penalizer=0).fit(d["frequency"], d["recency"], d["T"])
    shrunk = BetaGeoModel(penalizer=0.1).fit(d["frequency"], d["recency"], d["T"])
    assert shrunk.params_["b"] < plain.params_["b"]
    assert shrunk.log_likelihood_ < plain.log_likelihood_


def test_issue_parameters_give_finite_predictions() -> None:
    # A 300-customer file once converged to these (issue 10): eq. 10's hypergeometric
    # series overflowed and expected_purchases raised FloatingPointError.
    model = BetaGeoModel()
    model.params_ = {"r": 1.9e8, "alpha": 1.7e10, "a": 0.9, "b": 6.0}
    x = np.array([0.0, 1, 5, 20])
    t_x, big_t = np.array([0.0, 100, 300, 690]), np.array([40.0, 400, 500, 700])
    expected = model.expected_purchases(90, x, t_x, big_t)
    assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    # With r this large lambda is r / alpha for everyone, and a customer alive at T
    # expects E_p[(1 - exp(-lambda p t)) / p] with p ~ Beta(a, b) (k = x = 0).
    c = 1.9e8 / 1.7e10 * 90
    reference, _ = quad(lambda p: stats.beta.pdf(p, 0.9, 6.0) * -np.expm1(-c * p) / p, 0, 1)
    assert expected[0] == pytest.approx(reference, rel=1e-4)
    assert np.all(model.prob_no_purchase(90, x, t_x, big_t) <= 1)


@pytest.mark.parametrize("offset", [0, 1])
def test_quadrature_agrees_with_the_closed_form(cdnow_model: BetaGeoModel, offset) -> None:
    d = load_cdnow()
    params = np.array(list(cdnow_model.params_.values()))
    x = d["frequency"].to_numpy(float)
    big_t, t = d["T"].to_numpy(float), np.full(len(d), 39.0)
    closed = expected_purchases_if_alive(params, x, x + offset, big_t, t)
    integrated = _integrated_expectation(params, x, x + offset, big_t, t, np.ones(len(d), bool))
    np.testing.assert_allclose(integrated, closed, rtol=1e-5)


def test_a_near_one_uses_the_integral(cdnow_model: BetaGeoModel) -> None:
    near, off = BetaGeoModel(), BetaGeoModel()
    near.params_ = {**cdnow_model.params_, "a": 1.0 + 1e-9}
    off.params_ = {**cdnow_model.params_, "a": 1.0 + 2e-3}
    args = (39.0, [0, 3, 10], [0, 20, 35], [38, 38, 38])
    np.testing.assert_allclose(
        near.expected_purchases(*args), off.expected_purchases(*args), rtol=5e-3
    )
