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


def test_features_refuses_day_first_dates_unless_date_format_is_given(tmp_path):
    tx = tmp_path / "tx.csv"
    tx.write_text(
        "customer_id,order_id,timestamp,amount\n"
        "1,a,2025-08-01,3\n"
        "1,b,13/08/2025,4\n"
        "2,c,02/09/2025,5\n"
    )
    out = tmp_path / "features.parquet"
    args = ["features", "--transactions", str(tx), "--as-of", "2025-09-30", "--out", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == DataContractError.exit_code
    assert "ISO 8601" in refused.output and "in 2 row(s)" in refused.output
    assert "line 3" in refused.output and not out.exists()

    wrong_layout = runner.invoke(app, [*args, "--date-format", "%m/%d/%Y"])
    assert wrong_layout.exit_code == DataContractError.exit_code
    assert "13/08/2025" in wrong_layout.output

    accepted = runner.invoke(app, [*args, "--date-format", "%d/%m/%Y"])
    assert accepted.exit_code == 0, accepted.output
    frame = pd.read_parquet(out)
    assert frame.loc["1", "days_since_last_purchase"] == 48  # 13 Aug, not 8 Jan
    assert frame.loc["2", "days_since_last_purchase"] == 28  # 2 Sep, not 9 Feb


def test_train_and_score_read_tables_with_the_date_format(tmp_path):
    from fidelite.cli._app import table_sources

    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,order_id,timestamp,amount\n1,a,13/08/2025,3\n")
    assert table_sources(tx, None, None, None) == (str(tx), None, None)
    frames = table_sources(tx, None, None, "%d/%m/%Y")
    assert frames[0]["timestamp"].tolist() == [pd.Timestamp("2025-08-13")]
    for command in ("train", "score", "evaluate", "features"):
        help_text = runner.invoke(app, [command, "--help"]).output
        assert "--date-format" in help_text, command


def test_features_reads_a_consent_history(tmp_path):
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,order_id,timestamp,amount\n1,a,2025-08-01,3\n2,b,2025-08-02,4\n")
    history = tmp_path / "consent.csv"
    history.write_text(
        "customer_id,channel,opted_in,changed_at\n"
        "1,email,true,2025-01-01\n"
        "1,email,false,2025-10-05\n"
        "2,sms,no,2025-09-01\n"
    )
    out = tmp_path / "features.parquet"
    args = ["features", "--transactions", str(tx), "--as-of", "2025-09-30", "--out", str(out)]
    result = runner.invoke(app, [*args, "--consent-history", str(history)])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert frame.loc["1", "consented_email"] == 1.0 and frame.loc["2", "consented_sms"] == 0.0
    assert not frame.loc["2", "sms_opt_in"]
