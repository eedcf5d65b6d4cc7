"""Request and response models of the prediction service.

Descriptions and examples end up in the OpenAPI document (``/docs.json``, Swagger UI at
``/``), so they are written for API users. Requests are strict: numbers must be JSON
numbers (never booleans or numeric strings), ids and labels JSON strings, dates ISO 8601
strings between 1700 and 2200, unknown fields are errors and every list is capped.
Response columns of a customer's scores come from the contract's scores frame
(:data:`fidelite.features.contract.SCORE_COLUMNS`), so new score columns appear here
without edits. Money is in the currency of the training data; durations in days.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    create_model,
    model_validator,
)

from fidelite.features.contract import SCORE_COLUMNS
from fidelite.features.days import parse_day

#: Hard caps of the schema; ``FIDELITE_MAX_BATCH`` lowers the per-request customer count.
MAX_LIST = 100_000
MAX_HISTORY_ROWS = 1_000_000
MAX_ID_LENGTH = 256
#: Largest accepted amount per order/refund, in currency units (sums must stay finite).
MAX_AMOUNT = 1e9


def _in_calendar(value: dt.datetime) -> dt.datetime:
    if not 1700 <= value.year <= 2200:
        raise ValueError(f"year {value.year} is outside the supported 1700..2200")
    return value


@functools.lru_cache(maxsize=4096)
def _day(value: dt.date) -> dt.date:
    # cached: a pandas Timestamp per request costs more than the rest of the check
    return parse_day(value).date()


def _iso_timestamp(value: object) -> object:
    """ISO 8601 text to a datetime ("2025-06-02" is midnight); anything else is refused."""
    if not isinstance(value, str):
        return value  # the strict datetime check refuses numbers and booleans
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an ISO 8601 timestamp (e.g. 2025-06-02T10:15:00)") from None


Day = Annotated[dt.date, AfterValidator(_day)]
Timestamp = Annotated[dt.datetime, BeforeValidator(_iso_timestamp), AfterValidator(_in_calendar)]
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Label = Annotated[str, Field(min_length=1, max_length=64)]
Amount = Annotated[float, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
NonNegativeAmount = Annotated[float, Field(ge=0, le=MAX_AMOUNT)]

AS_OF_EXAMPLE = "2025-09-30"
FEATURE_ROW_EXAMPLE: dict[str, Any] = {
    "customer_id": "C0000042",
    "orders_total": 6,
    "frequency": 4.0,
    "recency": 210.0,
    "T": 330.0,
    "monetary_value": 58.4,
    "days_since_last_purchase": 120.0,
    "best_channel": "email",
    "email_opt_in": True,
}
HISTORY_EXAMPLE: dict[str, Any] = {
    "transactions": [
        {"customer_id": "42", "order_id": "o1", "timestamp": "2025-06-02T10:15:00", "amount": 59.9},
        {"customer_id": "42", "order_id": "o2", "timestamp": "2025-08-20T18:40:00", "amount": 80.0},
    ],
    "customers": [{"customer_id": "42", "email_opt_in": True, "sms_opt_in": False}],
}


class _Strict(BaseModel):
    """Base of request models: strict types, unknown fields and NaN/Infinity refused."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


# --------------------------------------------------------------------------- inputs


class TransactionIn(_Strict):
    """One order (or refund) in the transactions data contract."""

    customer_id: Identifier = Field(description="Customer id (string, 1-256 characters).")
    order_id: Identifier = Field(description="Order id; a refund repeats its order's id.")
    timestamp: Timestamp = Field(
        description="Order time, ISO 8601 (`2025-06-02T10:15:00`, optionally with a UTC "
        "offset: converted to UTC). Must fall on or before `as_of`."
    )
    amount: Amount = Field(description="Net amount in currency units; negative for a refund.")
    channel: Label | None = Field(None, description="Sales channel, e.g. web, app, store.")
    discount: NonNegativeAmount | None = Field(None, description="Discount granted (>= 0).")
    items: Annotated[float, Field(ge=0, le=1e6)] | None = Field(
        None, description="Number of items (>= 0)."
    )


class EventIn(_Strict):
    """One engagement event (message sent/opened/clicked, visit...)."""

    customer_id: Identifier = Field(description="Customer id.")
    timestamp: Timestamp = Field(description="Event time, ISO 8601, on or before `as_of`.")
    channel: Label = Field(description="Channel: email, sms, push, web, app, store or other.")
    event_type: Label = Field(description="Event type, e.g. sent, open, click, visit.")
    campaign_id: Identifier | None = Field(None, description="Campaign id, if any.")


class CustomerIn(_Strict):
    """Customer attributes and marketing consent."""

    customer_id: Identifier = Field(description="Customer id.")
    signup_at: Timestamp | None = Field(None, description="Signup time, on or before `as_of`.")
    acquisition_channel: Label | None = Field(None, description="How the customer was acquired.")
    acquisition_cost: NonNegativeAmount | None = Field(None, description="Acquisition cost.")
    email_opt_in: bool | None = Field(None, description="E-mail consent; null = opted in.")
    sms_opt_in: bool | None = Field(None, description="SMS consent; null = opted in.")
    push_opt_in: bool | None = Field(None, description="Push consent; null = opted in.")


