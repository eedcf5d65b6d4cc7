"""Win-back campaign selection: pure, vectorised functions over a scores frame.

Customers are ranked by expected value at risk (``churn_probability x predicted_clv``).
A customer can be contacted on the first channel of their ``channel_preference`` they
may be reached on:

- messaging channels (``email``, ``sms``, ``push``) need the matching opt-in flag
  (``email_opt_in`` ...); a missing flag counts as *no* consent;
- owned channels (``web``, ``app``, ``store``: on-site/in-app banners, in-store offers)
  need no marketing consent;
- any other channel is never chosen, since its consent status is unknown.

Expected net value of a contact is ``response_rate x value_at_risk - offer_cost``; only
customers with a positive net value are selected, best first, until a budget (number
of contacts and/or money) is used up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fidelite.features import contract

#: Messaging channel -> the consent flag that allows contacting on it (from the contract).
MESSAGING_CONSENT: dict[str, str] = dict(contract.CONSENT_COLUMN)
OWNED_CHANNELS: frozenset[str] = frozenset(contract.OWNED_CHANNELS)

# Exclusion reasons, in the order they are checked; a customer counts under the first.
EXCLUSION_REASONS: tuple[str, ...] = (
    "insufficient_history",
    "excluded_id",
    "no_consent",
    "below_min_value",
    "non_positive_net_value",
    "over_budget",
)

SELECTED_COLUMNS: list[str] = [
    "customer_id",
    "rank",
    "channel",
    "churn_probability",
    "predicted_clv",
    "value_at_risk",
    "expected_net_value",
    "risk_band",
    "lifecycle_stage",
    "reasons",
]


@dataclass(frozen=True)
class WinbackPolicy:
    """Campaign economics and constraints.

    Parameters
    ----------
    offer_cost : float
        Cost of one contact including the incentive, in currency units (>= 0).
    response_rate : float
        Share of contacted at-risk customers the offer retains, in (0, 1].
    max_contacts : int or None
        Maximum number of customers to contact.
    max_spend : float or None
        Maximum total offer cost, in currency units.
    min_value : float
        Customers whose value at risk is below this are ignored.
    exclude_ids : frozenset of str
        Customers who must not be contacted (e.g. contacted recently).
    """

    offer_cost: float = 0.0
    response_rate: float = 0.1
    max_contacts: int | None = None
    max_spend: float | None = None
    min_value: float = 0.0
    exclude_ids: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not np.isfinite(self.offer_cost) or self.offer_cost < 0:
            raise ValueError(f"offer_cost must be a finite number >= 0, got {self.offer_cost}")
        if not 0 < self.response_rate <= 1:
            raise ValueError(f"response_rate must be in (0, 1], got {self.response_rate}")
        if self.max_contacts is not None and self.max_contacts < 0:
            raise ValueError(f"max_contacts must be >= 0, got {self.max_contacts}")
        if self.max_spend is not None and self.max_spend < 0:
            raise ValueError(f"max_spend must be >= 0, got {self.max_spend}")
        if self.min_value < 0:
            raise ValueError(f"min_value must be >= 0, got {self.min_value}")


@dataclass
class WinbackPlan:
    """Result of :func:`rank_winback`.

    Attributes
    ----------
    selected : DataFrame
        One row per customer to contact, best first, columns ``SELECTED_COLUMNS``.
    excluded : dict of str to int
        Number of candidates left out per reason (all reasons present, zeros included).
    n_candidates : int
        Customers in the input frame.
    offer_cost : float
        Cost of one contact, to total the campaign cost.
    """

    selected: pd.DataFrame
    excluded: dict[str, int]
    n_candidates: int
    offer_cost: float

    @property
    def totals(self) -> dict[str, float | int]:
        """Contacts, total cost, value at risk and expected net value of the selection."""
        return {
            "contacts": len(self.selected),
            "cost": float(self.offer_cost * len(self.selected)),
            "value_at_risk": float(self.selected["value_at_risk"].sum()),
            "expected_net_value": float(self.selected["expected_net_value"].sum()),
        }


def recommend_channels(scores: pd.DataFrame) -> pd.Series:
    """First consented channel of each customer's ``channel_preference``.

    Parameters
    ----------
    scores : DataFrame, shape (n_customers, ...)
        Needs ``channel_preference`` (comma-separated str) and the opt-in columns
        ``email_opt_in``, ``sms_opt_in``, ``push_opt_in``.

    Returns
    -------
    Series, shape (n_customers,)
        Channel name, or ``None`` where no listed channel may be used; same index as
        ``scores``.
    """
    positional = scores.reset_index(drop=True)
    preferences = positional["channel_preference"].fillna("").astype(str)
    # explode keeps list order and repeats the row position as index
    long = preferences.str.lower().str.split(",").explode().str.strip()
    long = long[long.notna() & (long != "")]
    rows = long.index.to_numpy()
    allowed = long.isin(OWNED_CHANNELS).to_numpy()
    for channel, consent_column in MESSAGING_CONSENT.items():
        consent = _consent_flags(positional, consent_column)[rows]
        allowed = allowed | ((long == channel).to_numpy() & consent)
    first = long[allowed].groupby(level=0, sort=False).first()
    channels = first.reindex(range(len(positional))).to_numpy(dtype=object)
    channels[pd.isna(channels)] = None
    return pd.Series(channels, index=scores.index, name="channel", dtype=object)


def _consent_flags(scores: pd.DataFrame, column: str) -> np.ndarray:
    """Boolean consent per row; a missing column or value means no consent."""
    if column not in scores:
        return np.zeros(len(scores), dtype=bool)
    flags = scores[column]
    return flags.where(flags.notna(), False).astype(bool).to_numpy()


def rank_winback(scores: pd.DataFrame, policy: WinbackPolicy) -> WinbackPlan:
    """Select and rank customers for a win-back campaign.

    Parameters
    ----------
    scores : DataFrame, shape (n_customers, ...)
        A scores frame (ARCHITECTURE.md): ``customer_id``, ``status``,
        ``churn_probability``, ``predicted_clv``, ``channel_preference``, opt-in flags,
        and optionally ``risk_band``, ``lifecycle_stage``, ``reasons``.
    policy : WinbackPolicy
        Campaign economics and constraints.

    Returns
    -------
    WinbackPlan
        Selected customers ordered by value at risk (descending), exclusion counts.
    """
    frame = scores.reset_index(drop=True)
    churn = pd.to_numeric(frame["churn_probability"], errors="coerce")
    clv = pd.to_numeric(frame["predicted_clv"], errors="coerce")
    value_at_risk = churn * clv
    net_value = policy.response_rate * value_at_risk - policy.offer_cost
    channel = recommend_channels(frame)

    reason = pd.Series(None, index=frame.index, dtype=object)

    def mark(mask: pd.Series | np.ndarray, name: str) -> None:
        reason[np.asarray(mask, dtype=bool) & reason.isna().to_numpy()] = name

    mark((frame["status"] != "ok") | value_at_risk.isna(), "insufficient_history")
    mark(frame["customer_id"].astype(str).isin(policy.exclude_ids), "excluded_id")
    mark(channel.isna(), "no_consent")
    mark(value_at_risk < policy.min_value, "below_min_value")
    mark(net_value <= 0, "non_positive_net_value")

    eligible = reason.isna()
    order = (
        pd.DataFrame({"var": value_at_risk, "id": frame["customer_id"].astype(str)})[eligible]
        .sort_values(["var", "id"], ascending=[False, True], kind="stable")
        .index
    )
    contacts = np.arange(1, len(order) + 1)
    within_budget = np.ones(len(order), dtype=bool)
    if policy.max_contacts is not None:
        within_budget &= contacts <= policy.max_contacts
    if policy.max_spend is not None:
        # tolerance so that e.g. 10 x 0.1 fits a budget of 1.0
        within_budget &= contacts * policy.offer_cost <= policy.max_spend * (1 + 1e-12)
    reason[order[~within_budget]] = "over_budget"
    chosen = order[within_budget]

    selected = pd.DataFrame(
        {
            "customer_id": frame.loc[chosen, "customer_id"].astype(str).to_numpy(),
            "rank": np.arange(1, len(chosen) + 1),
            "channel": channel.loc[chosen].to_numpy(),
            "churn_probability": churn.loc[chosen].to_numpy(),
            "predicted_clv": clv.loc[chosen].to_numpy(),
            "value_at_risk": value_at_risk.loc[chosen].to_numpy(),
            "expected_net_value": net_value.loc[chosen].to_numpy(),
            "risk_band": _optional_column(frame, "risk_band", chosen),
            "lifecycle_stage": _optional_column(frame, "lifecycle_stage", chosen),
            "reasons": _optional_column(frame, "reasons", chosen),
        },
        columns=SELECTED_COLUMNS,
    )
    counts = reason.value_counts()
    excluded = {name: int(counts.get(name, 0)) for name in EXCLUSION_REASONS}
    return WinbackPlan(
        selected=selected,
        excluded=excluded,
        n_candidates=len(frame),
        offer_cost=policy.offer_cost,
    )


def _optional_column(frame: pd.DataFrame, column: str, rows: pd.Index) -> np.ndarray:
    if column not in frame:
        return np.full(len(rows), None, dtype=object)
    return frame.loc[rows, column].to_numpy()
