"""Model health ingredients: labelled predictions, the champion's record, data freshness.

Calibration and gain need predictions whose outcomes are known. They come from, in
order: the scores themselves when their horizon has ended by D; otherwise the model
given by ``ReportConfig.model_uri`` scored at D - H, the latest window whose outcomes
are all observed by D.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from dataclasses import replace as replace_tables

import numpy as np
import pandas as pd

from fidelite.features.build import build_features
from fidelite.reports.base import CustomerBase

__all__ = ["ChampionRecord", "LabelledPredictions", "champion_record", "labelled_predictions"]

logger = logging.getLogger(__name__)

#: Validation metrics shown for the champion, with their labels.
CHAMPION_METRICS = {
    "churn_roc_auc": "churn ROC-AUC",
    "churn_expected_calibration_error": "churn ECE",
    "churn_brier": "churn Brier",
    "clv_normalized_gini": "CLV Gini",
    "clv_spearman": "CLV Spearman",
    "clv_total_ratio": "CLV total ratio",
}


@dataclass(frozen=True)
class LabelledPredictions:
    """Predictions next to what happened.

    Attributes
    ----------
    frame : DataFrame
        ``churn_probability``, ``predicted_clv``, ``churned`` (0/1), ``future_spend``
        and, when known, ``p_alive``; one row per scored customer.
    as_of : Timestamp
        Day the predictions were made.
    horizon : int
    source : str
        Where they come from, for the reader.
    """

    frame: pd.DataFrame
    as_of: pd.Timestamp
    horizon: int
    source: str


@dataclass(frozen=True)
class ChampionRecord:
    """The registered champion: version, training day and logged validation metrics."""

    name: str
    version: str
    run_id: str
    trained_as_of: str
    registered: str
    metrics: dict[str, float] = field(default_factory=dict)


def _labelled(
    scores: pd.DataFrame, base: CustomerBase, as_of: pd.Timestamp, horizon: int, source: str
) -> LabelledPredictions | None:
    from fidelite.training.labels import make_labels

    if "status" in scores.columns:
        scores = scores.loc[scores["status"].astype(str) == "ok"]
    scores = scores.dropna(subset=["churn_probability", "predicted_clv"])
    if scores.empty:
        return None
    tx = base.inputs.inputs.transactions
    labels = make_labels(tx, as_of=as_of, horizon_days=horizon, customers_index=scores.index)
    columns = [c for c in ("churn_probability", "predicted_clv", "p_alive") if c in scores]
    frame = scores[columns].join(labels[["churned", "future_spend"]], how="inner")
    return LabelledPredictions(frame.astype(np.float64), as_of, horizon, source)


def labelled_predictions(base: CustomerBase) -> tuple[LabelledPredictions | None, str]:
    """Predictions with observed outcomes, and a sentence saying where they come from.

    Returns
    -------
    (LabelledPredictions or None, str)
        None with the reason when no labelled window can be formed.
    """
    h, scores = base.horizon, base.inputs.scores
    if scores is not None and {"churn_probability", "predicted_clv"} <= set(scores.columns):
        scored_on = pd.Timestamp(scores["as_of"].iloc[0])
        if scored_on + pd.Timedelta(days=h) <= base.as_of:
            source = f"the scores of {scored_on.date()} against the {h} days that followed"
            return _labelled(scores, base, scored_on, h, source), source
    uri = base.config.model_uri
    if uri is None:
        return None, (
            "no labelled window: the scores' horizon has not ended by D and no model was given "
            "to score D - H (pass --model-uri)"
        )
    cutoff = base.as_of - pd.Timedelta(days=h)
    from fidelite.features.data import load_events
    from fidelite.training.registry import load_model

    model = load_model(uri, tracking_uri=base.config.tracking_uri)
    data = base.inputs.inputs
    given = base.inputs.events_source  # the report keeps 90 days; the model needs them all
    if given is not None:
        given = load_events(given, date_format=base.inputs.date_format)
        given = given.loc[(given["timestamp"] < data.end).to_numpy()]
    features = build_features(
        replace_tables(data, events=given), as_of=cutoff, params=base.config.params
    )
    predicted = model.predict(
        None, features, params={"as_of": str(cutoff.date()), "reasons": False}
    )
    predicted = predicted.set_index(
        pd.Index(predicted["customer_id"].astype(str), name="customer_id")
    )
    source = f"{uri} scored at {cutoff.date()} against the {h} days to D"
    return _labelled(predicted, base, cutoff, h, source), source


def champion_record(tracking_uri: str | None, model_name: str) -> tuple[ChampionRecord | None, str]:
    """The champion's version and logged validation metrics from the MLflow registry.

    Returns ``(None, reason)`` without a tracking URI or a champion.
    """
    if not tracking_uri:
        return None, "no tracking URI or model given: champion not looked up"
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, "champion")
    except MlflowException:
        return None, f"no champion of model {model_name!r} in {tracking_uri}"
    run = client.get_run(version.run_id)
    metrics = {k: v for k, v in run.data.metrics.items() if k in CHAMPION_METRICS}
    registered = pd.Timestamp(version.creation_timestamp, unit="ms").strftime("%Y-%m-%d %H:%M")
    record = ChampionRecord(
        name=model_name,
        version=str(version.version),
        run_id=version.run_id,
        trained_as_of=run.data.params.get("as_of", "unknown"),
        registered=registered,
        metrics={k: v for k, v in metrics.items() if not math.isnan(v)},
    )
    return record, f"champion {model_name} version {record.version}"
