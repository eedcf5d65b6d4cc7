"""Errors of the HTTP service and the one place they become HTTP responses.

Every 4xx/5xx the service sends has the same JSON body, :class:`ErrorBody`::

    {"error": "<one line saying what is wrong>", "field": "<dotted input name or null>",
     "detail": "<more context or null>"}

Request problems are :class:`fidelite.errors.FideliteError` subclasses carrying their
HTTP status (``http_status``); :func:`error_payload` maps any exception to a status and
a body, so handlers and middleware never keep tables of their own. Server-side failures
(5xx) never echo internals: the body names no file path and no exception text.
"""

from __future__ import annotations

from typing import ClassVar

import pydantic
import pydantic_core
from pydantic import BaseModel, Field

from fidelite.errors import FideliteError

__all__ = [
    "AuthenticationError",
    "ErrorBody",
    "MethodNotAllowedError",
    "ModelLoadError",
    "PathNotFoundError",
    "PayloadTooLargeError",
    "RequestError",
    "ReportUnavailableError",
    "RequestTimeoutError",
    "SnapshotUnavailableError",
    "UnsupportedMediaTypeError",
    "error_json",
    "error_payload",
]


class ErrorBody(BaseModel):
    """The body of every error response (4xx and 5xx)."""

    error: str = Field(description="What is wrong, in one line.")
    field: str | None = Field(
        None,
        description="Dotted name of the offending input (e.g. `features.recency`, "
        "`history.transactions.amount`, `customer_ids`), or null.",
    )
    detail: str | None = Field(None, description="More context (other problems, limits), or null.")


class RequestError(FideliteError, ValueError):
    """The request is well-formed JSON but unusable (400)."""

    http_status: ClassVar[int] = 400
    label = "bad request"

    def __init__(self, message: str, *, field: str | None = None, detail: str | None = None):
        super().__init__(message, field=field)
        self.detail = detail


class AuthenticationError(RequestError):
    """Missing or wrong API key (401)."""

    http_status = 401


class PathNotFoundError(RequestError):
    """No endpoint at this path (404)."""

    http_status = 404


class MethodNotAllowedError(RequestError):
    """The endpoint exists but not for this HTTP method (405)."""

    http_status = 405


class RequestTimeoutError(RequestError):
    """The client did not send the body in time (408)."""

    http_status = 408


class PayloadTooLargeError(RequestError):
    """Body or list larger than the configured limit (413)."""

    http_status = 413


class UnsupportedMediaTypeError(RequestError):
    """The body is not declared as JSON (415)."""

    http_status = 415


class ModelLoadError(FideliteError, RuntimeError):
    """A registered model exists but cannot be loaded by this fidelite version."""

    exit_code = 4
    http_status = 503
    label = "model not loadable"


class SnapshotUnavailableError(FideliteError, LookupError):
    """No usable scores snapshot (503); the message never names the file."""

    exit_code = 4
    http_status = 503
    label = "snapshot unavailable"


class ReportUnavailableError(FideliteError, LookupError):
    """No up-to-date customer-base report beside the served snapshot (503); the message
    never names the file's path."""

    exit_code = 4
    http_status = 503
    label = "report unavailable"


#: 5xx errors whose messages are written for clients (they name no path or internals).
_CLIENT_FACING = (SnapshotUnavailableError, ReportUnavailableError)


def _loc(location: tuple[int | str, ...]) -> str | None:
    # pydantic locations hold model and union-member names; keep the JSON path only
    parts = [str(part) for part in location if not isinstance(part, int)]
    parts = [part for part in parts if not part[:1].isupper() and "[" not in part]
    return ".".join(parts) or None


def _validation_payload(exc: pydantic.ValidationError) -> tuple[int, ErrorBody]:
    problems = exc.errors(include_url=False, include_context=False, include_input=False)
    first = problems[0]
    field = _loc(first["loc"])
    message = first["msg"]
    if first["type"] == "json_invalid":
        message = f"invalid JSON: {message}"
    elif field:
        message = f"{field}: {message}"
    others = [f"{_loc(p['loc']) or 'body'}: {p['msg']}" for p in problems[1:6]]
    more = len(problems) - 1 - len(others)
    detail = "; ".join(others) + (f"; and {more} more" if more > 0 else "") if others else None
    return 400, ErrorBody(error=message, field=field, detail=detail)


def error_payload(exc: BaseException) -> tuple[int, ErrorBody]:
    """HTTP status and body for an exception raised while serving a request.

    Parameters
    ----------
    exc : BaseException
        A :class:`FideliteError` (status from ``http_status``), a pydantic
        ``ValidationError`` (400) or anything else (500, no details).
    """
    if isinstance(exc, FideliteError):
        status = exc.http_status
        if status >= 500 and not isinstance(exc, _CLIENT_FACING):
            # configuration or model problems: the log has them, clients get no internals
            return status, ErrorBody(error=f"{exc.label}: the service cannot answer this now")
        return status, ErrorBody(
            error=exc.message, field=exc.field, detail=getattr(exc, "detail", None)
        )
    if isinstance(exc, pydantic.ValidationError):
        return _validation_payload(exc)
    return 500, ErrorBody(error="internal error: the request could not be completed")


def error_json(body: ErrorBody) -> bytes:
    """The encoded error body."""
    return pydantic_core.to_json(body.model_dump())
