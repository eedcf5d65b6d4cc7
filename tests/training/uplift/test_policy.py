"""PolicyTable: the winner per budget share, ties to value at risk, losing budgets said."""

import numpy as np
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


def test_from_comparison_names_the_runner_up_gap_with_its_paired_interval():
    from fidelite.training.uplift.valuation import Comparison

    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, 100)
    replicates = {
        "ensemble": {0.2: np.r_[100.0, 100 + 5 * noise]},
        "t_learner": {0.2: np.r_[150.0, 150 + 5 * noise]},
        "value_at_risk": {0.2: np.r_[90.0, 90 + 40 * noise[::-1]]},
        "churn_probability": {0.2: np.r_[-50.0, -50 + noise]},
    }
    evidence = pd.DataFrame(
        [
            {"candidate": c, "budget_share": 0.2, "incremental_value": r[0.2][0], "ci_low": 0.0}
            | {"ci_high": 1.0, "qini": 0.0}
            for c, r in replicates.items()
        ]
    )
    table = PolicyTable.from_comparison(
        Comparison(evidence, {}, replicates),
        learner="ensemble",
        heldout="2 campaigns",
        value_basis="value_if_retained",
    )
    # The better t_learner is only a reference candidate: the ensemble stands for uplift.
    assert table.winners == {0.2: "uplift"}
    rows = table.evidence.set_index("candidate")
    assert rows.loc["ensemble", "gap"] == 0 and np.isnan(rows.loc["t_learner", "gap"])
    assert rows.loc["value_at_risk", "gap"] == -10
    assert rows.loc["value_at_risk", "gap_ci_low"] < -10 < rows.loc["value_at_risk", "gap_ci_high"]
    reason = table.choose(0.2).reason
    assert "valued at value_if_retained" in reason
    assert "uplift ahead of value_at_risk by 10 (paired 95% CI" in reason
    assert "do not separate them clearly" in reason
