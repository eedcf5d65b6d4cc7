"""Unit tests of the pure win-back ranking functions."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fidelite.serving.winback import (
    EXCLUSION_REASONS,
    WinbackPolicy,
    rank_winback,
    recommend_channels,
)


def make_scores(rows: list[dict]) -> pd.DataFrame:
    defaults = {
        "status": "ok",
        "channel_preference": "email,web",
        "email_opt_in": True,
        "sms_opt_in": True,
        "push_opt_in": True,
        "risk_band": "high",
        "lifecycle_stage": "at_risk",
        "reasons": json.dumps(["no purchase for 200 days"]),
    }
    return pd.DataFrame([{**defaults, **row} for row in rows])


def customers(values: dict[str, float]) -> pd.DataFrame:
    """One customer per id with churn 0.5 and CLV chosen so value_at_risk == value."""
    return make_scores(
        [
            {"customer_id": cid, "churn_probability": 0.5, "predicted_clv": 2 * value}
            for cid, value in values.items()
        ]
    )


def test_recommend_channels_takes_first_consented_channel() -> None:
    scores = make_scores(
        [
            {"customer_id": "a", "channel_preference": "email,sms,web", "email_opt_in": False},
            {
                "customer_id": "b",
                "channel_preference": "push,email",
                "push_opt_in": False,
                "email_opt_in": False,
            },
            {"customer_id": "c", "channel_preference": " Social , store"},
            {"customer_id": "d", "channel_preference": ""},
            {"customer_id": "e", "channel_preference": None},
            {"customer_id": "f", "channel_preference": "sms", "sms_opt_in": None},
        ]
    )
    channels = recommend_channels(scores)
    assert channels.tolist() == ["sms", None, "store", None, None, None]
    assert channels.index.equals(scores.index)


def test_rank_orders_by_value_at_risk_and_computes_net_value() -> None:
    scores = customers({"low": 10.0, "high": 100.0, "mid": 50.0})
    plan = rank_winback(scores, WinbackPolicy(offer_cost=0.5, response_rate=0.1))
    assert plan.selected["customer_id"].tolist() == ["high", "mid", "low"]
    assert plan.selected["rank"].tolist() == [1, 2, 3]
    assert plan.selected["value_at_risk"].tolist() == pytest.approx([100.0, 50.0, 10.0])
    assert plan.selected["expected_net_value"].tolist() == pytest.approx([9.5, 4.5, 0.5])
    assert plan.selected["reasons"].iloc[0] == json.dumps(["no purchase for 200 days"])


def test_only_positive_net_value_is_selected() -> None:
    scores = customers({"low": 10.0, "high": 100.0, "mid": 50.0})
    plan = rank_winback(scores, WinbackPolicy(offer_cost=2.0, response_rate=0.1))
    # 0.1 x 10 - 2 < 0: "low" is not worth its offer
    assert plan.selected["customer_id"].tolist() == ["high", "mid"]
    assert plan.selected["expected_net_value"].tolist() == pytest.approx([8.0, 3.0])
    assert plan.excluded["non_positive_net_value"] == 1
    assert plan.totals == {
        "contacts": 2,
        "cost": 4.0,
        "value_at_risk": 150.0,
        "expected_net_value": 11.0,
    }


def test_contact_budget_keeps_the_most_valuable() -> None:
    scores = customers({f"c{i}": float(v) for i, v in enumerate([5, 40, 30, 20, 10])})
    plan = rank_winback(scores, WinbackPolicy(max_contacts=2))
    assert plan.selected["customer_id"].tolist() == ["c1", "c2"]
    assert plan.excluded["over_budget"] == 3


def test_money_budget_counts_offer_cost() -> None:
    scores = customers({f"c{i}": 100.0 + i for i in range(10)})
    plan = rank_winback(scores, WinbackPolicy(offer_cost=3.0, max_spend=10.0))
    assert plan.totals["contacts"] == 3
    assert plan.totals["cost"] == pytest.approx(9.0)
    # both budgets: the tighter one wins
    plan = rank_winback(scores, WinbackPolicy(offer_cost=3.0, max_spend=10.0, max_contacts=2))
    assert plan.totals["contacts"] == 2


def test_exclusions_are_counted_under_their_first_reason() -> None:
    scores = make_scores(
        [
            {
                "customer_id": "new",
                "status": "insufficient_history",
                "churn_probability": None,
                "predicted_clv": None,
            },
            {"customer_id": "recent", "churn_probability": 0.9, "predicted_clv": 100.0},
            {
                "customer_id": "silent",
                "churn_probability": 0.9,
                "predicted_clv": 100.0,
                "channel_preference": "email",
                "email_opt_in": False,
            },
            {"customer_id": "small", "churn_probability": 0.9, "predicted_clv": 1.0},
            {"customer_id": "keep", "churn_probability": 0.9, "predicted_clv": 100.0},
        ]
    )
    plan = rank_winback(
        scores, WinbackPolicy(min_value=5.0, exclude_ids=frozenset({"recent", "new"}))
    )
    assert plan.selected["customer_id"].tolist() == ["keep"]
    assert plan.selected["channel"].tolist() == ["email"]
    assert plan.excluded == {
        "insufficient_history": 1,
        "excluded_id": 1,
        "no_consent": 1,
        "below_min_value": 1,
        "non_positive_net_value": 0,
        "over_budget": 0,
    }
    assert set(plan.excluded) == set(EXCLUSION_REASONS)
    assert plan.n_candidates == 5


def test_empty_selection_has_zero_totals() -> None:
    plan = rank_winback(customers({"a": 1.0}), WinbackPolicy(max_contacts=0))
    assert plan.selected.empty
    assert plan.totals == {
        "contacts": 0,
        "cost": 0.0,
        "value_at_risk": 0.0,
        "expected_net_value": 0.0,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"offer_cost": -1.0},
        {"response_rate": 0.0},
        {"response_rate": 1.5},
        {"max_contacts": -1},
        {"max_spend": -5.0},
        {"min_value": -1.0},
    ],
)
def test_policy_rejects_invalid_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        WinbackPolicy(**kwargs)
