"""build_features as a whole: customer universe, consent pass-through, dtypes, errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fidelite.features import (
    STRING_COLUMNS,
    ChannelVocabulary,
    DataContractError,
    FeatureParams,
    Inputs,
    build_features,
    load_inputs,
)
from fidelite.features.contract import (
    CONSENT_COLUMN,
    ENGAGEMENT_CHANNELS,
    ORDER_CHANNELS,
    model_input_features,
)
from tests.features.helpers import features_at

AS_OF = "2024-03-31"


@pytest.fixture
def tables(tmp_path):
    tx = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],  # integer ids become strings
            "order_id": ["a", "b", "c"],
            "timestamp": ["2024-01-01T10:00:00+02:00", "2024-02-01", "2024-03-01"],
            "amount": [10.0, 20.0, 5.0],
            "channel": ["Web", "app", "store"],
        }
    )
    ev = pd.DataFrame(
        {
            "customer_id": [1, 3],
            "timestamp": ["2024-03-01", "2024-03-02"],
            "channel": ["EMAIL", "sms"],
            "event_type": ["Open", "click"],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": [1, 3, 4, 5],
            "signup_at": ["2023-12-01", "2024-03-10", "2024-04-01", None],
            "acquisition_channel": ["Paid_Search", "referral", "tv", "tv"],
            "sms_opt_in": [False, True, True, True],
        }
    )
    tx_path = tmp_path / "transactions.csv"
    tx.to_csv(tx_path, index=False)
    return tx_path, ev, customers


def test_universe_is_buyers_plus_signups_by_as_of(tables):
    frame = features_at(*tables, as_of=AS_OF)
    # 4 signs up after as_of, 5 never signed up nor bought.
    assert list(frame.index) == ["1", "2", "3"]
    assert frame.index.name == "customer_id"
    prospect = frame.loc["3"]
    assert prospect["orders_total"] == 0 and prospect["lifecycle_stage"] == "prospect"
    assert prospect["tenure_days"] == 21 and prospect["best_channel"] == "sms"


def test_consent_and_acquisition_pass_through_with_defaults(tables):
    tx_path, ev, customers = tables
    frame = features_at(tx_path, ev, customers, as_of=AS_OF)
    assert not frame.loc["1", "sms_opt_in"]
    assert frame.loc["1", "email_opt_in"]
    assert frame.loc["2", "acquisition_channel"] == "unknown"  # not in the customers table
    no_customers = features_at(tx_path, ev, as_of=AS_OF)
    assert no_customers[["email_opt_in", "sms_opt_in", "push_opt_in"]].all().all()
    assert set(no_customers["acquisition_channel"]) == {"unknown"}


def test_dtypes_strings_only_where_the_contract_says(tables):
    frame = features_at(*tables, as_of=AS_OF)
    for column in frame.columns:
        dtype = frame[column].dtype
        if column in STRING_COLUMNS:
            assert pd.api.types.is_string_dtype(dtype), column
        else:
            assert pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype), column
    assert pd.api.types.is_bool_dtype(frame["email_opt_in"])
    assert pd.api.types.is_integer_dtype(frame["orders_total"])


def test_contract_columns_present(tables):
    frame = features_at(*tables, as_of=AS_OF)
    expected = {
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "days_since_last_purchase",
        "orders_total",
        "spend_total",
        "avg_order_value",
        "spend_trend",
        "refund_share",
        "discount_share",
        "tenure_days",
        "ipt_mean_days",
        "ipt_std_days",
        "overdue_ratio",
        "velocity_90_vs_prior",
        "unsubscribes_total",
        "bounces_total",
        "best_channel",
        "channel_preference",
        "email_opt_in",
        "sms_opt_in",
        "push_opt_in",
        "acquisition_channel",
        "lifecycle_stage",
        "rfm_segment",
    }
    for w in (30, 90, 180, 365):
        expected |= {f"orders_{w}d", f"spend_{w}d"}
    for c in ("email", "sms", "push", "web", "app", "store"):
        expected |= {
            f"eng_{c}_events_30d",
            f"eng_{c}_events_90d",
            f"eng_{c}_days_since_last",
            f"eng_{c}_share",
        }
    for c in ("email", "sms", "push"):
        expected |= {f"eng_{c}_open_rate", f"eng_{c}_click_rate"}
    assert expected <= set(frame.columns)


def test_bad_input_raises_data_contract_error(tables):
    _, ev, customers = tables
    bad = pd.DataFrame(
        {"customer_id": ["1"], "order_id": ["x"], "timestamp": ["2024-01-01"], "amount": ["ten"]}
    )
    with pytest.raises(DataContractError, match="amount"):
        features_at(bad, ev, customers, as_of=AS_OF)
    with pytest.raises(DataContractError, match="as_of"):
        features_at(tables[0], as_of="not a date")


# --------------------------------------------------------------------------- inputs
def test_build_features_reads_inputs_at_their_day_and_never_later(tables):
    inputs = load_inputs(*tables, as_of=AS_OF)
    pd.testing.assert_frame_equal(build_features(inputs), build_features(inputs, as_of=AS_OF))
    earlier = build_features(inputs, as_of="2024-02-15")
    pd.testing.assert_frame_equal(earlier, build_features(inputs.at("2024-02-15")))
    assert list(earlier.index) == ["1"]
    with pytest.raises(ValueError, match=r"after the day these inputs are read at"):
        build_features(inputs, as_of="2024-04-01")


def test_inputs_are_not_validated_again(tables, monkeypatch):
    import fidelite.features.data as data

    inputs = load_inputs(*tables, as_of=AS_OF)

    def refuse(*args, **kwargs):
        raise AssertionError("a loader ran again")

    # Every loader starts with these, however it was imported.
    for name in ("source_table", "require_columns"):
        monkeypatch.setattr(data, name, refuse)
    with pytest.raises(AssertionError, match="loader ran"):
        data.load_transactions(inputs.transactions)
    assert len(build_features(inputs)) == 3
    assert inputs.at("2024-03-01").refund_links is inputs.refund_links  # shared, computed once


def test_inputs_refuse_tables_the_loaders_did_not_produce(tables):
    raw = pd.DataFrame({"customer_id": ["1"], "timestamp": ["2024-01-01"], "amount": [1.0]})
    with pytest.raises(TypeError, match=r"Inputs.transactions: .*load_inputs"):
        Inputs(raw, pd.Timestamp(AS_OF))


def test_every_contract_order_channel_gets_a_share_column(tables):
    frame = features_at(*tables, as_of=AS_OF)
    assert {f"order_share_{c}" for c in ORDER_CHANNELS} <= set(frame.columns)
    assert frame.loc["1", "order_share_web"] == 0.5 and frame.loc["1", "order_share_phone"] == 0


def test_current_consent_flags_are_never_model_inputs(tables):
    frame = features_at(*tables, as_of=AS_OF)
    inputs = set(model_input_features(frame.columns))
    assert not inputs & set(CONSENT_COLUMN.values())
    assert "channel_preference" not in inputs and "acquisition_channel" in inputs


# --------------------------------------------------------------------------- params
def test_feature_params_round_trip_through_json():
    params = FeatureParams(windows=[7, 28], lapsed_days=120, engagement_event_types=("open",))
    data = json.loads(json.dumps(params.to_dict()))
    assert data["windows"] == [7, 28] and data["lapsed_days"] == 120
    assert FeatureParams.from_dict(data) == params
    assert FeatureParams.from_dict({}) == FeatureParams()
    assert hash(params) == hash(FeatureParams.from_dict(data))


def test_feature_params_refuse_unknown_fields_and_bad_values():
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['window'\]"):
        FeatureParams.from_dict({"window": [30]})
    with pytest.raises(ValueError, match="positive"):
        FeatureParams.from_dict({"windows": [0]})
    with pytest.raises(ValueError, match="send-side"):
        FeatureParams(engagement_event_types=("open", "sent"))


def test_model_inputs_of_a_customer_do_not_depend_on_who_else_is_scored(demo_data):
    """Serving builds a few customers' features alone, with the model's channels: their
    model inputs must equal their rows in the whole population's table."""
    as_of = "2025-06-30"
    tables = (demo_data.transactions, demo_data.events, demo_data.customers)
    everyone = features_at(*tables, as_of=as_of)
    inputs = model_input_features(everyone.columns)
    vocabulary = ChannelVocabulary.from_columns(everyone.columns)
    assert set(vocabulary.event_channels) > set(ENGAGEMENT_CHANNELS)  # demo-only channels
    for customer in everyone.index[everyone["frequency"] > 1][:3]:
        own = (table.loc[table["customer_id"] == customer] for table in tables)
        alone = build_features(load_inputs(*own, as_of=as_of), vocabulary=vocabulary)
        pd.testing.assert_series_equal(
            alone.loc[customer, inputs], everyone.loc[customer, inputs], check_names=False
        )
    assert "rfm_segment" not in inputs  # quintiles of whoever is scored together
