"""The one place where transport errors and backend statuses become our errors."""

from __future__ import annotations

from typing import Any

import httpx

from .exceptions import (
    BackendError,
    BackendFailed,
    BackendNotReached,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    VersionConflict,
)
from .retry_policy import retry_after_seconds

# A refused connection usually means a restart; a second is a fair first wait.
UNAVAILABLE_RETRY_AFTER = 1.0


def from_transport_error(exc: httpx.TransportError) -> BackendError:
    if isinstance(exc, httpx.TimeoutException):
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return BackendNotReached(
                f"The backend did not accept a connection in time ({type(exc).__name__}).",
                UNAVAILABLE_RETRY_AFTER,
            )
        return BackendTimeout("The backend did not answer within the read timeout.")
    unreachable = f"The backend is unreachable ({type(exc).__name__})."
    if isinstance(exc, httpx.ConnectError):
        # Raised before a byte of the request was written (see http1.py and transport.py).
        return BackendNotReached(unreachable, UNAVAILABLE_RETRY_AFTER)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return BackendUnavailable(unreachable, UNAVAILABLE_RETRY_AFTER)  # lost mid-call
    return BackendFailed(f"The call to the backend failed ({type(exc).__name__}).")


def after_earlier_attempts(last: BackendNotReached) -> BackendUnavailable:
    """The last attempt never left, but an earlier one may have reached the backend."""
    return BackendUnavailable(last.detail, last.retry_after)


def from_response(response: httpx.Response, *, caller_credentials: bool = False) -> BackendError:
    """Translate a non-2xx answer; the caller decides which statuses are errors.

    `caller_credentials`: the call carried the caller's bearer token, not ours.
    """
    status = response.status_code
    body = _json_or_none(response)
    if status >= 500:
        return BackendFailed(f"The backend failed with status {status}.")
    if status in (401, 403) and caller_credentials:
        return BackendRejected(status, _detail(body, status), body=body)
    if status in (401, 403):
        # The caller did nothing wrong: our service token was refused.
        return BackendFailed("The backend refused the middleware's service token.")
    if status == 412:
        current = body.get("current_version") if isinstance(body, dict) else None
        return VersionConflict("The entity was changed since that version.", current)
    if status == 400:
        return BackendRejected(
            422, "The backend rejected the data.", errors=field_errors(body), body=body
        )
    if status == 429:
        retry_after = retry_after_seconds(response) or UNAVAILABLE_RETRY_AFTER
        return BackendUnavailable("The backend is rate limiting the middleware.", retry_after)
    return BackendRejected(status, _detail(body, status), body=body)


def field_errors(body: Any) -> list[dict[str, Any]]:
    """DRF's `{field: [messages]}` as `[{field, message}]`, nested fields dotted."""
    errors: list[dict[str, Any]] = []
    _collect_field_errors(body, "", errors)
    return errors


def _collect_field_errors(node: Any, prefix: str, errors: list[dict[str, Any]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            field = "body" if key in ("non_field_errors", "detail") else str(key)
            _collect_field_errors(value, f"{prefix}.{field}" if prefix else field, errors)
    elif isinstance(node, list) and node and all(isinstance(item, str) for item in node):
        errors.extend({"field": prefix or "body", "message": message} for message in node)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _collect_field_errors(item, f"{prefix}.{index}" if prefix else str(index), errors)
    elif node is not None:
        errors.append({"field": prefix or "body", "message": str(node)})


def _detail(body: Any, status: int) -> str:
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]
    return f"The backend answered {status}."


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
