"""Meta-learners recover the sign of a simulated heterogeneous effect."""

import numpy as np
import pytest
from sklearn.base import clone

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
