"""Gamma-Gamma: CDNOW parity with the published estimates, simulation, validation."""

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from fidelite.errors import InsufficientHistoryError
from fidelite.training.baseline.gamma_gamma import GammaGammaModel, log_likelihood_rows
from tests.training.baseline.conftest import load_cdnow

TRUE_PARAMS = {"p": 4.0, "q": 5.0, "v": 60.0}  # v in currency units


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
    return GammaGammaModel(penalizer=0).fit(d["frequency"], d["monetary_value"])


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
        GammaGammaModel().fit([0, 1, 2, 3, 1, 4], [0.0, 10.0, 12.0, 0.0, 8.0, 9.0])
    assert "ignoring 2 of 6 customers" in caplog.text


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


def test_log_likelihood_sums_to_total(cdnow_model: GammaGammaModel) -> None:
    d = load_cdnow()
    per_customer = cdnow_model.log_likelihood(d["frequency"], d["monetary_value"])
    assert np.isnan(per_customer[d["frequency"].to_numpy() == 0]).all()
    assert np.nansum(per_customer) == pytest.approx(cdnow_model.log_likelihood_)


def test_currency_unit_only_scales_v() -> None:
    d = load_cdnow()
    cents = GammaGammaModel(penalizer=0).fit(d["frequency"], d["monetary_value"] * 100)
    dollars = GammaGammaModel().fit(d["frequency"], d["monetary_value"])
    auto_cents = GammaGammaModel().fit(d["frequency"], d["monetary_value"] * 100)
    # The default penalty measures v in units of the median spend: currency-free too.
    assert auto_cents.params_["v"] == pytest.approx(dollars.params_["v"] * 100, rel=1e-5)
    assert cents.params_["v"] == pytest.approx(15.44 * 100, rel=0.01)
    assert cents.params_["q"] == pytest.approx(3.74, rel=0.01)


@pytest.mark.parametrize(
    ("frequency", "monetary", "match"),
    [
        ([1, -2], [5.0, 5.0], "frequency"),
        ([1, 2], [5.0, np.nan], "monetary_value"),
        ([1, 2], [5.0, -1.0], "monetary_value"),
        ([1, 2, 3], [5.0, 5.0], "length mismatch"),
        ([0, 0], [0.0, 0.0], "found 0 among 2"),
    ],
)
def test_invalid_inputs_name_the_argument(frequency, monetary, match) -> None:
    with pytest.raises(ValueError, match=match):  # InsufficientHistoryError is a ValueError
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
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GammaGammaModel(penalizer=0).fit(repeat["frequency"], repeat["monetary_value"])
    assert model.converged_ and model.gradient_norm_ < 1e-5

    x = repeat["frequency"].to_numpy(float)
    m = repeat["monetary_value"].to_numpy(float)
    reference = minimize(
        lambda z: -log_likelihood_rows(np.exp(z), x, m).mean(),
        np.log([1.0, 2.0, float(np.median(m))]),
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 20_000},
    )
    np.testing.assert_allclose(
        np.log([model.params_[k] for k in ("p", "q", "v")]), reference.x, atol=1e-4
    )


def test_one_repeat_customer_is_too_thin() -> None:
    with pytest.raises(InsufficientHistoryError, match="at least 2 customers"):
        GammaGammaModel().fit([3, 0], [25.0, 0.0])


def test_small_data_converge_with_the_default_penalty() -> None:
    # 20 repeat customers: unpenalised fits ran off along the p/v ridge in 6 of 12
    # CDNOW subsamples of this size (BENCHMARKS.md); the default settles every one.
    repeat = load_cdnow().query("frequency > 0 and monetary_value > 0")
    for seed in range(6):
        sample = repeat.sample(20, random_state=seed)
        model = GammaGammaModel().fit(sample["frequency"], sample["monetary_value"])
        assert model.converged_ and model.params_["q"] > 1
        assert np.isfinite(model.population_mean_spend())


def test_heavy_tailed_fit_still_predicts_finite_spend(cdnow_model: GammaGammaModel) -> None:
    heavy = GammaGammaModel()
    heavy.params_ = {**cdnow_model.params_, "q": 0.8}  # infinite population mean
    heavy.observed_mean_spend_ = cdnow_model.observed_mean_spend_
    with pytest.raises(FloatingPointError, match="infinite"):
        heavy.population_mean_spend()
    spend = heavy.expected_spend([0, 1, 5], [0.0, 20.0, 30.0])
    assert np.all(np.isfinite(spend)) and spend[0] == heavy.observed_mean_spend_
    assert spend[2] == pytest.approx(6.2488 * (15.4477 + 150) / (6.2488 * 5 - 0.2), rel=1e-3)
