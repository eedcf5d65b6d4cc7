"""Reason phrases: top contributions in words, one template per contract feature family."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from fidelite.features.contract import FEATURE_FAMILIES
from fidelite.training.phrases import NUMERIC_PHRASES, TEXT_PHRASES
from fidelite.training.reasons import describe, describe_many, top_reasons


def test_top_reasons_orders_by_contribution_and_falls_back_to_largest_drivers():
    features = pd.DataFrame(
        {
            "days_since_last_purchase": [94.0, 10.0, 5.0],
            "ipt_mean_days": [30.3, np.nan, 20.0],
            "orders_90d": [0.0, 4.0, 1.0],
            "eng_email_open_rate": [np.nan, 0.25, 0.0],
            "lifecycle_stage": ["at_risk", None, "active"],
        }
    )
    names = ["days_since_last_purchase", "orders_90d", "eng_email_open_rate", "lifecycle_stage"]
    contributions = np.array(
        [
            [0.9, 0.5, 0.1, -0.2],
            [0.2, -0.1, 0.3, 0.4],
            [-0.1, -0.2, -0.3, -0.4],
            [0.0, 0.0, 0.0, 0.0],
        ]
    )
    features = pd.concat([features, features.iloc[[2]]], ignore_index=True)
    reasons = top_reasons(contributions, features, top_k=3, feature_names=names)
    assert reasons == [
        [
            "no order for 94 days, 3.1x their usual gap",
            "no orders in the last 90 days",
            "no email messages received",
        ],
        ["lifecycle stage unknown", "opened 25% of email messages", "no order for 10 days"],
        # Nothing raises this customer's risk: the largest drivers either way.
        [
            "lifecycle stage: active",
            "never opened any email message",
            "1 order in the last 90 days",
        ],
        [],
    ]
    frame = pd.DataFrame(contributions, columns=names)
    assert top_reasons(frame, features, top_k=1) == [[r[0]] for r in reasons[:3]] + [[]]


def test_describe_many_matches_describe_row_by_row():
    values = np.array([94.0, np.nan, 0.0], dtype=object)
    gaps = np.array([30.3, 10.0, np.nan])
    many = describe_many("days_since_last_purchase", values, lambda column: gaps)
    assert many == [
        describe("days_since_last_purchase", 94.0, {"ipt_mean_days": 30.3}),
        describe("days_since_last_purchase", np.nan, {"ipt_mean_days": 10.0}),
        describe("days_since_last_purchase", 0.0, {}),
    ]
    assert many == [
        "no order for 94 days, 3.1x their usual gap",
        "no purchase yet",
        "no order for 0 days",
    ]
    opt_in = describe_many("sms_opt_in", np.array([True, False]), lambda column: gaps)
    assert opt_in == ["opted in to sms", "not opted in to sms"]


@pytest.mark.parametrize(
    ("feature", "value", "row", "phrase"),
    [
        (
            "ipt_std_days",
            3.77,
            {"ipt_mean_days": 5.0},
            "irregular buyer: gaps between orders vary by ±3.8 days around 5",
        ),
        (
            "ipt_std_days",
            2.0,
            {"ipt_mean_days": 30.0},
            "regular buyer: gaps between orders vary by only ±2.0 days around 30",
        ),
        ("eng_web_share", 1.0, {}, "all recent engagement is on web"),
        ("eng_call_center_share", 0.25, {}, "25% of recent engagement is on call center"),
        ("eng_email_events_30d", 0, {}, "no email activity in the last 30 days"),
        ("eng_tiktok_days_since_last", np.nan, {}, "no tiktok activity on record"),
        ("order_share_marketplace", 0.0, {}, "never orders via marketplace"),
        ("baseline_p_alive", 0.234, {}, "model estimates only 23% chance they are still active"),
        ("baseline_p_alive", 0.9, {}, "model estimates 90% chance they are still active"),
        ("baseline_expected_spend", np.nan, {}, "no purchase yet for the BG/NBD model to assess"),
        ("frequency", 2.0, {}, "bought on 3 different days"),
        ("best_channel", "", {}, "no engagement on any channel yet"),
        ("channel_preference", "web,store", {}, "channels by engagement: web, store"),
        ("rfm_segment", "at_risk", {}, "RFM segment: at risk"),
        ("velocity_90_vs_prior", 0.5, {}, "order pace up 200% vs their earlier rate"),
        ("some_new_feature", 1.5, {}, "some new feature: 1.50"),
    ],
)
def test_templates_say_what_the_value_means(feature, value, row, phrase):
    assert describe(feature, value, row) == phrase


RAW_NAME = re.compile(r"_\w+ = |\w_\w")  # "ipt_std_days = 3.77" or any snake_case name


def test_every_demo_feature_value_reads_as_words():
    from fidelite.features import build_features
    from fidelite.features.demo import generate_demo_data
    from fidelite.training.baseline import BASELINE_COLUMNS, BaselineModel

    demo = generate_demo_data(300, seed=5)
    features = build_features(demo.inputs("2025-06-30"))
    buyers = features[features["orders_total"] > 0]
    features = features.join(BaselineModel(horizon_days=90).fit(buyers).predict(features))
    assert set(BASELINE_COLUMNS) <= set(features.columns)

    def context(column):
        return pd.to_numeric(features[column], errors="coerce").to_numpy(float)

    for feature in features.columns:
        phrases = describe_many(feature, features[feature].to_numpy(), context)
        bad = [p for p in phrases if RAW_NAME.search(p)]
        assert not bad, (feature, bad[:3])


def test_every_contract_family_has_a_phrase():
    """Reasons are keyed by the contract's families: a new family needs a template."""
    phrased = set(NUMERIC_PHRASES) | set(TEXT_PHRASES)
    missing = [f.name for f in FEATURE_FAMILIES if f.dtype != "bool" and f.name not in phrased]
    assert not missing, missing


def test_compiled_top_picks_equal_numpys():
    """Batches of 64+ rows pick their reasons in a compiled loop: the same features, in
    the same order, as argpartition (NaN, negative-only, all-zero and inf rows included)."""
    from fidelite.training.reasons import _top_compiled, _top_numpy

    rng = np.random.default_rng(11)
    values = rng.normal(size=(500, 40))
    values[rng.random(values.shape) < 0.4] = 0.0
    values[rng.random(values.shape) < 0.05] = np.nan
    values[:50] = -np.abs(values[:50])  # no positive driver: ranked by magnitude
    values[50:60] = 0.0
    values[60:65, 3] = np.inf
    values[65:70, 5] = -np.inf
    values[70:80, :] = np.nan
    for k in (1, 3, 40):
        top, keep = _top_numpy(values, k)
        got_top, got_keep = _top_compiled(values, k)
        np.testing.assert_array_equal(got_keep, keep)
        np.testing.assert_array_equal(np.where(got_keep, got_top, -1), np.where(keep, top, -1))
    ties = np.array([[0.5, 0.2, 0.5, 0.5, 0.1]] * 70)
    top, keep = _top_compiled(ties, 3)
    assert top[0].tolist() == [0, 2, 3] and keep.all()  # equal drivers: first feature first
