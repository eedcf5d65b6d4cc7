"""Batch scoring with a logged or registered model: ``fidelite score``."""

from __future__ import annotations

import pandas as pd

from fidelite.features.inputs import Inputs
from fidelite.training.registry import load_model

__all__ = ["DEFAULT_MODEL_URI", "score"]

DEFAULT_MODEL_URI = "models:/fidelite@champion"


def score(
    inputs: Inputs, *, model_uri: str = DEFAULT_MODEL_URI, tracking_uri: str | None = None
) -> pd.DataFrame:
    """Score every customer known at ``inputs.as_of`` with a logged model.

    Parameters
    ----------
    inputs : Inputs
        Normalised tables and the scoring day ``D``; rows after ``D`` are ignored (the
        features are point-in-time), with the model's own feature parameters.
    model_uri : str
        Any MLflow model URI; defaults to the registry champion.
    tracking_uri : str, optional
        Tracking/registry URI (``training.tracking.resolve_tracking_uri``).

    Returns
    -------
    DataFrame, shape (n_customers, len(SCORE_COLUMNS))
        The scores frame, one row per customer known at ``D``.
    """
    model = load_model(model_uri, tracking_uri=tracking_uri)
    features = model.build_features(inputs)
    return model.predict(None, features, params={"as_of": str(inputs.as_of.date())})
