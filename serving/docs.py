"""The API's documentation: the OpenAPI document at ``/docs.json`` and Swagger UI at ``/``.

BentoML generates the schemas from the request/response models; this module turns that
into a document people can integrate from: fidelite's title and versions (package and
served model), a description per endpoint, request examples, authentication, and one
error schema (:class:`ErrorBody`) for every 4xx/5xx the service can send. The Swagger UI
page loads only files served by this service (BentoML's bundled copy of Swagger UI) and
its Content-Security-Policy forbids anything else, so nothing is fetched from the
internet when someone opens the docs.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from fidelite.serving.errors import ErrorBody
from fidelite.serving.models import fidelite_version
from fidelite.serving.schemas import AS_OF_EXAMPLE, FEATURE_ROW_EXAMPLE, HISTORY_EXAMPLE

SWAGGER_FILES = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "index.css"}
)
DOCS_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'"
    ),
    "x-content-type-options": "nosniff",
}
_ERROR = {"$ref": "#/components/schemas/ErrorBody"}
_STATUS_TEXT = {
    400: "Invalid request: the body names the field (`field`) and what is wrong (`error`).",
    401: "Missing or invalid API key (`Authorization: Bearer <key>`).",
    405: "Wrong HTTP method for this path.",
    408: "The body was not received within FIDELITE_BODY_TIMEOUT seconds.",
    413: "Body over FIDELITE_MAX_BODY_BYTES, or more customers/ids than FIDELITE_MAX_BATCH.",
    415: "The body is not sent as `Content-Type: application/json`.",
    422: "Not possible with the served model: `policy: uplift` without an uplift component "
    "(train with --campaigns).",
    500: "Unexpected server error (no details; the server log has them).",
    503: "Not available now: no scores snapshot loaded (lookup, win-back, report), no "
    "up-to-date report beside it (report), or not ready.",
}
_API_STATUSES = (400, 401, 405, 408, 413, 415, 500)
_EXAMPLES: dict[str, dict[str, Any]] = {
    "/predict": {
        "feature_rows": {
            "summary": "Feature rows (as written by `fidelite features`)",
            "value": {"as_of": AS_OF_EXAMPLE, "features": [FEATURE_ROW_EXAMPLE]},
        },
        "raw_history": {
            "summary": "Raw history (features built server-side)",
            "value": {"as_of": AS_OF_EXAMPLE, "history": HISTORY_EXAMPLE},
        },
    },
    "/customers/lookup": {
        "ids": {"summary": "Two ids", "value": {"customer_ids": ["C0000001", "C0000002"]}}
    },
    "/winback": {
        "budget": {
            "summary": "500 contacts at 2.00 each",
            "value": {"max_contacts": 500, "offer_cost": 2.0, "response_rate": 0.15, "limit": 50},
        },
        "next_page": {
            "summary": "The next page of the same selection",
            "value": {"max_contacts": 500, "offer_cost": 2.0, "limit": 50, "offset": 50},
        },
        "campaign": {
            "summary": "A campaign with a 10% control group, email and app banners",
            "value": {
                "campaign_id": "winback-2025-10",
                "channels": ["email", "app"],
                "holdout_share": 0.1,
                "max_spend": 2000.0,
                "offer_cost": 2.5,
                "policy": "auto",
            },
        },
    },
}
_SCORE_EXAMPLE = {
    "customer_id": "C0000042",
    "as_of": AS_OF_EXAMPLE,
    "horizon_days": 90,
    "status": "ok",
    "churn_probability": 0.62,
    "p_alive": 0.71,
    "expected_purchases": 0.9,
    "predicted_clv": 54.2,
    "predicted_clv_p10": 0.0,
    "predicted_clv_p90": 131.0,
    "expected_next_purchase": "2025-12-14",
    "lifecycle_stage": "at_risk",
    "churn_percentile": 68.0,
    "risk_band": "high",
    "value_at_risk": 33.6,
    "reasons": ["no purchase for 120 days, 2.1x the usual gap", "email opens fell to 5%"],
    "best_channel": "email",
    "channel_preference": "email,web",
    "email_opt_in": True,
    "sms_opt_in": False,
    "push_opt_in": True,
}


def _score_example() -> dict[str, Any]:
    """One customer's scores with every contract column (null where no example is set)."""
    from fidelite.features.contract import SCORE_COLUMNS

    return {
        c.name: _SCORE_EXAMPLE.get(c.name, [] if c.dtype == "list[str]" else None)
        for c in SCORE_COLUMNS
    }


