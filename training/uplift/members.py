"""Which learners the ensemble averages, chosen on the rolling-origin held-out campaigns.

Averaging the T-, X- and DR-learners is steadier than any one of them, but a member that
ranks a world's campaigns worse than the others drags the mean down with it (on the
demo, the DR learner's noisy pseudo-outcomes on some draws). Every member has already
ranked the held-out campaigns with learners fitted only on the campaigns sent before
each one (:func:`~fidelite.training.uplift.fit.fit_uplift`, step 3), so the members are
chosen on that evidence, which only uses campaign data before the as-of day:

* each candidate ensemble (all members, and every subset of at least two) averages its
  members' held-out estimates of the change in P(purchase);
* its **Qini** (:func:`~fidelite.training.uplift.evaluation.qini_coefficient`, on the
  purchases) is measured on each held-out campaign and averaged over the campaigns
  (campaigns differ in base rate and size; a pooled Qini would mix them);
* the candidate with the highest mean Qini is the ensemble; all members on a tie.

Single learners are not candidates here: they compete with the ensemble as learners
(``_best_learner`` in ``fit``), where one needs a significant gain to replace it.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from fidelite.training.uplift.evaluation import qini_coefficient
from fidelite.training.uplift.learners import ENSEMBLE_MEMBERS

__all__ = ["MemberChoice", "choose_members"]


class MemberChoice:
    """The chosen members and the evidence.

    Attributes
    ----------
    members : tuple of str
        The learners the ensemble averages, in :data:`ENSEMBLE_MEMBERS` order.
    qini : dict of tuple of str to float
        Mean held-out Qini per campaign of every candidate ensemble.
    """

    def __init__(self, members: tuple[str, ...], qini: dict[tuple[str, ...], float]) -> None:
        self.members = members
        self.qini = qini

    @property
    def metrics(self) -> dict[str, float]:
        """``uplift_ensemble_*`` metrics: members used (1/0) and each candidate's Qini."""
        out = {f"uplift_ensemble_uses_{m}": float(m in self.members) for m in ENSEMBLE_MEMBERS}
        for subset, value in self.qini.items():
            out[f"uplift_ensemble_qini_{'_'.join(_short(m) for m in subset)}"] = value
        return out

    @property
    def reason(self) -> str:
        """One line: the members and their held-out Qini against all members'."""
        chosen = self.qini.get(self.members, np.nan)
        full = self.qini.get(tuple(ENSEMBLE_MEMBERS), np.nan)
        return (
            f"ensemble of {', '.join(self.members)}: mean held-out Qini {chosen:.3f} "
            f"(all members {full:.3f})"
        )


def _short(name: str) -> str:
    return name.removesuffix("_learner")


def _mean_qini(score: np.ndarray, campaigns: list[np.ndarray], treated, bought) -> float:
    values = [qini_coefficient(score[rows], treated[rows], bought[rows]) for rows in campaigns]
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def choose_members(effects: dict[str, np.ndarray], rows: pd.DataFrame) -> MemberChoice:
    """The ensemble's members from the members' held-out estimates (module docstring).

    Parameters
    ----------
    effects : dict of str to ndarray, shape (n_rows,)
        Each member's estimated change in P(purchase) of the held-out rows (members
        missing here are not candidates).
    rows : DataFrame, shape (n_rows, ...)
        The held-out rows: ``campaign_id``, ``treated``, ``purchased``.

    Returns
    -------
    MemberChoice
        With all (available) members when fewer than three can be compared.
    """
    available = tuple(m for m in ENSEMBLE_MEMBERS if m in effects)
    treated = rows["treated"].to_numpy(dtype=bool)
    bought = rows["purchased"].to_numpy(dtype=float)
    ids = rows["campaign_id"].to_numpy()
    campaigns = [np.flatnonzero(ids == c) for c in pd.unique(ids)]
    # the full set first: max() keeps the first of equal values
    subsets = [c for k in range(len(available), 1, -1) for c in combinations(available, k)]
    qini = {
        subset: _mean_qini(
            np.mean([effects[m] for m in subset], axis=0), campaigns, treated, bought
        )
        for subset in subsets
    }
    if not qini or len(available) < 3:
        return MemberChoice(available, qini)
    best = max(subsets, key=lambda subset: np.nan_to_num(qini[subset], nan=-np.inf))
    return MemberChoice(best, qini)
