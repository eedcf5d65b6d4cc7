"""Tests for training.baseline.gamma_gamma.GammaGammaModel: CDNOW parity, simulation, validation."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from sklearn.exceptions import NotFittedError

from fidelite.training.baseline.gamma_gamma import GammaGammaModel, _neg_mean_ll_and_grad

DATA = Path(__file__).parent / "data" / "cdnow_sample_summary.csv"
TRUE_PARAMS = {"p": 4.0, "q": 5.0, "v": 60.0}  # v in currency units


def load_cdnow() -> pd.DataFrame:
    return pd.read_csv(DATA, comment="#")


def simulate_gamma_gamma(n: int, params: dict[str, float], seed: int) -> pd.DataFrame:
    """Repeat customers with 1-20 transactions; the mean of x Gamma(p, nu) draws is
    Gamma(p x, nu x), so no per-transaction loop is needed. ``true_mean`` = p / nu."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(params["q"], 1.0 / params["v"], n)
    x = rng.integers(1, 21, n).astype(float)
    monetary = rng.gamma(params["p"] * x, 1.0 / (nu * x))
    return pd.DataFrame({"frequency": x, "monetary_value": monetary, "true_mean": params["p"] / nu})


@pytest.fixture(scope="module")
def cdnow_model() -> GammaGammaModel:
    d = load_cdnow()
    return GammaGammaModel().fit(d["frequency"], d["monetary_value"])


def test_cdnow_parity_with_published_estimates(cdnow_model: GammaGammaModel) -> None:
    # Fader & Hardie (2013): p=6.25, q=3.74, v=15.44 on the 946 repeat customers.
    assert cdnow_model.params_["p"] == pytest.approx(6.25, rel=0.01)
    assert cdnow_model.params_["q"] == pytest.approx(3.74, rel=0.01)
    assert cdnow_model.params_["v"] == pytest.approx(15.44, rel=0.01)
    assert cdnow_model.n_customers_ == 946
    assert cdnow_model.n_dropped_ == 2357 - 946


def test_cdnow_expected_spend_matches_note(cdnow_model: GammaGammaModel) -> None:
    # Population mean p v / (q - 1) at the fitted parameters (lifetimes: 35.17).
    assert cdnow_model.population_mean_spend() == pytest.approx(35.17, rel=1e-3)
    d = load_cdnow()
    repeat = d[d["frequency"] > 0]
    expected = cdnow_model.expected_spend(repeat["frequency"], repeat["monetary_value"])
    # Credibility weighting: every estimate lies between the population mean and m_x.
    lower = np.minimum(repeat["monetary_value"], cdnow_model.population_mean_spend())
    upper = np.maximum(repeat["monetary_value"], cdnow_model.population_mean_spend())
    assert np.all((expected >= lower - 1e-9) & (expected <= upper + 1e-9))


def test_frequency_zero_gets_population_mean(cdnow_model: GammaGammaModel) -> None:
    spend = cdnow_model.expected_spend([0, 0], [0.0, 123.0])
    np.testing.assert_allclose(spend, cdnow_model.population_mean_spend())


def test_more_transactions_means_more_weight_on_own_mean(cdnow_model: GammaGammaModel) -> None:
    spend = cdnow_model.expected_spend([1, 5, 50], [200.0, 200.0, 200.0])
    assert np.all(np.diff(spend) > 0) and spend[-1] < 200


def test_drop_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fidelite.training.baseline.gamma_gamma"):
        GammaGammaModel().fit([0, 1, 2, 3, 1], [0.0, 10.0, 12.0, 0.0, 8.0])
    assert "ignoring 2 of 5 customers" in caplog.text


def test_fit_recovers_simulation_parameters() -> None:
    sim = simulate_gamma_gamma(20_000, TRUE_PARAMS, seed=3)
    model = GammaGammaModel().fit(sim["frequency"], sim["monetary_value"])
    for name, value in TRUE_PARAMS.items():
        assert model.params_[name] == pytest.approx(value, rel=0.08), name
    expected = model.expected_spend(sim["frequency"], sim["monetary_value"])
    assert expected.mean() == pytest.approx(sim["true_mean"].mean(), rel=0.02)
    # The shrunk estimate is closer to the truth than the raw mean for sparse customers.
    sparse = sim["frequency"] <= 2
    shrunk_error = np.abs(expected[sparse] - sim["true_mean"][sparse]).mean()
    raw_error = np.abs(sim["monetary_value"][sparse] - sim["true_mean"][sparse]).mean()
    assert shrunk_error < raw_error


