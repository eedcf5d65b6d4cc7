"""Score columns helpers: the reasons' JSON text."""

from __future__ import annotations

import json

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
