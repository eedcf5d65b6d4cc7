"""Score columns helpers: the reasons' JSON text, missing consent flags."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from fidelite.training.scoreframe import json_lists


def test_json_lists_writes_what_the_json_encoder_writes():
    lists = [
        [],
        ["plain"],
        ['quote " and backslash \\', "tab\tnew\nline", "é ü 日本 \u2028 \x00", "emoji 😀"],
        ["a", "b", "c"],
    ]
    encode = json.JSONEncoder(ensure_ascii=True).encode
    got = json_lists(lists)
    assert got.dtype == object and got.tolist() == [encode(items) for items in lists]
    assert [json.loads(text) for text in got] == lists


def test_json_lists_of_non_strings_fall_back_to_the_encoder():
    lists = [["text", None, 1.5], ["only text"]]
    assert json_lists(lists).tolist() == ['["text", null, 1.5]', '["only text"]']
    assert json_lists([]).tolist() == []


def test_few_row_missing_flags_are_those_pd_isna_finds():
    """The consent columns' ``v is None`` shortcut (few rows of flags, text and None)
    against pd.isna, and pd.isna itself for anything else."""
    from fidelite.training.scoreframe import _missing

    cases = [
        np.array([True, None, False], dtype=object),
        np.array([None], dtype=object),
        np.array([1, "yes", None], dtype=object),
        np.array([np.nan, pd.NA, None, True], dtype=object),
        np.array([np.bool_(True), None], dtype=object),
        np.array([True, False]),
        np.array([None, True] * 40, dtype=object),
    ]
    for values in cases:
        assert np.asarray(_missing(values)).tolist() == pd.isna(values).tolist()


def test_risk_bands_and_days_as_before_for_unusual_values():
    """The band lookup's NaN shortcut and the cached day conversions give what
    ``np.nan_to_num`` and ``Timestamp.to_datetime64`` gave, units included."""
    from fidelite.training.scoreframe import (
        _BAND_EDGES,
        RISK_BAND_EDGES,
        _day64,
        _day_ns,
        _nan_as_zero,
    )

    values = np.array([np.nan, np.inf, -np.inf, -0.0, 0.25, 0.5, 0.75, 1.0, 1e308, 0.2])
    for proba in (values, values.astype(np.float32), np.array([0, 1, 2])):
        expected = np.searchsorted(RISK_BAND_EDGES, np.nan_to_num(proba), side="right")
        got = _BAND_EDGES.searchsorted(_nan_as_zero(proba), side="right")
        assert got.tolist() == expected.tolist()
    for day in (pd.Timestamp("2025-09-30"), pd.Timestamp("2025-09-30").as_unit("ns")):
        assert _day64(day, day.unit).dtype == day.to_datetime64().dtype
        assert _day64(day, day.unit) == day.to_datetime64()
        assert _day_ns(day) == np.datetime64(day.to_datetime64(), "ns")
        assert _day_ns(day).dtype == np.dtype("datetime64[ns]")