def test_analytic_gradient_matches_finite_differences() -> None:
    repeat = load_cdnow().query("frequency > 0")
    args = (
        repeat["frequency"].to_numpy(float),
        repeat["monetary_value"].to_numpy() / 20,
        np.ones(len(repeat)),
        0.02,
    )
    error = check_grad(
        lambda p: _neg_mean_ll_and_grad(p, *args)[0],
        lambda p: _neg_mean_ll_and_grad(p, *args)[1],
        np.log([3.0, 2.0, 0.8]),
    )
    assert error < 1e-5


def test_log_likelihood_sums_to_total(cdnow_model: GammaGammaModel) -> None:
    d = load_cdnow()
    per_customer = cdnow_model.log_likelihood(d["frequency"], d["monetary_value"])
    assert np.isnan(per_customer[d["frequency"].to_numpy() == 0]).all()
    assert np.nansum(per_customer) == pytest.approx(cdnow_model.log_likelihood_)


def test_currency_unit_only_scales_v() -> None:
    d = load_cdnow()
    cents = GammaGammaModel().fit(d["frequency"], d["monetary_value"] * 100)
    assert cents.params_["v"] == pytest.approx(15.44 * 100, rel=0.01)
    assert cents.params_["q"] == pytest.approx(3.74, rel=0.01)


@pytest.mark.parametrize(
    ("frequency", "monetary", "match"),
    [
        ([1, -2], [5.0, 5.0], "frequency"),
        ([1, 2], [5.0, np.nan], "monetary_value"),
        ([1, 2], [5.0, -1.0], "monetary_value"),
        ([1, 2, 3], [5.0, 5.0], "length mismatch"),
        ([0, 0], [0.0, 0.0], "none among 2"),
    ],
)
def test_invalid_inputs_name_the_argument(frequency, monetary, match) -> None:
    with pytest.raises(ValueError, match=match):
        GammaGammaModel().fit(frequency, monetary)


def test_methods_require_fit() -> None:
    with pytest.raises(NotFittedError):
        GammaGammaModel().expected_spend([1], [10.0])


def test_demo_fit_converges_cleanly_and_matches_nelder_mead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # This cutoff of the 2,000-customer demo made L-BFGS-B stop with "ABNORMAL" while
    # on the optimum (gradient below the objective's rounding noise).
    from scipy.optimize import minimize

    from fidelite.features import build_features
    from fidelite.features.demo import generate_demo_data

    demo = generate_demo_data(2000, seed=0)
    features = build_features(demo.inputs("2024-06-01"))
    repeat = features[(features["frequency"] > 0) & (features["monetary_value"] > 0)]
    with caplog.at_level(logging.WARNING, logger="fidelite.training.baseline.gamma_gamma"):
        model = GammaGammaModel().fit(repeat["frequency"], repeat["monetary_value"])
    assert "converge" not in caplog.text
    assert model.converged_ and model.summary()["gradient_norm"] < 1e-5

    x = repeat["frequency"].to_numpy(float)
    m = repeat["monetary_value"].to_numpy(float)
    reference = minimize(
        lambda z: _neg_mean_ll_and_grad(z, x, m, np.ones_like(x), 0.0)[0],
        np.log([1.0, 2.0, float(np.median(m))]),
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 20_000},
    )
    np.testing.assert_allclose(
        np.log([model.params_[k] for k in ("p", "q", "v")]), reference.x, atol=1e-4
    )


def test_large_remaining_gradient_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace

    stalled = SimpleNamespace(
        success=False, message="ABNORMAL", nit=3, x=np.zeros(3), jac=np.array([0.0, 0.5, 0.0])
    )
    with caplog.at_level(logging.WARNING, logger="fidelite.training.baseline.gamma_gamma"):
        assert GammaGammaModel._check_convergence(stalled) is False
    assert "did not converge" in caplog.text and "5.0e-01" in caplog.text
