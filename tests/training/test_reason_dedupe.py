"""Phrases per distinct value (training.phrase_dedupe) and the JSON reasons path: the same
strings as phrasing row by row."""

from __future__ import annotations

import numpy as np
import pytest

from fidelite.training.phrase_dedupe import DEDUPE_MIN_ROWS
from fidelite.training.phrases import NUMERIC_PHRASES, TEXT_PHRASES
from fidelite.training.reasons import describe, describe_many, top_reasons, top_reasons_json
from fidelite.training.scoreframe import json_lists

#: Repeated values, both zeros, NaN, infinities, halves (rounding), tiny and huge values.
VALUES = [0.0, -0.0, 0.0, 1.0, 1.0, 0.5, 2.5, 2.5, np.nan, np.inf, -np.inf, 1e-300, 3e9, -7.25]
GAPS = [30.0, 30.0, np.nan, 0.0, 30.0, -0.0, 5.0, 6.0, 2.0, 1.0, np.nan, 4.0, 0.5, 30.0]

FEATURES = [
    "days_since_last_purchase",
    "ipt_std_days",
    "orders_90d",
    "spend_trend",
    "eng_email_open_rate",
    "order_share_web",
    "refund_share",
    "baseline_p_alive",
    "frequency",
    *NUMERIC_PHRASES,
]


@pytest.mark.parametrize("feature", FEATURES)
def test_numeric_phrases_per_distinct_value_equal_row_by_row(feature):
    values = np.array(VALUES * 3, dtype=object)
    gaps = np.array(GAPS * 3)
    assert len(values) >= DEDUPE_MIN_ROWS
    many = _outcome(lambda: describe_many(feature, values, lambda column: gaps))
    one_by_one = _outcome(
        lambda: [
            describe(feature, v, {"ipt_mean_days": g}) for v, g in zip(values, gaps, strict=True)
        ]
    )
    assert many == one_by_one
    finite = np.isfinite(values.astype(float)) | np.isnan(values.astype(float))
    assert describe_many(feature, values[finite], lambda column: gaps[finite]) == [
        describe(feature, v, {"ipt_mean_days": g})
        for v, g in zip(values[finite], gaps[finite], strict=True)
    ]


def _outcome(call):
    """The result, or the type of error (a count template cannot round infinity)."""
    try:
        return call()
    except (OverflowError, ValueError) as error:
        return type(error)


@pytest.mark.parametrize("feature", [*TEXT_PHRASES, "sms_opt_in", "some_new_feature"])
def test_text_phrases_per_distinct_value_equal_row_by_row(feature):
    texts = np.array(["web,store", None, "at_risk", " web ", "", "web,store", None], dtype=object)
    mixed = np.array([1, 1.0, True, "1", None, np.nan, -0.0, 0.0], dtype=object)
    for values in (texts, mixed):
        unknown = np.full(len(values), np.nan)
        many = describe_many(feature, values, lambda column, unknown=unknown: unknown)
        assert many == [describe(feature, v, {}) for v in values]


def _contributions(rng: np.random.Generator, n: int, names: list[str]) -> np.ndarray:
    values = rng.normal(size=(n, len(names))) * (rng.random((n, len(names))) < 0.5)
    values[:5] = -np.abs(values[:5])  # no positive driver: the largest by magnitude
    values[5:8] = 0.0  # no reasons at all
    values[8, 0] = np.nan
    return values


@pytest.mark.parametrize("n", [0, 1, 7, 300])
def test_json_reasons_equal_json_lists_of_the_reasons(n):
    rng = np.random.default_rng(3)
    names = ["days_since_last_purchase", "ipt_std_days", "lifecycle_stage", "sms_opt_in"]
    names += ["orders_90d", "spend_trend", "some_new_feature", "baseline_clv"]
    choices = np.array([v for v in VALUES if not np.isinf(v)] + [12.0, 40.0])
    features = {name: rng.choice(choices, n) for name in names}
    features["lifecycle_stage"] = rng.choice(np.array(["at_risk", None, "new", "é"], object), n)
    features["sms_opt_in"] = rng.choice(np.array([True, False, None], object), n)
    features["ipt_mean_days"] = rng.choice(np.array(GAPS), n)
    contributions = _contributions(rng, max(n, 9), names)[:n]
    for top_k in (3, 1, 20):
        lists = top_reasons(contributions, features, top_k=top_k, feature_names=names)
        got = top_reasons_json(contributions, features, top_k=top_k, feature_names=names)
        assert got.dtype == object and got.shape == (n,)
        assert got.tolist() == json_lists(lists).tolist()


def test_top_picks_split_across_threads_equal_one_thread(monkeypatch):
    import fidelite.training.forest as forest_module
    from fidelite.training.reasons import _top_compiled

    rng = np.random.default_rng(12)
    values = rng.normal(size=(301, 30))
    values[rng.random(values.shape) < 0.3] = 0.0
    values[:40] = -np.abs(values[:40])
    values[40:45] = np.nan
    one = _top_compiled(values, 3)
    monkeypatch.setattr(forest_module, "PARALLEL_MIN_ROWS", 10)
    split = _top_compiled(values, 3)
    for a, b in zip(one, split, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [3, 200])
def test_passthrough_objects_have_none_for_every_missing_value(n):
    """arrays._objects: the values as objects, missing ones (as pd.isna finds them) None."""
    import pandas as pd

    from fidelite.training.arrays import _objects

    samples = [
        np.array(["web", None, "email", "", "none"], dtype=object),
        np.array([True, False, None, True, 1], dtype=object),
        np.array(["web", np.nan, None, 2.5, True], dtype=object),
        np.array(["web", pd.NA, None, pd.NaT, "x"], dtype=object),
        np.array([1.0, np.nan, 0.0, -0.0, np.inf]),
        np.array([1, 0, 3, 4, 5]),
    ]
    for sample in samples:
        values = np.resize(sample, n)
        expected = values.astype(object)
        expected[pd.isna(expected)] = None
        got = _objects(values)
        assert got.dtype == object
        assert [(type(v), v) for v in got.tolist()] == [(type(v), v) for v in expected.tolist()]
