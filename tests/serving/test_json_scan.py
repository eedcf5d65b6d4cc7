"""The compiled scanner of large ``/predict`` bodies (:mod:`fidelite.serving.json_scan`,
:mod:`fidelite.serving.bulk_scan`): numbers rounded as Python rounds them, the same
batch as the general path, and nothing accepted that is not plain, valid JSON of the
expected shape (the general path answers those)."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from fidelite.serving import bulk_scan, handlers, json_scan
from fidelite.serving.bulk_rows import _layout, bulk_rows, first_row_columns
from fidelite.serving.json_numbers import EXACT_POWERS, POWERS
from fidelite.serving.schemas import PredictRequest
from fidelite.serving.settings import ServiceSettings

from .test_bulk_paths import PLAIN_ROWS, REQUIRED, _body, _same_batch

SETTINGS = ServiceSettings.from_env({"FIDELITE_AUTH": "off", "FIDELITE_MAX_BATCH": "10000"})


def _number(text: str) -> tuple[float, int, int]:
    buf = np.frombuffer(text.encode(), np.uint8)
    return json_scan.number_at(buf, 0, POWERS, EXACT_POWERS)


def _python_value(text: str) -> float:
    """What a general JSON decoder gives: integers as int, then float64."""
    return float(text) if re.search(r"[.eE]", text) else float(int(text))


def _number_texts() -> list[str]:
    rng = random.Random(11)
    bits = np.random.default_rng(11).integers(0, 2**63, 20_000, dtype=np.int64)
    texts = [repr(float(v)) for v in bits.view(np.float64) if np.isfinite(v)]
    texts += [repr(rng.random() * 10 ** rng.randint(-320, 308)) for _ in range(20_000)]
    texts += [f"{rng.randint(0, 10**19 - 1)}e{rng.randint(-350, 350)}" for _ in range(10_000)]
    texts += [
        f"-{rng.randint(0, 10 ** rng.randint(1, 25))}.{rng.randint(0, 10 ** rng.randint(1, 25))}"
        for _ in range(10_000)
    ]
    return texts + [
        "0", "-0", "0.0", "-0.0", "0e0", "-0E-5", "1E+2", "0.1", "5e-324", "4.9e-324",
        "2.2250738585072011e-308", "2.2250738585072014e-308", "1.7976931348623157e308",
        "9007199254740993", "9007199254740992", "18446744073709551615",
        "18446744073709551616", "1e23", "8.589973e9", "0.000000000000000000000000001",
        "1e400", "-1e400", "1e-400", "123456789012345678901234", "2.5", "3.5",
        "1.00000000000000011102230246251565404236316680908203125",
    ]  # fmt: skip


def test_numbers_round_as_python_rounds_them() -> None:
    """Every number the scanner rounds itself has Python's bits; the others (state 1)
    are converted by numpy, checked in the next test."""
    slow = 0
    for text in _number_texts():
        value, end, state = _number(text)
        assert end == len(text) and state in (0, 1), text
        slow += state
        if state == 0:
            expected = np.float64(_python_value(text)).view(np.int64)
            assert np.float64(value).view(np.int64) == expected, text
    assert slow < 15_000  # most are rounded in compiled code


def test_scanned_bodies_hold_pythons_numbers() -> None:
    """Numbers of every kind in a body, through the whole scan (numpy for the slow
    ones, also in the second half of a body scanned by two threads)."""
    texts = [t for t in _number_texts() if abs(_python_value(t)) <= 1e11][:6_000]
    body, shape = _single_column_body(texts)
    assert len(body) >= bulk_scan.SPLIT_MIN_BYTES
    scanned = bulk_scan.scan(body, shape, max_rows=10**6)
    assert scanned is not None
    expected = np.array([_python_value(t) for t in texts])
    got = scanned.numbers[shape.numeric.index("spend_total")]
    assert got.view(np.int64).tolist() == expected.view(np.int64).tolist()


def _single_column_body(texts: list[str]) -> tuple[bytes, bulk_scan.RowShape]:
    pad = "x" * 150
    rows = ",".join(
        f'{{"customer_id":"c{i}-{pad}","spend_total":{t},"T":1}}' for i, t in enumerate(texts)
    )
    body = f'{{"as_of":"2025-09-30","features":[{rows}]}}'.encode()
    kinds = {"spend_total": "number", "T": "number"}
    return body, bulk_scan.row_shape(("customer_id", "spend_total", "T"), kinds)


@pytest.mark.parametrize(
    "text", ["01", "-", "1.", ".5", "+1", "1e", "1e+", "--1", "1.e5", "0x1", "NaN", "Infinity"]
)
def test_text_that_is_not_a_json_number_is_refused(text: str) -> None:
    _, end, state = _number(text)
    assert state == -1 or end < len(text)


@pytest.mark.parametrize("rows", [40, 4_000], ids=["one thread", "two threads"])
@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
def test_plain_bodies_are_scanned_to_the_general_paths_batch(rows: int, indent: int | None) -> None:
    many = [dict(PLAIN_ROWS[i % len(PLAIN_ROWS)], customer_id=f"ç{i}") for i in range(rows)]
    document = {"features": many, "include_reasons": False, "as_of": "2025-09-30"}
    body = json.dumps(document, ensure_ascii=False, indent=indent).encode()
    assert (len(body) >= bulk_scan.SPLIT_MIN_BYTES) == (rows > 1_000)
    shape = _layout(first_row_columns(body)).shape
    assert bulk_scan.scan(body, shape, max_rows=10**6) is not None, "the scanner refused"
    bulk = bulk_rows(body, required=REQUIRED, max_rows=10**6)
    assert bulk is not None and bulk.include_reasons is False and bulk.as_of == "2025-09-30"
    request = PredictRequest.model_validate_json(body)
    _same_batch(bulk.batch, handlers.request_batch(request, SETTINGS))


def _scanned(body: bytes) -> bulk_scan.ScannedRows | None:
    shape = _layout(first_row_columns(_body(PLAIN_ROWS, plain=True))).shape
    return bulk_scan.scan(body, shape, max_rows=10**6)


GOOD = _body(PLAIN_ROWS, plain=True)
BIG_GOOD = _body(PLAIN_ROWS * 300, plain=True)  # ids repeat: the scan itself does not care
UNSCANNABLE = {
    "escaped quote in a text": GOOD.replace(b'"paid_social"', b'"paid \\"social\\""', 1),
    "escaped letter in a key": GOOD.replace(b'"T":', b'"\\u0054":', 1),
    "control character in a text": GOOD.replace(b'"paid_social"', b'"paid\tsocial"', 1),
    "not UTF-8 in an id": GOOD.replace("ç-7".encode(), b"\xff-7", 1),
    "not UTF-8 in a text": GOOD.replace(b'"paid_social"', b'"\xc3("', 1),
    "leading zero": GOOD.replace(b'"T": ', b'"T": 0', 1),
    "trailing comma in a row": GOOD.replace(b'"paid_social"}', b'"paid_social",}', 1),
    "trailing comma in the list": GOOD.replace(b"}]", b"},]", 1),
    "keys in another order": GOOD.replace(b'"T": ', b'"X": ', 1).replace(b'"recency"', b'"T"'),
    "features twice": GOOD[:-1] + b', "features": []}',
    "as_of twice": GOOD[:-1] + b', "as_of": "2025-01-01"}',
    "byte order mark": b"\xef\xbb\xbf" + GOOD,
    "bytes after the end": GOOD + b"x",
    "two documents": GOOD + GOOD,
    "empty features": b'{"as_of": "2025-09-30", "features": []}',
    "as_of null": GOOD.replace(b'"2025-09-30"', b"null", 1),
    "history not null": GOOD[:-1] + b', "history": {}}',
    "broken row near the middle": BIG_GOOD[: len(BIG_GOOD) // 2]
    + BIG_GOOD[len(BIG_GOOD) // 2 :].replace(b", {", b" {", 1),
    "truncated big body": BIG_GOOD[:-3],
}


def test_the_good_bodies_are_scanned() -> None:
    assert _scanned(GOOD) is not None
    assert len(BIG_GOOD) >= bulk_scan.SPLIT_MIN_BYTES
    scanned = _scanned(BIG_GOOD)
    assert scanned is not None and len(scanned.ids) == len(PLAIN_ROWS) * 300


@pytest.mark.parametrize("case", list(UNSCANNABLE))
def test_unusual_bodies_are_left_to_the_other_decoders(case: str) -> None:
    body = UNSCANNABLE[case]
    assert body != GOOD
    assert _scanned(body) is None


def test_more_rows_than_allowed_are_left_to_the_general_path() -> None:
    shape = _layout(first_row_columns(GOOD)).shape
    assert bulk_scan.scan(GOOD, shape, max_rows=len(PLAIN_ROWS)) is not None
    assert bulk_scan.scan(GOOD, shape, max_rows=len(PLAIN_ROWS) - 1) is None
    assert bulk_scan.scan(BIG_GOOD, shape, max_rows=len(PLAIN_ROWS) * 300 - 1) is None


def test_the_split_is_a_comma_before_a_row() -> None:
    at = bulk_scan.split_point(BIG_GOOD, _layout(first_row_columns(BIG_GOOD)).shape)
    assert len(BIG_GOOD) // 2 <= at < len(BIG_GOOD) * 0.6
    assert BIG_GOOD[at : at + 17] == b', {"customer_id":'
