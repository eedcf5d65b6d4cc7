"""Serving parts without a server: settings, errors, row validation, responses, snapshot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pydantic
import pytest

from fidelite.errors import ConfigurationError, DataContractError, ModelNotFoundError
from fidelite.features.contract import score_column_names
from fidelite.serving.errors import (
    ErrorBody,
    PayloadTooLargeError,
    ReportUnavailableError,
    RequestError,
    SnapshotUnavailableError,
    error_payload,
)
from fidelite.serving.responses import score_columns
from fidelite.serving.rows import ROWWISE_MAX_ROWS, feature_batch
from fidelite.serving.schemas import CustomerScore, LookupResponse, PredictRequest
from fidelite.serving.settings import ServiceSettings
from fidelite.serving.snapshot import SnapshotStore, read_snapshot, write_snapshot_atomic

REQUIRED = ("orders_total", "frequency", "recency", "T", "monetary_value")
ROW = {
    "customer_id": "a",
    "orders_total": 3,
    "frequency": 2.0,
    "recency": 100.0,
    "T": 200.0,
    "monetary_value": 40.0,
    "best_channel": "email",
    "email_opt_in": False,
}


# ---------------------------------------------------------------------- contract


def test_response_columns_are_the_contract_score_columns() -> None:
    assert tuple(CustomerScore.model_fields) == score_column_names()
    assert tuple(score_columns({"customer_id": ["x"]}, 1)) == score_column_names()


# ---------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"FIDELITE_API_KEYS": "k", "FIDELITE_MAX_BATCH": "abc"}, "FIDELITE_MAX_BATCH"),
        ({"FIDELITE_API_KEYS": "k", "FIDELITE_MAX_BATCH": "-3"}, "FIDELITE_MAX_BATCH"),
        ({"FIDELITE_API_KEYS": "k", "FIDELITE_WORKERS": "1.5"}, "FIDELITE_WORKERS"),
        ({"FIDELITE_API_KEYS": "k", "FIDELITE_SCORING_THREADS": "0"}, "FIDELITE_SCORING_THREADS"),
        ({"FIDELITE_API_KEYS": "k", "FIDELITE_BODY_TIMEOUT": "nan"}, "FIDELITE_BODY_TIMEOUT"),
        ({"FIDELITE_API_KEYS": "k", "FIDELITE_AUTH": "maybe"}, "FIDELITE_AUTH"),
        ({"FIDELITE_API_KEYS": ""}, "FIDELITE_API_KEYS"),
        ({"FIDELITE_API_KEYS": " , "}, "FIDELITE_API_KEYS"),
        ({}, "FIDELITE_API_KEYS"),
        ({"FIDELITE_AUTH": "off", "FIDELITE_METRICS_AUTH": "on"}, "FIDELITE_METRICS_AUTH"),
    ],
)
def test_bad_settings_name_the_variable(env: dict, variable: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServiceSettings.from_env(env)
    assert caught.value.field == variable
    assert variable in str(caught.value) and "\n" not in str(caught.value)


def test_settings_defaults_and_explicit_auth_off() -> None:
    settings = ServiceSettings.from_env({"FIDELITE_API_KEYS": " k1 , ,k2 "})
    assert settings.api_keys == ("k1", "k2") and settings.auth
    assert settings.reload_seconds == 60 and settings.winback_limit == 100
    off = ServiceSettings.from_env({"FIDELITE_AUTH": "off", "FIDELITE_RELOAD_SECONDS": "off"})
    assert off.api_keys == () and not off.auth and off.reload_seconds == 0
    # one part per large call by default (the model uses the cores itself); settable
    cores = os.cpu_count() or 1
    one = ServiceSettings.from_env({"FIDELITE_AUTH": "off", "FIDELITE_WORKERS": "1"})
    assert one.scoring_threads == 1
    many = ServiceSettings.from_env({"FIDELITE_AUTH": "off", "FIDELITE_WORKERS": str(cores)})
    assert many.scoring_threads == 1
    two = ServiceSettings.from_env({"FIDELITE_AUTH": "off", "FIDELITE_SCORING_THREADS": "2"})
    assert two.scoring_threads == 2


def test_bentoml_tracing_is_off_unless_asked_for() -> None:
    quiet = ServiceSettings.from_env({"FIDELITE_AUTH": "off"})
    assert not quiet.tracing
    assert quiet.bentoml_options() == {"tracing": {"excluded_urls": ".*"}}
    traced = ServiceSettings.from_env({"FIDELITE_AUTH": "off", "FIDELITE_TRACING": "on"})
    assert traced.tracing and traced.bentoml_options() == {}  # BentoML's own config applies
    with pytest.raises(ConfigurationError):
        ServiceSettings.from_env({"FIDELITE_AUTH": "off", "FIDELITE_TRACING": "maybe"})


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (RequestError("x: bad", field="x"), 400),
        (PayloadTooLargeError("too many", field="features"), 413),
        (DataContractError("as_of: bad", field="as_of"), 400),
        (SnapshotUnavailableError("no snapshot", field="snapshot"), 503),
        (ReportUnavailableError("no report r.html beside the snapshot", field="report"), 503),
        (ModelNotFoundError("no model at /secret/path"), 503),
        (ConfigurationError("/etc/secret is wrong"), 500),
        (KeyError("/internal/detail"), 500),
    ],
)
def test_every_error_maps_to_one_body_shape(exc: Exception, status: int) -> None:
    got, body = error_payload(exc)
    assert got == status and isinstance(body, ErrorBody)
    if status >= 500 and status != 503 or isinstance(exc, ModelNotFoundError):
        assert "/" not in body.error  # no paths or internals in server errors
    if isinstance(exc, SnapshotUnavailableError | ReportUnavailableError):
        assert body.error == exc.message  # written for clients: passed through


def test_validation_errors_name_the_json_field() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        PredictRequest.model_validate_json(b'{"as_of": "2025-01-01", "features": [], "x": 1}')
    status, body = error_payload(caught.value)
    assert status == 400 and body.field in {"features", "x"} and body.detail


# ------------------------------------------------------------------ feature rows


def _batch(rows: list[dict]) -> object:
    return feature_batch(rows, required=REQUIRED, max_rows=100)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recency": 600.0, "T": 528.0}, "recency"),  # recency > T
        ({"frequency": 0.0, "recency": 5.0}, "recency"),
        ({"frequency": 9.0}, "frequency"),  # more repeat days than orders
        ({"recency": True}, "recency"),
        ({"orders_total": "3"}, "orders_total"),
        ({"best_channel": 5}, "best_channel"),
        ({"email_opt_in": "yes"}, "email_opt_in"),
        ({"customer_id": True}, "customer_id"),
        ({"customer_id": 7}, "customer_id"),
        ({"customer_id": "x" * 257}, "customer_id"),
        ({"T": 1e308, "recency": 1.0}, "T"),
        ({"frequency": float("nan")}, "frequency"),
        ({"monetary_value": float("inf")}, "monetary_value"),
        ({"nonsense_column": 1}, "nonsense_column"),
        ({"monetary_value": None}, "monetary_value"),
    ],
)
@pytest.mark.parametrize("n_rows", [1, ROWWISE_MAX_ROWS + 1])
def test_bad_rows_are_refused_naming_the_column(change: dict, field: str, n_rows: int) -> None:
    rows = [dict(ROW, customer_id=f"c{i}") for i in range(n_rows - 1)] + [dict(ROW, **change)]
    with pytest.raises(RequestError) as caught:
        _batch(rows)
    assert caught.value.field == f"features.{field}", caught.value


def _outcome(rows: list[dict]) -> tuple:
    """What feature_batch makes of rows: the columns (NaN as None) or the error."""
    try:
        batch = feature_batch(rows, required=REQUIRED, max_rows=1000)
    except RequestError as exc:
        return ("error", str(exc), exc.field)

    def plain(values: np.ndarray) -> list:
        return [None if isinstance(v, float) and v != v else v for v in values.tolist()]

    numbers = {name: plain(values) for name, values in batch.numbers.items()}
    others = {name: plain(values) for name, values in batch.others.items()}
    dtypes = {name: str(values.dtype) for name, values in {**batch.numbers, **batch.others}.items()}
    return ("ok", batch.ids, list(numbers), numbers, list(others), others, dtypes)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"orders_total": None},
        {"monetary_value": None, "frequency": None},
        {"T": 1e308, "recency": 1.0},
        {"recency": 600.0, "T": 528.0},
        {"frequency": float("nan")},
        {"monetary_value": float("inf")},
        {"best_channel": "x" * 300},
        {"best_channel": None, "email_opt_in": None},
        {"email_opt_in": 1},
        {"recency": True},
        {"orders_total": -1, "monetary_value": None},
        {"orders_total": None, "T": 1e308, "recency": 1.0},
    ],
)
def test_bulk_check_of_uniform_rows_equals_the_column_by_column_check(
    change: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fidelite.serving import rows as rows_module

    rows = [dict(ROW, customer_id=f"c{i}", T=200.0 + i) for i in range(3 * ROWWISE_MAX_ROWS)]
    rows.append(dict(ROW, customer_id="z", **change))
    if not change:
        assert rows_module._uniform(rows, [r["customer_id"] for r in rows]) is not None
    bulk = _outcome(rows)
    monkeypatch.setattr(rows_module, "_uniform", lambda rows, ids: None)
    assert _outcome(rows) == bulk


def test_rows_become_typed_columns_and_missing_is_nan() -> None:
    second = dict(ROW, customer_id="b", monetary_value=None, orders_total=0, frequency=0.0)
    second.update(recency=0.0, email_opt_in=None)
    batch = _batch([ROW, second])
    assert batch.ids == ["a", "b"]
    assert batch.numbers["T"].dtype == np.float64
    assert np.isnan(batch.numbers["monetary_value"][1])
    assert batch.others["email_opt_in"].tolist() == [False, None]


def test_too_many_rows_is_413_and_duplicates_400() -> None:
    with pytest.raises(PayloadTooLargeError):
        feature_batch([ROW] * 3, required=REQUIRED, max_rows=2)
    with pytest.raises(RequestError, match="duplicate"):
        _batch([ROW, ROW])


# ---------------------------------------------------------------------- snapshot


def _scores(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "as_of": pd.Timestamp("2025-09-30"),
            "horizon_days": 90,
            "status": "ok",
            "churn_probability": np.linspace(0.1, 0.9, n),
            "predicted_clv": np.linspace(10, 30, n),
            "reasons": [json.dumps(["a reason"])] * n,
            "best_channel": [""] * n,
        }
    )


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    target = write_snapshot_atomic(_scores(), tmp_path / "scores.parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]
    assert len(pd.read_parquet(target)) == 3


def test_lookup_body_is_indexed_and_valid(tmp_path: Path) -> None:
    store = SnapshotStore(write_snapshot_atomic(_scores(), tmp_path / "s.parquet"))
    assert store.refresh()
    body = LookupResponse.model_validate_json(store.lookup_body(["c2", "zz", "c2"]))
    assert [r.found for r in body.results] == [True, False, True]
    assert body.results[0].score.reasons == ["a reason"]
    assert body.results[0].score.best_channel is None  # blank means no channel
    assert body.results[0].score.p_alive is None  # a column the file lacks is null


def test_bad_snapshot_keeps_the_last_good_one_and_never_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "secret-folder" / "s.parquet"
    store = SnapshotStore(path)
    store.refresh()
    with pytest.raises(SnapshotUnavailableError) as caught:
        store.current()
    assert "secret-folder" not in str(caught.value) and not store.ready
    write_snapshot_atomic(_scores(), path)
    assert store.refresh() and store.ready
    path.write_bytes(b"PAR1 half written")
    assert not store.refresh()
    assert len(store.current().frame) == 3  # last good still served
    state = store.state()
    assert state.loaded and state.error and "secret-folder" not in state.error
    write_snapshot_atomic(_scores().drop(columns=["churn_probability"]), path)
    store.refresh()
    assert "churn_probability" in store.state().error


def test_read_snapshot_refuses_missing_score_columns(tmp_path: Path) -> None:
    path = write_snapshot_atomic(pd.DataFrame({"customer_id": ["a"]}), tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="score columns"):
        read_snapshot(path)


@pytest.mark.parametrize(
    "value",
    [
        "C0000042",
        "o-1",
        "a",
        " 42",
        "42 ",
        "\t42",
        "42\n",
        "é42",
        "42é",
        "42\u00a0",
        "\u3000x",
        "x\x1f",
        "\x7f42",
        "",
    ],
)
def test_normal_ids_agree_with_the_loaders_trim(value: str) -> None:
    """The pure-Python shortcut of the id check decides as Arrow's trim (the loader's)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from fidelite.serving.merge_keys import _normal_ids

    trimmed = pc.utf8_trim_whitespace(pa.array([value], type=pa.large_string()))[0].as_py()
    expected = value != "" and trimmed == value
    assert _normal_ids([value]) is expected
    assert _normal_ids(["C1", value, "C2"]) is expected


