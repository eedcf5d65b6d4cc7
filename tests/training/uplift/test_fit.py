"""fit_uplift on the demo campaigns: point-in-time rows, candidates, policy and scores."""

import json

import numpy as np
import pandas as pd
import pytest

from fidelite.errors import InsufficientHistoryError
from fidelite.training.uplift import UPLIFT_SCORE_COLUMNS, fit_uplift
from fidelite.training.uplift.dataset import build_uplift_rows

from .conftest import simple_scores


def test_features_are_built_the_day_before_each_send(demo_data, uplift_world, fitted):
    sends = demo_data.campaigns["sent_at"].dt.floor("D")
    learnt = sends[sends < uplift_world["as_of"] - pd.Timedelta(days=30)].unique()
    expected = {pd.Timestamp(s) - pd.Timedelta(days=1) for s in learnt}
    assert expected <= set(uplift_world["calls"])
    assert max(uplift_world["calls"]) < uplift_world["as_of"]


def test_rows_do_not_change_when_the_future_is_appended(demo_data, uplift_world):
    """Point in time: the features of a send only see what happened before it."""
    first = demo_data.campaigns["campaign_id"].iloc[0]
    rows = demo_data.campaigns.loc[demo_data.campaigns["campaign_id"] == first]
    send = rows["sent_at"].min().floor("D")
    until = send + pd.Timedelta(days=40)
    from fidelite.features import Inputs, build_features

    def build_with(tx, ev):
        history = Inputs(tx, until, ev, demo_data.customers)
        return lambda day: build_features(history, as_of=day)

    cut_tx = demo_data.transactions.loc[demo_data.transactions["timestamp"] < send]
    cut_ev = demo_data.events.loc[demo_data.events["timestamp"] < send]
    common = {"score": simple_scores, "window_days": 30, "until": until}
    full = build_uplift_rows(
        rows,
        demo_data.transactions,
        build=build_with(demo_data.transactions, demo_data.events),
        **common,
    )
    blind = build_uplift_rows(
        rows, demo_data.transactions, build=build_with(cut_tx, cut_ev), **common
    )
    pd.testing.assert_frame_equal(full.features, blind.features)
    assert full.rows["purchased"].any()


def test_candidates_are_compared_with_intervals_and_a_policy_per_budget(fitted):
    evidence = fitted.model.policy.evidence
    assert {
        "t_learner",
        "x_learner",
        "dr_learner",
        "ensemble",
        "value_at_risk",
        "churn_probability",
    } == set(evidence["candidate"])
    assert (evidence["ci_low"] <= evidence["incremental_value"] + 1e-9).all()
    assert (evidence["incremental_value"] <= evidence["ci_high"] + 1e-9).all()
    assert set(fitted.model.policy.winners) == {0.05, 0.1, 0.2, 0.3, 0.5}
    choice = fitted.model.choose_policy(0.18)
    assert choice.budget_share == 0.2 and choice.policy in (
        "uplift",
        "value_at_risk",
        "churn_probability",
    )
    assert "held-out" in choice.reason and "95% CI" in choice.reason
    assert "paired 95% CI" in choice.reason and "value_if_retained" in choice.reason
    # Rolling origin: every campaign with two before it, each scored by earlier learners.
    assert fitted.model.policy.heldout.startswith("4 held-out campaigns")
    assert fitted.metrics["uplift_n_heldout_campaigns"] == 4
    assert {"measured_spend", "spend_ci_low", "gap", "gap_ci_low"} <= set(evidence.columns)
    winners = evidence.loc[evidence["gap"] == 0, ["budget_share", "policy"]]
    assert dict(zip(winners["budget_share"], winners["policy"], strict=True)) == (
        fitted.model.policy.winners
    )
    for key in ("uplift_ate_purchase", "uplift_ate_purchase_ci_low", "uplift_qini_value_at_risk"):
        assert np.isfinite(fitted.metrics[key])
    assert "winback-2025q4" in fitted.skipped  # sent after as-of


def test_scores_gain_uplift_columns_per_consented_channel(demo_data, uplift_world, fitted):
    features = uplift_world["build"](uplift_world["as_of"])
    scores = simple_scores(features, uplift_world["as_of"])
    out = fitted.model.add_scores(features, scores)
    assert set(UPLIFT_SCORE_COLUMNS) <= set(out.columns)
    ok = out["status"] == "ok"
    assert out.loc[ok, "uplift_purchase"].notna().all()
    assert out.loc[~ok, "uplift_purchase"].isna().all()
    by_channel = out.loc[ok, "uplift_by_channel"].map(json.loads)
    assert set(by_channel.iloc[0]) == set(fitted.model.channels)
    email_only = ok & out["email_opt_in"] & ~out["sms_opt_in"] & ~out["push_opt_in"]
    assert (out.loc[email_only, "uplift_channel"] == "email").all()
    nobody = ok & ~out["email_opt_in"] & ~out["sms_opt_in"] & ~out["push_opt_in"]
    assert out.loc[nobody, "uplift_channel"].isna().all()
    value = out.loc[ok, "uplift_purchase"] * out.loc[ok, "response_value"]
    np.testing.assert_allclose(out.loc[ok, "uplift_value"], value)
    # A won-back customer is worth value_if_retained (the scores carry it).
    assert fitted.model.value_basis == "value_if_retained"
    np.testing.assert_allclose(
        out.loc[ok, "response_value"], out.loc[ok, "value_if_retained"].clip(lower=0)
    )


def test_without_value_if_retained_the_response_spend_is_the_value(demo_data, uplift_world):
    """Older churn/CLV models have no value_if_retained: the response-value model stands in."""
    from fidelite.training.uplift import UpliftConfig

    def older_scores(features, day):
        return simple_scores(features, day).drop(columns="value_if_retained")

    config = UpliftConfig(
        learners=("t_learner",), n_boot=5, heldout_campaigns=1, learner_params={"n_estimators": 10}
    )
    fit = fit_uplift(
        demo_data.campaigns,
        uplift_world["tx"],
        as_of=uplift_world["as_of"],
        build=uplift_world["build"],
        score=older_scores,
        config=config,
    )
    assert fit.model.value_basis == "response_spend"
    assert "expected response spend" in fit.model.choose_policy(0.2).reason
    assert fit.model.policy.heldout.startswith("1 held-out campaign (winback-2025q3)")
    features = uplift_world["build"](uplift_world["as_of"])
    scores = older_scores(features, uplift_world["as_of"])
    out = fit.model.add_scores(features, scores)
    ok = out["status"] == "ok"
    assert (out.loc[ok, "response_value"] >= 0).all() and out.loc[ok, "response_value"].gt(0).any()


def test_no_learnable_campaign_is_a_clear_error(demo_data, uplift_world):
    blast = demo_data.campaigns.assign(group="treatment")
    with pytest.raises(InsufficientHistoryError, match="no control group"):
        fit_uplift(
            blast,
            uplift_world["tx"],
            as_of=uplift_world["as_of"],
            build=uplift_world["build"],
            score=simple_scores,
        )
