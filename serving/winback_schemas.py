"""Request and response models of ``POST /winback`` (see :mod:`fidelite.serving.schemas`
for the conventions: strict requests, capped lists, descriptions written for API users).

The ranking itself is :func:`fidelite.training.winback.rank_winback`, shared with the
``fidelite winback`` command; these models only carry its settings and its plan.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from fidelite.features.contract import MESSAGING_CHANNELS, OWNED_CHANNELS
from fidelite.serving.schemas import (
    MAX_AMOUNT,
    MAX_LIST,
    Identifier,
    NonNegativeAmount,
    PredictRequest,
    _Strict,
)

__all__ = [
    "WinbackPage",
    "WinbackPolicyUsed",
    "WinbackRequest",
    "WinbackResponse",
    "WinbackTarget",
    "WinbackTotals",
]

Channel = Literal[(*MESSAGING_CHANNELS, *OWNED_CHANNELS)]


class WinbackRequest(_Strict):
    """Parameters of a win-back campaign selection."""

    batch: PredictRequest | None = Field(
        None, description="Customers to score and rank; when omitted the snapshot is used."
    )
    offer_cost: NonNegativeAmount = Field(0.0, description="Cost of one contact incl. incentive.")
    response_rate: float = Field(
        0.1, gt=0, le=1, description="Share of contacted at-risk customers the offer retains."
    )
    max_contacts: int | None = Field(
        None, ge=1, le=10**9, description="Budget: maximum number of contacts (>= 1)."
    )
    max_spend: Annotated[float, Field(gt=0, le=MAX_AMOUNT)] | None = Field(
        None, description="Budget: maximum total offer cost (contacts x offer_cost), > 0."
    )
    min_value: NonNegativeAmount = Field(
        0.0,
        description="Leave out customers whose value under the policy (value at risk, or "
        "the expected incremental value under the uplift policy) is below this amount.",
    )
    channels: list[Channel] = Field(
        default_factory=lambda: list(MESSAGING_CHANNELS),
        min_length=1,
        max_length=len(MESSAGING_CHANNELS) + len(OWNED_CHANNELS),
        description="Channels the campaign may send on. Messaging channels (email, sms, "
        "push) need the customer's opt-in; owned channels (web, app, store) need none and "
        "are used only when listed here.",
    )
    holdout_share: float = Field(
        0.1,
        ge=0,
        le=0.9,
        description="Share of the selected customers held out as a control group (returned "
        "in `holdout`, not to be contacted): the campaign's measured effect is treatment "
        "against control. Held-out customers do not use the budget.",
    )
    campaign_id: Identifier | None = Field(
        None,
        description="Campaign id; seeds the control group, so the same id always holds out "
        "the same customers. Default: winback-<day after the scores' as_of>.",
    )
    policy: Literal["auto", "uplift", "value_at_risk", "churn_probability"] = Field(
        "auto",
        description="Ranking: `auto` uses what won on the model's held-out campaigns at this "
        "budget (value at risk when the model has no uplift component); `uplift` ranks by "
        "incremental P(purchase) x value_if_retained - offer_cost (422 without an uplift "
        "component); `value_at_risk` by response_rate x value_at_risk - offer_cost; "
        "`churn_probability` by churn probability.",
    )
    exclude_ids: list[Identifier] = Field(
        default_factory=list,
        max_length=MAX_LIST,
        description="Customers not to contact (e.g. recently contacted); at most "
        "FIDELITE_MAX_BATCH ids.",
    )
    limit: int | None = Field(
        None,
        ge=1,
        le=MAX_LIST,
        description="Page size: selected customers returned in this response (default "
        "FIDELITE_WINBACK_LIMIT = 100, at most FIDELITE_MAX_BATCH). Totals always cover the "
        "whole selection; use `offset` for the next page.",
    )
    offset: int = Field(0, ge=0, le=10**9, description="Rank of the first returned customer - 1.")


class WinbackTarget(BaseModel):
    customer_id: str
    rank: int = Field(description="1 = most worth contacting under the policy (within the group).")
    group: Literal["treatment", "control"] = Field(
        description="treatment: contact; control: held out, do not contact."
    )
    contact: bool = Field(description="False for the control group: do NOT contact.")
    channel: str | None = Field(
        description="Channel to send on (control: the one it would have been sent on)."
    )
    churn_probability: float | None
    predicted_clv: float | None
    value_at_risk: float | None = Field(description="churn_probability x value_if_retained.")
    uplift_purchase: float | None = Field(
        description="Estimated change in P(purchase) if contacted on `channel` (uplift models)."
    )
    uplift_value: float | None = Field(
        description="uplift_purchase x value_if_retained: expected incremental value."
    )
    expected_net_value: float | None = Field(
        description="Under the policy used: uplift_value - offer_cost, or response_rate x "
        "value_at_risk - offer_cost (> 0 for every selected customer)."
    )
    risk_band: str | None = None
    lifecycle_stage: str | None = None
    reasons: list[str]


class WinbackPolicyUsed(BaseModel):
    policy: Literal["uplift", "value_at_risk", "churn_probability"]
    reason: str = Field(
        description="Why: requested, the held-out evidence (each policy's incremental value "
        "with its 95% interval), or the fallback when the model has no uplift component."
    )
    budget_share: float | None = Field(
        description="Budget share of the held-out comparison the choice was read at."
    )


class WinbackTotals(BaseModel):
    contacts: int = Field(description="Customers to contact (treatment group).")
    holdout: int = Field(description="Customers held out (control group, not contacted).")
    cost: float = Field(description="contacts x offer_cost.")
    value_at_risk: float
    expected_net_value: float


class WinbackPage(BaseModel):
    offset: int = Field(description="Customers skipped before this page (in each group).")
    limit: int = Field(description="Page size used (in each group).")
    returned: int = Field(description="Customers in `selected`.")
    returned_holdout: int = Field(description="Customers in `holdout`.")
    next_offset: int | None = Field(
        description="`offset` of the next page; null once both groups are exhausted."
    )


class WinbackResponse(BaseModel):
    source: Literal["snapshot", "batch"]
    campaign_id: str
    policy: WinbackPolicyUsed
    n_candidates: int = Field(description="Customers considered before exclusions.")
    totals: WinbackTotals = Field(description="The whole selection, not only this page.")
    excluded: dict[str, int] = Field(
        description="Customers left out, by first reason: prospect, insufficient_history, "
        "excluded_id, no_consent (no allowed channel they may be reached on), "
        "negative_uplift (the contact is expected to lower their purchases), "
        "below_min_value, non_positive_net_value, over_budget."
    )
    page: WinbackPage
    selected: list[WinbackTarget] = Field(
        description="This page of the customers to contact, best first."
    )
    holdout: list[WinbackTarget] = Field(
        description="This page of the control group: drawn at random from the selection, "
        "returned so the campaign can be measured; do NOT contact."
    )
