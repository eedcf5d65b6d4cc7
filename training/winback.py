"""Win-back campaign selection over a scores frame: pure, vectorised, shared by the
``fidelite winback`` command and the service's ``/winback``.

**Policies.** ``uplift`` ranks by expected incremental net value: the uplift model's
incremental P(purchase) on the chosen channel x what winning the customer back is worth
(``response_value``: value_if_retained), minus the offer cost (see
:mod:`fidelite.training.uplift.model`). ``value_at_risk`` ranks by
``response_rate x value_at_risk - offer_cost`` (``value_at_risk = churn_probability x
value_if_retained``), ``churn_probability`` by the churn probability alone. With
``policy="auto"`` the uplift model's held-out comparison picks the winner at the
campaign's budget; without an uplift model the ranking falls back to value at risk,
and the plan says which policy was used and why. Customers whose estimated uplift is
negative are excluded (``negative_uplift``); prospects (no purchase yet) are never
candidates.

**Channels.** The request lists the channels the campaign may use (default: the
messaging channels email, sms, push). A messaging channel needs the customer's opt-in;
owned channels (web, app, store) need no consent but are used only when listed. Under
the uplift policy the channel is the allowed, consented one with the highest estimated
uplift; otherwise the first allowed, consented channel of the customer's
``channel_preference``, then of the request's list.

**Control group.** ``holdout_share`` of the selected customers (exactly
``round(k x share)`` of ``k``) are held out, drawn by a hash of the campaign id and the
customer id, so the same campaign always holds out the same customers. The budget
counts contacts only: held-out customers are not sent anything and cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from fidelite.features.contract import MESSAGING_CHANNELS, OWNED_CHANNELS
from fidelite.training.uplift.campaigns import campaigns_table, holdout_draw
from fidelite.training.uplift.channels import (
    has_uplift,
    preferred_channel,
    uplift_choice,
    usable_channels,
)
from fidelite.training.uplift.policy import PolicyChoice, decide_policy

__all__ = [
    "EXCLUSION_REASONS",
    "PLAN_COLUMNS",
    "PolicyChooser",
    "WinbackPlan",
    "WinbackPolicy",
    "campaigns_table",
    "default_campaign_id",
    "holdout_draw",
    "rank_winback",
]

#: Exclusion reasons, in the order they are checked; a customer counts under the first.
EXCLUSION_REASONS: tuple[str, ...] = (
    "prospect",
    "insufficient_history",
    "excluded_id",
    "no_consent",
    "negative_uplift",
    "below_min_value",
    "non_positive_net_value",
    "over_budget",
)

#: Columns of :attr:`WinbackPlan.selected` and :attr:`WinbackPlan.holdout`.
PLAN_COLUMNS: list[str] = [
    "customer_id",
    "rank",
    "group",
    "channel",
    "churn_probability",
    "predicted_clv",
    "value_at_risk",
    "uplift_purchase",
    "uplift_value",
    "expected_net_value",
    "risk_band",
    "lifecycle_stage",
    "reasons",
]
_ALLOWED_CHANNELS = frozenset(MESSAGING_CHANNELS) | frozenset(OWNED_CHANNELS)


class PolicyChooser(Protocol):
    """What the ranking needs from an uplift model: its policy per budget share."""

    def choose_policy(self, budget_share: float | None) -> PolicyChoice: ...


@dataclass(frozen=True)
class WinbackPolicy:
    """Campaign economics, constraints and the control group.

    Parameters
    ----------
    offer_cost : float
        Cost of one contact including the incentive, currency (>= 0).
    response_rate : float
        Share of contacted at-risk customers the offer retains, in (0, 1]; used by the
        value-at-risk and churn policies only (the uplift policy estimates it).
    max_contacts, max_spend : int, float or None
        Budget in contacts and/or money (held-out customers are not contacts).
    min_value : float
        Customers whose value under the policy (value at risk, or expected incremental
        value) is below this are left out.
    exclude_ids : frozenset of str
        Customers who must not be selected.
    channels : tuple of str
        Channels the campaign may use (messaging and/or owned channels).
    holdout_share : float
        Share of the selected customers held out as a control group, in [0, 0.9].
    campaign_id : str
        Names the campaign and seeds its control group.
    policy : {"auto", "uplift", "value_at_risk", "churn_probability"}
    """

    offer_cost: float = 0.0
    response_rate: float = 0.1
    max_contacts: int | None = None
    max_spend: float | None = None
    min_value: float = 0.0
    exclude_ids: frozenset[str] = field(default_factory=frozenset)
    channels: tuple[str, ...] = MESSAGING_CHANNELS
    holdout_share: float = 0.1
    campaign_id: str = "winback"
    policy: Literal["auto", "uplift", "value_at_risk", "churn_probability"] = "auto"

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
        if not 0 <= self.holdout_share <= 0.9:
            raise ValueError(f"holdout_share must be in [0, 0.9], got {self.holdout_share}")
        unknown = sorted(set(self.channels) - _ALLOWED_CHANNELS)
        if not self.channels or unknown:
            raise ValueError(
                f"channels must be a non-empty subset of {sorted(_ALLOWED_CHANNELS)}, "
                f"got unknown {unknown}"
            )
        if not str(self.campaign_id).strip():
            raise ValueError("campaign_id must not be empty")


@dataclass
class WinbackPlan:
    """Result of :func:`rank_winback`.

    Attributes
    ----------
    selected : DataFrame
        Customers to contact, best first, columns :data:`PLAN_COLUMNS` (group treatment).
    holdout : DataFrame
        The control group drawn from the selection: do not contact (group control).
    excluded : dict of str to int
        Candidates left out per reason (every reason present, zeros included).
    n_candidates : int
        Customers in the scores frame.
    policy : PolicyChoice
        The ranking used and why.
    offer_cost : float
    campaign_id : str
    """

    selected: pd.DataFrame
    holdout: pd.DataFrame
    excluded: dict[str, int]
    n_candidates: int
    policy: PolicyChoice
    offer_cost: float
    campaign_id: str

    @property
    def totals(self) -> dict[str, float | int]:
        """Contacts, holdout size, cost, value at risk and expected net value of the contacts."""
        return {
            "contacts": len(self.selected),
            "holdout": len(self.holdout),
            "cost": float(self.offer_cost * len(self.selected)),
            "value_at_risk": float(self.selected["value_at_risk"].sum()),
            "expected_net_value": float(self.selected["expected_net_value"].sum()),
        }


def default_campaign_id(scores: pd.DataFrame) -> str:
    """``winback-<day after the scores' as-of>`` (today's date without an ``as_of`` column)."""
    if "as_of" in scores and scores["as_of"].notna().any():
        day = pd.Timestamp(pd.to_datetime(scores["as_of"]).max()) + pd.Timedelta(days=1)
    else:
        day = pd.Timestamp.now().normalize()
    return f"winback-{day.date()}"


def _number(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


# --------------------------------------------------------------------------- policy
def _contacts_allowed(policy: WinbackPolicy) -> float:
    """Most contacts the budget pays for (inf without a budget)."""
    allowed = np.inf
    if policy.max_contacts is not None:
        allowed = float(policy.max_contacts)
    if policy.max_spend is not None and policy.offer_cost > 0:
        allowed = min(allowed, np.floor(policy.max_spend * (1 + 1e-12) / policy.offer_cost))
    return allowed


def _decide(
    policy: WinbackPolicy,
    chooser: PolicyChooser | None,
    uplift_ready: bool,
    n_eligible: int,
    n_positive_uplift: int,
) -> PolicyChoice:
    """The ranking policy for this request, and why (see :func:`decide_policy`)."""
    contacts = _contacts_allowed(policy)
    if np.isfinite(contacts):
        selected = contacts / max(1e-9, 1.0 - policy.holdout_share)
        share = min(1.0, selected / max(1, n_eligible))
    else:  # no budget: as many as the uplift policy finds worth contacting
        share = n_positive_uplift / max(1, n_eligible)
    return decide_policy(
        policy.policy,
        chooser,
        uplift_ready=uplift_ready,
        budget_share=share,
        response_rate=policy.response_rate,
    )


# --------------------------------------------------------------------------- ranking
@dataclass
class _Valued:
    """Every candidate's numbers under the chosen policy (Series on the frame's index)."""

    frame: pd.DataFrame
    ids: pd.Series
    choice: PolicyChoice
    channel: pd.Series
    columns: dict[str, pd.Series]
    worth: pd.Series
    unscored: np.ndarray

    @property
    def net(self) -> pd.Series:
        return self.columns["expected_net_value"]


def _value(frame: pd.DataFrame, policy: WinbackPolicy, chooser: PolicyChooser | None) -> _Valued:
    """Channels, values and the policy for every customer of the scores frame."""
    ids = frame["customer_id"].astype(str)
    churn = _number(frame, "churn_probability")
    clv = _number(frame, "predicted_clv")
    value_at_risk = _number(frame, "value_at_risk")
    value_at_risk = value_at_risk.where(value_at_risk.notna(), churn * clv)
    usable = usable_channels(frame, policy.channels)
    preferred = preferred_channel(frame, usable, policy.channels)
    uplift_ready = chooser is not None and has_uplift(frame)
    purchase = pd.Series(np.nan, index=frame.index)
    uplift_channel = preferred
    if uplift_ready:
        uplift_channel, estimate = uplift_choice(frame, usable, policy.channels, preferred)
        purchase = pd.Series(estimate, index=frame.index)
    uplift_value = purchase * _number(frame, "response_value")
    unscored = ((frame["status"] != "ok") | value_at_risk.isna()).to_numpy()
    eligible = ~unscored & ~ids.isin(policy.exclude_ids).to_numpy() & usable.any(axis=1)
    n_positive = int((eligible & (uplift_value > policy.offer_cost).to_numpy()).sum())
    choice = _decide(policy, chooser, uplift_ready, int(eligible.sum()), n_positive)
    if choice.policy == "uplift":
        unscored = unscored | purchase.isna().to_numpy()
        channel, worth = uplift_channel, uplift_value
        net = uplift_value - policy.offer_cost
    else:
        channel, worth = preferred, value_at_risk
        net = policy.response_rate * value_at_risk - policy.offer_cost
    columns = {
        "churn_probability": churn,
        "predicted_clv": clv,
        "value_at_risk": value_at_risk,
        "uplift_purchase": purchase,
        "uplift_value": uplift_value,
        "expected_net_value": net,
    }
    channel = pd.Series(channel, index=frame.index, dtype=object)
    return _Valued(frame, ids, choice, channel, columns, worth, unscored)


def _exclusions(v: _Valued, policy: WinbackPolicy) -> pd.Series:
    """The first exclusion reason of each customer (None = eligible)."""
    reason = pd.Series(None, index=v.frame.index, dtype=object)

    def mark(mask: pd.Series | np.ndarray, name: str) -> None:
        reason[np.asarray(mask, dtype=bool) & reason.isna().to_numpy()] = name

    # Prospects (signed up, never bought) have nothing to win back.
    mark(v.frame["status"] == "prospect", "prospect")
    mark(v.unscored, "insufficient_history")
    mark(v.ids.isin(policy.exclude_ids), "excluded_id")
    mark(v.channel.isna(), "no_consent")
    if v.choice.policy == "uplift":
        mark(v.columns["uplift_value"] < 0, "negative_uplift")
    mark(v.worth < policy.min_value, "below_min_value")
    mark(v.net <= 0, "non_positive_net_value")
    return reason


def _select(v: _Valued, reason: pd.Series, policy: WinbackPolicy) -> tuple[pd.Index, np.ndarray]:
    """Rows selected best first within the budget, and which of them are held out."""
    key = v.columns["churn_probability"] if v.choice.policy == "churn_probability" else v.net
    order = (
        pd.DataFrame({"key": key, "id": v.ids})[reason.isna()]
        .sort_values(["key", "id"], ascending=[False, True], kind="stable")
        .index
    )
    k = np.arange(1, len(order) + 1)
    within = k - np.round(k * policy.holdout_share) <= _contacts_allowed(policy)
    reason[order[~within]] = "over_budget"
    chosen = order[within]
    draw = holdout_draw(policy.campaign_id, v.ids.loc[chosen])
    held = np.zeros(len(chosen), dtype=bool)
    held[np.argsort(draw, kind="stable")[: int(round(len(chosen) * policy.holdout_share))]] = True
    return chosen, held


def _plan_rows(v: _Valued, rows: pd.Index, group: str) -> pd.DataFrame:
    out = {"customer_id": v.ids.loc[rows].to_numpy(), "rank": np.arange(1, len(rows) + 1)}
    out["group"] = group
    out["channel"] = v.channel.loc[rows].to_numpy()
    out.update({name: values.loc[rows].to_numpy(dtype=float) for name, values in v.columns.items()})
    for name in ("risk_band", "lifecycle_stage", "reasons"):
        out[name] = (
            v.frame.loc[rows, name].to_numpy()
            if name in v.frame
            else np.full(len(rows), None, dtype=object)
        )
    return pd.DataFrame(out, columns=PLAN_COLUMNS)


def rank_winback(
    scores: pd.DataFrame, policy: WinbackPolicy, chooser: PolicyChooser | None = None
) -> WinbackPlan:
    """Select, rank and split customers for a win-back campaign.

    Parameters
    ----------
    scores : DataFrame, shape (n_customers, ...)
        A scores frame: ``customer_id``, ``status``, ``churn_probability``,
        ``predicted_clv``, ``value_at_risk``, consent and ``channel_preference``
        columns, and the uplift columns when the model has an uplift component.
    policy : WinbackPolicy
    chooser : PolicyChooser, optional
        The served model's uplift component (its held-out policy comparison); None
        when the model has none.

    Returns
    -------
    WinbackPlan
        Contacts best first, the held-out control group, exclusion counts and the
        policy used with its reason.

    Raises
    ------
    InsufficientHistoryError
        When ``policy.policy == "uplift"`` but no uplift estimates are available.
    """
    valued = _value(scores.reset_index(drop=True), policy, chooser)
    reason = _exclusions(valued, policy)
    chosen, held = _select(valued, reason, policy)
    counts = reason.value_counts()
    return WinbackPlan(
        selected=_plan_rows(valued, chosen[~held], "treatment"),
        holdout=_plan_rows(valued, chosen[held], "control"),
        excluded={name: int(counts.get(name, 0)) for name in EXCLUSION_REASONS},
        n_candidates=len(valued.frame),
        policy=valued.choice,
        offer_cost=policy.offer_cost,
        campaign_id=policy.campaign_id,
    )
