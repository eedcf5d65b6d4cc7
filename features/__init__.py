"""Point-in-time customer features: the data contract, loaders, inputs and the builder.

Typical use::

    from fidelite.features import build_features, is_purchaser, load_inputs

    inputs = load_inputs("transactions.parquet", "events.parquet", as_of="2025-09-30")
    features = build_features(inputs)          # one row per customer known on D
    buyers = features.loc[is_purchaser(features)]
"""

from fidelite.features.build import (
    STRING_COLUMNS,
    ChannelVocabulary,
    build_features,
)
from fidelite.features.data import (
    DataContractError,
    as_of_bounds,
    load_customers,
    load_events,
    load_transactions,
    read_table,
)
from fidelite.features.inputs import Inputs, load_inputs
from fidelite.features.params import FeatureParams
from fidelite.features.purchases import is_purchaser, purchases_between

__all__ = [
    "ChannelVocabulary",
    "STRING_COLUMNS",
    "DataContractError",
    "FeatureParams",
    "Inputs",
    "as_of_bounds",
    "build_features",
    "is_purchaser",
    "load_customers",
    "load_events",
    "load_inputs",
    "load_transactions",
    "purchases_between",
    "read_table",
]
