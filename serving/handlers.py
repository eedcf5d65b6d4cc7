"""Endpoint logic as plain functions of (model, snapshot, request, settings) -> JSON body.

:mod:`fidelite.serving.service` wires these to BentoML. Each raises
:class:`fidelite.errors.FideliteError` subclasses for anything the client can fix; the
service turns them into responses in one place (:func:`fidelite.serving.errors.error_payload`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pydantic
import pydantic_core

from fidelite.errors import FideliteError
from fidelite.reports import publish
from fidelite.serving.bulk_rows import bulk_rows
from fidelite.serving.errors import PayloadTooLargeError, ReportUnavailableError, RequestError
from fidelite.serving.history import (
    PreparedHistory,
    frame_batch,
    history_features,
    prepare_history,
)
from fidelite.serving.models import ServedModel
from fidelite.serving.responses import predict_body, score_dicts
from fidelite.serving.rows import FeatureBatch, feature_batch
from fidelite.serving.schemas import LookupRequest, ModelRef, PredictRequest
from fidelite.serving.scoring import model_scores
from fidelite.serving.settings import ServiceSettings
from fidelite.serving.snapshot import SnapshotStore
from fidelite.serving.winback_schemas import WinbackRequest
from fidelite.training.winback import (
    WinbackPlan,
    WinbackPolicy,
    default_campaign_id,
    rank_winback,
)


def _required_columns() -> tuple[str, ...]:
    from fidelite.training.model import REQUIRED_INPUT_COLUMNS

    return tuple(REQUIRED_INPUT_COLUMNS)


def request_batch(
    request: PredictRequest, settings: ServiceSettings, model: ServedModel | None = None
) -> FeatureBatch:
    """Validated feature columns of a predict request (rows as given, or built from history).

    Features built from history use the served model's :class:`FeatureParams` (those it
    was trained with), so they are built exactly as in training.
    """
    if request.features is not None:
        return feature_batch(
            request.features, required=_required_columns(), max_rows=settings.max_batch
        )
    python_model = model.python_model if model is not None else None
    features = history_features(
        request.history,
        as_of=request.as_of,
        max_customers=settings.max_batch,
        params=getattr(python_model, "feature_params", None),
        vocabulary=model.channels if model is not None else None,
        population=model.uses_population if model is not None else True,
    )
    return frame_batch(features)


def read_body(
    body: bytes, validate: Callable[[bytes], PredictRequest], settings: ServiceSettings
) -> tuple[PredictRequest, FeatureBatch | None]:
    """A large ``/predict`` body: the request, and its checked feature batch when the
    rows could be decoded straight into columns (:mod:`fidelite.serving.bulk_rows`).

    Anything else is validated by ``validate`` (the request schema, as for every body),
    which raises pydantic's ``ValidationError`` for a bad one; its batch is then built
    by :func:`request_batch` as usual.
    """
    bulk = bulk_rows(body, required=_required_columns(), max_rows=settings.max_batch)
    if bulk is not None:
        # the envelope through the schema (as_of's format and calendar, flag types)
        envelope = {"as_of": bulk.as_of, "features": [{}], "include_reasons": bulk.include_reasons}
        try:
            return validate(pydantic_core.to_json(envelope)), bulk.batch
        except pydantic.ValidationError:
            pass
    return validate(body), None


def history_rows(request: PredictRequest) -> int:
    """Rows in a raw-history request's tables."""
    history = request.history
    assert history is not None
    return len(history.transactions) + len(history.events) + len(history.customers)


def prepared_history(request: PredictRequest, settings: ServiceSettings) -> PreparedHistory:
    """A raw-history request checked on its own (before any feature build)."""
    assert request.history is not None
    return prepare_history(request.history, as_of=request.as_of, max_customers=settings.max_batch)


def score_error(exc: Exception) -> Exception:
    """A model failure on the request's values as the client error it is."""
    if isinstance(exc, FloatingPointError | OverflowError | ValueError) and not isinstance(
        exc, FideliteError
    ):
        return RequestError(
            "features: the models cannot score these values (they overflow): check "
            "frequency, recency, T and monetary_value",
            field="features",
            detail=type(exc).__name__,
        )
    return exc


def score_batch(
    model: ServedModel, batch: FeatureBatch, as_of: Any, *, reasons: bool
) -> dict[str, Any]:
    """The scores frame of a batch, as columns (in the calling thread)."""
    try:
        return model_scores(model.python_model, batch, pd.Timestamp(as_of), reasons=reasons)
    except Exception as exc:
        raise score_error(exc) from None


def model_ref(model: ServedModel) -> ModelRef:
    return ModelRef(name=model.name, version=model.version, alias=model.alias)


def predict_json(model: ServedModel, columns: dict[str, Any], n: int) -> bytes:
    """``POST /predict``: the JSON body of a ``PredictResponse``."""
    return predict_body(model_ref(model), columns, n)


