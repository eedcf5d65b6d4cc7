"""Uplift: which customers a win-back offer changes, learnt from past campaigns."""

from fidelite.training.uplift.config import UpliftConfig
from fidelite.training.uplift.fit import UpliftFit, fit_uplift
from fidelite.training.uplift.model import UPLIFT_SCORE_COLUMNS, UpliftModel, uplift_inputs
from fidelite.training.uplift.policy import POLICIES, PolicyChoice, PolicyTable
from fidelite.training.uplift.responses import (
    DEFAULT_RESPONSE_DAYS,
    campaign_responses,
    split_campaigns,
)

__all__ = [
    "DEFAULT_RESPONSE_DAYS",
    "POLICIES",
    "UPLIFT_SCORE_COLUMNS",
    "PolicyChoice",
    "PolicyTable",
    "UpliftConfig",
    "UpliftFit",
    "UpliftModel",
    "campaign_responses",
    "fit_uplift",
    "split_campaigns",
    "uplift_inputs",
]
