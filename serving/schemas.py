"""Request and response models of the prediction service.

Field descriptions end up in the OpenAPI document (``/docs.json``, Swagger UI at ``/``),
so they are written for API users. Column names follow the scores frame of
ARCHITECTURE.md. Money is in the currency of the training data; durations in days.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)


def _id_to_str(value: object) -> object:
    # ARCHITECTURE: customer ids are strings; JSON integers are accepted and converted.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


CustomerId = Annotated[str, BeforeValidator(_id_to_str), Field(min_length=1, max_length=256)]
NonNegative = Annotated[float, Field(ge=0)]
# Feature values are scalars; strict types keep `true` from being read as 1.0 and vice versa.
FeatureValue = StrictFloat | StrictInt | StrictBool | StrictStr | None


class _Strict(BaseModel):
    """Base: unknown fields are errors, NaN/inf are rejected, names are validated."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------- inputs


class TransactionIn(_Strict):
    """One order (or refund) in the transactions data contract."""

    customer_id: CustomerId = Field(description="Customer id (string; integers accepted).")
    order_id: CustomerId = Field(description="Order id; refunds reuse the order id.")
    timestamp: dt.datetime = Field(
        description="Order time, ISO 8601; timezone-aware values are converted to UTC. "
        "Must fall on or before `as_of`."
    )
    amount: float = Field(description="Net order amount; negative for a refund.")
    channel: str | None = Field(None, description="Sales channel, e.g. web, app, store.")
    discount: NonNegative | None = Field(None, description="Discount granted (>= 0).")
    items: NonNegative | None = Field(None, description="Number of items (>= 0).")


class EventIn(_Strict):
    """One engagement event (message sent/opened/clicked, visit...)."""

    customer_id: CustomerId = Field(description="Customer id.")
    timestamp: dt.datetime = Field(description="Event time, ISO 8601, on or before `as_of`.")
    channel: str = Field(description="Channel: email, sms, push, web, app, store or other.")
    event_type: str = Field(description="Event type, e.g. sent, open, click, visit, unsubscribe.")
    campaign_id: str | None = Field(None, description="Campaign id, if any.")


class CustomerIn(_Strict):
    """Customer attributes and marketing consent."""

    customer_id: CustomerId = Field(description="Customer id.")
    signup_at: dt.datetime | None = Field(None, description="Signup time, if known.")
    acquisition_channel: str | None = Field(None, description="Channel the customer came from.")
    acquisition_cost: NonNegative | None = Field(None, description="Acquisition cost (>= 0).")
    email_opt_in: bool | None = Field(None, description="Consent to e-mail marketing.")
    sms_opt_in: bool | None = Field(None, description="Consent to SMS marketing.")
    push_opt_in: bool | None = Field(None, description="Consent to push notifications.")


class HistoryIn(_Strict):
    """Raw history in the data-contract shape; features are built server-side."""

    transactions: list[TransactionIn] = Field(
        description="Orders and refunds up to and including `as_of`.", min_length=1
    )
    events: list[EventIn] = Field(default_factory=list, description="Engagement events.")
    customers: list[CustomerIn] = Field(
        default_factory=list, description="Customer attributes (consent defaults to opted in)."
    )


class PredictRequest(_Strict):
    """A batch of customers, as precomputed feature rows or as raw history."""

    as_of: dt.date = Field(
        description="Scoring day D: features describe everything up to the end of D, "
        "predictions cover the days (D, D + horizon]."
    )
    features: list[dict[str, FeatureValue]] | None = Field(
        None,
        description="Feature rows as produced by `fidelite features` (one object per "
        "customer, with `customer_id` and the model's feature columns). Use null for a "
        "missing value; NaN/Infinity are rejected.",
    )
    history: HistoryIn | None = Field(
        None, description="Raw transactions/events/customers instead of feature rows."
    )
    include_reasons: StrictBool = Field(
        True,
        description="Explain each churn score with its top reasons; false returns empty "
        "`reasons` lists and saves some time on large batches.",
    )

    @model_validator(mode="after")
    def _exactly_one_input(self) -> PredictRequest:
        if (self.features is None) == (self.history is None):
            raise ValueError("give exactly one of `features` or `history`")
        if self.features is not None and not self.features:
            raise ValueError("`features` must hold at least one row")
        return self


class LookupRequest(_Strict):
    """Customer ids to look up in the latest scores snapshot."""

    customer_ids: list[CustomerId] = Field(
        min_length=1, description="Ids to look up; unknown ids are reported, not errors."
    )


