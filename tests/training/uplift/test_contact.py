"""Contact inputs: engagement on the channel an offer would go out on."""

import numpy as np
import pandas as pd

from fidelite.training.uplift.contact import CHANNEL_COLUMN, CONTACT_INPUTS, contact_frame


def _features():
    return pd.DataFrame(
        {
            "eng_email_events_30d": [1.0, 6.0, 0.0],
            "eng_email_events_90d": [9.0, 9.0, 0.0],
            "eng_sms_events_30d": [0.0, 2.0, 0.0],
            "eng_sms_events_90d": [2.0, 2.0, 0.0],
            "eng_push_events_30d": [0.0, 0.0, 0.0],
            "eng_push_events_90d": [0.0, 0.0, 0.0],
            "eng_web_events_30d": [3.0, 0.0, 0.0],
            "eng_web_events_90d": [3.0, 0.0, 0.0],
            "best_channel": pd.Categorical(["email", "web", None]),
        }
    )


def test_contact_inputs_follow_each_rows_channel():
    out = contact_frame(_features(), np.array(["email", "sms", "push"], dtype=object))
    assert set(CONTACT_INPUTS) <= set(out.columns)
    np.testing.assert_array_equal(out[CHANNEL_COLUMN], ["email", "sms", "push"])
    np.testing.assert_array_equal(out["contact_events_30d"], [1.0, 2.0, 0.0])
    np.testing.assert_array_equal(out["contact_events_90d"], [9.0, 2.0, 0.0])
    # email row 0: 1 event in 30 days against 8 in the 60 before -> (1/30) / (8/60) = 0.25
    trend = out["contact_engagement_trend"].to_numpy()
    assert np.isclose(trend[0], 0.25) and np.isnan(trend[1]) and np.isnan(trend[2])
    # row 1's top messaging channel is email (9 events), not sms; row 2 engaged with none
    np.testing.assert_array_equal(out["contact_is_top_messaging"], [1.0, 0.0, 0.0])
    best = out["best_channel_engagement_trend"].to_numpy()
    assert np.isclose(best[0], 0.25) and np.isnan(best[1]) and np.isnan(best[2])


def test_one_channel_for_all_rows_and_none():
    features = _features()
    sms = contact_frame(features, "sms")
    np.testing.assert_array_equal(sms["contact_events_90d"], [2.0, 2.0, 0.0])
    none = contact_frame(features, None)
    for column in CONTACT_INPUTS[:4]:
        assert none[column].isna().all(), column
    # the best channel's trend does not depend on the contact channel
    np.testing.assert_array_equal(
        none["best_channel_engagement_trend"].fillna(-1),
        sms["best_channel_engagement_trend"].fillna(-1),
    )
    assert list(features.columns) == list(_features().columns)  # input left untouched
