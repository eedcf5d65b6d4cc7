"""Batch scoring with a logged or registered model: ``fidelite score``."""

from __future__ import annotations

import pandas as pd

from fidelite.features.inputs import Inputs
from fidelite.training.registry import load_model

__all__ = ["DEFAULT_MODEL_URI", "score"]

DEFAULT_MODEL_URI = "models:/fidelite@champion"
#: Customers scored at once by :func:`score`.
SCORE_CHUNK_ROWS = 100_000


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
    params = {"as_of": str(inputs.as_of.date())}
    # Scores are row by row (percentiles against the stored held-out reference), so a
    # million customers go through in chunks: the model matrices stay a fraction of the
    # feature table. Without a reference, percentiles rank the batch: one batch then.
    if model.churn_reference is None or len(features) <= SCORE_CHUNK_ROWS:
        return model.predict(None, features, params=params)
    chunks = range(0, len(features), SCORE_CHUNK_ROWS)
    parts = [
        model.predict(None, features.iloc[i : i + SCORE_CHUNK_ROWS], params=params) for i in chunks
    ]
    return pd.concat(parts, ignore_index=True)
