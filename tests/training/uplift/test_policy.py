"""PolicyTable: the winner per budget share, ties to value at risk, losing budgets said."""

import pandas as pd

from fidelite.training.uplift.policy import PolicyTable


def _table(values):
    rows = [
        {
            "candidate": c,
            "policy": p,
            "budget_share": s,
            "incremental_value": v,
            "ci_low": v - 10,
            "ci_high": v + 10,
            "qini": 0.0,
        }
        for (c, p), by_share in values.items()
        for s, v in by_share.items()
    ]
    return PolicyTable(evidence=pd.DataFrame(rows), learner="ensemble", heldout="campaign x")


def test_winner_per_share_ties_go_to_value_at_risk_and_losses_are_flagged():
    table = _table(
        {
            ("ensemble", "uplift"): {0.1: 50.0, 0.3: 20.0, 0.5: -5.0},
            ("value_at_risk", "value_at_risk"): {0.1: 10.0, 0.3: 20.0, 0.5: -1.0},
            ("churn_probability", "churn_probability"): {0.1: -3.0, 0.3: 0.0, 0.5: -8.0},
            ("t_learner", "candidate"): {0.1: 99.0, 0.3: 99.0, 0.5: 99.0},
        }
    )
    assert table.winners == {0.1: "uplift", 0.3: "value_at_risk", 0.5: "value_at_risk"}
    assert table.choose(0.12).policy == "uplift" and table.choose(0.12).budget_share == 0.1
    assert "lost money" not in table.choose(0.1).reason
    assert "lost money" in table.choose(0.5).reason
    assert table.choose(None).budget_share == 0.5
