"""The ensemble's members are chosen on the held-out campaigns' Qini."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.training.uplift.learners import ENSEMBLE_MEMBERS, LEARNERS
from fidelite.training.uplift.members import choose_members


def _heldout(n=6000, seed=0):
    """Two campaigns; the true effect is x > 0; outcomes drawn from it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    tau = np.where(x > 0, 0.3, -0.1)
    treated = rng.random(n) < 0.8
    bought = rng.random(n) < 0.2 + treated * tau
    rows = pd.DataFrame(
        {
            "campaign_id": np.where(np.arange(n) < n // 2, "c1", "c2"),
            "treated": treated,
            "purchased": bought,
        }
    )
    return rows, tau, rng


def test_a_member_that_ranks_worse_is_left_out():
    rows, tau, rng = _heldout()
    effects = {
        "t_learner": tau + rng.normal(scale=0.05, size=len(tau)),
        "x_learner": tau + rng.normal(scale=0.05, size=len(tau)),
        "dr_learner": rng.normal(scale=0.5, size=len(tau)),  # noise only
    }
    choice = choose_members(effects, rows)
    assert choice.members == ("t_learner", "x_learner")
    assert len(choice.qini) == 4  # all three and the three pairs
    assert choice.qini[choice.members] == max(choice.qini.values())
    assert choice.qini[("t_learner", "x_learner")] > choice.qini[ENSEMBLE_MEMBERS]
    metrics = choice.metrics
    assert metrics["uplift_ensemble_uses_dr_learner"] == 0.0
    assert metrics["uplift_ensemble_uses_t_learner"] == 1.0
    assert metrics["uplift_ensemble_qini_t_x"] == choice.qini[("t_learner", "x_learner")]
    assert "t_learner, x_learner" in choice.reason


def test_equal_members_keep_the_full_ensemble():
    rows, tau, _ = _heldout(seed=1)
    choice = choose_members({m: tau.copy() for m in ENSEMBLE_MEMBERS}, rows)
    assert choice.members == ENSEMBLE_MEMBERS


def test_an_ensemble_of_some_members_averages_just_those():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4))
    treated = rng.random(2000) < 0.8
    y = (rng.random(2000) < 0.2 + 0.2 * treated * (X[:, 0] > 0)).astype(float)
    e = np.full(2000, 0.8)
    params = {"n_estimators": 15, "random_state": 3}
    pair = LEARNERS["ensemble"](members=("t_learner", "dr_learner"), **params)
    pair.fit(X, treated, y, e)
    assert [type(m).__name__ for m in pair.members_] == ["TLearner", "DRLearner"]
    t = LEARNERS["t_learner"](**params).fit(X, treated, y, e)
    dr = LEARNERS["dr_learner"](**params).fit(X, treated, y, e)
    np.testing.assert_allclose(pair.predict(X[:50]), (t.predict(X[:50]) + dr.predict(X[:50])) / 2)
    with pytest.raises(ValueError, match="members"):
        LEARNERS["ensemble"](members=("s_learner",), **params).fit(X, treated, y, e)


def test_fit_uplift_ships_the_members_it_chose(fitted):
    heldout = fitted.heldout
    uses = [m for m in ENSEMBLE_MEMBERS if fitted.metrics[f"uplift_ensemble_uses_{m}"] == 1.0]
    assert len(uses) >= 2
    # the ensemble's held-out ranking is the chosen members' mean (value and cost are
    # common to the members, so the mean of their scores)
    mean = np.mean([heldout[f"score_{m}"].to_numpy() for m in uses], axis=0)
    np.testing.assert_allclose(heldout["score_ensemble"].to_numpy(), mean, rtol=1e-9, atol=1e-9)
    if fitted.model.learner_name == "ensemble":
        assert tuple(fitted.model.learner.members) == tuple(uses)
        assert len(fitted.model.learner.members_) == len(uses)


def test_members_fixed_by_the_config_are_kept(demo_data, uplift_world):
    from fidelite.training.uplift import UpliftConfig, fit_uplift

    from .conftest import simple_scores

    with pytest.raises(ValueError, match="ensemble_members"):
        UpliftConfig(ensemble_members=("s_learner",))
    config = UpliftConfig(
        n_boot=5, learner_params={"n_estimators": 10}, ensemble_members=("x_learner", "t_learner")
    )
    fit = fit_uplift(
        demo_data.campaigns,
        uplift_world["tx"],
        as_of=uplift_world["as_of"],
        build=uplift_world["build"],
        score=simple_scores,
        config=config,
    )
    uses = [m for m in ENSEMBLE_MEMBERS if fit.metrics[f"uplift_ensemble_uses_{m}"] == 1.0]
    assert uses == ["t_learner", "x_learner"]
    assert "uplift_ensemble_qini_t_x_dr" in fit.metrics  # the evidence is still measured
    mean = (fit.heldout["score_t_learner"] + fit.heldout["score_x_learner"]) / 2
    np.testing.assert_allclose(fit.heldout["score_ensemble"], mean, rtol=1e-9, atol=1e-9)


def test_an_ensemble_pickled_before_members_existed_still_describes_itself():
    old = LEARNERS["ensemble"](n_estimators=5)
    del old.__dict__["members"]  # what unpickling an earlier model gives
    assert old.get_params()["members"] == ENSEMBLE_MEMBERS
    assert "EnsembleLearner" in repr(old)
