"""Tests for training.baseline.bgnbd.BetaGeoModel: CDNOW parity, simulation recovery, invariants."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from sklearn.exceptions import NotFittedError

from fidelite.training.baseline.bgnbd import BetaGeoModel, _neg_mean_ll_and_grad, _summarise

DATA = Path(__file__).parent / "data" / "cdnow_sample_summary.csv"
TRUE_PARAMS = {"r": 0.5, "alpha": 20.0, "a": 0.8, "b": 3.0}  # alpha in days


def load_cdnow() -> pd.DataFrame:
    return pd.read_csv(DATA, comment="#")


def simulate_bgnbd(
    n: int, params: dict[str, float], T_range: tuple[float, float], horizon: float, seed: int
) -> pd.DataFrame:
    """Simulate BG/NBD calibration summaries and holdout counts, vectorised.

    Given lambda and the dropout count K ~ Geometric(p) (the customer dies right
    after their K-th repeat purchase), the n_T Poisson arrivals in (0, T] are
    uniform order statistics, so x = min(n_T, K) and t_x = T * Beta(x, n_T - x + 1).
    A customer alive at T (K > n_T) then buys min(Poisson(lambda * horizon), K - n_T)
    times in the holdout.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    dropout_after = rng.geometric(p)
    T = rng.uniform(*T_range, n).round()  # whole days, like the feature pipeline
    n_arrivals = rng.poisson(lam * T)
    x = np.minimum(n_arrivals, dropout_after)
    order_stat = rng.beta(np.maximum(x, 1), n_arrivals - x + 1)
    t_x = np.where(x > 0, T * order_stat, 0.0).round()
    alive = dropout_after > n_arrivals
    holdout = np.where(alive, np.minimum(rng.poisson(lam * horizon), dropout_after - n_arrivals), 0)
    return pd.DataFrame(
        {"frequency": x, "recency": t_x, "T": T, "holdout": holdout, "alive": alive}
    )


@pytest.fixture(scope="module")
def cdnow_model() -> BetaGeoModel:
    d = load_cdnow()
    return BetaGeoModel().fit(d["frequency"], d["recency"], d["T"])


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_bgnbd(20_000, TRUE_PARAMS, (90, 540), horizon=180, seed=7)


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
    assert cdnow_model.n_unique_ < 2357  # identical summaries were compressed


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
    days = BetaGeoModel().fit(d["frequency"], d["recency"] * 7, d["T"] * 7)
    assert days.params_["alpha"] == pytest.approx(4.414 * 7, rel=5e-3)
    assert days.params_["r"] == pytest.approx(0.243, rel=5e-3)


def test_weights_equal_repeated_rows() -> None:
    d = load_cdnow().iloc[:400]
    weights = np.where(np.arange(len(d)) % 3 == 0, 2.0, 1.0)
    repeated = d.loc[d.index.repeat(weights.astype(int))]
    weighted = BetaGeoModel().fit(d["frequency"], d["recency"], d["T"], weights=weights)
    expanded = BetaGeoModel().fit(repeated["frequency"], repeated["recency"], repeated["T"])
    for name in weighted.params_:
        assert weighted.params_[name] == pytest.approx(expanded.params_[name], rel=1e-4)


def test_analytic_gradient_matches_finite_differences() -> None:
    d = load_cdnow()
    data = _summarise(
        d["frequency"].to_numpy(float),
        d["recency"].to_numpy() / 4,
        d["T"].to_numpy() / 4,
        np.ones(len(d)),
    )
    log_params = np.log([0.4, 1.3, 0.7, 2.0])
    error = check_grad(
        lambda p: _neg_mean_ll_and_grad(p, data, 0.05)[0],
        lambda p: _neg_mean_ll_and_grad(p, data, 0.05)[1],
        log_params,
    )
    assert error < 1e-5


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
    with pytest.raises(ValueError, match="penalizer"):
        BetaGeoModel(penalizer=-1).fit([1], [1], [2])


def test_methods_require_fit() -> None:
    model = BetaGeoModel()
    with pytest.raises(NotFittedError):
        model.p_alive([1], [1], [2])
    with pytest.raises(NotFittedError):
        model.expected_purchases(10, [1], [1], [2])


def test_penalizer_shrinks_parameters() -> None:
    d = load_cdnow()
    plain = BetaGeoModel().fit(d["frequency"], d["recency"], d["T"])
    shrunk = BetaGeoModel(penalizer=0.1).fit(d["frequency"], d["recency"], d["T"])
    assert shrunk.params_["b"] < plain.params_["b"]
    assert shrunk.log_likelihood_ < plain.log_likelihood_
