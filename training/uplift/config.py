"""Settings of the uplift fit (all logged with the run)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fidelite.training.uplift.learners import ENSEMBLE_MEMBERS, LEARNERS
from fidelite.training.uplift.responses import DEFAULT_RESPONSE_DAYS

__all__ = ["UpliftConfig"]


@dataclass(frozen=True)
class UpliftConfig:
    """Settings of :func:`fidelite.training.uplift.fit_uplift`.

    Parameters
    ----------
    window_days : int
        Response window after a send, in days.
    learners : tuple of str
        Meta-learners compared (keys of ``LEARNERS``).
    budget_shares : tuple of float
        Shares of the held-out rows contacted at which the candidates are compared.
    reference_share : float
        Budget share that picks the learner standing for the ``uplift`` policy.
    n_boot : int
        Bootstrap replicates of the intervals.
    heldout_share : float
        Share of customers held out when only one campaign can teach uplift.
    min_training_campaigns : int
        A campaign is held out (scored by learners fitted on the campaigns sent before
        it) only when at least this many campaigns came before it; with fewer
        campaigns in all, the latest is held out after whatever came before.
    heldout_campaigns : int or None
        At most this many of the latest such campaigns are held out; None = all of
        them (rolling origin: every campaign the learners could have been judged on).
    policy_confidence : float
        Value at risk stays the policy at a budget share unless another policy's
        paired gain over it on the held-out rows is clear at this two-sided level.
    learner_params : dict
        LightGBM settings passed to every learner.
    ensemble_members : tuple of str or None
        The learners the ensemble averages; None: chosen on the held-out campaigns
        (:mod:`~fidelite.training.uplift.members`).
    n_jobs, random_state : int
    """

    window_days: int = DEFAULT_RESPONSE_DAYS
    learners: tuple[str, ...] = tuple(LEARNERS)
    budget_shares: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)
    reference_share: float = 0.2
    n_boot: int = 200
    heldout_share: float = 0.3
    min_training_campaigns: int = 2
    heldout_campaigns: int | None = None
    policy_confidence: float = 0.95
    learner_params: dict = field(default_factory=dict)
    ensemble_members: tuple[str, ...] | None = None
    n_jobs: int = 1
    random_state: int = 0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.learners) - set(LEARNERS))
        if not self.learners or unknown:
            raise ValueError(f"learners must be among {sorted(LEARNERS)}, got unknown {unknown}")
        members = self.ensemble_members
        if members is not None and (not members or not set(members) <= set(ENSEMBLE_MEMBERS)):
            raise ValueError(f"ensemble_members must be among {ENSEMBLE_MEMBERS}, got {members}")
        if self.window_days <= 0:
            raise ValueError(f"window_days must be > 0, got {self.window_days}")
        if not 0 < self.reference_share <= 1:
            raise ValueError(f"reference_share must be in (0, 1], got {self.reference_share}")
        if not 0 <= self.policy_confidence < 1:
            raise ValueError(f"policy_confidence must be in [0, 1), got {self.policy_confidence}")
        if self.min_training_campaigns < 1:
            raise ValueError("min_training_campaigns must be >= 1")
        if self.heldout_campaigns is not None and self.heldout_campaigns < 1:
            raise ValueError("heldout_campaigns must be >= 1 or None")
