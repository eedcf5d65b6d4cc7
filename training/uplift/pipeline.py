"""The uplift steps of ``fidelite train --campaigns``: the uplift fit with the run's own
churn/CLV model, and the promotion gate's uplift check against the champion."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd

from fidelite.training.uplift.config import UpliftConfig
from fidelite.training.uplift.dataset import FeatureSource, Scorer
from fidelite.training.uplift.fit import UpliftFit, fit_uplift
from fidelite.training.uplift.gate import later_campaign_rows, uplift_gate

if TYPE_CHECKING:
    from fidelite.features.inputs import Inputs
    from fidelite.training.model import FideliteModel

__all__ = ["champion_gate_metrics", "fit_with_model", "model_scorer"]

logger = logging.getLogger(__name__)


def model_scorer(model: FideliteModel) -> Scorer:
    """``score(features, day)``: ``model``'s scores frame of feature rows at ``day``."""

    def score(features: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
        return model.predict(None, features, params={"as_of": str(day.date()), "reasons": False})

    return score


def fit_with_model(
    inputs: Inputs,
    campaigns: pd.DataFrame,
    model: FideliteModel,
    build: FeatureSource,
    n_jobs: int = 1,
) -> UpliftFit:
    """Uplift from the campaigns with this run's features and churn/CLV scores as inputs;
    the model keeps it (``model.uplift``)."""
    fit = fit_uplift(
        campaigns,
        inputs.transactions,
        as_of=inputs.as_of,
        build=build,
        score=model_scorer(model),
        config=UpliftConfig(n_jobs=n_jobs),
    )
    model.uplift = fit.model
    return fit


def champion_gate_metrics(
    model_name: str,
    tracking_uri: str,
    model: FideliteModel,
    uplift: UpliftFit | None = None,
    build: FeatureSource | None = None,
) -> dict[str, float]:
    """``uplift_gate_passed`` (1/0) and the comparison's numbers; {} without a champion.

    With this run's uplift fit and feature builder, both uplift components are compared
    on the held-out campaigns sent after the champion's training day
    (:func:`~fidelite.training.uplift.gate.later_campaign_rows`); the reason is kept on
    the fit (run tag ``uplift_gate_reason``, quoted by the registry when it refuses).
    """
    from fidelite.training.registry import CHAMPION, alias_version, load_model
    from fidelite.training.tracking import mlflow_client

    version = alias_version(mlflow_client(tracking_uri), model_name, CHAMPION)
    if version is None:
        return {}
    try:
        champion = load_model(f"models:/{model_name}@{CHAMPION}", tracking_uri=tracking_uri)
    except Exception as exc:  # an unreadable champion is reported by the churn/CLV gate
        logger.warning("could not load champion version %s: %s", version, exc)
        return {}
    theirs = getattr(champion, "uplift", None)
    rows = None
    if theirs is not None and uplift is not None and build is not None:
        try:
            rows = later_campaign_rows(uplift, theirs, model_scorer(champion), build)
        except Exception as exc:  # e.g. a champion built on other features: say so, go on
            logger.warning("the champion cannot rank the later campaigns: %s", exc)
    gate = uplift_gate(theirs, model.uplift, rows)
    logger.info("uplift gate: %s", gate.reason)
    if uplift is not None:
        uplift.gate_reason = gate.reason
    return {"uplift_gate_passed": float(gate.passed), **gate.metrics}
