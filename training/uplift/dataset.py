"""Uplift training rows: each campaign row with the customer's features the day before.

For every send day ``s`` the features are built as of ``s - 1 day`` by the same code
that builds them for churn and CLV (nothing from the send day on is visible), the
churn/CLV model's scores at that day are added as inputs (``score_*`` columns), and the
outcome is the response in ``(sent_at, sent_at + window]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fidelite.training.uplift.responses import campaign_responses

__all__ = ["SCORE_INPUTS", "FeatureSource", "Scorer", "UpliftRows", "build_uplift_rows"]

logger = logging.getLogger(__name__)

#: Features of the customers known on a day: ``build(day) -> features frame``.
FeatureSource = Callable[[pd.Timestamp], pd.DataFrame]
#: Churn/CLV scores of feature rows at a day: ``score(features, day) -> scores frame``.
Scorer = Callable[[pd.DataFrame, pd.Timestamp], pd.DataFrame]

#: Scores-frame columns the uplift models take as inputs (``score_`` + name), if present.
SCORE_INPUTS: tuple[str, ...] = (
    "churn_probability",
    "p_alive",
    "expected_purchases",
    "predicted_clv",
    "value_if_retained",
    "value_at_risk",
)


@dataclass(frozen=True)
class UpliftRows:
    """Campaign rows ready for the uplift learners.

    Attributes
    ----------
    features : DataFrame, shape (n_rows, n_features)
        Features at the day before each send plus ``score_*`` columns, on a
        ``RangeIndex`` aligned with ``rows``.
    rows : DataFrame, shape (n_rows, 9)
        ``customer_id``, ``campaign_id``, ``send_day`` (Timestamp), ``treated``
        (bool), ``channel`` (str or None), ``offer_cost`` (float), ``propensity``
        (the campaign's treated share), ``purchased`` (bool), ``net_spend`` (float).
    """

    features: pd.DataFrame
    rows: pd.DataFrame

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, mask: np.ndarray) -> UpliftRows:
        """The rows where the boolean ``mask`` (shape (n_rows,)) holds."""
        return UpliftRows(
            self.features.loc[mask].reset_index(drop=True),
            self.rows.loc[mask].reset_index(drop=True),
        )


def _score_columns(scores: pd.DataFrame) -> pd.DataFrame:
    present = [c for c in SCORE_INPUTS if c in scores.columns]
    out = scores[present].apply(pd.to_numeric, errors="coerce")
    out.columns = [f"score_{c}" for c in present]
    return out


def build_uplift_rows(
    campaigns: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    build: FeatureSource,
    score: Scorer | None,
    window_days: int,
    until: pd.Timestamp,
) -> UpliftRows:
    """Point-in-time features, scores and responses of the learnable campaign rows.

    Parameters
    ----------
    campaigns : DataFrame
        Normalised campaign rows whose response windows end before ``until``.
    transactions : DataFrame
        Normalised transactions (responses are read from them, before ``until``).
    build : callable
        ``build(day)``: features of the customers known on ``day`` (as of that day).
    score : callable or None
        ``score(features, day)``: the churn/CLV scores frame of those rows.
    window_days : int
        Response window in days.
    until : Timestamp
        Exclusive end of the data (as-of + 1 day).

    Returns
    -------
    UpliftRows
        Rows of customers unknown the day before their send are dropped (logged).
    """
    responses = campaign_responses(campaigns, transactions, window_days=window_days, until=until)
    send_day = campaigns["sent_at"].dt.floor("D")
    treated_share = (campaigns["group"] == "treatment").groupby(campaigns["campaign_id"]).mean()
    feature_parts, row_parts = [], []
    for day, index in campaigns.groupby(send_day, sort=True).groups.items():
        part = campaigns.loc[index]
        features = build(pd.Timestamp(day) - pd.Timedelta(days=1))
        ids = part["customer_id"].astype(str)
        known = ids.isin(features.index).to_numpy()
        if not known.all():
            logger.warning(
                "campaigns sent on %s: %d row(s) name customers unknown the day before; "
                "left out of uplift learning",
                pd.Timestamp(day).date(),
                int((~known).sum()),
            )
        part, ids = part.loc[known], ids[known]
        rows_features = features.loc[ids.to_numpy()].reset_index(drop=True)
        if score is not None and len(rows_features):
            scores = score(features.loc[ids.unique()], pd.Timestamp(day) - pd.Timedelta(days=1))
            scores = _score_columns(scores.set_index("customer_id"))
            rows_features = pd.concat(
                [rows_features, scores.loc[ids.to_numpy()].reset_index(drop=True)], axis=1
            )
        feature_parts.append(rows_features)
        row_parts.append(
            pd.DataFrame(
                {
                    "customer_id": ids.to_numpy(dtype=object),
                    "campaign_id": part["campaign_id"].astype(str).to_numpy(dtype=object),
                    "send_day": pd.Timestamp(day),
                    "treated": (part["group"] == "treatment").to_numpy(),
                    "channel": _channels(part),
                    "offer_cost": part["offer_cost"].fillna(0.0).to_numpy(dtype=float),
                    "propensity": treated_share.loc[part["campaign_id"]].to_numpy(dtype=float),
                    "purchased": responses.loc[part.index, "purchased"].to_numpy(),
                    "net_spend": responses.loc[part.index, "net_spend"].to_numpy(),
                }
            )
        )
    if not row_parts:
        raise ValueError("no campaign rows to learn from")
    features = pd.concat(feature_parts, ignore_index=True)
    return UpliftRows(features, pd.concat(row_parts, ignore_index=True))


def _channels(part: pd.DataFrame) -> np.ndarray:
    if "channel" not in part.columns:
        return np.full(len(part), None, dtype=object)
    channel = part["channel"].astype(object).to_numpy().copy()
    missing = pd.isna(channel) | (channel == "unknown")
    channel[missing] = None
    return channel
