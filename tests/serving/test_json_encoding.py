"""Large responses encoded column by column (:mod:`fidelite.serving.json_columns`) are
byte for byte ``pydantic_core.to_json`` of one dict per customer.

The reference is :func:`fidelite.serving.responses.score_dicts` (the values of
:mod:`fidelite.serving.score_values`) encoded by pydantic-core; the column-wise encoder
takes shortcuts (distinct values once, one-value columns in the rows' fixed text, values
cut out of one encoded array per column by a compiled scan), each of which must give
those bytes on awkward inputs: missing values of every kind, blanks, unicode, strings
and lists holding commas, quotes, backslashes and brackets, values of unexpected types.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pydantic_core
import pytest

from fidelite.serving import json_kernels
from fidelite.serving.column_tables import column_table
from fidelite.serving.responses import predict_body, score_dicts, scores_array
from fidelite.serving.schemas import ModelRef

# strings a JSON encoder must escape or that look like JSON syntax
AWKWARD = [
    "ok",
    "café, terrasse",
    ' "q" \\ ',
    "\\",
    '"',
    'a\\"b',
    "[1,2]",
    "{}",
    "},{",
    '","',
    "\n\t\r\x00\x1f\x7f",
    "日本語",
    "émoji 😀",
    "\u2028",
    "",
    "   ",
]
MISSING = [None, float("nan"), pd.NA, pd.NaT, np.nan]
REASONS = [
    '["a, b", "c"]',
    "[]",
    '["\\u00e9", "é"]',
    '["q\\"uote", "back\\\\slash", "], ["]',
    '[ "spaced" ,"x" ]',
    '["日本"]',
]


def _pick(pool: list, n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = [pool[i] for i in rng.integers(0, len(pool), n)]
    return out


def _floats(n: int, rng: np.random.Generator) -> np.ndarray:
    values = rng.lognormal(0, 3, n) * rng.choice([1e-300, 1e-7, 1, 1e16, 1e17, -1], n)
    special = [np.nan, np.inf, -np.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 1e21]
    where = rng.random(n) < 0.2
    values[where] = rng.choice(special, where.sum())
    return values


def _columns(n: int, seed: int) -> dict:
    """Every score column with awkward values (some columns left out)."""
    rng = np.random.default_rng(seed)
    days = np.array(["2025-09-30", "NaT", "1969-12-31", "0001-01-01", "9999-12-31"])
    return {
        "customer_id": np.array([f"c,{i}" if i % 3 else f'é"{i}' for i in range(n)], object),
        "as_of": np.full(n, np.datetime64("2025-09-30T13:45:00", "ns")),
        "horizon_days": np.full(n, 90),
        "status": np.array(["ok", "insufficient_history"] * n, dtype=object)[:n],
        "churn_probability": _floats(n, rng),
        "p_alive": list(_floats(n, rng)),
        "expected_purchases": np.full(n, -0.0),
        "predicted_clv": pd.Series(_floats(n, rng)),
        "predicted_clv_p10": np.full(n, np.nan),
        "predicted_clv_p90": np.where(rng.random(n) < 0.5, np.inf, -np.inf),
        "value_if_retained": np.clip(_floats(n, rng), -1e38, 1e38).astype(np.float32),
        "expected_next_purchase": rng.choice(days, n).astype("datetime64[ns]"),
        "lifecycle_stage": _pick(AWKWARD + MISSING, n, rng),
        "churn_percentile": _pick([1.5, None, float("nan"), 2, True], n, rng),
        "risk_band": pd.Series(_pick(AWKWARD + [None], n, rng)),
        "reasons": _pick(REASONS, n, rng),
        "best_channel": np.array([None] * n, dtype=object),
        "channel_preference": list(_pick(AWKWARD, n, rng)),
        "email_opt_in": rng.random(n) < 0.5,
        "sms_opt_in": np.ones(n, dtype=bool),
        "push_opt_in": _pick([True, False, None], n, rng),
        "uplift_channel": _pick(["", "  ", None], n, rng),
        "uplift_purchase": rng.integers(-(2**62), 2**62, n),
        "uplift_by_channel": _pick(['{"email": 0.1}', "[1, 2]", None], n, rng),
    }


def _same_bytes(columns: dict, n: int) -> None:
    assert scores_array(columns, n) == pydantic_core.to_json(score_dicts(columns, n))


@pytest.mark.parametrize("n", [0, 1, 2, 16, 17, 100, 1000])
@pytest.mark.parametrize("seed", [0, 1])
def test_mixed_batches_are_byte_identical(n: int, seed: int) -> None:
    _same_bytes(_columns(n, seed), n)


def test_ten_thousand_customers() -> None:
    columns = _columns(10_000, 3)
    _same_bytes(columns, 10_000)
    model = ModelRef(name="fidelite", version="7", alias="champion")
    expected = pydantic_core.to_json(
        {
            "model": model.model_dump(),
            "n_customers": 10_000,
            "n_insufficient_history": 5_000,
            "scores": score_dicts(columns, 10_000),
        }
    )
    assert predict_body(model, columns, 10_000) == expected


@pytest.mark.parametrize(
    "name, values",
    [
        # strings and their missing values, taken through the distinct-value shortcut
        ("lifecycle_stage", AWKWARD + MISSING),
        ("lifecycle_stage", ["only"] * 20),
        ("lifecycle_stage", [None] * 20),
        ("lifecycle_stage", [" "] * 19 + [""]),
        ("lifecycle_stage", np.array(AWKWARD, dtype=str)),  # numpy str_, not str
        # equal values are told apart by ==: a str_ after an equal str takes its place
        ("lifecycle_stage", np.array(["a", np.str_("a"), np.str_(" "), " "] * 5, object)),
        ("lifecycle_stage", AWKWARD + [3, 2.5, float("inf"), b"x", True]),  # not strings
        ("customer_id", AWKWARD),
        ("customer_id", [1, 2.5, None, "x", True] * 4),
        # lists stored as JSON text: the shortcut parses each distinct text
        ("reasons", REASONS * 3),
        ("reasons", [REASONS[0]] * 20),
        ("reasons", REASONS + ["", "plain text", None, float("nan")]),
        ("reasons", REASONS + ['["a",', '"b"]']),  # joined, these two parse as one list
        ("reasons", REASONS + ["[NaN]", "[1, 2]", '[["a"]]', '[{"a": 1}]']),
        ("reasons", REASONS + ['["a"] ', '["\\t"]', '["\\/"]']),
        ("reasons", [["a", "b"], ["c,d"], []] * 6),
        ("reasons", np.array(['["x"]', np.str_('["x"]'), np.str_("[]")] * 6, object)),
        # dates, each distinct day once
        ("expected_next_purchase", np.array(["2025-01-01", "NaT"] * 10, "datetime64[ns]")),
        ("expected_next_purchase", np.array(["NaT"] * 20, "datetime64[ns]")),
        ("expected_next_purchase", np.array(["1900-03-01T23:59"] * 20, "datetime64[m]")),
        ("expected_next_purchase", ["2025-01-01", None, "not a date", "2024-02-29"] * 5),
        # numbers and booleans: one value stands for all only when all bits agree
        ("churn_probability", [0.0] * 19 + [-0.0]),
        ("churn_probability", [-0.0] * 20),
        ("churn_probability", [np.inf] * 19 + [np.nan]),
        ("churn_probability", [0.1] * 20),
        ("churn_probability", np.array([0.5, np.nan] * 10, dtype=np.float16)),
        ("horizon_days", np.array([2**63 - 1, 0] * 10, dtype=np.uint64)),
        ("horizon_days", [7] * 20),
        ("email_opt_in", np.array([True] * 20)),
        ("email_opt_in", np.array([False, True] * 10)),
        ("email_opt_in", [True, 1, 1.0, None] * 5),
    ],
)
def test_unusual_columns_are_byte_identical(name: str, values: object) -> None:
    n = len(values)
    columns = {"customer_id": [f"c{i}" for i in range(n)], "status": ["ok"] * n, name: values}
    _same_bytes(columns, n)


def test_missing_columns_are_null_or_empty_lists() -> None:
    _same_bytes({"customer_id": np.array(["a", "b", "c"], object)}, 3)
    assert b'"reasons":[]' in scores_array({}, 20) and b'"status":null' in scores_array({}, 20)


def test_a_column_of_another_length_is_refused() -> None:
    columns = {"customer_id": ["a", "b"], "status": ["ok", "ok", "ok"]}
    with pytest.raises(ValueError, match="status"):
        scores_array(columns, 2)


def test_repeated_values_are_encoded_once() -> None:
    """The shortcuts are taken on the columns a model writes (what makes them fast)."""
    n = 50
    statuses = column_table("status", "str", np.array(["ok", "x"] * 25, dtype=object))
    assert statuses.size == 2 and statuses.codes.tolist() == [0, 1] * 25
    reasons = column_table("reasons", "list[str]", np.array(REASONS[:2] * 25, dtype=object))
    assert reasons.json == b'[["a, b","c"],[]]' and reasons.size == 2
    days = column_table("as_of", "date", np.full(n, np.datetime64("2025-09-30", "ns")))
    assert days.json == b'["2025-09-30"]' and days.codes is None


def _split(pieces: list[bytes], sizes: list[int], plain: list[bool]) -> tuple[list, int]:
    """The values :func:`json_kernels.split_pieces` cuts out of ``pieces`` (arrays of
    ``sizes`` values, then whole texts), and the array it reports as wrong."""
    text = np.frombuffer(b"".join([*pieces, bytes(json_kernels.BLOCK)]), np.uint8)
    starts = np.zeros(sum(sizes) + len(pieces) - len(sizes), np.int64)
    ends = np.zeros_like(starts)
    wrong = json_kernels.split_pieces(
        text, np.cumsum([0, *map(len, pieces)]), np.array(sizes), np.array(plain), starts, ends
    )
    cut = [text[a:b].tobytes() for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return cut, wrong


@pytest.mark.parametrize(
    "values",
    [
        [1.5, None, True, -0.0, 10**30],
        AWKWARD,
        [["a,b", "c"], [], ["]"], {"k": "v,w", "x": [1, {"y": "}"}]}, "{"],
        ["\\", "\\\\", '\\"', '"\\'],
    ],
)
def test_values_are_cut_out_of_their_encoded_array(values: list) -> None:
    encoded = pydantic_core.to_json(values)
    plain = b'"' not in encoded and b"{" not in encoded
    cut, wrong = _split([encoded, b"tail"], [len(values)], [plain])
    assert wrong == -1
    assert cut == [pydantic_core.to_json(value) for value in values] + [b"tail"]


@pytest.mark.parametrize("seed", range(5))
def test_numbers_are_cut_at_every_byte_offset(seed: int) -> None:
    """Plain arrays are scanned 8 bytes at a time: commas at every offset of a word,
    values shorter and longer than a word, commas right after the array."""
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 10 ** rng.integers(1, 19, k), k).tolist() for k in (1, 2, 9, 300)]
    arrays += [[7], []]
    pieces = [pydantic_core.to_json(values) for values in arrays] + [b",,,,,,,,", b","]
    cut, wrong = _split(pieces, [len(values) for values in arrays], [True] * len(arrays))
    assert wrong == -1
    expected = [pydantic_core.to_json(value) for values in arrays for value in values]
    assert cut == expected + [b",,,,,,,,", b","]


@pytest.mark.parametrize("size", [2, 4])
def test_an_array_of_another_size_is_reported(size: int) -> None:
    for encoded, plain in ((b'["a,b","c",[1,2]]', False), (b"[1,2,3]", True)):
        _, wrong = _split([b"[1,2]", encoded], [2, size], [True, plain])
        assert wrong == 1


def test_parsed_reasons_are_the_converters() -> None:
    """The shortcut parses texts one by one (msgspec); the converter parses them joined
    (json): for texts that each parse as a list of strings these agree."""
    values = np.array(REASONS * 4, dtype=object)
    table = column_table("reasons", "list[str]", values)
    assert json.loads(table.json) == [json.loads(text) for text in REASONS]
