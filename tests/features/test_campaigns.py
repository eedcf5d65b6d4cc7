"""The campaigns table: group aliases, validation errors, sends after as-of."""

from __future__ import annotations

import pandas as pd
import pytest

from fidelite.features import DataContractError, load_inputs
from fidelite.features.campaigns import load_campaigns
from fidelite.features.contract import CAMPAIGN_GROUP_ALIASES, CAMPAIGNS


def raw(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5],
            "campaign_id": ["spring", "spring", "spring", "summer", "summer"],
            "sent_at": [
                "2024-03-01T09:00:00",
                "2024-03-01T09:00:00",
                "2024-03-01",
                "2024-06-01T09:30:00+02:00",
                "2024-06-01",
            ],
            "group": ["Treatment", " holdout ", "CONTROL_GROUP", "treated", "hold_out"],
            "channel": ["Email", "email", None, " SMS", "push"],
            "offer_cost": [1.5, None, 0.0, 2.0, 2.0],
            "offer": ["10% off", None, None, "free shipping", "free shipping"],
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def test_normalised_form():
    table = load_campaigns(raw())
    assert list(table.columns) == list(CAMPAIGNS.names)
    assert table["customer_id"].tolist() == ["1", "2", "3", "4", "5"]
    assert table["group"].tolist() == ["treatment", "control", "control", "treatment", "control"]
    assert table["channel"].fillna("-").tolist() == ["email", "email", "-", "sms", "push"]
    assert table["offer_cost"].tolist() == [1.5, 0.0, 0.0, 2.0, 2.0]
    assert table["sent_at"].iloc[3] == pd.Timestamp("2024-06-01 07:30")
    assert table["offer"].iloc[0] == "10% off" and pd.isna(table["offer"].iloc[1])
    # Optional columns may be absent altogether.
    bare = load_campaigns(raw()[["customer_id", "campaign_id", "sent_at", "group"]])
    assert bare["offer_cost"].eq(0).all() and bare["channel"].isna().all()


def test_every_documented_alias_is_accepted():
    for group, aliases in CAMPAIGN_GROUP_ALIASES.items():
        n = len(aliases)
        frame = pd.DataFrame(
            {
                "customer_id": range(n),
                "campaign_id": "c",
                "sent_at": "2024-01-01",
                "group": [a.upper() for a in aliases],
            }
        )
        assert (load_campaigns(frame)["group"] == group).all()


def test_unknown_groups_are_listed_with_file_and_rows(tmp_path):
    path = tmp_path / "campaigns.csv"
    raw(group=["treatment", "maybe", "control", "Later", "maybe"]).to_csv(path, index=False)
    with pytest.raises(DataContractError) as info:
        load_campaigns(path)
    message = str(info.value)
    assert str(path) in message and "column 'group'" in message
    assert "unknown group value(s) ['Later', 'maybe']" in message and "in 3 row(s)" in message
    assert "row 1 (line 3): group='maybe'" in message and "holdout" in message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"offer_cost": [1.0, -2.0, 0.0, 1.0, 1.0]}, r"'offer_cost': negative cost.*row 1"),
        ({"offer_cost": [1.0, "free", 0.0, 1.0, 1.0]}, r"'offer_cost': non-numeric.*row 1"),
        ({"sent_at": ["2024-03-01", "01/03/2024", "2024-03-01", "x", None]}, r"ISO 8601.*2 row"),
        ({"campaign_id": ["a", None, "a", "b", "b"]}, r"'campaign_id': missing identifier"),
        ({"group": ["treatment", None, "control", "control", "control"]}, r"missing group"),
    ],
)
def test_bad_values_name_column_and_rows(overrides, message):
    with pytest.raises(DataContractError, match=message):
        load_campaigns(raw(**overrides))


def test_missing_column_and_empty_table():
    with pytest.raises(DataContractError, match=r"missing required column\(s\) \['group'\]"):
        load_campaigns(raw().drop(columns="group"))
    with pytest.raises(DataContractError, match="empty"):
        load_campaigns(raw().iloc[:0])


def test_a_customer_cannot_be_in_both_groups_of_a_campaign():
    both = raw(customer_id=[1, 1, 3, 4, 5])
    with pytest.raises(DataContractError, match=r"both treatment and control.*'spring'.*'1'"):
        load_campaigns(both)
    # The same customer in two campaigns, or listed twice in one group, is fine.
    again = pd.concat([raw(), raw().iloc[[0]]], ignore_index=True)
    table = load_campaigns(again)
    assert len(table) == 5 and table.attrs["duplicates_dropped"] == 1


def test_explicit_date_format():
    table = load_campaigns(raw(sent_at=["01/03/2024"] * 5), date_format="%d/%m/%Y")
    assert (table["sent_at"] == pd.Timestamp("2024-03-01")).all()


def test_inputs_drop_sends_after_as_of():
    tx = pd.DataFrame(
        {"customer_id": ["1"], "order_id": ["o"], "timestamp": ["2024-01-01"], "amount": [5.0]}
    )
    inputs = load_inputs(tx, as_of="2024-05-31", campaigns=raw())
    assert len(inputs.campaigns) == 5
    cut = inputs.cut()
    assert cut.campaigns["campaign_id"].unique().tolist() == ["spring"]
    # A campaign without control rows is kept (reporting); learning uplift needs both groups.
    treated_only = load_campaigns(raw(group="treatment"))
    assert set(treated_only["group"]) == {"treatment"} and len(treated_only) == 5


def test_loading_a_loaded_table_changes_nothing():
    table = load_campaigns(raw())
    pd.testing.assert_frame_equal(load_campaigns(table), table)