def _response_examples(path: str, model_ref: dict[str, Any]) -> dict[str, Any] | None:
    score = _score_example()
    if path == "/predict":
        value = {
            "model": model_ref,
            "n_customers": 1,
            "n_insufficient_history": 0,
            "scores": [score],
        }
    elif path == "/customers/lookup":
        value = {
            "snapshot_as_of": AS_OF_EXAMPLE,
            "n_found": 1,
            "n_missing": 1,
            "results": [
                {"customer_id": "C0000042", "found": True, "score": score},
                {"customer_id": "nobody", "found": False, "score": None},
            ],
        }
    else:
        return None
    return {"example": {"summary": "A typical answer", "value": value}}


_SUMMARIES = {
    "/predict": ("Scoring", "Score customers (feature rows or raw history)"),
    "/customers/lookup": ("Snapshot", "Look up scored customers by id"),
    "/winback": ("Snapshot", "Select customers for a win-back campaign"),
    "/model": ("Model", "Served model, champion status and snapshot state"),
    "/report": ("Snapshot", "Customer-base report (HTML) of the served snapshot"),
}
#: GET endpoints of the mounted info app, with the error statuses each can answer.
_INFO_STATUSES = {"/model": (401,), "/report": (401, 503)}
_DESCRIPTION = """\
Churn probability, customer lifetime value (with an 80% interval), expected next purchase,
lifecycle stage, risk band and the reasons behind each score, plus win-back targeting
within a budget. Model version served: **{model_version}** ({model_name}, alias
`{alias}`); fidelite {fidelite_version}.

**Authentication**: every endpoint except `/livez`, `/healthz`, `/readyz`, the docs (`/`,
`/docs.json`) and, unless FIDELITE_METRICS_AUTH=on, `/metrics` needs
`Authorization: Bearer <key>` (keys in FIDELITE_API_KEYS).

**Requests** are JSON (`Content-Type: application/json`), strictly typed: numbers are JSON
numbers (never strings or booleans), ids are strings of 1-256 characters, dates are
`YYYY-MM-DD` between 1700 and 2200, unknown fields are refused. At most FIDELITE_MAX_BATCH
customers or ids per request (default 10,000) and FIDELITE_MAX_BODY_BYTES per body.

**Errors** all have the same body: `{{"error": "...", "field": "...", "detail": "..."}}`
(`field` names the offending input, e.g. `features.recency`), with status 400 (invalid
input), 401, 405, 408, 413 (too large), 415 (not JSON), 422 (`/winback` policy `uplift`
without an uplift model), 503 (no snapshot / not ready).
"""


def _error_responses(statuses: tuple[int, ...]) -> dict[str, Any]:
    return {
        str(status): {
            "description": _STATUS_TEXT[status],
            "content": {"application/json": {"schema": _ERROR}},
        }
        for status in statuses
    }


def _api_operation(path: str, operation: dict[str, Any], model_ref: dict[str, Any]) -> None:
    tag, summary = _SUMMARIES.get(path, ("Scoring", path))
    operation["tags"] = [tag]
    operation["summary"] = summary
    operation["description"] = inspect.cleandoc(operation.get("description") or "")
    operation["security"] = [{"bearer": []}]
    statuses = _API_STATUSES + ((503,) if path in ("/customers/lookup", "/winback") else ())
    statuses += (422,) if path == "/winback" else ()
    # BentoML keys responses by int status
    ok = operation["responses"].get(200) or operation["responses"].get("200") or {}
    examples = _response_examples(path, model_ref)
    if examples is not None and "content" in ok:
        ok["content"]["application/json"]["examples"] = examples
    operation["responses"] = {"200": ok, **_error_responses(statuses)}
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None and path in _EXAMPLES:
        body["examples"] = _EXAMPLES[path]
    operation.pop("x-bentoml-name", None)


