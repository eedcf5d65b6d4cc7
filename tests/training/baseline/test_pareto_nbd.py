"""Pareto/NBD: CDNOW parity with the published estimates, predictions, simulation recovery."""

import numpy as np
import pytest

from fidelite.training.baseline import ParetoNBDModel
from fidelite.training.baseline.simulate import simulate_pareto_nbd
from tests.training.baseline.conftest import rfm

TRUE_PARAMS = {"r": 0.6, "alpha": 25.0, "s": 0.8, "beta": 150.0}  # alpha, beta in days


@pytest.fixture(scope="module")
def cdnow_model(cdnow) -> ParetoNBDModel:
    return ParetoNBDModel(penalizer=0).fit(*rfm(cdnow))


def test_cdnow_parity_with_published_estimates(cdnow_model: ParetoNBDModel) -> None:
    # Fader, Hardie & Lee (2005), "A note on implementing the Pareto/NBD model in
    # MATLAB": r=0.553, alpha=10.578, s=0.606, beta=11.669, LL=-9594.98 (weeks).
    published = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    for name, value in published.items():
        assert cdnow_model.params_[name] == pytest.approx(value, rel=2e-3), name
    assert cdnow_model.log_likelihood_ == pytest.approx(-9594.98, abs=0.02)
    # beta is weakly identified on CDNOW (its 95% interval crosses 0), the rates are not.
    assert cdnow_model.standard_errors_["beta"] > 0.4 * cdnow_model.params_["beta"]
    assert cdnow_model.standard_errors_["r"] < 0.1 * cdnow_model.params_["r"]


def test_cdnow_predictions_match_lifetimes(cdnow, cdnow_model: ParetoNBDModel) -> None:
    # lifetimes 0.11.3 ParetoNBDFitter: conditional expected purchases (39 weeks)
    # summed over customers, P(alive) and P(0 purchases in 39 weeks) of the first 3.
    x, t_x, big_t = rfm(cdnow)
    assert cdnow_model.expected_purchases(39, x, t_x, big_t).sum() == pytest.approx(
        1665.45, rel=2e-4
    )
    np.testing.assert_allclose(
        cdnow_model.p_alive(x[:3], t_x[:3], big_t[:3]), [0.869102, 0.167867, 0.295091], rtol=1e-4
    )
    np.testing.assert_allclose(
        cdnow_model.prob_no_purchase(39, x[:3], t_x[:3], big_t[:3]),
        [0.408115, 0.913425, 0.930737],
        rtol=1e-4,
    )
    assert cdnow_model.expected_purchases_new_customer(39)[0] == pytest.approx(1.2134, rel=1e-3)


def test_predictions_are_coherent(cdnow, cdnow_model: ParetoNBDModel) -> None:
    x, t_x, big_t = rfm(cdnow)
    alive = cdnow_model.p_alive(x, t_x, big_t)
    assert np.all((alive > 0) & (alive <= 1))
    horizons = np.array([0.0, 5, 39, 400])
    for i in (0, 1, 500):
        churn = cdnow_model.prob_no_purchase(horizons, x[i], t_x[i], big_t[i])
        assert churn[0] == pytest.approx(1.0) and np.all(np.diff(churn) < 0)
        assert churn[-1] >= 1 - alive[i] - 1e-9
        purchases = cdnow_model.expected_purchases(horizons, x[i], t_x[i], big_t[i])
        assert purchases[0] == 0 and np.all(np.diff(purchases) > 0)
    # One-time buyers fade with silence.
    fading = cdnow_model.p_alive(np.zeros(4), np.zeros(4), [1.0, 10, 39, 100])
    assert np.all(np.diff(fading) < 0)


def test_fit_recovers_simulation_parameters(cdnow) -> None:
    sim = simulate_pareto_nbd(4_000, TRUE_PARAMS, age_range=(90, 540), horizon=180, seed=5)
    data = rfm(sim)
    model = ParetoNBDModel().fit(*data)
    for name, value in TRUE_PARAMS.items():
        assert abs(model.params_[name] - value) < 3 * model.standard_errors_[name], name
    assert model.expected_purchases(180, *data).mean() == pytest.approx(
        sim["holdout"].mean(), rel=0.06
    )
    assert model.p_alive(*data).mean() == pytest.approx(sim["alive"].mean(), abs=0.02)
    assert model.prob_no_purchase(180, *data).mean() == pytest.approx(
        (sim["holdout"] == 0).mean(), abs=0.015
    )
