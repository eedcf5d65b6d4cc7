"""PolicyTable: the winner per budget share, ties to value at risk, losing budgets said."""

import numpy as np
import pandas as pd

from fidelite.training.uplift.policy import PolicyTable, pick_winners


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


def _comparison(var_spread: float):
    """Replicates where uplift measures 100 and value at risk 90, paired by bootstrap.

    ``var_spread`` is how much value at risk's replicates move apart from uplift's:
    large, the paired gap's interval straddles zero; small, it lies above zero.
    """
    from fidelite.training.uplift.valuation import Comparison

    rng = np.random.default_rng(0)
    noise, own = rng.normal(0, 1, 200), rng.normal(0, 1, 200)
    replicates = {
        "ensemble": {0.2: np.r_[100.0, 100 + 5 * noise]},
        "t_learner": {0.2: np.r_[150.0, 150 + 5 * noise]},
        "value_at_risk": {0.2: np.r_[90.0, 90 + 5 * noise + var_spread * own]},
        "churn_probability": {0.2: np.r_[-50.0, -50 + noise]},
    }
    evidence = pd.DataFrame(
        [
            {"candidate": c, "budget_share": 0.2, "incremental_value": r[0.2][0], "ci_low": 0.0}
            | {"ci_high": 1.0, "qini": 0.0}
            for c, r in replicates.items()
        ]
    )
    return PolicyTable.from_comparison(
        Comparison(evidence, {}, replicates),
        learner="ensemble",
        heldout="2 campaigns",
        value_basis="value_if_retained",
    )


def test_value_at_risk_is_kept_unless_the_paired_gain_is_clear():
    unclear = _comparison(var_spread=40.0)
    # uplift measured 10 more, but the paired interval of the gap straddles zero
    assert unclear.winners == {0.2: "value_at_risk"}
    rows = unclear.evidence.set_index("candidate")
    assert rows.loc["value_at_risk", "gap"] == 0 and rows.loc["ensemble", "gap"] == 10
    assert rows.loc["ensemble", "gap_ci_low"] < 0 < rows.loc["ensemble", "gap_ci_high"]
    reason = unclear.choose(0.2).reason
    assert reason.startswith("value_at_risk kept: no other policy captured clearly more")
    assert "uplift ahead of value_at_risk by 10 (paired 95% CI" in reason
    assert "do not separate them clearly" in reason

    clear = _comparison(var_spread=2.0)
    # The better t_learner is only a reference candidate: the ensemble stands for uplift.
    assert clear.winners == {0.2: "uplift"}
    rows = clear.evidence.set_index("candidate")
    assert rows.loc["ensemble", "gap"] == 0 and np.isnan(rows.loc["t_learner", "gap"])
    assert rows.loc["value_at_risk", "gap"] == -10
    assert rows.loc["value_at_risk", "gap_ci_high"] < 0
    reason = clear.choose(0.2).reason
    assert reason.startswith("uplift captured the most held-out incremental value")
    assert "valued at value_if_retained" in reason
    assert "uplift ahead of value_at_risk by 10 (paired 95% CI" in reason
    assert "do not separate" not in reason


def test_the_largest_estimate_wins_without_replicates_a_clear_gain_with_them():
    evidence = pd.DataFrame(
        {
            "candidate": ["ensemble", "value_at_risk"],
            "policy": ["uplift", "value_at_risk"],
            "budget_share": [0.2, 0.2],
            "incremental_value": [100.0, 90.0],
        }
    )
    assert pick_winners(evidence) == {0.2: "uplift"}
    noisy = {"ensemble": {0.2: np.r_[100.0, 60.0, 140.0]}}
    noisy["value_at_risk"] = {0.2: np.r_[90.0, 130.0, 50.0]}
    assert pick_winners(evidence, noisy) == {0.2: "value_at_risk"}
    steady = {"ensemble": {0.2: np.r_[100.0, 99.0, 101.0]}}
    steady["value_at_risk"] = {0.2: np.r_[90.0, 89.0, 91.0]}
    assert pick_winners(evidence, steady) == {0.2: "uplift"}
