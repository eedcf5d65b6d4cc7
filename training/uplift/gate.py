"""The promotion gate's uplift check: a challenger may not lose what the champion does.

* A challenger without an uplift component replacing a champion with one loses the
  uplift policy for every campaign: refused (the caller's ``--force`` overrides).
* When campaign rows exist that neither model was trained on (sent after both models'
  training day, with complete response windows), both rank them and the incremental
  net value each captures at the reference budget share is compared, paired by
  bootstrap: the challenger is refused only when its shortfall is significant (the
  whole 95% interval of the difference lies below zero), since held-out campaign
  outcomes are noisy.
* Otherwise the gate says that uplift could not be compared, and lets the churn/CLV
  gate decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fidelite.training.uplift.dataset import UpliftRows
from fidelite.training.uplift.evaluation import bootstrap_counts, value_replicates
from fidelite.training.uplift.model import UpliftModel

__all__ = ["UpliftGate", "uplift_gate"]


@dataclass(frozen=True)
class UpliftGate:
    """Whether the uplift check passes, why, and the numbers behind it."""

    passed: bool
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)


def uplift_gate(
    champion: UpliftModel | None,
    challenger: UpliftModel | None,
    rows: UpliftRows | None = None,
    *,
    share: float = 0.2,
    n_boot: int = 300,
) -> UpliftGate:
    """Compare the uplift components of champion and challenger (rules above).

    Parameters
    ----------
    champion, challenger : UpliftModel or None
    rows : UpliftRows, optional
        Campaign rows sent after both models' ``trained_until``, with outcomes.
    share : float
        Budget share at which the captured incremental net value is compared.
    """
    if champion is None:
        return UpliftGate(True, "the champion has no uplift component: nothing to lose")
    if challenger is None:
        return UpliftGate(
            False,
            "the challenger has no uplift component but the champion has one: promoting it "
            "would drop the uplift policy (train with --campaigns, or force)",
        )
    latest = max(champion.trained_until, challenger.trained_until)
    if rows is None or len(rows) == 0 or not (rows.rows["send_day"] > latest).all():
        return UpliftGate(
            True,
            f"no campaign sent after both models' training day ({latest.date()}): uplift "
            "not compared",
        )
    treated = rows.rows["treated"].to_numpy()
    spend = rows.rows["net_spend"].to_numpy(dtype=float)
    cost = rows.rows["offer_cost"].to_numpy(dtype=float)
    channel = rows.rows["channel"].to_numpy()
    counts = bootstrap_counts(treated, n_boot, seed=0)
    values = {}
    for name, model in (("champion", champion), ("challenger", challenger)):
        score = model.predict(rows.features, channel)["uplift_value"].to_numpy() - cost
        values[name] = value_replicates(score, treated, spend, (share,), cost=cost, counts=counts)[
            share
        ]
    difference = values["challenger"] - values["champion"]
    low, high = np.nanpercentile(difference[1:], [2.5, 97.5])
    metrics = {
        "gate_uplift_value_champion": float(values["champion"][0]),
        "gate_uplift_value_challenger": float(values["challenger"][0]),
        "gate_uplift_difference_ci_low": float(low),
        "gate_uplift_difference_ci_high": float(high),
    }
    text = (
        f"incremental net value at {share:.0%} on {len(spend):,} later campaign rows: "
        f"challenger {values['challenger'][0]:,.0f} vs champion {values['champion'][0]:,.0f} "
        f"(difference 95% CI {low:,.0f} to {high:,.0f})"
    )
    return UpliftGate(bool(high >= 0), text, metrics)
