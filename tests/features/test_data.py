"""The data contract: validation errors, normalisation and idempotency."""

import logging

import numpy as np
import pandas as pd
import pytest

from fidelite.features.data import (
    DataContractError,
    as_of_bounds,
    load_customers,
    load_events,
    load_transactions,
    read_table,
)


def raw_transactions(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2, 2, 3, 3],
            "order_id": ["A1", "A2", "A3", "A4", "A4"],
            "timestamp": [
                "2024-01-01T10:00:00",
                "2024-01-02 08:30",
                "2024-02-01",
                "2024-03-01T12:00:00Z",
                "2024-03-05T12:00:00Z",
            ],
            "amount": [10.0, 20.5, 5.0, 40.0, -40.0],
            "channel": ["Web", "APP", " store ", "web", "web"],
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def raw_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["1", "2", "2"],
            "timestamp": ["2024-01-01T00:00:00+01:00", "2024-01-03", "2024-01-04"],
            "channel": ["Email", "Social", None],
            "event_type": ["open", "Like", "CLICK"],
        }
    )


# --------------------------------------------------------------------------- errors
def test_missing_required_column_names_table_and_column():
    with pytest.raises(DataContractError, match=r"shop_tx.*missing required.*'amount'"):
        load_transactions(raw_transactions().drop(columns="amount"), name="shop_tx")


def test_unparsable_timestamp_names_file_column_and_rows(tmp_path):
    stamps = ["2024-01-01", "yesterday", "2024-02-01", "31/31/2024", "2024-03-05"]
    path = tmp_path / "tx.csv"
    raw_transactions(timestamp=stamps).to_csv(path, index=False)
    with pytest.raises(DataContractError) as info:
        load_transactions(path)
    message = str(info.value)
    assert str(path) in message and "'timestamp'" in message
    assert "2 row(s)" in message
    assert "row 1 (line 3): timestamp='yesterday'" in message
    assert "row 3 (line 5)" in message


def test_non_numeric_amount():
    amounts = ["10", "12,5", "3", "abc", "-3"]
    with pytest.raises(
        DataContractError, match=r"transactions: column 'amount': non-numeric.*row 1: amount='12,5'"
    ):
        load_transactions(raw_transactions(amount=amounts))


def test_nan_amount():
    with pytest.raises(DataContractError, match=r"'amount': missing \(NaN\).*row 2"):
        load_transactions(raw_transactions(amount=[1.0, 2.0, np.nan, 4.0, 5.0]))


def test_missing_customer_id():
    with pytest.raises(
        DataContractError, match=r"'customer_id': missing identifier in 2 row.*row 0.*row 4"
    ):
        load_transactions(raw_transactions(customer_id=[None, "2", "2", "3", " "]))


def test_error_sample_is_capped_at_five_rows():
    with pytest.raises(DataContractError) as info:
        load_transactions(raw_transactions(amount=["x"] * 5).iloc[[0, 1, 2, 3, 4] * 2])
    assert "10 row(s)" in str(info.value)
    assert str(info.value).count("amount='x'") == 5


def test_empty_table_and_empty_file(tmp_path):
    with pytest.raises(DataContractError, match="empty"):
        load_transactions(raw_transactions().iloc[:0])
    header_only = tmp_path / "header.csv"
    header_only.write_text("customer_id,order_id,timestamp,amount\n")
    with pytest.raises(DataContractError, match=rf"{header_only}.*empty"):
        load_transactions(header_only)
    blank = tmp_path / "blank.csv"
    blank.write_text("")
    with pytest.raises(DataContractError, match=rf"{blank}.*empty"):
        load_transactions(blank)


def test_unreadable_and_unsupported_files(tmp_path):
    with pytest.raises(DataContractError, match="not found"):
        read_table(tmp_path / "nope.parquet")
    excel = tmp_path / "tx.xlsx"
    excel.write_bytes(b"PK")
    with pytest.raises(DataContractError, match=r"tx\.xlsx.*unsupported"):
        read_table(excel)
    corrupt = tmp_path / "tx.parquet"
    corrupt.write_bytes(b"this is not parquet")
    with pytest.raises(DataContractError, match=r"tx\.parquet.*cannot read PARQUET"):
        load_transactions(corrupt)


def test_bad_consent_and_cost_values():
    customers = pd.DataFrame({"customer_id": [1, 2], "email_opt_in": ["yes", "maybe"]})
    with pytest.raises(DataContractError, match=r"'email_opt_in'.*row 1: email_opt_in='maybe'"):
        load_customers(customers)
    with pytest.raises(DataContractError, match=r"'acquisition_cost': non-numeric"):
        load_customers(pd.DataFrame({"customer_id": [1], "acquisition_cost": ["ten"]}))


@pytest.mark.parametrize("as_of", ["not a date", None, "2024-13-45"])
def test_as_of_bounds_rejects_bad_dates(as_of):
    with pytest.raises(DataContractError, match="as_of"):
        as_of_bounds(as_of)


