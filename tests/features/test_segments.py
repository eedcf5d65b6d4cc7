"""Lifecycle stages and RFM segments on hand-made tables."""

from __future__ import annotations

import pandas as pd

from fidelite.features import FeatureParams
from fidelite.features.segments import quintile_score
from tests.features.helpers import features_at

AS_OF = "2024-12-31"


def transactions(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="ISO8601")
    frame["order_id"] = [f"o{i}" for i in range(len(frame))]
    return frame


def test_one_customer_per_lifecycle_stage():
    tx = transactions(
        [
            ("new", "2024-12-20", 10.0),
            # Monthly buyer, last purchase 10 days ago: active.
            *[("active", f"2024-{m:02d}-21", 10.0) for m in range(1, 13)],
            # Monthly buyer silent for 71 days (> 1.5 x 30): at risk.
            *[("overdue", f"2024-{m:02d}-21", 10.0) for m in range(1, 11)],
            # Single purchase 120 days ago (> at_risk_days, rhythm unknown): at risk.
            ("single", "2024-09-02", 10.0),
            ("lapsed", "2024-01-15", 10.0),
            ("lapsed", "2024-02-15", 10.0),
            # Away for a year, back 5 days ago.
            ("back", "2023-06-01", 10.0),
            ("back", "2024-12-26", 10.0),
        ]
    )
    customers = pd.DataFrame({"customer_id": ["prospect"], "signup_at": ["2024-06-01"]})
    stages = features_at(tx, customers=customers, as_of=AS_OF)["lifecycle_stage"]
    assert stages.to_dict() == {
        "active": "active",
        "back": "reactivated",
        "lapsed": "lapsed",
        "new": "new",
        "overdue": "at_risk",
        "prospect": "prospect",
        "single": "at_risk",
    }


def test_lifecycle_thresholds_come_from_params():
    tx = transactions([("a", "2024-12-01", 10.0)])  # first purchase 30 days ago
    assert features_at(tx, as_of=AS_OF).loc["a", "lifecycle_stage"] == "active"
    wider = FeatureParams(new_days=31)
    assert features_at(tx, as_of=AS_OF, params=wider).loc["a", "lifecycle_stage"] == "new"


def test_lapsed_boundary_is_exactly_lapsed_days():
    tx = transactions([("a", "2024-07-04", 10.0), ("b", "2024-07-05", 10.0)])  # 180 / 179 days
    stages = features_at(tx, as_of=AS_OF)["lifecycle_stage"]
    assert stages["a"] == "lapsed" and stages["b"] == "at_risk"


def test_quintile_score_ties_share_the_lowest_score():
    scores = quintile_score(pd.Series([0, 0, 0, 0, 0, 0, 1, 2, 3, 4.0]))
    assert list(scores) == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def test_rfm_segments_follow_documented_rules():
    rows = []
    # Ten customers: c0 bought once long ago and little ... c9 bought often, recently, big.
    for i in range(10):
        for k in range(i + 1):
            rows.append(
                (
                    f"c{i}",
                    str(pd.Timestamp("2024-01-01") + pd.Timedelta(days=30 * i + k)),
                    10.0 * (i + 1),
                )
            )
    # Frequent big spender who stopped buying early: high F and M, lowest R.
    rows += [
        ("gone", str(pd.Timestamp("2023-01-01") + pd.Timedelta(days=k)), 500.0) for k in range(20)
    ]
    customers = pd.DataFrame({"customer_id": ["p"], "signup_at": ["2024-01-01"]})
    segments = features_at(transactions(rows), customers=customers, as_of=AS_OF)["rfm_segment"]
    assert segments["c9"] == "champions"
    assert segments["c0"] == "lost"
    assert segments["gone"] == "at_risk"
    assert segments["p"] == "prospect"
    assert set(segments) <= {
        "champions",
        "loyal",
        "potential",
        "need_attention",
        "at_risk",
        "hibernating",
        "lost",
        "prospect",
    }
