"""Test helpers: features straight from raw tables (loaders, then the builder)."""

from __future__ import annotations

import pandas as pd

from fidelite.features import FeatureParams, build_features, load_inputs


def features_at(
    transactions,
    events=None,
    customers=None,
    *,
    as_of,
    params: FeatureParams | None = None,
) -> pd.DataFrame:
    """``build_features(load_inputs(...))``: validate the raw tables, build at ``as_of``."""
    return build_features(load_inputs(transactions, events, customers, as_of=as_of), params=params)
