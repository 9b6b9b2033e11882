"""RFC 9457 problem details: the one shape every error of this service takes.

Code anywhere in the service raises `Problem` (or a subclass); the handler
installed by `install_problem_handlers` is the one place that turns it, and
FastAPI's own validation and HTTP errors, into `application/problem+json`.
An outage of the service's own database, wherever a route meets it, is a 503 the caller
may retry, not a 500.
"""

from __future__ import annotations

import json
import logging
import re
import time
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sql_errors
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.security_headers import with_security_headers

PROBLEM_MEDIA_TYPE = "application/problem+json"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# The database cannot be reached, went away or has no connection free: nothing the caller did,
# and it passes. Drivers raise OSError themselves when a connection cannot be made.
DATABASE_OUTAGES = (
    sql_errors.OperationalError,
    sql_errors.InterfaceError,
    sql_errors.DisconnectionError,
    sql_errors.TimeoutError,
    OSError,
)
# A server that cannot take work now says so with these SQLSTATE classes, which SQLAlchemy
# passes on as a plain DBAPIError: connection exception (08), insufficient resources (53, too
# many clients) and operator intervention (57, starting up or shutting down).
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
_OUTAGE_LOG_INTERVAL = 60.0  # seconds between warnings while an outage lasts


def is_database_outage(exc: BaseException) -> bool:
    if isinstance(exc, DATABASE_OUTAGES):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return (
        isinstance(exc, sql_errors.DBAPIError)
        and isinstance(sqlstate, str)
        and sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES
    )


class Problem(Exception):
    """An error the caller should see, with its HTTP status and details."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class ProblemJSONResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            # Places that echo caller text escape it first; this guard keeps a miss (a lone
            # surrogate, which UTF-8 cannot encode) from turning the answer into a 500.
            text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
            return _LONE_SURROGATE.sub("\ufffd", text).encode("utf-8")


def limit_exceeded(field: str, message: str, setting: str, value: int) -> Problem:
    """The 422 of a request past one of its limits, naming the field, the setting and its
    value, so the caller knows what to change and the operator what to raise."""
    return Problem(
        422,
        f"{field}: {message} The limit is {setting} = {value}.",
        title="Request limit exceeded",
        errors=[{"field": field, "message": message}],
        extra={"limit": setting, "limit_value": value},
    )


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return ProblemJSONResponse(
        problem.body(instance), status_code=problem.status, headers=problem.headers
    )


class FieldRuleError(ValueError):
    """A rule a model checks across its fields (`entity_id` is required for a read), raised
    from a model validator, whose errors pydantic would otherwise place on no field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def field_errors_from_pydantic(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic's error list as `[{field, message}]`, the field a dotted path."""
    translated = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, FieldRuleError):
            location.append(cause.field)
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        translated.append({"field": ".".join(location) or "body", "message": message})
    return translated


async def _handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc, request)


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    if any(error.get("type") == "json_invalid" for error in raw):
        problem = Problem(400, "The request body is not valid JSON.", title="Malformed JSON")
    else:
        problem = Problem(
            422,
            "The request failed validation.",
            errors=field_errors_from_pydantic(list(raw)),
        )
    return problem_response(problem, request)


async def _handle_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(Problem(exc.status_code, detail, headers=headers), request)


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The cause goes to the log, never to the caller: no stack traces in bodies.
    logging.getLogger(__name__).error(
        "unhandled error on %s %s", request.method, request.url.path, exc_info=exc
    )
    problem = Problem(500, "The service failed to handle this request.")
    response = problem_response(problem, request)
    # Starlette sends this answer from its outermost layer, past every middleware of ours.
    response.raw_headers = with_security_headers(response.raw_headers)
    return response


class _DatabaseOutageHandler:
    """503 with Retry-After; a warning with the cause when an outage is first met, then once a
    minute at most, since each answer is in the request log already. A database error that is
    not an outage (a bug of ours, bad SQL) stays a 500."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._warned_at: float | None = None
        self._since_warning = 0

    async def __call__(self, request: Request, exc: Exception) -> JSONResponse:
        if not is_database_outage(exc):
            raise exc  # on to the outermost handler, which logs it and answers 500

        self._warn(request, exc)
        problem = Problem(
            503,
            "The service's database cannot be reached; retry later.",
            headers={"Retry-After": "5"},
        )
        return problem_response(problem, request)

    def _warn(self, request: Request, exc: Exception) -> None:
        now = self._clock()
        if self._warned_at is not None and now - self._warned_at < _OUTAGE_LOG_INTERVAL:
            self._since_warning += 1
            return
        # With the traceback: an OSError that was not the database's would show here.
        logging.getLogger(__name__).warning(
            "the service's database failed on %s %s (%d more since the last warning)",
            request.method,
            request.url.path,
            self._since_warning,
            exc_info=exc,
        )
        self._warned_at, self._since_warning = now, 0


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _handle_problem)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    outage = _DatabaseOutageHandler()
    for error in (*DATABASE_OUTAGES, sql_errors.DBAPIError):
        app.add_exception_handler(error, outage)
    app.add_exception_handler(Exception, _handle_unexpected)
