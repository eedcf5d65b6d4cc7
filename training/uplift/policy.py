"""Which ranking to use at which budget, and the held-out evidence behind the choice.

Candidates are ranked on held-out campaign rows and measured by the incremental value
they capture when the top share of customers is contacted: incremental purchases valued
at a common customer value, adjusted for what the churn model expected, minus offer
costs (:mod:`fidelite.training.uplift.valuation`). At each budget share value at risk
(the simpler policy, and what fidelite ranked by before it learnt from campaigns) stays
the policy unless another one captured clearly more: the 95% interval of its paired
bootstrap gain over value at risk lies above zero; among such policies the largest
estimate wins. The evidence keeps every candidate's estimate, its 95% interval and its
paired gap to the winner, so a campaign can say which policy it used, why, and how sure
that is.

Why a paired interval and not the largest estimate (BENCHMARKS.md, "Uplift: how the
policy is chosen", ``benchmarks/uplift_policy.py``, 20 decisions on five demo draws):
when uplift is absent from what the learners see (treatment labels shuffled) the
largest estimate picked the useless uplift model in 65% of the decisions, the paired
rule in 5%; with real learners the paired rule picked uplift in every decision made on
three or four rolling-origin held-out campaigns (what ``fit_uplift`` has on the demo)
and in 60% of those made on one or two, where the evidence is thin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from fidelite.errors import InsufficientHistoryError
from fidelite.training.uplift.valuation import Comparison, paired_gaps

__all__ = ["POLICIES", "PolicyChoice", "PolicyTable", "decide_policy", "pick_winners"]

#: Ranking policies: the uplift model, value at risk, churn probability.
POLICIES: tuple[str, ...] = ("uplift", "value_at_risk", "churn_probability")

_VALUATION = {
    "value_if_retained": "incremental purchases valued at value_if_retained",
    "response_spend": "incremental purchases valued at the expected response spend",
}


@dataclass(frozen=True)
class PolicyChoice:
    """The policy used for one ranking, and why (a sentence for people)."""

    policy: str
    reason: str
    budget_share: float | None = None


def pick_winners(
    evidence: pd.DataFrame,
    replicates: dict[str, dict[float, np.ndarray]] | None = None,
    *,
    confidence: float = 0.95,
) -> dict[float, str]:
    """The winning policy per budget share.

    With ``replicates`` (paired bootstrap replicates per candidate and share, see
    :class:`~fidelite.training.uplift.valuation.Comparison`): value at risk, unless
    another policy's paired gain over it has its whole two-sided ``confidence``
    interval above zero; among such policies the largest ``incremental_value`` wins.
    Without replicates (or without a value-at-risk row): the largest
    ``incremental_value``. Ties (and NaN) go to value at risk: the simpler policy
    needs no more proof. Rows whose ``policy`` is ``candidate`` (learners not standing
    for a policy) never win.
    """
    winners = {}
    policies = evidence.loc[evidence["policy"] != "candidate"]
    tail = (1.0 - confidence) / 2.0 * 100.0
    for share, rows in policies.groupby("budget_share"):
        ranked = rows.sort_values(
            ["incremental_value", "policy"], ascending=[False, True], kind="stable"
        )
        var = rows.loc[rows["policy"] == "value_at_risk"]
        if replicates is not None and len(var):
            proven = _beats(ranked, replicates, float(share), var["candidate"].iloc[0], tail)
            ranked = ranked.loc[proven | (ranked["policy"] == "value_at_risk")]
        best = ranked.iloc[0]
        margin = 1e-9 * max(1.0, abs(float(var["incremental_value"].iloc[0]))) if len(var) else 0.0
        if len(var) and not best["incremental_value"] > var["incremental_value"].iloc[0] + margin:
            winners[float(share)] = "value_at_risk"
        else:
            winners[float(share)] = str(best["policy"])
    return winners


def _beats(
    rows: pd.DataFrame, replicates: dict, share: float, baseline: str, tail: float
) -> pd.Series:
    """Whether each row's paired gain over ``baseline`` has its ``tail`` percentile > 0."""
    base = replicates[baseline][share][1:]
    return rows["candidate"].map(
        lambda c: bool(np.nanpercentile(replicates[c][share][1:] - base, tail) > 0)
    )


