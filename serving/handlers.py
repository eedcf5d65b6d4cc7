"""Endpoint logic as plain functions of (model, snapshot, request) -> response.

:mod:`serving.service` wires these to BentoML; tests can call them directly.
"""

from __future__ import annotations

import pandas as pd

from fidelite.serving.loader import LoadedModel
from fidelite.serving.schemas import (
    LookupRequest,
    LookupResponse,
    LookupResult,
    ModelRef,
    PredictRequest,
    PredictResponse,
    WinbackRequest,
    WinbackResponse,
    WinbackTarget,
    WinbackTotals,
)
from fidelite.serving.scoring import (
    RequestError,
    features_frame,
    history_features,
    parse_reasons,
    predict_response_json,
    score_records,
)
from fidelite.serving.snapshot import SnapshotStore
from fidelite.serving.winback import WinbackPolicy, rank_winback
from fidelite.training.model import REQUIRED_INPUT_COLUMNS


def score_frame(model: LoadedModel, request: PredictRequest, *, max_batch: int) -> pd.DataFrame:
    """Scores frame for the customers of a predict request.

    Parameters
    ----------
    model : LoadedModel
        The served model.
    request : PredictRequest
        Feature rows or raw history, and ``as_of``.
    max_batch : int
        Largest accepted number of customers.

    Returns
    -------
    DataFrame, shape (n_customers, 21)
        The scores frame of ARCHITECTURE.md.
    """
    if request.features is not None:
        features = features_frame(
            request.features, required_columns=REQUIRED_INPUT_COLUMNS, max_customers=max_batch
        )
    else:
        features = history_features(request.history, as_of=request.as_of, max_customers=max_batch)
    # The unwrapped FideliteModel is called directly: the request is already validated
    # here, and pyfunc's per-request schema enforcement would re-cast every column.
    params = {"as_of": request.as_of.isoformat(), "reasons": request.include_reasons}
    return model.python_model.predict(None, features, params=params)


def predict(model: LoadedModel, request: PredictRequest, *, max_batch: int) -> PredictResponse:
    """``POST /predict``: score a batch of customers."""
    return PredictResponse.model_validate_json(predict_json(model, request, max_batch=max_batch))


def predict_json(model: LoadedModel, request: PredictRequest, *, max_batch: int) -> bytes:
    """``POST /predict`` response body (a ``PredictResponse``), encoded without per-row models."""
    scores = score_frame(model, request, max_batch=max_batch)
    return predict_response_json(model_ref(model), scores)


def lookup(snapshot: SnapshotStore, request: LookupRequest, *, max_batch: int) -> LookupResponse:
    """``POST /customers/lookup``: snapshot scores per id; unknown ids are flagged."""
    if len(request.customer_ids) > max_batch:
        raise RequestError(
            f"customer_ids: {len(request.customer_ids)} ids exceed the limit of {max_batch} "
            "per request (FIDELITE_MAX_BATCH)",
            field="customer_ids",
            status_code=413,
        )
    rows, found = snapshot.lookup(request.customer_ids)
    by_id = dict(zip(rows["customer_id"], score_records(rows), strict=False))
    results = [
        LookupResult(customer_id=cid, found=ok, score=by_id.get(cid) if ok else None)
        for cid, ok in zip(request.customer_ids, found, strict=False)
    ]
    as_of = snapshot.frame()["as_of"]
    n_found = sum(found)
    return LookupResponse(
        snapshot_as_of=pd.Timestamp(as_of.max()).date() if len(as_of) else None,
        n_found=n_found,
        n_missing=len(found) - n_found,
        results=results,
    )


def winback(
    model: LoadedModel, snapshot: SnapshotStore, request: WinbackRequest, *, max_batch: int
) -> WinbackResponse:
    """``POST /winback``: rank customers by value at risk within a budget."""
    if request.batch is not None:
        scores, source = score_frame(model, request.batch, max_batch=max_batch), "batch"
    else:
        scores, source = snapshot.frame(), "snapshot"
    policy = WinbackPolicy(
        offer_cost=request.offer_cost,
        response_rate=request.response_rate,
        max_contacts=request.max_contacts,
        max_spend=request.max_spend,
        min_value=request.min_value,
        exclude_ids=frozenset(request.exclude_ids),
    )
    plan = rank_winback(scores, policy)
    selected = plan.selected if request.limit is None else plan.selected.head(request.limit)
    selected = selected.assign(reasons=parse_reasons(selected["reasons"]))
    records = selected.astype(object).where(selected.notna(), None).to_dict("records")
    return WinbackResponse(
        source=source,
        n_candidates=plan.n_candidates,
        totals=WinbackTotals(**plan.totals),
        excluded=plan.excluded,
        selected=[WinbackTarget(**record) for record in records],
    )


def model_ref(model: LoadedModel) -> ModelRef:
    return ModelRef(name=model.info.name, version=model.info.version, alias=model.info.alias)
