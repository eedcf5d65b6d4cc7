"""The promotion gate's uplift check: a challenger may not lose what the champion does.

* A challenger without an uplift component replacing a champion with one loses the
  uplift policy for every campaign: refused (the caller's ``--force`` overrides).
* Campaigns sent after the champion's training day that the challenger held out (each
  ranked by learners fitted on the campaigns before it: :func:`fit_uplift`'s rolling
  origin) are rows neither model learnt from. Both rank them, the champion with its
  own churn/CLV scores and uplift model, and the incremental value each captures at the
  reference budget share is compared with the policy valuation (incremental purchases
  at a common customer value, covariate-adjusted:
  :mod:`~fidelite.training.uplift.valuation`), paired by bootstrap. The challenger is
  refused only when its shortfall is significant (the whole 95% interval of the
  difference below zero): held-out campaign outcomes are noisy, and the challenger is
  the one trained on the newer data.
* Otherwise the gate says that uplift could not be compared, and lets the churn/CLV
  gate decide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fidelite.training.uplift.dataset import FeatureSource, Scorer
from fidelite.training.uplift.fit import UpliftFit
from fidelite.training.uplift.model import UpliftModel, uplift_inputs
from fidelite.training.uplift.valuation import compare_rankings

__all__ = ["GateRows", "UpliftGate", "later_campaign_rows", "uplift_gate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpliftGate:
    """Whether the uplift check passes, why, and the numbers behind it."""

    passed: bool
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GateRows:
    """Campaign rows neither model learnt from, ranked by both.

    Attributes
    ----------
    rows : DataFrame, shape (n, ...)
        ``treated``, ``purchased``, ``net_spend``, ``offer_cost`` per row.
    value : ndarray, shape (n,)
        Common value of winning each customer back (the challenger's value basis).
    churn : ndarray, shape (n,) or None
        Churn probability at the day before each send (covariate adjustment).
    champion, challenger : ndarray, shape (n,)
        Each model's ranking score (expected incremental net value).
    campaigns : tuple of str
    """

    rows: pd.DataFrame
    value: np.ndarray
    churn: np.ndarray | None
    champion: np.ndarray
    challenger: np.ndarray
    campaigns: tuple[str, ...]


def later_campaign_rows(
    fit: UpliftFit, champion: UpliftModel, champion_score: Scorer, build: FeatureSource
) -> GateRows | None:
    """The challenger's held-out rows sent after the champion's training day, ranked by both.

    Parameters
    ----------
    fit : UpliftFit
        The challenger's fit (its held-out table has every candidate's score).
    champion : UpliftModel
        The champion's uplift component.
    champion_score : callable
        ``champion_score(features, day)``: the champion's churn/CLV scores frame.
    build : callable
        ``build(day)``: point-in-time features (the run's feature builder).

    Returns
    -------
    GateRows or None
        None when no held-out row was sent after the champion's training day.
    """
    table = fit.heldout
    later = table.loc[table["send_day"] > champion.trained_until].reset_index(drop=True)
    if later.empty:
        return None
    cost = later["offer_cost"].to_numpy(dtype=float)
    scores = np.full(len(later), np.nan)
    for day, index in later.groupby("send_day").groups.items():
        before = pd.Timestamp(day) - pd.Timedelta(days=1)
        ids = later.loc[index, "customer_id"].to_numpy()
        features = build(before).loc[ids]
        inputs = uplift_inputs(features, champion_score(features, before))
        channel = later.loc[index, "channel"].to_numpy()
        scores[index] = champion.predict(inputs, channel)["uplift_value"].to_numpy()
    churn = later.get("score_churn_probability")
    return GateRows(
        rows=later,
        value=later["customer_value"].to_numpy(dtype=float),
        churn=None if churn is None else churn.to_numpy(dtype=float),
        champion=scores - cost,
        challenger=later[f"score_{fit.model.policy.learner}"].to_numpy(dtype=float),
        campaigns=tuple(sorted(set(later["campaign_id"]))),
    )


def uplift_gate(
    champion: UpliftModel | None,
    challenger: UpliftModel | None,
    rows: GateRows | None = None,
    *,
    share: float = 0.2,
    n_boot: int = 300,
) -> UpliftGate:
    """Compare the uplift components of champion and challenger (rules above).

    Parameters
    ----------
    champion, challenger : UpliftModel or None
    rows : GateRows, optional
        Rows neither model learnt from (:func:`later_campaign_rows`).
    share : float
        Budget share at which the captured incremental value is compared.
    n_boot : int
        Paired bootstrap replicates.
    """
    if champion is None:
        return UpliftGate(True, "the champion has no uplift component: nothing to lose")
    if challenger is None:
        return UpliftGate(
            False,
            "the challenger has no uplift component but the champion has one: promoting it "
            "would drop the uplift policy (train with --campaigns, or force)",
        )
    if rows is None or len(rows.rows) == 0:
        return UpliftGate(
            True,
            f"no held-out campaign sent after the champion's training day "
            f"({champion.trained_until.date()}): uplift not compared",
        )
    comparison = compare_rankings(
        {"champion": rows.champion, "challenger": rows.challenger},
        rows.rows,
        value=rows.value,
        churn=rows.churn,
        shares=(share,),
        n_boot=n_boot,
        seed=0,
    )
    values = {name: comparison.replicates[name][share] for name in ("champion", "challenger")}
    difference = values["challenger"] - values["champion"]
    low, high = np.nanpercentile(difference[1:], [2.5, 97.5])
    metrics = {
        "gate_uplift_value_champion": float(values["champion"][0]),
        "gate_uplift_value_challenger": float(values["challenger"][0]),
        "gate_uplift_difference_ci_low": float(low),
        "gate_uplift_difference_ci_high": float(high),
        "gate_uplift_rows": float(len(rows.rows)),
    }
    text = (
        f"incremental value at {share:.0%} on {len(rows.rows):,} rows of "
        f"{', '.join(rows.campaigns)} (sent after the champion's training day, held out by "
        f"the challenger): challenger {values['challenger'][0]:,.0f} vs champion "
        f"{values['champion'][0]:,.0f} (difference 95% CI {low:,.0f} to {high:,.0f})"
    )
    passed = bool(high >= 0)
    if not passed:
        text = f"the challenger captures significantly less uplift value: {text}"
    return UpliftGate(passed, text, metrics)
