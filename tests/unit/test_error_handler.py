"""Transport errors and backend statuses become the middleware's errors in one place."""

import httpx
import pytest

from django_integration import error_handler
from django_integration.exceptions import (
    BackendFailed,
    BackendNotReached,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    VersionConflict,
)

REQUEST = httpx.Request("GET", "http://127.0.0.1/api/core/configurations/")


def answer(status: int, body: object = None, headers: dict[str, str] | None = None):
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


def test_connection_refused_is_503_with_retry_after() -> None:
    error = error_handler.from_transport_error(httpx.ConnectError("refused", request=REQUEST))
    assert isinstance(error, BackendUnavailable)
    assert (error.status, error.headers) == (503, {"Retry-After": "1"})


def test_read_timeout_is_504() -> None:
    error = error_handler.from_transport_error(httpx.ReadTimeout("slow", request=REQUEST))
    assert isinstance(error, BackendTimeout)
    assert error.status == 504


@pytest.mark.parametrize("status", [500, 502, 503])
def test_backend_5xx_is_502(status: int) -> None:
    error = error_handler.from_response(answer(status, {"detail": "boom"}))
    assert isinstance(error, BackendFailed)
    assert error.status == 502


def test_refused_service_token_is_our_fault_502() -> None:
    error = error_handler.from_response(answer(401, {"detail": "Invalid token."}))
    assert (type(error), error.status) == (BackendFailed, 502)


def test_validation_400_is_422_with_each_field() -> None:
    body = {"name": ["This field is required."], "port": ["Ensure this value is <= 65535."]}
    error = error_handler.from_response(answer(400, body))
    assert isinstance(error, BackendRejected)
    assert error.status == 422
    assert error.errors == [
        {"field": "name", "message": "This field is required."},
        {"field": "port", "message": "Ensure this value is <= 65535."},
    ]


def test_nested_and_non_field_errors_are_flattened() -> None:
    body = {"non_field_errors": ["bad pair"], "layout": {"rows": ["must be positive"]}}
    assert error_handler.field_errors(body) == [
        {"field": "body", "message": "bad pair"},
        {"field": "layout.rows", "message": "must be positive"},
    ]


def test_precondition_failed_carries_current_version() -> None:
    error = error_handler.from_response(answer(412, {"detail": "stale", "current_version": 7}))
    assert isinstance(error, VersionConflict)
    assert (error.status, error.current_version) == (412, 7)


def test_not_found_keeps_status_and_detail() -> None:
    error = error_handler.from_response(answer(404, {"detail": "No Channel matches."}))
    assert (error.status, error.detail) == (404, "No Channel matches.")


def test_rate_limited_backend_is_503_with_its_retry_after() -> None:
    error = error_handler.from_response(answer(429, {}, headers={"Retry-After": "7"}))
    assert isinstance(error, BackendUnavailable)
    assert error.headers == {"Retry-After": "7"}


@pytest.mark.parametrize("status", [401, 403])
def test_refused_caller_bearer_keeps_its_status(status: int) -> None:
    body = {"detail": "Token expired."}
    error = error_handler.from_response(answer(status, body), caller_credentials=True)
    assert (type(error), error.status, error.detail) == (BackendRejected, status, "Token expired.")


def test_connect_timeout_is_503_not_504() -> None:
    error = error_handler.from_transport_error(httpx.ConnectTimeout("slow", request=REQUEST))
    # Never sent: a write refused this way leaves cached answers to serve stale.
    assert (type(error), error.status) == (BackendNotReached, 503)


def test_backend_5xx_detail_names_its_status() -> None:
    error = error_handler.from_response(answer(500, {"detail": "Internal server error."}))
    assert error.detail == "The backend failed with status 500."