# --------------------------------------------------------------------------- normalisation
def test_as_of_bounds_floors_to_the_day_in_utc():
    assert as_of_bounds(pd.Timestamp("2025-03-01 17:45")) == (
        pd.Timestamp("2025-03-01"),
        pd.Timestamp("2025-03-02"),
    )
    # 00:30 in Paris (UTC+1 in March) is still the previous day in UTC.
    day, end = as_of_bounds(pd.Timestamp("2025-03-02 00:30", tz="Europe/Paris"))
    assert day == pd.Timestamp("2025-03-02") - pd.Timedelta(days=1)
    assert end - day == pd.Timedelta(days=1) and day.tzinfo is None


@pytest.mark.parametrize(
    "text", ["2025-03-01 17:45", "01/02/2025", "13/08/2025", "2025-02-30", "20250301", ""]
)
def test_as_of_text_must_be_an_iso_day(text):
    with pytest.raises(DataContractError, match="as_of"):
        as_of_bounds(text)


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2262-04-11"])
def test_as_of_outside_the_supported_days_is_refused(day):
    with pytest.raises(DataContractError, match="outside the supported days"):
        as_of_bounds(day)


def test_timestamps_naive_and_aware_become_naive_utc():
    tx = load_transactions(
        raw_transactions(
            timestamp=[
                "2024-01-01T10:00:00",
                "2024-01-01T10:00:00+02:00",
                "2024-01-01T10:00:00Z",
                "2024-01-01",
                "2024-01-01T23:30:00-05:00",
            ]
        )
    )
    assert tx["timestamp"].dtype == "datetime64[ns]"
    assert tx["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01 10:00"),
        pd.Timestamp("2024-01-01 08:00"),
        pd.Timestamp("2024-01-01 10:00"),
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-01-02 04:30"),
    ]
    aware = pd.Series(pd.date_range("2024-06-01 12:00", periods=5, freq="D", tz="America/New_York"))
    tx = load_transactions(raw_transactions(timestamp=aware))
    assert tx["timestamp"].iloc[0] == pd.Timestamp("2024-06-01 16:00")


def test_ids_become_strings_and_channels_lower_case():
    tx = load_transactions(raw_transactions(order_id=[101, 102, 103, 104, 104]))
    assert tx["customer_id"].tolist() == ["1", "2", "2", "3", "3"]
    assert tx["order_id"].iloc[0] == "101"
    assert pd.api.types.is_string_dtype(tx["customer_id"])
    assert tx["channel"].tolist() == ["web", "app", "store", "web", "web"]
    assert (tx["discount"] == 0).all() and tx["items"].isna().all()
    # Integer ids read into a float column (because of a gap) must not become "1.0".
    customers = load_customers(pd.DataFrame({"customer_id": [1.0, 2.0]}))
    assert customers["customer_id"].tolist() == ["1", "2"]


def test_refund_may_reuse_order_id_but_duplicates_are_dropped(caplog):
    duplicated = pd.concat([raw_transactions(), raw_transactions().iloc[[0, 4]]])
    with caplog.at_level(logging.WARNING, logger="fidelite.features.data"):
        tx = load_transactions(duplicated)
    assert len(tx) == 5
    assert tx.attrs["duplicates_dropped"] == 2
    assert "dropped 2 duplicated" in caplog.text
    # Order A4 and its refund share an id but have opposite signs: both are kept.
    assert sorted(tx.loc[tx["order_id"] == "A4", "amount"]) == [-40.0, 40.0]
    assert load_transactions(raw_transactions()).attrs["duplicates_dropped"] == 0


def test_an_order_refunded_in_two_parts_keeps_both_refunds():
    parts = raw_transactions(
        order_id=["A1", "A1", "A1", "A1", "A2"],
        customer_id=[1, 1, 1, 1, 1],
        amount=[40.0, -10.0, -15.0, 40.0, -15.0],
    )
    tx = load_transactions(parts)
    # The second A1 order row is a repeat; both partial refunds of A1 stay.
    assert tx["amount"].tolist() == [40.0, -10.0, -15.0, -15.0]
    again = load_transactions(pd.concat([parts, parts.iloc[[2]]], ignore_index=True))
    assert again.attrs["duplicates_dropped"] == 2


def test_events_keep_unknown_names_and_fill_missing():
    events = load_events(raw_events())
    assert events["channel"].tolist() == ["email", "social", "unknown"]
    assert events["event_type"].tolist() == ["open", "like", "click"]
    assert isinstance(events["channel"].dtype, pd.CategoricalDtype)
    assert events["timestamp"].iloc[0] == pd.Timestamp("2023-12-31 23:00")
    assert events["campaign_id"].isna().all()