def test_small_responses_convert_values_as_the_column_wise_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Columns of a few customers are converted value by value; the result must be the
    numpy path's, missing values included (NaN/inf in float columns, None/NaN in object
    columns, values that are neither)."""
    from fidelite.serving import score_values

    columns = {
        "churn_probability": np.array([0.5, np.nan, np.inf, -np.inf]),
        "horizon_days": np.array([90, 91, 92, 93]),
        "email_opt_in": np.array([True, False, True, False]),
        "status": np.array(["ok", None, float("nan"), "  "], dtype=object),
        "risk_band": ["high", None, "", "low"],
        "best_channel": np.array(["email", 3, None, np.float64("nan")], dtype=object),
        "lifecycle_stage": np.array(["active", pd.NA, pd.NaT, "lapsed"], dtype=object),
        "uplift_channel": np.array([float("inf"), "sms", None, 2.5], dtype=object),
        "value_at_risk": [1.5, float("nan"), None, 2],
    }
    assert len(columns["status"]) <= score_values.SMALL
    small = score_values.score_columns(columns, 4)
    monkeypatch.setattr(score_values, "SMALL", 0)
    assert score_values.score_columns(columns, 4) == small
    assert small["churn_probability"] == [0.5, None, None, None]
    assert small["status"] == ["ok", None, None, None]
