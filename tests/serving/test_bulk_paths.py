"""The fast paths for large requests give exactly what the general paths give.

- Large ``/predict`` bodies of uniform feature rows are decoded straight into columns
  (:mod:`fidelite.serving.bulk_rows`); the batch must equal the general path's (pydantic
  parse + :func:`feature_batch`) bit for bit, and every body the general path refuses
  must be left to it (so the 400 and its message are unchanged).
- Large responses are encoded column by column (:mod:`fidelite.serving.json_columns`);
  the bytes must equal ``pydantic_core.to_json`` of one dict per customer (more cases
  in test_json_encoding.py).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pydantic
import pydantic_core
import pytest

from fidelite.errors import FideliteError
from fidelite.serving import handlers
from fidelite.serving.bulk_rows import PROBE_BYTES, bulk_rows, first_row_columns
from fidelite.serving.responses import predict_body, score_dicts, scores_array
from fidelite.serving.rows import FeatureBatch
from fidelite.serving.schemas import ModelRef, PredictRequest
from fidelite.serving.settings import ServiceSettings

REQUIRED = ("orders_total", "frequency", "recency", "T", "monetary_value")
SETTINGS = ServiceSettings.from_env({"FIDELITE_AUTH": "off", "FIDELITE_MAX_BATCH": "1000"})
N = 60


def _row(i: int) -> dict:
    """A varied, valid feature row: integers and floats, nulls, texts, flags."""
    rng = np.random.default_rng(i)
    age = float(rng.integers(30, 900))
    frequency = float(rng.integers(0, 12))
    return {
        "customer_id": f"C{i:05d}" if i % 7 else f'ç-{i}, "quoted" \\ id',
        "frequency": frequency,
        "recency": 0.0 if frequency == 0 else round(float(rng.uniform(0, age)), 3),
        "T": age,
        "monetary_value": float(rng.lognormal(3, 1)) if i % 5 else 0.1 + 0.2,
        "orders_total": int(frequency) + 1,
        "spend_total": float(rng.lognormal(5, 1)),
        "days_since_last_purchase": None if i % 4 == 0 else float(rng.integers(0, 400)),
        "velocity_90_vs_prior": None if i % 3 else 1e-7 * i,
        "eng_email_open_rate": float(rng.uniform()),
        "eng_email_days_since_last": None,
        "best_channel": ["email", "sms", "carrier-pigeon", "", None, "café, terrasse"][i % 6],
        "channel_preference": "email,sms,push" if i % 2 else None,
        "email_opt_in": [True, False, None][i % 3],
        "sms_opt_in": bool(i % 2),
        "acquisition_channel": "paid_social",
    }


ROWS = [_row(i) for i in range(N)]


def _body(rows: list[dict], *, plain: bool = False, **envelope: object) -> bytes:
    document = {"as_of": "2025-09-30", "features": rows, **envelope}
    return json.dumps(document, ensure_ascii=not plain).encode()


def _general(body: bytes) -> tuple[PredictRequest, FeatureBatch]:
    request = PredictRequest.model_validate_json(body)
    return request, handlers.request_batch(request, SETTINGS)


def _same_batch(left: FeatureBatch, right: FeatureBatch) -> None:
    assert left.ids == right.ids
    assert list(left.numbers) == list(right.numbers)
    assert list(left.others) == list(right.others)
    for name, values in left.numbers.items():
        assert values.dtype == right.numbers[name].dtype == np.float64, name
        assert values.tobytes() == right.numbers[name].tobytes(), name  # bit for bit
    for name, values in left.others.items():
        assert values.dtype == right.others[name].dtype == object, name
        assert values.tolist() == right.others[name].tolist(), name


@pytest.mark.parametrize("reasons", [None, True, False])
def test_uniform_rows_decode_to_the_general_paths_batch(reasons: bool | None) -> None:
    envelope = {} if reasons is None else {"include_reasons": reasons}
    body = _body(ROWS, **envelope)
    request, batch = handlers.read_body(body, PredictRequest.model_validate_json, SETTINGS)
    assert batch is not None, "the fast path refused a uniform body"
    general, expected = _general(body)
    _same_batch(batch, expected)
    assert (request.as_of, request.include_reasons) == (general.as_of, general.include_reasons)


def test_numbers_are_parsed_to_the_same_bits() -> None:
    rng = np.random.default_rng(3)
    values = [float(v) for v in rng.uniform(0, 1e6, 200)] + [5e-324, 2.5e-8, 1e11, 0.1]
    texts = [repr(v) for v in values] + ["1E3", "12.5e-1", "-0", "0", "7", "3.000"]
    rows = [dict(ROWS[i % N], customer_id=f"x{i}", spend_total="@") for i in range(len(texts))]
    body = _body(rows)
    for text in texts:  # each number as written, not as Python would write it
        body = body.replace(b'"@"', text.encode(), 1)
    rows_bulk = bulk_rows(body, required=REQUIRED, max_rows=1000)
    assert rows_bulk is not None
    _same_batch(rows_bulk.batch, _general(body)[1])


def test_formatting_does_not_matter_but_the_probe_window_does() -> None:
    pretty = json.dumps(
        {"include_reasons": False, "as_of": "2025-09-30", "features": ROWS}, indent=2
    )
    assert bulk_rows(pretty.encode(), required=REQUIRED, max_rows=1000) is not None
    assert first_row_columns(pretty.encode()) == tuple(ROWS[0])
    # the first row beyond the probe window: the general path (same meaning)
    far = _body(ROWS).replace(b'"features": [', b'"features": [' + b" " * PROBE_BYTES)
    assert bulk_rows(far, required=REQUIRED, max_rows=1000) is None
    _same_batch(_general(far)[1], _general(_body(ROWS))[1])


def _with(rows: list[dict], position: int, **change: object) -> list[dict]:
    rows = [dict(row) for row in rows]
    rows[position].update(change)
    return rows


def _without(rows: list[dict], position: int, column: str) -> list[dict]:
    rows = [dict(row) for row in rows]
    del rows[position][column]
    return rows


def bad_bodies(rows: list[dict], *, plain: bool) -> dict[str, bytes]:
    """Unusual or bad variants of a body of ``rows`` (``plain``: UTF-8 written as is,
    not as ``\\u`` escapes, the compiled scanner's case)."""

    def body(rows: list[dict], **envelope: object) -> bytes:
        return _body(rows, plain=plain, **envelope)

    def with_(position: int, **change: object) -> bytes:
        return body(_with(rows, position, **change))

    return {
        "bool as number": with_(40, spend_total=True),
        "numeric string": with_(40, spend_total="59.9"),
        "number as label": with_(40, best_channel=7),
        "number as flag": with_(40, email_opt_in=1),
        "object as number": with_(40, T={"a": 1}),
        "NaN literal": with_(40, monetary_value=float("nan")),
        "Infinity literal": with_(40, recency=float("inf")),
        "overflowing number": with_(40, spend_total="@").replace(b'"@"', b"1e400"),
        "out of range": with_(40, T=1e308, recency=1.0),
        "negative count": with_(40, orders_total=-1),
        "recency > T": with_(40, recency=600.0, T=528.0),
        "frequency > orders": with_(40, frequency=9.0, orders_total=2),
        "required null": with_(40, orders_total=None),
        "buyer without monetary value": with_(40, monetary_value=None),
        "duplicate id": with_(40, customer_id=rows[3]["customer_id"]),
        "id not a string": with_(40, customer_id=40),
        "id null": with_(40, customer_id=None),
        "empty id": with_(40, customer_id=""),
        "id of 257 characters": with_(40, customer_id="é" * 257),
        "label of 257 characters": with_(40, best_channel="x" * 257),
        "unknown column": with_(40, colour="red"),
        "unknown column in the first row": with_(0, colour="red"),
        "a row without a column": body(_without(rows, 40, "spend_total")),
        "a row without its id": body(_without(rows, 40, "customer_id")),
        "required column everywhere missing": body(
            [{k: v for k, v in r.items() if k != "T"} for r in rows]
        ),
        "too many rows": body(rows * 20),
        "bad as_of": body(rows).replace(b"2025-09-30", b"2025-13-45"),
        "as_of out of the calendar": body(rows).replace(b"2025-09-30", b"9999-12-31"),
        "as_of a number": body(rows).replace(b'"2025-09-30"', b"20250930"),
        "include_reasons a string": body(rows, include_reasons="no"),
        "history too": body(rows, history={"transactions": []}),
        "unknown top-level field": body(rows, colour="red"),
        "lone surrogate": body(rows).replace(b'"carrier-pigeon"', b'"\\ud800"', 1),
        "truncated": body(rows)[:-5],
    }


#: Rows a CRM export typically sends: no character that JSON must escape.
PLAIN_ROWS = [
    dict(row, customer_id=f"ç-{i}" if i % 7 == 0 else row["customer_id"])
    for i, row in enumerate(ROWS)
]
BAD_BODIES = {
    **{f"escaped/{case}": body for case, body in bad_bodies(ROWS, plain=False).items()},
    **{f"plain/{case}": body for case, body in bad_bodies(PLAIN_ROWS, plain=True).items()},
}


#: Bodies the general path accepts although the fast path does not take them.
ACCEPTED_BY_THE_GENERAL_PATH = {"a row without a column"}
#: Bodies whose envelope the schema refuses (the rows would decode).
ENVELOPE = {"bad as_of", "as_of out of the calendar"}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_unusual_large_bodies_are_left_to_the_general_path(case: str) -> None:
    """The fast path leaves every bad (or unusual) body to the general path: same batch,
    or same exception with the same message (pydantic's for the schema, the service's
    for the rows)."""
    body = BAD_BODIES[case]
    case = case.split("/")[1]

    def outcome(read: object) -> tuple:
        try:
            request, batch = read()  # type: ignore[operator]
        except pydantic.ValidationError as exc:
            return ("schema", exc.errors(include_url=False, include_context=False))
        except FideliteError as exc:
            return (type(exc).__name__, str(exc), exc.field)
        return ("ok", request.as_of, batch)

    def large() -> tuple:
        request, batch = handlers.read_body(body, PredictRequest.model_validate_json, SETTINGS)
        return request, batch if batch is not None else handlers.request_batch(request, SETTINGS)

    if case not in ENVELOPE:
        assert bulk_rows(body, required=REQUIRED, max_rows=SETTINGS.max_batch) is None
    expected = outcome(lambda: _general(body))
    assert (expected[0] == "ok") == (case in ACCEPTED_BY_THE_GENERAL_PATH), expected
    got = outcome(large)
    if expected[0] == "ok":
        _same_batch(got[2], expected[2])
        assert got[1] == expected[1]
    else:
        assert got == expected


def test_small_batches_are_left_to_the_row_by_row_check() -> None:
    assert bulk_rows(_body(ROWS[:32]), required=REQUIRED, max_rows=1000) is None
    assert bulk_rows(_body(ROWS[:33]), required=REQUIRED, max_rows=1000) is not None


# ------------------------------------------------------------------------- responses


def _columns(n: int) -> dict:
    rng = np.random.default_rng(n)
    floats = rng.lognormal(0, 3, n) * rng.choice([1e-9, 1, 1e17], n)
    floats[::7] = np.nan
    floats[1::11] = np.inf
    texts = np.array(
        [
            ["ok", "café, terrasse", ' "q" \\ ', "", "  ", None, 3, float("nan"), "日本"][i % 9]
            for i in range(n)
        ],
        dtype=object,
    )
    days = np.array(["2025-09-30", "NaT", "1999-01-02"] * n, dtype="datetime64[ns]")[:n]
    return {
        "customer_id": np.array([f"c,{i}" if i % 5 == 0 else f"c{i}" for i in range(n)], object),
        "as_of": np.full(n, np.datetime64("2025-09-30")),
        "horizon_days": np.full(n, 90),
        "status": np.array(["ok", "insufficient_history"] * n, dtype=object)[:n],
        "churn_probability": floats,
        "p_alive": list(floats[::-1]),
        "expected_next_purchase": days,
        "lifecycle_stage": texts,
        "risk_band": pd.Series(texts[::-1]),
        "reasons": np.array(
            [['["a, b", "c"]', "[]", '["é"]', "", "plain text"][i % 5] for i in range(n)],
            dtype=object,
        ),
        "best_channel": np.array([None] * n, dtype=object),
        "email_opt_in": np.array([True, False, None] * n, dtype=object)[:n],
        "sms_opt_in": np.ones(n, dtype=bool),
        "uplift_by_channel": np.array(['{"email": 0.1}', None] * n, dtype=object)[:n],
    }


@pytest.mark.parametrize("n", [0, 1, 17, 40, 333])
def test_column_wise_json_is_byte_identical(n: int) -> None:
    columns = _columns(n)
    assert scores_array(columns, n) == pydantic_core.to_json(score_dicts(columns, n))
    model = ModelRef(name="fidelite", version="3", alias="champion")
    status = columns["status"]
    expected = pydantic_core.to_json(
        {
            "model": model.model_dump(),
            "n_customers": n,
            "n_insufficient_history": sum(1 for s in status if s != "ok"),
            "scores": score_dicts(columns, n),
        }
    )
    assert predict_body(model, columns, n) == expected
