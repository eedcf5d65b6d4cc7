"""Reading and writing the campaigns table (``contract.CAMPAIGNS``) for the uplift code.

Reading forwards to :func:`fidelite.features.campaigns.load_campaigns`, the one loader of
the table (errors naming the file, the column and rows; ``group`` normalised to
``treatment`` or ``control`` from ``contract.CAMPAIGN_GROUP_ALIASES``). Writing: what a
planned campaign writes back, :func:`campaigns_table` (both groups of a win-back plan),
and :func:`holdout_draw` (the reproducible control-group draw).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fidelite.features.campaigns import load_campaigns
from fidelite.features.contract import CAMPAIGN_GROUP_ALIASES as GROUP_ALIASES
from fidelite.features.data import TableSource

if TYPE_CHECKING:
    from fidelite.training.winback import WinbackPlan

__all__ = ["GROUP_ALIASES", "campaigns_table", "holdout_draw", "load_campaigns_table"]


def load_campaigns_table(
    source: TableSource, *, name: str = "campaigns", date_format: str | None = None
) -> pd.DataFrame:
    """:func:`fidelite.features.campaigns.load_campaigns` (kept for existing callers)."""
    return load_campaigns(source, name=name, date_format=date_format)


def holdout_draw(campaign_id: str, customer_ids: pd.Series) -> np.ndarray:
    """A uniform number in [0, 1) per customer, fixed by (campaign id, customer id)."""
    salt = campaign_id.encode()
    return np.array(
        [
            int.from_bytes(hashlib.sha256(salt + b"\x00" + str(c).encode()).digest()[:8], "big")
            / 2.0**64
            for c in customer_ids
        ]
    )


def campaigns_table(
    plan: WinbackPlan, *, sent_at: pd.Timestamp, offer: str | None = None
) -> pd.DataFrame:
    """Both groups of a plan in the campaigns-table format (``contract.CAMPAIGNS``).

    The file a CRM sends from is the file ``fidelite train --campaigns`` learns from
    afterwards: contacts are ``treatment`` rows, the held-out customers ``control``
    rows (with the channel they would have been sent on).
    """
    both = pd.concat([plan.selected, plan.holdout], ignore_index=True)
    return pd.DataFrame(
        {
            "customer_id": both["customer_id"].astype(str).to_numpy(),
            "campaign_id": plan.campaign_id,
            "sent_at": pd.Timestamp(sent_at),
            "group": both["group"].to_numpy(),
            "channel": both["channel"].to_numpy(dtype=object),
            "offer_cost": plan.offer_cost,
            "offer": offer,
        }
    )
