"""Win-back ranking: policies and their labels, negative uplift, channels, holdout, budget."""

import json

import numpy as np
import pandas as pd
import pytest

from fidelite.errors import InsufficientHistoryError
from fidelite.training.uplift import PolicyChoice
from fidelite.training.winback import WinbackPolicy, campaigns_table, rank_winback


class Chooser:
    def __init__(self, policy="uplift"):
        self.policy, self.shares = policy, []

    def choose_policy(self, budget_share):
        self.shares.append(budget_share)
        return PolicyChoice(self.policy, f"{self.policy} won on held-out rows", budget_share)


def _scores(n=200, seed=0, uplift=True):
    rng = np.random.default_rng(seed)
    churn = rng.random(n)
    clv = rng.gamma(2.0, 50.0, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "status": "ok",
            "churn_probability": churn,
            "predicted_clv": clv,
            "value_at_risk": churn * clv,
            "channel_preference": "web,email",
            "email_opt_in": rng.random(n) < 0.8,
            "sms_opt_in": rng.random(n) < 0.4,
            "push_opt_in": False,
            "risk_band": "high",
            "lifecycle_stage": "at_risk",
            "reasons": "[]",
        }
    )
    if uplift:
        email = rng.normal(0.05, 0.1, n)
        sms = email + rng.normal(0.0, 0.05, n)
        frame["uplift_by_channel"] = [
            json.dumps({"email": e, "sms": s}) for e, s in zip(email, sms, strict=True)
        ]
        frame["response_value"] = rng.gamma(4.0, 15.0, n)
    return frame


def test_without_uplift_model_the_fallback_is_value_at_risk_and_says_why():
    plan = rank_winback(_scores(uplift=False), WinbackPolicy(offer_cost=1.0, holdout_share=0))
    assert plan.policy.policy == "value_at_risk"
    assert "no uplift model" in plan.policy.reason and "response rate" in plan.policy.reason
    var = plan.selected["value_at_risk"].to_numpy()
    assert (np.diff(var) <= 1e-12).all()
    with pytest.raises(InsufficientHistoryError, match="uplift"):
        rank_winback(_scores(uplift=False), WinbackPolicy(policy="uplift"))
    # A model with uplift but a snapshot scored before it: same fallback, other reason.
    plan = rank_winback(_scores(uplift=False), WinbackPolicy(), Chooser())
    assert plan.policy.policy == "value_at_risk" and "re-score" in plan.policy.reason


def test_uplift_ranks_by_incremental_net_value_and_excludes_negative_uplift():
    scores = _scores()
    chooser = Chooser()
    plan = rank_winback(scores, WinbackPolicy(offer_cost=0.5, holdout_share=0), chooser)
    assert plan.policy.policy == "uplift"
    net = plan.selected["expected_net_value"].to_numpy()
    assert (np.diff(net) <= 1e-12).all() and (net > 0).all()
    np.testing.assert_allclose(net, plan.selected["uplift_value"] - 0.5)
    assert plan.excluded["negative_uplift"] > 0
    negative = set(plan.selected["customer_id"]) & set(
        scores.loc[
            scores["uplift_by_channel"].map(lambda t: max(json.loads(t).values()) < 0),
            "customer_id",
        ]
    )
    assert not negative
    # Without a budget the share is what the uplift policy would contact.
    assert 0 < chooser.shares[-1] < 1


def test_the_winner_at_the_budget_is_used():
    chooser = Chooser("value_at_risk")
    plan = rank_winback(_scores(), WinbackPolicy(max_contacts=20, holdout_share=0.1), chooser)
    assert plan.policy.policy == "value_at_risk" and "held-out" in plan.policy.reason
    assert chooser.shares[-1] == pytest.approx(20 / 0.9 / plan_eligible(_scores()))


def plan_eligible(scores):
    consent = scores["email_opt_in"] | scores["sms_opt_in"]
    return int(consent.sum())


