"""Meta-learners recover the sign of a simulated heterogeneous effect."""

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.base import clone

from fidelite.training import booster_outputs
from fidelite.training.uplift.learners import LEARNERS


def _campaign(n=6000, seed=0):
    """x0 > 0: persuadables (+0.3); x0 < -0.5: sleeping dogs (-0.2); else nothing."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    treated = rng.random(n) < 0.8
    base = 0.2 + 0.1 * (X[:, 1] > 0)
    tau = np.where(X[:, 0] > 0, 0.3, np.where(X[:, 0] < -0.5, -0.2, 0.0))
    p = np.clip(base + treated * tau, 0, 1)
    y = (rng.random(n) < p).astype(float)
    return X, treated, y, np.full(n, 0.8), tau


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_sign_of_the_effect_is_recovered(name):
    X, treated, y, e, _ = _campaign()
    learner = LEARNERS[name](n_estimators=80, min_child_samples=50).fit(X, treated, y, e)
    X_new, *_, tau = _campaign(2000, seed=1)
    estimate = learner.predict(X_new)
    assert estimate[tau > 0].mean() > 0.15
    assert estimate[tau < 0].mean() < -0.05
    assert np.corrcoef(estimate, tau)[0, 1] > 0.6


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_estimators_clone_with_their_parameters(name):
    learner = LEARNERS[name](n_estimators=7, channel_column=2, categorical=(2,))
    copy = clone(learner)
    assert copy.get_params() == learner.get_params()
    assert not hasattr(copy, "mu0_") and not hasattr(copy, "tau_") and not hasattr(copy, "members_")


def test_control_model_ignores_the_channel_column():
    X, treated, y, e, _ = _campaign(3000)
    X[:, 3] = np.where(treated, 0.0, 1.0)  # a "channel" that differs by group only
    learner = LEARNERS["t_learner"](n_estimators=40, channel_column=3).fit(X, treated, y, e)
    assert learner.mu0_.booster_.feature_importance()[3] == 0


def test_control_model_ignores_every_input_of_the_contact_channel():
    X, treated, y, e, _ = _campaign(3000)
    X[:, 3] = np.where(treated, 0.0, 1.0)
    X = np.column_stack([X, y + X[:, 3]])  # derived from the channel, and predictive
    learner = LEARNERS["t_learner"](n_estimators=40, channel_column=(3, 4)).fit(X, treated, y, e)
    importance = learner.mu0_.booster_.feature_importance()
    assert importance[3] == 0 and importance[4] == 0
    assert learner.mu1_.booster_.feature_importance()[4] > 0


def test_one_group_only_is_refused():
    X, treated, y, e, _ = _campaign(500)
    with pytest.raises(ValueError, match="both treated and control"):
        LEARNERS["x_learner"]().fit(X, np.ones(len(y), bool), y, e)


def _through_the_wrapper(learner, X):
    """Each learner's estimate computed by the scikit-learn wrappers' predict methods."""
    if hasattr(learner, "members_"):
        return np.mean([_through_the_wrapper(m, X) for m in learner.members_], axis=0)
    if hasattr(learner, "tau_"):
        return learner.tau_.predict(X)
    if hasattr(learner, "tau0_"):
        g = learner.propensity_
        return g * learner.tau0_.predict(X) + (1 - g) * learner.tau1_.predict(X)
    hidden = learner._without_channel(X)
    return learner.mu1_.predict_proba(X)[:, 1] - learner.mu0_.predict_proba(hidden)[:, 1]


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_predict_goes_to_the_boosters_with_the_wrappers_answers(name):
    X, treated, y, e, _ = _campaign(2000)
    learner = LEARNERS[name](n_estimators=20, channel_column=3).fit(X, treated, y, e)
    X_new = _campaign(300, seed=2)[0]
    X_new[::7, 1] = np.nan
    np.testing.assert_allclose(
        learner.predict(X_new), _through_the_wrapper(learner, X_new), rtol=1e-12, atol=1e-15
    )
    # one row at a time, as the service scores
    np.testing.assert_allclose(learner.predict(X_new[:1]), learner.predict(X_new)[:1], rtol=1e-12)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_predict_by_channel_equals_predict_of_each_channel(name):
    X, treated, y, e, _ = _campaign(2000)
    X[:, 3] = np.where(treated, np.arange(len(X)) % 3, np.nan)  # the contact channel code
    learner = LEARNERS[name](n_estimators=20, channel_column=3).fit(X, treated, y, e)
    rows = _campaign(50, seed=3)[0]
    at = [rows.copy() for _ in range(3)]
    for code, matrix in enumerate(at):
        matrix[:, 3] = code
    expected = np.column_stack([learner.predict(matrix) for matrix in at])
    np.testing.assert_allclose(learner.predict_by_channel(at), expected, rtol=1e-12, atol=1e-15)
    # matrices that differ beyond the channel columns: still each one's own estimate
    at[1][:, 0] += 1.0
    expected = np.column_stack([learner.predict(matrix) for matrix in at])
    np.testing.assert_allclose(learner.predict_by_channel(at), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_lightgbm_models_cover_every_booster_a_large_batch_uses(name):
    """``training.arrays.warm_up`` builds the compiled trees of ``lightgbm_models()`` at
    load: they must be every booster scoring a large batch needs."""
    X, treated, y, e, _ = _campaign(2000)
    learner = LEARNERS[name](n_estimators=10, channel_column=3).fit(X, treated, y, e)
    models = learner.lightgbm_models()
    assert models and all(isinstance(model, lgb.LGBMModel) for model in models)
    booster_outputs._BUILT.clear()
    X_new = _campaign(500, seed=3)[0]
    learner.predict_by_channel([X_new, X_new[::-1].copy()])
    used = {id(booster) for booster in booster_outputs._BUILT}
    assert used and used <= {id(model.booster_) for model in models}