def test_customers_defaults_and_consent_parsing():
    customers = load_customers(
        pd.DataFrame(
            {
                "customer_id": ["a", "b", "c", "d"],
                "signup_at": ["2024-01-01", None, "2024-02-01T00:00:00+01:00", "2024-03-01"],
                "email_opt_in": ["Yes", "no", "TRUE", None],
                "sms_opt_in": [1, 0, 1, 0],
                "acquisition_channel": ["Referral", None, "organic", "organic"],
            }
        )
    )
    assert customers["email_opt_in"].tolist() == [True, False, True, False]
    assert customers["sms_opt_in"].tolist() == [True, False, True, False]
    assert customers["push_opt_in"].all()  # absent column: consent not tracked
    assert customers["signup_at"].isna().tolist() == [False, True, False, False]
    assert customers["signup_at"].iloc[2] == pd.Timestamp("2024-01-31 23:00")
    assert customers["acquisition_channel"].tolist() == [
        "referral",
        "unknown",
        "organic",
        "organic",
    ]
    assert customers["acquisition_cost"].isna().all()


def test_loaders_are_idempotent():
    for load, raw in (
        (load_transactions, raw_transactions()),
        (load_events, raw_events()),
        (load_customers, pd.DataFrame({"customer_id": [3, 4], "sms_opt_in": ["y", "n"]})),
    ):
        once = load(raw)
        twice = load(once)
        pd.testing.assert_frame_equal(once, twice)


def test_input_frame_is_not_modified():
    raw = raw_transactions()
    snapshot = raw.copy()
    load_transactions(raw)
    pd.testing.assert_frame_equal(raw, snapshot)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_file_round_trip(tmp_path, suffix):
    raw = raw_transactions(customer_id=["007", "2", "2", "3", "3"], items=[1, 2, None, 1, 1])
    path = tmp_path / f"tx{suffix}"
    if suffix == ".parquet":
        raw.to_parquet(path)
    else:
        raw.to_csv(path, index=False)
    from_file = load_transactions(path)
    pd.testing.assert_frame_equal(from_file, load_transactions(raw))
    assert from_file["customer_id"].iloc[0] == "007"  # leading zeros survive CSV


def test_directory_of_parquet_files(tmp_path):
    raw = raw_transactions()
    folder = tmp_path / "tx"
    folder.mkdir()
    raw.iloc[:2].to_parquet(folder / "part-0.parquet")
    raw.iloc[2:].to_parquet(folder / "part-1.parquet")
    assert len(load_transactions(folder)) == 5


# --------------------------------------------------------------------------- dates
DAY_FIRST = ["2025-08-01", "13/08/2025", "2025-08-14 10:00", "02/09/2025", "2025-09-03"]


@pytest.mark.parametrize("stamps", [DAY_FIRST, ["08/13/2025"] * 5])
def test_non_iso_dates_are_refused_with_file_column_and_rows(tmp_path, stamps):
    path = tmp_path / "tx.csv"
    raw_transactions(timestamp=stamps).to_csv(path, index=False)
    with pytest.raises(DataContractError) as info:
        load_transactions(path)
    message = str(info.value)
    bad = sum("/" in s for s in stamps)
    assert str(path) in message and "'timestamp'" in message and "ISO 8601" in message
    assert f"in {bad} row(s)" in message and "--date-format" in message
    assert f"row 1 (line 3): timestamp={stamps[1]!r}" in message


def test_explicit_date_format_reads_those_rows_and_iso_rows():
    tx = load_transactions(raw_transactions(timestamp=DAY_FIRST), date_format="%d/%m/%Y")
    assert tx["timestamp"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2025-08-01 00:00",
        "2025-08-13 00:00",
        "2025-08-14 10:00",
        "2025-09-02 00:00",
        "2025-09-03 00:00",
    ]
    # A layout the rows do not follow is refused, not half-applied.
    with pytest.raises(DataContractError, match=r"neither date_format '%m/%d/%Y' nor ISO 8601"):
        load_transactions(raw_transactions(timestamp=DAY_FIRST), date_format="%m/%d/%Y")


def test_date_format_applies_to_every_timestamp_column():
    customers = load_customers(
        pd.DataFrame({"customer_id": [1, 2], "signup_at": ["31/12/2024 23:30", None]}),
        date_format="%d/%m/%Y %H:%M",
    )
    assert customers["signup_at"].iloc[0] == pd.Timestamp("2024-12-31 23:30")
    events = load_events(raw_events().assign(timestamp="05/01/2024"), date_format="%d/%m/%Y")
    assert (events["timestamp"] == pd.Timestamp("2024-01-05")).all()


@pytest.mark.parametrize("layout", ["dd/mm/yyyy", "%d/%m/%Q"])
def test_unusable_date_format_is_a_data_error(layout):
    with pytest.raises(DataContractError, match="not a usable strftime layout") as info:
        load_transactions(raw_transactions(), date_format=layout)
    assert info.value.field == "date_format"


def test_iso_timestamps_with_spaces_around_are_read():
    tx = load_transactions(raw_transactions(timestamp=[" 2024-01-01 "] * 5))
    assert (tx["timestamp"] == pd.Timestamp("2024-01-01")).all()