def test_channels_follow_consent_and_owned_channels_only_when_listed():
    scores = _scores()
    plan = rank_winback(scores, WinbackPolicy(holdout_share=0), Chooser())
    chosen = scores.set_index("customer_id").loc[plan.selected["customer_id"]]
    channel = plan.selected["channel"].to_numpy()
    assert set(channel) <= {"email", "sms"}
    assert chosen["email_opt_in"].to_numpy()[channel == "email"].all()
    assert chosen["sms_opt_in"].to_numpy()[channel == "sms"].all()
    # The best estimated channel among the consented ones.
    for cid, ch in zip(plan.selected["customer_id"], channel, strict=True):
        row = scores.set_index("customer_id").loc[cid]
        estimates = json.loads(row["uplift_by_channel"])
        allowed = [c for c in ("email", "sms") if row[f"{c}_opt_in"]]
        assert ch == max(allowed, key=estimates.get)
    email_only = rank_winback(
        scores, WinbackPolicy(channels=("email",), holdout_share=0), Chooser()
    )
    assert set(email_only.selected["channel"]) == {"email"}
    assert email_only.excluded["no_consent"] == int((~scores["email_opt_in"]).sum())
    with_web = rank_winback(
        scores, WinbackPolicy(channels=("web",), policy="value_at_risk", holdout_share=0)
    )
    assert set(with_web.selected["channel"]) == {"web"} and with_web.excluded["no_consent"] == 0
    with pytest.raises(ValueError, match="channels"):
        WinbackPolicy(channels=("carrier_pigeon",))


def test_holdout_is_reproducible_by_campaign_id_and_exact_in_size():
    scores = _scores(400)
    policy = WinbackPolicy(holdout_share=0.2, campaign_id="spring", max_contacts=100)
    first = rank_winback(scores, policy, Chooser())
    again = rank_winback(scores.sample(frac=1, random_state=3), policy, Chooser())
    other = rank_winback(
        scores, WinbackPolicy(holdout_share=0.2, campaign_id="autumn", max_contacts=100), Chooser()
    )
    assert list(first.holdout["customer_id"]) == list(again.holdout["customer_id"])
    assert set(first.holdout["customer_id"]) != set(other.holdout["customer_id"])
    total = len(first.selected) + len(first.holdout)
    assert len(first.holdout) == round(total * 0.2)
    assert len(first.selected) <= 100  # the budget counts contacts only
    assert not set(first.holdout["customer_id"]) & set(first.selected["customer_id"])
    assert (first.holdout["group"] == "control").all()


def test_plan_writes_the_campaigns_table_format():
    from fidelite.features.contract import CAMPAIGNS

    plan = rank_winback(
        _scores(), WinbackPolicy(holdout_share=0.25, campaign_id="c9", offer_cost=2)
    )
    table = campaigns_table(plan, sent_at=pd.Timestamp("2026-01-05"), offer="10% off")
    assert list(table.columns) == list(CAMPAIGNS.names)
    assert set(table["group"]) == {"treatment", "control"}
    assert (table["campaign_id"] == "c9").all() and table["channel"].notna().all()


# Budget, value and exclusion rules (ported from serving's ranking tests when the service
# switched to this ranking; owned channels now need listing, prospects are their own reason).
def _customers(values: dict[str, float]) -> pd.DataFrame:
    """One customer per id with churn 0.5 and value_if_retained 2 x value."""
    return pd.DataFrame(
        [
            {
                "customer_id": cid,
                "status": "ok",
                "churn_probability": 0.5,
                "predicted_clv": value,
                "value_at_risk": value,
                "channel_preference": "email,web",
                "email_opt_in": True,
                "reasons": json.dumps(["no purchase for 200 days"]),
            }
            for cid, value in values.items()
        ]
    )


