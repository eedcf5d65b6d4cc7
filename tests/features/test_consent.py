"""Consent: today's flags for targeting only, the consent history read point-in-time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fidelite.features import DataContractError, build_features, load_inputs
from fidelite.features.consent import load_consent_history
from fidelite.features.contract import feature_family, model_input_features

AS_OF = "2024-06-30"

TX = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c"],
        "order_id": ["1", "2", "3"],
        "timestamp": ["2024-01-10", "2024-02-10", "2024-03-10"],
        "amount": [10.0, 20.0, 30.0],
    }
)
# Today's snapshot: a and b have since opted out of email, c never changed anything.
CUSTOMERS = pd.DataFrame(
    {"customer_id": ["a", "b", "c"], "email_opt_in": [False, False, True], "sms_opt_in": "no"}
)
HISTORY = pd.DataFrame(
    {
        "customer_id": ["a", "a", "b", "b", "a"],
        "channel": ["email", "Email", "email", "SMS", "push"],
        "opted_in": ["true", "false", "yes", 0, 1],
        "changed_at": ["2024-01-01", "2024-08-15", "2024-01-01", "2024-06-20", "2024-06-30 23:00"],
    }
)


def features(history=HISTORY, as_of=AS_OF) -> pd.DataFrame:
    return build_features(
        load_inputs(TX, customers=CUSTOMERS, consent_history=history, as_of=as_of)
    )


def test_history_is_normalised_sorted_and_deduplicated():
    history = load_consent_history(pd.concat([HISTORY, HISTORY.iloc[[0]]], ignore_index=True))
    assert history.attrs["duplicates_dropped"] == 1
    assert list(history.columns) == ["customer_id", "channel", "opted_in", "changed_at"]
    assert history["channel"].tolist() == ["email", "email", "push", "email", "sms"]
    assert history["opted_in"].tolist() == [True, False, True, True, False]
    assert history["changed_at"].dtype == "datetime64[ns]"


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("channel", ["email", "whatsapp", "web", "sms", "email"], r"\['web', 'whatsapp'\]"),
        ("opted_in", [True, None, True, True, True], r"'opted_in': missing value in 1 row"),
        ("opted_in", [True, "maybe", True, True, True], "expected a boolean"),
        ("changed_at", ["2024-01-01", "15/08/2024"] + ["2024-01-01"] * 3, "ISO 8601"),
    ],
)
def test_history_errors_name_column_and_rows(column, values, message):
    with pytest.raises(DataContractError, match=message) as info:
        load_consent_history(HISTORY.assign(**{column: values}), name="consents.csv")
    assert "consents.csv" in str(info.value) and "row 1" in str(info.value)


def test_consent_on_day_d_comes_from_the_last_change_by_d():
    frame = features()
    # a opted in to email in January and out only in August: on June 30 still in.
    assert frame.loc["a", "consented_email"] == 1.0 and frame.loc["a", "email_opt_in"]
    assert frame.loc["a", "consent_email_days_since_change"] == 181
    assert frame.loc["a", "consented_push"] == 1.0  # 23:00 on the as-of day counts
    assert frame.loc["b", "consented_sms"] == 0.0 and not frame.loc["b", "sms_opt_in"]
    # No change recorded by D: unknown for models; targeting falls back to today's flag.
    assert np.isnan(frame.loc["c", "consented_email"]) and frame.loc["c", "email_opt_in"]
    assert not frame.loc["c", "sms_opt_in"]
    later = features(as_of="2024-09-01")
    assert later.loc["a", "consented_email"] == 0.0 and not later.loc["a", "email_opt_in"]


def test_changes_after_d_never_reach_the_features():
    future = pd.DataFrame(
        {
            "customer_id": ["a", "c", "new"],
            "channel": ["push", "email", "sms"],
            "opted_in": [False, False, True],
            "changed_at": ["2024-07-01", "2024-07-02", "2024-07-03"],
        }
    )
    before = features()
    after = features(pd.concat([HISTORY, future], ignore_index=True))
    pd.testing.assert_frame_equal(before, after)
    inputs = load_inputs(TX, consent_history=pd.concat([HISTORY, future]), as_of=AS_OF, cut=True)
    assert inputs.consent_history["changed_at"].max() < pd.Timestamp("2024-07-01")


def test_without_history_the_point_in_time_columns_exist_and_are_unknown():
    frame = build_features(load_inputs(TX, customers=CUSTOMERS, as_of=AS_OF))
    assert frame["consented_email"].isna().all()
    assert frame["consent_sms_days_since_change"].isna().all()
    assert frame["email_opt_in"].tolist() == [False, False, True]


def test_only_point_in_time_consent_is_a_model_input():
    frame = features()
    inputs = model_input_features(frame.columns)
    assert {"consented_email", "consent_push_days_since_change"} <= set(inputs)
    assert not {"email_opt_in", "sms_opt_in", "push_opt_in"} & set(inputs)
    assert feature_family("consented_sms").name == "consent_at_as_of"
    assert feature_family("consent_sms_days_since_change").name == "consent_change_age"
    assert feature_family("sms_opt_in").model_input is False


def test_loading_a_loaded_history_changes_nothing():
    history = load_consent_history(HISTORY)
    pd.testing.assert_frame_equal(load_consent_history(history), history)
