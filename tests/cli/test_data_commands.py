"""The `fidelite` CLI commands owned by the features issue."""

import pandas as pd
from typer.testing import CliRunner

from fidelite.cli import app
from fidelite.errors import DataContractError

runner = CliRunner()


def test_demo_data_writes_loadable_parquet(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(
        app, ["demo-data", "--customers", "120", "--out", str(out), "--seed", "5"]
    )
    assert result.exit_code == 0, result.output
    customers = pd.read_parquet(out / "customers.parquet")
    assert len(customers) == 120
    assert len(pd.read_parquet(out / "transactions.parquet")) > 0
    assert len(pd.read_parquet(out / "events.parquet")) > 0
    assert "transactions.parquet" in result.output


def test_demo_data_rejects_bad_dates(tmp_path):
    result = runner.invoke(
        app,
        [
            "demo-data",
            "--customers",
            "10",
            "--out",
            str(tmp_path),
            "--start",
            "2025-01-01",
            "--end",
            "2024-01-01",
        ],
    )
    assert result.exit_code == DataContractError.exit_code
    assert "must be after" in result.output


def test_features_data_error_is_one_clean_line_and_exit_2(tmp_path):
    bad = tmp_path / "tx.csv"
    bad.write_text("customer_id,order_id,timestamp,amount\n1,a,2024-01-01,3\n2,b,2024-01-02,x\n")
    out = tmp_path / "features.parquet"
    result = runner.invoke(
        app, ["features", "--transactions", str(bad), "--as-of", "2024-06-30", "--out", str(out)]
    )
    assert result.exit_code == DataContractError.exit_code
    assert "Traceback" not in result.output
    assert "data error" in result.output and "'amount'" in result.output
    assert "line 3" in result.output
    assert not out.exists()


def test_features_bad_as_of_exit_2(tmp_path):
    result = runner.invoke(
        app,
        [
            "features",
            "--transactions",
            str(tmp_path / "missing.csv"),
            "--as-of",
            "someday",
            "--out",
            str(tmp_path / "f.parquet"),
        ],
    )
    assert result.exit_code == DataContractError.exit_code
    assert "--as-of" in result.output and "YYYY-MM-DD" in result.output


def test_features_end_to_end_on_demo_data(tmp_path, demo_data):
    from fidelite.features.demo import write_demo_data

    paths = write_demo_data(demo_data, tmp_path / "demo")
    out = tmp_path / "features.parquet"
    result = runner.invoke(
        app,
        [
            "features",
            "--transactions",
            str(paths["transactions"]),
            "--events",
            str(paths["events"]),
            "--customers",
            str(paths["customers"]),
            "--as-of",
            "2025-06-30",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    signed_up = (demo_data.customers["signup_at"] < pd.Timestamp("2025-07-01")).sum()
    assert 0 < len(table) <= signed_up
    assert table.index.is_unique