def test_value_at_risk_order_net_value_and_totals():
    scores = _customers({"low": 10.0, "high": 100.0, "mid": 50.0})
    plan = rank_winback(scores, WinbackPolicy(offer_cost=2.0, holdout_share=0))
    # 0.1 x 10 - 2 < 0: "low" is not worth its offer.
    assert plan.selected["customer_id"].tolist() == ["high", "mid"]
    assert plan.selected["rank"].tolist() == [1, 2]
    assert plan.selected["expected_net_value"].tolist() == pytest.approx([8.0, 3.0])
    assert plan.selected["reasons"].iloc[0] == json.dumps(["no purchase for 200 days"])
    assert plan.excluded["non_positive_net_value"] == 1
    assert plan.totals == {
        "contacts": 2,
        "holdout": 0,
        "cost": 4.0,
        "value_at_risk": 150.0,
        "expected_net_value": 11.0,
    }


def test_contact_and_money_budgets_keep_the_most_valuable():
    scores = _customers({f"c{i}": float(v) for i, v in enumerate([5, 40, 30, 20, 10])})
    plan = rank_winback(scores, WinbackPolicy(max_contacts=2, holdout_share=0))
    assert plan.selected["customer_id"].tolist() == ["c1", "c2"]
    assert plan.excluded["over_budget"] == 3
    scores = _customers({f"c{i}": 100.0 + i for i in range(10)})
    plan = rank_winback(scores, WinbackPolicy(offer_cost=3.0, max_spend=10.0, holdout_share=0))
    assert plan.totals["contacts"] == 3 and plan.totals["cost"] == pytest.approx(9.0)
    both = WinbackPolicy(offer_cost=3.0, max_spend=10.0, max_contacts=2, holdout_share=0)
    assert rank_winback(scores, both).totals["contacts"] == 2
    assert rank_winback(scores, WinbackPolicy(max_contacts=0)).totals == {
        "contacts": 0,
        "holdout": 0,
        "cost": 0.0,
        "value_at_risk": 0.0,
        "expected_net_value": 0.0,
    }


def test_exclusions_are_counted_under_their_first_reason():
    from fidelite.training.winback import EXCLUSION_REASONS

    scores = _customers({"recent": 90.0, "silent": 90.0, "small": 0.9, "keep": 90.0})
    scores.loc[scores["customer_id"] == "silent", "email_opt_in"] = False
    unscored = {"status": "insufficient_history", "churn_probability": None, "value_at_risk": None}
    extra = pd.DataFrame(
        [{"customer_id": "new", **unscored}, {"customer_id": "signup", **unscored}]
    )
    extra.loc[1, "status"] = "prospect"
    scores = pd.concat([scores, extra], ignore_index=True)
    policy = WinbackPolicy(min_value=5.0, exclude_ids=frozenset({"recent", "new"}))
    plan = rank_winback(scores, policy)
    assert plan.selected["customer_id"].tolist() + plan.holdout["customer_id"].tolist() == ["keep"]
    assert plan.excluded == {
        "prospect": 1,
        "insufficient_history": 1,
        "excluded_id": 1,
        "no_consent": 1,
        "negative_uplift": 0,
        "below_min_value": 1,
        "non_positive_net_value": 0,
        "over_budget": 0,
    }
    assert set(plan.excluded) == set(EXCLUSION_REASONS) and plan.n_candidates == 6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"offer_cost": -1.0},
        {"response_rate": 0.0},
        {"response_rate": 1.5},
        {"max_contacts": -1},
        {"max_spend": -5.0},
        {"min_value": -1.0},
        {"holdout_share": 0.95},
        {"campaign_id": " "},
    ],
)
def test_policy_rejects_invalid_parameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        WinbackPolicy(**kwargs)


def test_default_campaign_id_is_the_day_after_the_scores():
    from fidelite.training.winback import default_campaign_id

    scores = _customers({"a": 1.0}).assign(as_of=pd.Timestamp("2025-12-31"))
    assert default_campaign_id(scores) == "winback-2026-01-01"
