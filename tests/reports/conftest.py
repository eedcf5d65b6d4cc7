"""Fixtures for the report tests: a small hand-made customer base and the demo base."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.reports import ReportConfig, load_report_inputs
from fidelite.reports.base import build_customer_base

AS_OF = "2025-06-30"
CHANNELS = ("paid_search", "referral", "organic")
COSTS = {"paid_search": 40.0, "referral": 15.0, "organic": 0.0}


def _hand_made(seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """60 customers over 18 months, with the awkward cases spelled out.

    Returns transactions, customers and scores (raw contract form).
    """
    rng = np.random.default_rng(seed)
    rows, customers = [], []
    for i in range(60):
        cid = f"K{i:03d}"
        channel = CHANNELS[i % 3]
        signup = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 500)))
        cost = COSTS[channel] + (float(rng.integers(0, 10)) if channel != "organic" else 0.0)
        customers.append((cid, signup, channel, np.nan if i == 7 else cost))
        if i % 10 == 9:
            continue  # signed up, never bought: a prospect
        day = signup + pd.Timedelta(days=int(rng.integers(0, 20)))
        for j in range(int(rng.integers(1, 9))):
            amount = float(np.round(rng.gamma(3.0, 20.0), 2))
            rows.append((cid, f"O{i:03d}-{j}", day + pd.Timedelta(hours=10), amount))
            day += pd.Timedelta(days=int(rng.integers(5, 120)))
    # same-day full refund: the only order of K100 cancels, so K100 never purchased
    customers.append(("K100", pd.Timestamp("2025-03-01"), "organic", 0.0))
    rows += [
        ("K100", "R1", pd.Timestamp("2025-03-02 09:00"), 50.0),
        ("K100", "R1", pd.Timestamp("2025-03-02 18:00"), -50.0),
    ]
    # an order refunded in full three weeks later: a purchase until the refund, then not
    customers.append(("K101", pd.Timestamp("2025-04-01"), "referral", 12.0))
    rows += [
        ("K101", "A1", pd.Timestamp("2025-04-10 12:00"), 30.0),
        ("K101", "A2", pd.Timestamp("2025-05-20 12:00"), 40.0),
        ("K101", "A2", pd.Timestamp("2025-06-12 12:00"), -40.0),
    ]
    # a later partial refund of K000's first order
    first = next(r for r in rows if r[0] == "K000")
    rows.append(("K000", first[1], first[2] + pd.Timedelta(days=3), -round(first[3] / 2, 2)))
    transactions = pd.DataFrame(rows, columns=["customer_id", "order_id", "timestamp", "amount"])
    customer_frame = pd.DataFrame(
        customers, columns=["customer_id", "signup_at", "acquisition_channel", "acquisition_cost"]
    )
    scored = customer_frame["customer_id"].iloc[::2]
    scores = pd.DataFrame(
        {
            "customer_id": scored,
            "as_of": AS_OF,
            "horizon_days": 90,
            "status": "ok",
            "churn_probability": rng.uniform(0, 1, len(scored)),
            "predicted_clv": rng.gamma(2.0, 30.0, len(scored)).round(2),
        }
    )
    scores["value_at_risk"] = scores["churn_probability"] * scores["predicted_clv"]
    return transactions, customer_frame, scores


@pytest.fixture(scope="session")
def hand_made() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Raw transactions, customers and scores of the hand-made base."""
    return _hand_made()


@pytest.fixture(scope="session")
def hand_made_base(hand_made):
    """The report's coded customer base over the hand-made tables at AS_OF."""
    transactions, customers, scores = hand_made
    inputs = load_report_inputs(transactions, None, customers, as_of=AS_OF, scores=scores)
    return build_customer_base(inputs, ReportConfig())


DEMO_AS_OF = "2025-12-31"


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory):
    """Demo tables, a trained and promoted champion and its scores, written by the CLI.

    Returns a dict of paths: ``dir``, ``transactions``, ``events``, ``customers``,
    ``campaigns``, ``scores``, ``tracking_uri``.
    """
    from typer.testing import CliRunner

    from fidelite.cli import app

    root = tmp_path_factory.mktemp("report-demo")
    runner = CliRunner()
    data = root / "demo"
    result = runner.invoke(
        app, ["demo-data", "--customers", "1500", "--out", str(data), "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    tables = {t: data / f"{t}.parquet" for t in ("transactions", "events", "customers")}
    args = [f"--{t}={p}" for t, p in tables.items()]
    tracking = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    result = runner.invoke(
        app,
        [
            "train",
            *args,
            "--as-of",
            DEMO_AS_OF,
            "--promote",
            "--tracking-uri",
            tracking,
            "--n-jobs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    scores = root / "scores.parquet"
    result = runner.invoke(
        app,
        [
            "score",
            *args,
            f"--campaigns={data / 'campaigns.parquet'}",  # the report's campaigns section
            "--as-of",
            DEMO_AS_OF,
            "--out",
            str(scores),
            "--tracking-uri",
            tracking,
        ],
    )
    assert result.exit_code == 0, result.output
    return {
        "dir": root,
        **tables,
        "campaigns": data / "campaigns.parquet",
        "scores": scores,
        "tracking_uri": tracking,
    }
