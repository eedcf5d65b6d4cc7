"""Which ranking to use at which budget, and the held-out evidence behind the choice.

Candidates are ranked on held-out campaign rows and compared by the incremental net
value they capture when the top share of customers is contacted. The winner at each
evaluated budget share is recorded with every candidate's estimate and confidence
interval, so a campaign can say which policy it used and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from fidelite.errors import InsufficientHistoryError

__all__ = ["POLICIES", "PolicyChoice", "PolicyTable", "decide_policy"]

#: Ranking policies: the uplift model, value at risk, churn probability.
POLICIES: tuple[str, ...] = ("uplift", "value_at_risk", "churn_probability")


@dataclass(frozen=True)
class PolicyChoice:
    """The policy used for one ranking, and why (a sentence for people)."""

    policy: str
    reason: str
    budget_share: float | None = None


@dataclass
class PolicyTable:
    """Held-out evidence per candidate and budget share, and the winner per share.

    Attributes
    ----------
    evidence : DataFrame
        One row per (candidate, budget_share): ``candidate`` (a learner name,
        ``value_at_risk`` or ``churn_probability``), ``policy`` (one of
        :data:`POLICIES`), ``budget_share``, ``incremental_value`` with
        ``ci_low``/``ci_high`` (currency, net of offer costs), ``qini`` (Qini
        coefficient of the candidate on purchases, repeated per share).
    learner : str
        The meta-learner standing for the ``uplift`` policy.
    heldout : str
        What the evidence was measured on (e.g. "campaign winback-2025q3, 6,700 rows").
    """

    evidence: pd.DataFrame
    learner: str
    heldout: str
    winners: dict[float, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.winners:
            policies = self.evidence.loc[self.evidence["policy"] != "candidate"]
            for share, rows in policies.groupby("budget_share"):
                best = rows.sort_values(
                    ["incremental_value", "policy"], ascending=[False, True], kind="stable"
                )
                # Ties (and NaN) go to value at risk: the simpler policy needs no more proof.
                top = best.iloc[0]
                var = rows.loc[rows["policy"] == "value_at_risk", "incremental_value"]
                margin = 1e-9 * max(1.0, abs(float(var.iloc[0]))) if len(var) else 0.0
                if len(var) and not top["incremental_value"] > var.iloc[0] + margin:
                    self.winners[float(share)] = "value_at_risk"
                else:
                    self.winners[float(share)] = str(top["policy"])

    @property
    def shares(self) -> list[float]:
        return sorted(self.winners)

    def choose(self, budget_share: float | None) -> PolicyChoice:
        """The winner at the evaluated share nearest to ``budget_share`` (None = all)."""
        share = 1.0 if budget_share is None else float(np.clip(budget_share, 0.0, 1.0))
        nearest = min(self.shares, key=lambda s: (abs(s - share), s))
        policy = self.winners[nearest]
        rows = self.evidence.loc[
            (self.evidence["budget_share"] == nearest) & (self.evidence["policy"] != "candidate")
        ].set_index("policy")
        described = "; ".join(
            f"{name} {_money(r.incremental_value)} (95% CI {_money(r.ci_low)} to "
            f"{_money(r.ci_high)})"
            for name, r in rows.sort_values("incremental_value", ascending=False).iterrows()
        )
        reason = (
            f"{policy} captured the most held-out incremental net value when contacting the "
            f"top {nearest:.0%} ({self.heldout}; uplift model: {self.learner}): {described}"
        )
        if not (rows["incremental_value"] > 0).any():
            reason += (
                "; every policy lost money at this budget on the held-out campaign: consider "
                "a smaller budget or a cheaper offer"
            )
        return PolicyChoice(policy=policy, reason=reason, budget_share=nearest)


def _money(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:,.0f}"


class _Chooser(Protocol):
    def choose_policy(self, budget_share: float | None) -> PolicyChoice: ...


def decide_policy(
    requested: str,
    chooser: _Chooser | None,
    *,
    uplift_ready: bool,
    budget_share: float,
    response_rate: float,
) -> PolicyChoice:
    """The ranking policy of one win-back request, and why.

    Parameters
    ----------
    requested : {"auto", "uplift", "value_at_risk", "churn_probability"}
    chooser : object with ``choose_policy(share)``, or None
        The model's uplift component; None when the model has none.
    uplift_ready : bool
        Whether the scores carry uplift estimates.
    budget_share : float
        Share of the eligible customers the budget selects.
    response_rate : float
        The caller's response rate, named in the fallback's reason.

    Raises
    ------
    InsufficientHistoryError
        ``requested == "uplift"`` without uplift estimates.
    """
    if requested in ("value_at_risk", "churn_probability"):
        return PolicyChoice(requested, "requested by the caller")
    if not uplift_ready:
        why = (
            "the served model has no uplift component (train with --campaigns)"
            if chooser is None
            else "the scores carry no uplift estimates (re-score with the current model)"
        )
        if requested == "uplift":
            raise InsufficientHistoryError(f"policy 'uplift' is not available: {why}")
        return PolicyChoice(
            "value_at_risk",
            f"no uplift model: {why}; ranked by value at risk x response rate ({response_rate:g})",
        )
    if requested == "uplift":
        return PolicyChoice("uplift", "requested by the caller")
    choice = chooser.choose_policy(budget_share)
    return PolicyChoice(choice.policy, choice.reason, budget_share)
