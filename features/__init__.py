"""Point-in-time customer features (issue 2): data contract, loaders and the builder."""

from fidelite.features.build import STRING_COLUMNS, build_features
from fidelite.features.data import (
    DataContractError,
    as_of_bounds,
    load_customers,
    load_events,
    load_transactions,
    read_table,
)
from fidelite.features.params import FeatureParams

__all__ = [
    "STRING_COLUMNS",
    "DataContractError",
    "FeatureParams",
    "as_of_bounds",
    "build_features",
    "load_customers",
    "load_events",
    "load_transactions",
    "read_table",
]
