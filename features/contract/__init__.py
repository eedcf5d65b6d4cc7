"""The fidelite contract, in one place: input tables, vocabularies, features and scores.

Every other module reads names from here instead of spelling them out:

* the **input tables** (:data:`TRANSACTIONS`, :data:`EVENTS`, :data:`CUSTOMERS`,
  :data:`CAMPAIGNS`, :data:`CONSENT_HISTORY`) and their columns, which the loaders in
  :mod:`fidelite.features.data` validate;
* the **vocabularies**: order and engagement channels, which channels are messaging
  (need consent) or owned, the event types that count as engagement;
* the **feature families** (:data:`FEATURE_FAMILIES`): every column that
  :func:`fidelite.features.build_features` produces, with its dtype, whether it is a
  categorical or a model input, and its allowed range. Serving validates request rows
  with these ranges, training picks categoricals and model inputs from them, and the
  reason phrases are keyed by family;
* the **scores frame** (:data:`SCORE_COLUMNS`) written by ``fidelite score``, returned
  by the model and by the service.

This module imports nothing from the rest of the package: it is the bottom layer.
"""

from __future__ import annotations

from fidelite.features.contract.families import (
    FEATURE_FAMILIES,
    FeatureFamily,
    categorical_features,
    feature_family,
    model_input_features,
)
from fidelite.features.contract.scores import (
    SCORE_COLUMNS,
    ScoreColumn,
    score_column_names,
)
from fidelite.features.contract.tables import (
    CAMPAIGNS,
    CONSENT_HISTORY,
    CUSTOMERS,
    EVENTS,
    TABLES,
    TRANSACTIONS,
    Column,
    Table,
)
from fidelite.features.contract.vocabulary import (
    CAMPAIGN_GROUP_ALIASES,
    CAMPAIGN_GROUPS,
    CONSENT_COLUMN,
    ENGAGEMENT_CHANNELS,
    ENGAGEMENT_EVENT_TYPES,
    MESSAGING_CHANNELS,
    MISSING_LABEL,
    NON_ENGAGEMENT_EVENT_TYPES,
    ORDER_CHANNELS,
    OWNED_CHANNELS,
)

__all__ = [
    "CAMPAIGNS",
    "CAMPAIGN_GROUPS",
    "CAMPAIGN_GROUP_ALIASES",
    "CONSENT_COLUMN",
    "CONSENT_HISTORY",
    "CUSTOMERS",
    "ENGAGEMENT_CHANNELS",
    "ENGAGEMENT_EVENT_TYPES",
    "EVENTS",
    "FEATURE_FAMILIES",
    "MESSAGING_CHANNELS",
    "MISSING_LABEL",
    "NON_ENGAGEMENT_EVENT_TYPES",
    "ORDER_CHANNELS",
    "OWNED_CHANNELS",
    "SCORE_COLUMNS",
    "TABLES",
    "TRANSACTIONS",
    "Column",
    "FeatureFamily",
    "ScoreColumn",
    "Table",
    "categorical_features",
    "feature_family",
    "model_input_features",
    "score_column_names",
]
