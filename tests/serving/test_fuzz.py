"""Property-based fuzzing of every endpoint from the live service's own OpenAPI document.

Schemathesis generates requests from ``/docs.json`` (a bounded run: up to 80 cases per
operation, a fixed seed, so a failure reproduces) and checks that no response is a 5xx
and that every response matches what the document promises: status code, content type
and body schema (the one error schema for 4xx included).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serving.conftest import API_KEY, LiveServer

pytestmark = pytest.mark.slow
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_every_endpoint_survives_generated_requests(live_server: LiveServer) -> None:
    live_server.refresh_report()  # earlier tests rewrote the snapshot: keep /report a 200
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/docs.json")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9  # predict, lookup, winback, model, report, health x3, metrics
    failures: dict[str, str] = {}
    calls: list[int] = []
    for operation in operations:

        @seed(20251202)
        @settings(
            max_examples=80,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            calls.append(response.status_code)

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure before failing
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert len(calls) >= 200 and max(calls) < 500, (len(calls), sorted(set(calls)))
