"""Hand-made label windows: which customers, which days, which amounts."""

from __future__ import annotations

import pandas as pd
import pytest

from fidelite.features.data import load_transactions
from fidelite.training.labels import make_labels

AS_OF = "2024-03-10"
HORIZON = 30  # label window: 2024-03-11 .. 2024-04-09 inclusive


def _transactions(rows: list[tuple]) -> pd.DataFrame:
    """Rows (customer, timestamp, amount[, order_id]); a refund repeats its order's id."""
    return load_transactions(
        pd.DataFrame(
            {
                "customer_id": [row[0] for row in rows],
                "order_id": [row[3] if len(row) > 3 else f"o{i}" for i, row in enumerate(rows)],
                "timestamp": pd.to_datetime([row[1] for row in rows], format="ISO8601"),
                "amount": [row[2] for row in rows],
            }
        )
    )


@pytest.fixture
def labels() -> pd.DataFrame:
    rows = [
        # every customer has history before D so they are known at the cutoff
        *[(c, "2024-01-05 12:00", 10.0) for c in "ABCDEFG"],
        ("A", "2024-03-10 23:59:59", 100.0),  # on D: feature side, not a label
        ("B", "2024-03-11 00:00:00", 20.0),  # first instant of D+1: in the window
        ("C", "2024-04-09 23:59:59", 30.0),  # last instant of D+H: in the window
        ("D", "2024-04-10 00:00:00", 40.0),  # D+H+1: after the window
        ("E", "2024-03-20 10:00", -10.0, "o4"),  # refund of E's order placed before D
        ("F", "2024-03-15 09:00", 5.0),  # two orders on one day, one on another...
        ("F", "2024-03-15 18:00", 7.0),
        ("F", "2024-03-25 18:00", 8.0, "f3"),
        ("F", "2024-03-26 18:00", -8.0, "f3"),  # ... refunded in full the next day
        ("G", "2024-03-20 10:00", 25.0, "g1"),  # bought and refunded the same day
        ("G", "2024-03-20 16:00", -25.0, "g1"),
        ("Z", "2024-03-12 10:00", 50.0),  # first seen after D: excluded
    ]
    return make_labels(_transactions(rows), as_of=AS_OF, horizon_days=HORIZON)


def test_window_edges(labels: pd.DataFrame) -> None:
    assert labels.loc["A", "churned"] == 1 and labels.loc["A", "future_spend"] == 0.0
    assert labels.loc["B", "churned"] == 0 and labels.loc["B", "future_spend"] == 20.0
    assert labels.loc["C", "churned"] == 0 and labels.loc["C", "future_spend"] == 30.0
    assert labels.loc["D", "churned"] == 1 and labels.loc["D", "future_purchases"] == 0


def test_refunds_of_orders_placed_before_the_cutoff_leave_the_label_alone(labels) -> None:
    assert labels.loc["E"].to_dict() == {
        "churned": 1,
        "future_spend": 0.0,
        "future_purchases": 0,
        "days_to_purchase": pytest.approx(float("nan"), nan_ok=True),
    }


def test_an_order_refunded_in_full_is_no_purchase(labels: pd.DataFrame) -> None:
    assert labels.loc["G", "churned"] == 1 and labels.loc["G", "future_spend"] == 0.0
    assert labels.loc["F", "future_purchases"] == 1  # 03-25 was refunded on 03-26
    assert labels.loc["F", "future_spend"] == pytest.approx(12.0)


def test_days_to_first_purchase(labels: pd.DataFrame) -> None:
    assert labels.loc["B", "days_to_purchase"] == 1  # D+1
    assert labels.loc["C", "days_to_purchase"] == HORIZON  # D+H
    assert labels.loc["F", "days_to_purchase"] == 5
    assert labels.loc[["A", "D", "E", "G"], "days_to_purchase"].isna().all()


def test_only_customers_known_by_cutoff(labels: pd.DataFrame) -> None:
    assert list(labels.index) == list("ABCDEFG")
    assert labels.index.name == "customer_id"
    assert list(labels.columns) == [
        "churned",
        "future_spend",
        "future_purchases",
        "days_to_purchase",
    ]
    assert labels["churned"].dtype == "int8"


def test_customers_index_is_used_exactly() -> None:
    tx = _transactions([("A", "2024-01-01", 1.0), ("B", "2024-03-12", 9.0)])
    index = pd.Index(["B", "P"], name="customer_id")  # P: signup-only prospect
    labels = make_labels(tx, as_of=AS_OF, horizon_days=HORIZON, customers_index=index)
    assert list(labels.index) == ["B", "P"]
    assert labels["churned"].tolist() == [0, 1]
    assert labels["future_spend"].tolist() == [9.0, 0.0]


def test_later_rows_do_not_change_labels() -> None:
    base = [("A", "2024-01-01", 1.0), ("A", "2024-03-20", 3.0)]
    later = [*base, ("A", "2024-06-01", 999.0), ("A", "2023-01-01", 500.0)]
    first = make_labels(_transactions(base), as_of=AS_OF, horizon_days=HORIZON)
    second = make_labels(_transactions(later), as_of=AS_OF, horizon_days=HORIZON)
    pd.testing.assert_frame_equal(first, second)


def test_bad_horizon_is_rejected() -> None:
    with pytest.raises(ValueError, match="horizon_days"):
        make_labels(_transactions([("A", "2024-01-01", 1.0)]), as_of=AS_OF, horizon_days=0)
