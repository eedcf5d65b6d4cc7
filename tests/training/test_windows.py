"""Backtest cutoff arithmetic and how the run's settings reach it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.errors import InsufficientHistoryError
from fidelite.features.inputs import Inputs, load_inputs
from fidelite.training.config import TrainConfig
from fidelite.training.holdout import UNUSED, RowRoles
from fidelite.training.train import plan_cutoffs
from fidelite.training.windows import backtest_cutoffs, plan_windows


def test_cutoffs_step_back_from_as_of_oldest_first() -> None:
    cutoffs = backtest_cutoffs(pd.Timestamp("2023-01-01 08:00"), "2024-12-31", horizon_days=90)
    assert cutoffs == [
        pd.Timestamp("2024-04-05"),
        pd.Timestamp("2024-07-04"),
        pd.Timestamp("2024-10-02"),
    ]
    # the newest label window (D-H, D] ends exactly on D
    assert cutoffs[-1] + pd.Timedelta(days=90) == pd.Timestamp("2024-12-31")


def test_cutoffs_custom_step() -> None:
    cutoffs = backtest_cutoffs(
        "2024-01-01",
        pd.Timestamp("2024-12-31 17:30"),
        horizon_days=30,
        n_windows=4,
        step_days=7,
    )
    assert cutoffs == [
        pd.Timestamp(d) for d in ("2024-11-10", "2024-11-17", "2024-11-24", "2024-12-01")
    ]


def test_cutoffs_keep_only_windows_with_enough_history() -> None:
    # H=30, min history 90: a cutoff needs to be on or after 2024-03-31
    cutoffs = backtest_cutoffs("2024-01-01", "2024-06-01", horizon_days=30, n_windows=5)
    assert cutoffs == [pd.Timestamp("2024-04-02"), pd.Timestamp("2024-05-02")]


def test_too_short_history_says_what_is_needed() -> None:
    with pytest.raises(InsufficientHistoryError) as excinfo:
        backtest_cutoffs("2024-05-01", "2024-06-30", horizon_days=30)
    message = str(excinfo.value)
    assert "120 days" in message  # 90 days of history + 30 days of labels
    assert "2024-03-02" in message  # latest acceptable first day
    assert "2024-05-01" in message and "60 days" in message  # what the data has


def _history(start: str, end: str) -> Inputs:
    days = pd.date_range(start, end, freq="7D")
    orders = pd.DataFrame(
        {"customer_id": "1", "order_id": range(len(days)), "timestamp": days, "amount": 10.0}
    )
    return load_inputs(orders, as_of="1997-12-31")


def _cutoffs(inputs, config):
    return plan_cutoffs(inputs.transactions["timestamp"].min(), inputs.as_of, config)


def test_train_config_step_and_min_history_reach_the_backtest_cutoffs():
    inputs = _history("1997-01-01", "1997-12-31")
    with pytest.raises(InsufficientHistoryError, match="LightGBM needs 2"):
        _cutoffs(inputs, TrainConfig(horizon_days=182, n_windows=4))
    dense = TrainConfig(horizon_days=182, n_windows=4, step_days=28, min_history_days=91)
    assert [str(c.date()) for c in _cutoffs(inputs, dense)] == [
        "1997-04-09",
        "1997-05-07",
        "1997-06-04",
        "1997-07-02",
    ]
    # Baseline-only keeps the newest window only, and none is fine.
    baseline = TrainConfig(horizon_days=182, baseline_only=True)
    assert _cutoffs(inputs, baseline) == [pd.Timestamp("1997-07-02")]
    short = _history("1997-06-01", "1997-12-31")
    assert _cutoffs(short, baseline) == []


def _days(text: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(d) for d in text.split()]


def test_plan_holds_out_the_newest_window_with_a_gap():
    cutoffs = _days("2024-10-05 2025-01-03 2025-04-03 2025-07-02")
    plan = plan_windows(cutoffs, pd.Timestamp("2025-09-30"), 90, pd.Timestamp("2024-04-01"))
    assert plan.holdout == pd.Timestamp("2025-07-02") and plan.mode == "time"
    assert plan.train == cutoffs[:3]  # every label period ends by the held-out cutoff
    # The held-out window (summer) has no training window of its season: one year earlier
    # is added as a level-only window; as-of 2025-09-30 has 2024-10-05 (same season).
    assert plan.level == [pd.Timestamp("2025-07-02") - pd.Timedelta(days=364)]
    assert plan.cutoffs == sorted({*cutoffs, *plan.level})


def test_plan_leaves_out_windows_whose_labels_overlap_the_held_out_one():
    cutoffs = _days("2025-02-02 2025-03-04 2025-04-03 2025-05-03 2025-06-02 2025-07-02")
    plan = plan_windows(cutoffs, pd.Timestamp("2025-09-30"), 90, pd.Timestamp("2024-04-01"))
    assert plan.train == cutoffs[:3] and plan.mode == "time"
    assert "2025-05-03, 2025-06-02 left out" in plan.notes[0]


def test_plan_holds_out_customers_when_no_gap_is_possible_and_says_so():
    cutoffs = _days("1997-04-09 1997-05-07 1997-06-04 1997-07-02")
    plan = plan_windows(cutoffs, pd.Timestamp("1997-12-31"), 182, pd.Timestamp("1997-04-02"))
    assert plan.mode == "customers" and plan.train == cutoffs
    assert "a random quarter of the customers is held out" in plan.notes[0]
    assert "no window of the same season as 1997-12-31" in plan.notes[1]
    assert plan.level == []


def test_customer_holdout_keeps_every_row_of_a_held_out_customer_away_from_training():
    cutoffs = _days("1997-04-09 1997-05-07")
    window = np.repeat(np.array(cutoffs, dtype="datetime64[ns]"), 400)
    customer = np.tile(np.array([f"c{i}" for i in range(400)], dtype=object), 2)
    roles = RowRoles.assign(
        window,
        customer,
        train_cutoffs=cutoffs,
        holdout_cutoff=cutoffs[-1],
        level_cutoffs=[],
        mode="customers",
    )
    held = set(customer[roles.held])
    assert 0.15 < len(held) / 400 < 0.35
    assert not held & set(customer[roles.train])
    assert (roles.role[np.isin(customer, list(held)) & (window == window.min())] == UNUSED).all()