class WinbackRequest(_Strict):
    """Parameters of a win-back campaign selection."""

    batch: PredictRequest | None = Field(
        None,
        description="Customers to score and rank; when omitted the latest snapshot is used.",
    )
    offer_cost: NonNegative = Field(0.0, description="Cost of one contact incl. incentive.")
    response_rate: float = Field(
        0.1, gt=0, le=1, description="Share of contacted at-risk customers the offer retains."
    )
    max_contacts: int | None = Field(None, ge=0, description="Budget: maximum number of contacts.")
    max_spend: NonNegative | None = Field(
        None, description="Budget: maximum total offer cost (contacts x offer_cost)."
    )
    min_value: NonNegative = Field(
        0.0, description="Ignore customers whose value at risk is below this amount."
    )
    exclude_ids: list[CustomerId] = Field(
        default_factory=list, description="Customers not to contact (e.g. recently contacted)."
    )
    limit: int | None = Field(
        None,
        ge=0,
        description="Return at most this many selected customers (totals still "
        "cover the whole selection).",
    )


# -------------------------------------------------------------------------- outputs


class CustomerScore(BaseModel):
    """Scores of one customer (a row of the scores frame)."""

    customer_id: str
    as_of: dt.date
    horizon_days: int = Field(description="Prediction horizon H in days.")
    status: Literal["ok", "insufficient_history"] = Field(
        description="`insufficient_history`: too little history for a reliable score; "
        "the numbers are baseline values and should not drive decisions."
    )
    churn_probability: float | None = Field(
        description="P(no purchase in (as_of, as_of + horizon])."
    )
    p_alive: float | None = Field(description="BG/NBD probability the customer is still active.")
    expected_purchases: float | None = Field(description="Expected purchase days in the horizon.")
    predicted_clv: float | None = Field(description="Expected net spend in the horizon.")
    predicted_clv_p10: float | None = Field(description="10th percentile of the CLV.")
    predicted_clv_p90: float | None = Field(description="90th percentile of the CLV.")
    expected_next_purchase: dt.date | None = Field(description="Expected next purchase day.")
    lifecycle_stage: str | None = None
    churn_percentile: float | None = Field(
        description="Percentile (0-100) of churn probability within the scored population."
    )
    risk_band: str | None = Field(description="low | medium | high | critical.")
    value_at_risk: float | None = Field(description="churn_probability x predicted_clv.")
    reasons: list[str] = Field(description="Top drivers of the churn score, most important first.")
    best_channel: str | None = Field(
        None,
        description="Channel with the most engagement; null when the customer has "
        "no engagement on any channel.",
    )
    channel_preference: str | None = Field(
        None,
        description="Channels ordered by engagement, comma-separated (e.g. "
        '"web,email"); null (never an empty string) when the customer has no engagement.',
    )
    email_opt_in: bool | None = None
    sms_opt_in: bool | None = None
    push_opt_in: bool | None = None


class ModelRef(BaseModel):
    """Which model produced a response."""

    name: str
    version: str
    alias: str | None = None


class PredictResponse(BaseModel):
    model: ModelRef
    n_customers: int
    n_insufficient_history: int
    scores: list[CustomerScore]


class LookupResult(BaseModel):
    customer_id: str
    found: bool = Field(description="False when the id is not in the snapshot.")
    score: CustomerScore | None = None


class LookupResponse(BaseModel):
    snapshot_as_of: dt.date | None = Field(description="`as_of` of the snapshot.")
    n_found: int
    n_missing: int
    results: list[LookupResult]


class WinbackTarget(BaseModel):
    customer_id: str
    rank: int = Field(description="1 = highest value at risk.")
    channel: str = Field(description="First consented channel in the customer's preference.")
    churn_probability: float
    predicted_clv: float
    value_at_risk: float
    expected_net_value: float = Field(
        description="response_rate x value_at_risk - offer_cost (always > 0 here)."
    )
    risk_band: str | None = None
    lifecycle_stage: str | None = None
    reasons: list[str]


class WinbackTotals(BaseModel):
    contacts: int
    cost: float
    value_at_risk: float
    expected_net_value: float


class WinbackResponse(BaseModel):
    source: Literal["snapshot", "batch"]
    n_candidates: int = Field(description="Customers considered before exclusions.")
    totals: WinbackTotals
    excluded: dict[str, int] = Field(
        description="Customers left out, by reason: insufficient_history, excluded_id, "
        "no_consent, below_min_value, non_positive_net_value, over_budget."
    )
    selected: list[WinbackTarget]


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str | None
    run_id: str | None
    model_uri: str
    train_start: str | None = Field(description="First day of the training data.")
    train_end: str | None = Field(description="Last training `as_of` day.")
    horizon_days: int | None
    validation_metrics: dict[str, float] = Field(
        description="Validation metrics recorded on the run the model was promoted on."
    )
    imported_at: str | None = Field(description="When the model was exported to the bento.")