@dataclass
class PolicyTable:
    """Held-out evidence per candidate and budget share, and the winner per share.

    Attributes
    ----------
    evidence : DataFrame
        One row per (candidate, budget_share): ``candidate`` (a learner name,
        ``value_at_risk`` or ``churn_probability``), ``policy`` (one of
        :data:`POLICIES`, or ``candidate`` for learners not chosen), ``budget_share``,
        ``incremental_value`` with ``ci_low``/``ci_high`` (the decision's measurement,
        currency net of offer costs), optionally ``measured_spend`` (+ interval, raw
        net spend), ``qini``, and ``gap`` with ``gap_ci_low``/``gap_ci_high`` (paired
        difference to the winning policy).
    learner : str
        The meta-learner standing for the ``uplift`` policy.
    heldout : str
        What the evidence was measured on (e.g. "4 held-out campaigns (...), 26,000 rows").
    winners : dict of float to str
        Winning policy per budget share (computed from ``evidence`` when not given).
    value_basis : str
        What an incremental purchase was valued at (see
        :func:`fidelite.training.uplift.valuation.customer_value`).
    """

    evidence: pd.DataFrame
    learner: str
    heldout: str
    winners: dict[float, str] = field(default_factory=dict)
    value_basis: str = "response_spend"

    def __post_init__(self) -> None:
        if not self.winners:
            self.winners = pick_winners(self.evidence)

    @classmethod
    def from_comparison(
        cls,
        comparison: Comparison,
        *,
        learner: str,
        heldout: str,
        value_basis: str,
        confidence: float = 0.95,
    ) -> PolicyTable:
        """Policies from a :class:`~fidelite.training.uplift.valuation.Comparison`.

        ``learner`` stands for the ``uplift`` policy; the baseline rankings for their
        own; the other learners are kept as ``candidate`` rows for reference. Value at
        risk is kept at a budget share unless another policy's paired gain over it is
        clear at ``confidence`` (:func:`pick_winners` with the replicates).
        """
        evidence = comparison.evidence.assign(
            policy=comparison.evidence["candidate"].map(
                lambda c: "uplift" if c == learner else (c if c in POLICIES[1:] else "candidate")
            )
        )
        winners = pick_winners(evidence, comparison.replicates, confidence=confidence)
        evidence = paired_gaps(evidence, comparison.replicates, winners)
        return cls(evidence, learner, heldout, winners, value_basis)

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
        basis = _VALUATION.get(getattr(self, "value_basis", "response_spend"), "")
        best = (
            rows["incremental_value"].idxmax() if rows["incremental_value"].notna().any() else None
        )
        if best is None or best == policy:
            lead = f"{policy} captured the most held-out incremental value"
        else:
            lead = (
                f"{policy} kept: no other policy captured clearly more held-out incremental value"
            )
        reason = (
            f"{lead} when contacting the top {nearest:.0%} ({self.heldout}; {basis}, net of "
            f"offer costs; uplift model: {self.learner}): {described}"
        )
        reason += _margin(rows, policy)
        if not (rows["incremental_value"] > 0).any():
            reason += (
                "; every policy lost money at this budget on the held-out campaigns: consider "
                "a smaller budget or a cheaper offer"
            )
        return PolicyChoice(policy=policy, reason=reason, budget_share=nearest)


def _margin(rows: pd.DataFrame, policy: str) -> str:
    """The paired gap between the winner and the best other policy, with its interval."""
    if "gap" not in rows or len(rows) < 2:
        return ""
    others = rows.drop(index=policy).sort_values("incremental_value", ascending=False)
    runner, r = others.index[0], others.iloc[0]
    if not np.isfinite(r.gap_ci_low):
        return ""
    if r.gap > 0:  # the runner-up measured more but not clearly: the default was kept
        return (
            f"; {runner} ahead of {policy} by {_money(r.gap)} (paired 95% CI "
            f"{_money(r.gap_ci_low)} to {_money(r.gap_ci_high)}): the held-out campaigns "
            "do not separate them clearly"
        )
    lead = (
        f"; {policy} ahead of {runner} by {_money(-r.gap)} (paired 95% CI "
        f"{_money(-r.gap_ci_high)} to {_money(-r.gap_ci_low)})"
    )
    if r.gap_ci_high >= 0:
        lead += ": the held-out campaigns do not separate them clearly"
    return lead


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
