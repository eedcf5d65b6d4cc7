"""`fidelite winback` and `fidelite campaign-report`, and the campaigns-table contract."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fidelite.cli import app
from fidelite.errors import DataContractError
from fidelite.features.campaigns import load_campaigns

runner = CliRunner()


def _scores(n=120):
    rng = np.random.default_rng(0)
    churn = rng.random(n)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "as_of": pd.Timestamp("2025-12-31"),
            "status": "ok",
            "churn_probability": churn,
            "predicted_clv": 100.0,
            "value_at_risk": churn * 100.0,
            "channel_preference": "email",
            "email_opt_in": True,
            "sms_opt_in": False,
            "push_opt_in": False,
            "reasons": json.dumps([]),
        }
    )


def test_winback_writes_both_groups_that_load_back_as_campaigns(tmp_path):
    scores = tmp_path / "scores.parquet"
    _scores().to_parquet(scores)
    out = tmp_path / "contacts.parquet"
    args = ["winback", "--scores", str(scores), "--out", str(out), "--model-uri", "none"]
    args += ["--campaign-id", "jan", "--holdout-share", "0.2", "--offer-cost", "1"]
    result = runner.invoke(app, [*args, "--max-contacts", "40", "--offer", "10% off"])
    assert result.exit_code == 0, result.output
    assert "value_at_risk" in result.output and "no uplift model" in result.output
    table = load_campaigns(out)
    assert (table["group"] == "treatment").sum() == 40
    assert (table["group"] == "control").sum() == 10
    assert (table["sent_at"] == pd.Timestamp("2026-01-01")).all()
    again = tmp_path / "again.csv"
    rerun = runner.invoke(app, [*args[:4], str(again), *args[5:], "--max-contacts", "40"])
    assert rerun.exit_code == 0, rerun.output
    held = set(load_campaigns(again).query("group == 'control'")["customer_id"])
    assert held == set(table.query("group == 'control'")["customer_id"])


def test_winback_refuses_unknown_channels_and_uplift_without_model(tmp_path):
    scores = tmp_path / "scores.parquet"
    _scores().to_parquet(scores)
    base = ["winback", "--scores", str(scores), "--model-uri", "none"]
    bad = runner.invoke(app, [*base, "--channels", "fax"])
    assert bad.exit_code == DataContractError.exit_code and "channels" in bad.output
    uplift = runner.invoke(app, [*base, "--policy", "uplift"])
    assert uplift.exit_code != 0 and "uplift" in uplift.output


def test_campaign_report_on_demo_files(tmp_path, demo_data):
    demo_data.campaigns.to_parquet(tmp_path / "campaigns.parquet")
    demo_data.transactions.to_parquet(tmp_path / "tx.parquet")
    out = tmp_path / "effects.csv"
    result = runner.invoke(
        app,
        [
            "campaign-report",
            "--campaigns",
            str(tmp_path / "campaigns.parquet"),
            "--transactions",
            str(tmp_path / "tx.parquet"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "winback-2025q4" in result.output and "incremental revenue" in result.output
    assert len(pd.read_csv(out)) == demo_data.campaigns["campaign_id"].nunique()


def _raw(**changes):
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "campaign_id": ["a", "a", "a"],
            "sent_at": ["2025-01-01T09:00:00Z", "2025-01-01T09:00:00Z", "2025-01-02"],
            "group": ["Treatment", "holdout", "CONTROL"],
            "channel": ["Email", None, "sms"],
            "offer_cost": [1.5, None, 2],
        }
    )
    return frame.assign(**changes)


def test_campaigns_contract_aliases_and_normal_form():
    table = load_campaigns(_raw())
    assert table["group"].tolist() == ["treatment", "control", "control"]
    assert table["customer_id"].tolist() == ["1", "2", "3"]
    assert table["channel"].tolist()[0] == "email" and table["channel"].isna().tolist()[1]
    assert table["offer_cost"].tolist() == [1.5, 0.0, 2.0]
    assert table["sent_at"].iloc[0] == pd.Timestamp("2025-01-01 09:00")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"group": ["treatment", "maybe", "control"]}, "row 1: group='maybe'"),
        ({"sent_at": ["2025-01-01", "yesterday", "2025-01-02"]}, "sent_at"),
        ({"offer_cost": [1.0, -2.0, 0.0]}, "offer_cost"),
        ({"customer_id": [1, None, 3]}, "customer_id"),
    ],
)
def test_campaigns_contract_errors_name_column_and_rows(changes, message):
    with pytest.raises(DataContractError, match=message):
        load_campaigns(_raw(**changes), name="campaigns.csv")


def test_campaigns_missing_column_and_empty(tmp_path):
    with pytest.raises(DataContractError, match=r"missing required column\(s\) \['group'\]"):
        load_campaigns(_raw().drop(columns="group"))
    with pytest.raises(DataContractError, match="empty"):
        load_campaigns(_raw().iloc[:0])
