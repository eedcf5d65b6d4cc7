"""`fidelite train`, `fidelite promote` and `fidelite score` from the command line."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from fidelite.cli import app
from fidelite.errors import InsufficientHistoryError, ModelQualityError
from fidelite.features.contract import score_column_names
from fidelite.features.demo import generate_demo_data, write_demo_data
from fidelite.features.inputs import load_inputs
from fidelite.training.score import score

pytestmark = pytest.mark.slow

runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    demo = generate_demo_data(1200, seed=41)
    paths = write_demo_data(demo, root / "data")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return demo, paths, uri, root


def _inputs(paths) -> list[str]:
    return [
        "--transactions",
        str(paths["transactions"]),
        "--events",
        str(paths["events"]),
        "--customers",
        str(paths["customers"]),
    ]


def test_cli_train_promote_score(workspace):
    demo, paths, uri, root = workspace
    trained = runner.invoke(
        app,
        [
            "train",
            *_inputs(paths),
            "--as-of",
            "2025-09-30",
            "--horizon-days",
            "90",
            "--windows",
            "2",
            "--promote",
            "--n-jobs",
            "1",
            "--tracking-uri",
            uri,
        ],
    )
    assert trained.exit_code == 0, trained.output
    assert "no champion yet" in trained.output and "churn_roc_auc" in trained.output

    again = runner.invoke(app, ["promote", "--tracking-uri", uri])
    assert again.exit_code == 1 and "already the champion" in again.output

    out = root / "scores.parquet"
    scored = runner.invoke(
        app,
        [
            "score",
            *_inputs(paths),
            "--as-of",
            "2025-12-31",
            "--out",
            str(out),
            "--tracking-uri",
            uri,
        ],
    )
    assert scored.exit_code == 0, scored.output
    scores = pd.read_parquet(out)
    assert list(scores.columns) == list(score_column_names())
    known = set(demo.transactions["customer_id"]) | set(
        demo.customers.loc[demo.customers["signup_at"] < "2026-01-01", "customer_id"]
    )
    assert set(scores["customer_id"]) == known
    assert (scores["as_of"] == pd.Timestamp("2025-12-31")).all()

    # The library function gives the same frame, and ignores rows after as_of.
    direct = score(
        load_inputs(demo.transactions, demo.events, demo.customers, as_of="2025-06-30"),
        tracking_uri=uri,
    )
    future_free = demo.transactions[demo.transactions["timestamp"] < "2025-07-01"]
    trimmed = score(
        load_inputs(future_free, demo.events, demo.customers, as_of="2025-06-30"),
        tracking_uri=uri,
    )
    pd.testing.assert_frame_equal(direct, trimmed)


def test_cli_reports_short_history_and_bad_data(workspace, tmp_path):
    demo, paths, uri, _ = workspace
    short = runner.invoke(
        app, ["train", *_inputs(paths), "--as-of", "2024-05-01", "--tracking-uri", uri]
    )
    assert short.exit_code == InsufficientHistoryError.exit_code
    assert "insufficient history" in short.output
    assert "--baseline-only" in short.output

    bad = demo.transactions.head(50).drop(columns=["amount"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    broken = runner.invoke(
        app,
        [
            "train",
            "--transactions",
            str(tmp_path / "bad.csv"),
            "--as-of",
            "2025-06-30",
            "--tracking-uri",
            uri,
        ],
    )
    assert broken.exit_code == 2 and "amount" in broken.output


def test_cli_refuses_a_model_without_labelled_windows_and_rolls_back(workspace):
    demo, paths, uri, _ = workspace
    garbage = runner.invoke(
        app,
        [
            "train",
            *_inputs(paths),
            "--as-of",
            "2030-01-01",
            "--baseline-only",
            "--tracking-uri",
            uri,
        ],
    )
    assert garbage.exit_code == ModelQualityError.exit_code, garbage.output
    assert "missing or NaN" in garbage.output
    unreasoned = runner.invoke(app, ["promote", "--version", "1", "--tracking-uri", uri])
    assert unreasoned.exit_code == 2 and "--reason" in unreasoned.output
    back = runner.invoke(
        app, ["promote", "--version", "1", "--reason", "rollback drill", "--tracking-uri", uri]
    )
    assert back.exit_code == 0 and "rollback drill" in back.output