def _infrastructure(spec: dict[str, Any]) -> None:
    open_paths = {
        "/livez": "Liveness: 200 while the process runs.",
        "/healthz": "Same as /livez.",
        "/readyz": "Readiness: 200 when the model is loaded and, if a snapshot is configured "
        "(FIDELITE_SNAPSHOT), a snapshot too; 503 otherwise.",
        "/metrics": "Prometheus metrics: requests and durations per endpoint (unknown paths "
        "count under one label). Needs the API key when FIDELITE_METRICS_AUTH=on.",
    }
    for path, text in open_paths.items():
        responses: dict[str, Any] = {"200": {"description": "OK"}}
        if path == "/readyz":
            responses.update(_error_responses((503,)))
        if path == "/metrics":
            responses["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
            responses.update(_error_responses((401,)))
        spec["paths"][path] = {
            "get": {
                "tags": ["Infrastructure"],
                "summary": text.split(":")[0],
                "description": text,
                "security": [],
                "responses": responses,
            }
        }


def openapi_document(service: Any, model_info: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``service`` with fidelite's titles, examples and errors.

    Parameters
    ----------
    service : bentoml Service
        The service class (its generated ``openapi_spec`` is the starting point).
    model_info : dict
        What ``/model`` reports (name, version, alias) for the description.
    """
    spec = copy.deepcopy(service.openapi_spec.asdict())
    spec["openapi"] = "3.1.0"  # the schemas use JSON Schema 2020-12 (`"type": "null"`)
    spec["servers"] = [{"url": "/"}]
    spec["info"] = {
        "title": "fidelite prediction service",
        "version": fidelite_version(),
        "x-model-version": str(model_info.get("version")),
        "description": _DESCRIPTION.format(
            model_version=model_info.get("version"),
            model_name=model_info.get("name"),
            alias=model_info.get("alias") or "-",
            fidelite_version=fidelite_version(),
        ),
    }
    spec["tags"] = [
        {"name": "Scoring", "description": "Scores computed on the request's data."},
        {"name": "Snapshot", "description": "Answers from the latest `fidelite score` file."},
        {"name": "Model", "description": "What is being served."},
        {"name": "Infrastructure", "description": "Health, readiness and metrics."},
    ]
    for path, methods in spec["paths"].items():
        for operation in methods.values():
            if path in _SUMMARIES and path not in _INFO_STATUSES:
                model_ref = {key: model_info.get(key) for key in ("name", "version", "alias")}
                _api_operation(path, operation, model_ref)
            elif path in _SUMMARIES:
                tag, summary = _SUMMARIES[path]
                operation.update(tags=[tag], summary=summary, security=[{"bearer": []}])
                responses = {str(k): v for k, v in operation["responses"].items()}
                errors = _error_responses(_INFO_STATUSES[path])
                operation["responses"] = {**responses, **errors}
    _infrastructure(spec)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("InvalidArgument", "NotFound", "InternalServerError", "TaskStatusResponse"):
        schemas.pop(unused, None)
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    spec["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "FIDELITE_API_KEYS"}
    }
    return spec


def docs_page() -> str:
    """Swagger UI from the service's own static files, with no outside requests."""
    return """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>fidelite prediction service - API</title>
  <link rel="stylesheet" href="./static_content/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="./static_content/swagger-ui-bundle.js"></script>
  <script src="./static_content/swagger-ui-standalone-preset.js"></script>
  <script>
    window.onload = function () {
      window.ui = SwaggerUIBundle({
        url: "./docs.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        validatorUrl: null,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "StandaloneLayout",
      });
    };
  </script>
</body>
</html>
"""