def _cap(name: str, count: int, limit: int) -> None:
    if count > limit:
        raise PayloadTooLargeError(
            f"{name}: {count} ids exceed the limit of {limit} per request (FIDELITE_MAX_BATCH)",
            field=name,
        )


def lookup(snapshot: SnapshotStore, request: LookupRequest, settings: ServiceSettings) -> bytes:
    """``POST /customers/lookup``: snapshot scores per id; unknown ids are flagged."""
    _cap("customer_ids", len(request.customer_ids), settings.max_batch)
    return snapshot.lookup_body(request.customer_ids)


def report(snapshot: SnapshotStore) -> bytes:
    """``GET /report``: the customer-base report written beside the served snapshot (HTML).

    Raises
    ------
    SnapshotUnavailableError
        No snapshot configured or loaded (503).
    ReportUnavailableError
        No report beside the snapshot, or one older than it (503); the message names the
        expected file, never its folder.
    """
    snapshot.current()
    path = snapshot.path
    assert path is not None  # current() raises when no snapshot is configured
    try:
        return publish.report_for_snapshot(path)
    except publish.ReportUnavailableError:
        name = publish.report_path_for(path).name
        if publish.report_path_for(path).exists():
            problem = f"the report {name} is older than the scores snapshot"
        else:
            problem = f"no report {name} beside the scores snapshot"
        raise ReportUnavailableError(
            f"{problem}: re-run `fidelite score` (without --no-report), or "
            f"`fidelite report ... --out {name}` into the snapshot's folder",
            field="report",
        ) from None


def winback_scores(
    model: ServedModel, snapshot: SnapshotStore, request: WinbackRequest, settings: ServiceSettings
) -> tuple[pd.DataFrame, str]:
    """The scores to rank and where they came from (``batch`` or ``snapshot``)."""
    if request.batch is None:
        return snapshot.current().frame, "snapshot"
    batch = request_batch(request.batch, settings, model)
    columns = score_batch(model, batch, request.batch.as_of, reasons=request.batch.include_reasons)
    return pd.DataFrame({name: list(values) for name, values in columns.items()}), "batch"


def winback(
    model: ServedModel, snapshot: SnapshotStore, request: WinbackRequest, settings: ServiceSettings
) -> bytes:
    """``POST /winback``: :func:`fidelite.training.winback.rank_winback`, one page of each group."""
    _cap("exclude_ids", len(request.exclude_ids), settings.max_batch)
    scores, source = winback_scores(model, snapshot, request, settings)
    chooser = getattr(model.python_model, "uplift", None)
    plan = rank_winback(scores, winback_policy(request, scores), chooser)
    limit = min(request.limit or settings.winback_limit, settings.max_batch)
    return pydantic_core.to_json(winback_body(plan, source, request.offset, limit))


def winback_policy(request: WinbackRequest, scores: pd.DataFrame) -> WinbackPolicy:
    """The request's campaign settings (the schema has checked each field)."""
    try:
        return WinbackPolicy(
            offer_cost=request.offer_cost,
            response_rate=request.response_rate,
            max_contacts=request.max_contacts,
            max_spend=request.max_spend,
            min_value=request.min_value,
            exclude_ids=frozenset(request.exclude_ids),
            channels=tuple(dict.fromkeys(request.channels)),
            holdout_share=request.holdout_share,
            campaign_id=request.campaign_id or default_campaign_id(scores),
            policy=request.policy,
        )
    except ValueError as exc:
        raise RequestError(str(exc)) from None


def winback_body(plan: WinbackPlan, source: str, offset: int, limit: int) -> dict[str, Any]:
    """A ``WinbackResponse`` body: the plan's totals and one page of each group."""
    selected = plan.selected.iloc[offset : offset + limit]
    holdout = plan.holdout.iloc[offset : offset + limit]
    end = offset + limit
    more = end < len(plan.selected) or end < len(plan.holdout)
    choice = plan.policy
    return {
        "source": source,
        "campaign_id": plan.campaign_id,
        "policy": {
            "policy": choice.policy,
            "reason": choice.reason,
            "budget_share": choice.budget_share,
        },
        "n_candidates": plan.n_candidates,
        "totals": plan.totals,
        "excluded": plan.excluded,
        "page": {
            "offset": offset,
            "limit": limit,
            "returned": len(selected),
            "returned_holdout": len(holdout),
            "next_offset": end if more else None,
        },
        "selected": score_dicts_for_targets(selected),
        "holdout": score_dicts_for_targets(holdout),
    }


def score_dicts_for_targets(page: pd.DataFrame) -> list[dict[str, Any]]:
    """Win-back targets as JSON-ready dicts (reasons as lists, missing values as null)."""
    if page.empty:
        return []
    reasons = score_dicts({"reasons": page["reasons"].to_numpy()}, len(page))
    records = page.astype(object).where(page.notna(), None).to_dict("records")
    for record, parsed in zip(records, reasons, strict=True):
        record["reasons"] = parsed["reasons"]
        record["rank"] = int(record["rank"])
        record["contact"] = record["group"] == "treatment"
    return records