class HistoryIn(_Strict):
    """Raw history in the data-contract shape; features are built server-side."""

    transactions: list[TransactionIn] = Field(
        description="Orders and refunds up to and including `as_of`.",
        min_length=1,
        max_length=MAX_HISTORY_ROWS,
    )
    events: list[EventIn] = Field(
        default_factory=list, description="Engagement events.", max_length=MAX_HISTORY_ROWS
    )
    customers: list[CustomerIn] = Field(
        default_factory=list,
        description="Customer attributes; a customer without a row is opted in everywhere.",
        max_length=MAX_LIST,
    )


class PredictRequest(_Strict):
    """A batch of customers, as precomputed feature rows or as raw history."""

    as_of: Day = Field(
        description="Scoring day D (YYYY-MM-DD, 1700..2200): features describe everything up "
        "to the end of D, predictions cover the days (D, D + horizon].",
        examples=[AS_OF_EXAMPLE],
    )
    features: list[dict[str, Any]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_LIST,
        description="Feature rows as written by `fidelite features`: one object per customer "
        "with `customer_id` (string) and feature columns of the contract. Numbers must be "
        "JSON numbers within the column's range, labels strings, consent flags booleans; "
        "null means missing. Required in every row: orders_total, frequency, recency, T, "
        "monetary_value (recency <= T). At most FIDELITE_MAX_BATCH rows.",
    )
    history: HistoryIn | None = Field(
        None, description="Raw transactions/events/customers instead of feature rows."
    )
    include_reasons: bool = Field(
        True,
        description="Explain each churn score with its top reasons; false returns empty "
        "`reasons` lists and saves time on large batches.",
    )

    @model_validator(mode="after")
    def _exactly_one_input(self) -> PredictRequest:
        if (self.features is None) == (self.history is None):
            raise ValueError("give exactly one of `features` or `history`")
        return self

    #: A body not validated yet (:meth:`unread`).
    _unread: bytes | None = PrivateAttr(None)

    @classmethod
    def unread(cls, body: bytes) -> PredictRequest:
        """A placeholder for a body validated later, off the event loop (the service does
        this for large bodies: :func:`fidelite.serving.handlers.read_body`)."""
        request = cls.model_construct(features=None, history=None)
        request._unread = body
        return request

    @property
    def unread_body(self) -> bytes | None:
        return self._unread


class LookupRequest(_Strict):
    """Customer ids to look up in the latest scores snapshot."""

    customer_ids: list[Identifier] = Field(
        min_length=1,
        max_length=MAX_LIST,
        description="Ids to look up (strings); unknown ids are reported per id, not errors. "
        "At most FIDELITE_MAX_BATCH ids.",
    )


# -------------------------------------------------------------------------- outputs

_SCORE_TYPES: dict[str, Any] = {
    "str": str,
    "date": dt.date,
    "int": int,
    "float": float,
    "bool": bool,
    "list[str]": list[str],
}


def _score_field(dtype: str, nullable: bool, description: str) -> tuple[Any, Any]:
    kind = _SCORE_TYPES.get(dtype, Any)
    return (kind | None if nullable else kind), Field(description=description)


#: One customer's scores: exactly the contract's scores frame, in contract order.
CustomerScore: type[BaseModel] = create_model(
    "CustomerScore",
    __doc__="Scores of one customer (a row of the scores frame).",
    **{c.name: _score_field(c.dtype, c.nullable, c.description) for c in SCORE_COLUMNS},
)


class ModelRef(BaseModel):
    """Which model produced a response."""

    name: str
    version: str
    alias: str | None = None


class PredictResponse(BaseModel):
    model: ModelRef
    n_customers: int
    n_insufficient_history: int = Field(description="Customers without a purchase yet.")
    scores: list[CustomerScore]  # type: ignore[valid-type]


class LookupResult(BaseModel):
    customer_id: str
    found: bool = Field(description="False when the id is not in the snapshot.")
    score: CustomerScore | None = None  # type: ignore[valid-type]


class LookupResponse(BaseModel):
    snapshot_as_of: dt.date | None = Field(description="`as_of` of the snapshot.")
    n_found: int
    n_missing: int
    results: list[LookupResult] = Field(description="One entry per requested id, in order.")


class SnapshotState(BaseModel):
    configured: bool = Field(description="Whether a snapshot path is set (FIDELITE_SNAPSHOT).")
    loaded: bool = Field(description="Whether a snapshot is being served.")
    as_of: dt.date | None = None
    n_customers: int | None = None
    loaded_at: str | None = Field(None, description="When the served snapshot was read (UTC).")
    error: str | None = Field(
        None, description="Why the latest file could not be used (the last good one is served)."
    )


class ModelInfo(BaseModel):
    name: str
    version: str = Field(description="Registered version actually being served.")
    alias: str | None = Field(description="Alias the service follows (e.g. champion).")
    is_champion: bool | None = Field(
        None,
        description="Whether the alias still points at the served version (null when the "
        "registry is not followed).",
    )
    alias_version: str | None = Field(None, description="Version the alias points at now.")
    checked_at: str | None = Field(None, description="Last registry check (UTC).")
    reload_error: str | None = Field(None, description="Why the last reload failed, if it did.")
    run_id: str | None
    model_uri: str
    train_start: str | None = Field(description="First day of the training data.")
    train_end: str | None = Field(description="Last training `as_of` day.")
    horizon_days: int | None
    validation_metrics: dict[str, float] = Field(
        description="Validation metrics recorded on the run the model was promoted on."
    )
    loaded_at: str | None = Field(None, description="When this version was loaded (UTC).")
    fidelite_version: str = Field(description="Version of the fidelite package serving it.")
    snapshot: SnapshotState
