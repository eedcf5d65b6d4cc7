"""Batch scoring with a registered model: ``fidelite score``."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from fidelite.features import build_features, load_inputs
from fidelite.training.tracking import use_tracking

__all__ = ["DEFAULT_MODEL_URI", "load_model", "score"]

DEFAULT_MODEL_URI = "models:/fidelite@champion"


def load_model(model_uri: str = DEFAULT_MODEL_URI, *, tracking_uri: str | None = None):
    """Load a logged/registered model and return the underlying ``FideliteModel``."""
    use_tracking(tracking_uri)
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()


def score(
    transactions: Any,
    events: Any = None,
    customers: Any = None,
    *,
    as_of: Any,
    model_uri: str = DEFAULT_MODEL_URI,
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """Score every customer known by ``as_of`` with a logged model.

    Parameters
    ----------
    transactions, events, customers : path or DataFrame
        Raw or normalised inputs; rows after ``as_of`` are ignored
        (``build_features`` is point-in-time).
    as_of : date-like
        Scoring day ``D``.
    model_uri : str
        Any MLflow model URI; defaults to the registry champion.
    tracking_uri : str, optional
        Tracking/registry URI (see ``training.tracking``).

    Returns
    -------
    DataFrame, shape (n_customers, 21)
        The scores frame of ARCHITECTURE.md, one row per customer known by ``as_of``.
    """
    inputs = load_inputs(transactions, events, customers, as_of=as_of)
    model = load_model(model_uri, tracking_uri=tracking_uri)
    features = build_features(inputs)
    return model.predict(None, features, params={"as_of": str(inputs.as_of.date())})
