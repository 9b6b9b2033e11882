"""Errors of the Django backend, as the middleware answers them.

    Problem                      (service.problems: rendered as problem details)
    └── BackendError
        ├── BackendUnavailable   503, the backend cannot be reached now; Retry-After
        │   └── BackendNotReached    the call provably never left: connection refused or
        │       │                    not opened in time, on every attempt
        │       └── BreakerOpen      without touching the network; Retry-After = time left
        ├── BackendTimeout       504, no answer within the timeout or the call's budget
        ├── BackendFailed        502, the backend answered 5xx or nonsense
        └── BackendRejected      the backend refused the call with a 4xx
            └── VersionConflict  412, If-Match did not match; carries current_version

Only `error_handler.py` creates these from transport errors and statuses.
A write that failed with `BackendNotReached` changed nothing; after any other failure
it may have landed.
"""

from __future__ import annotations

from typing import Any

from service.problems import Problem


class BackendError(Problem):
    pass


class BackendUnavailable(BackendError):
    def __init__(self, detail: str, retry_after: float) -> None:
        seconds = max(1, round(retry_after + 0.499))
        super().__init__(503, detail, headers={"Retry-After": str(seconds)})
        self.retry_after = retry_after


class BackendNotReached(BackendUnavailable):
    pass


class BreakerOpen(BackendNotReached):
    pass


class BackendTimeout(BackendError):
    def __init__(self, detail: str) -> None:
        super().__init__(504, detail)


class BackendFailed(BackendError):
    def __init__(self, detail: str) -> None:
        super().__init__(502, detail)


class BackendRejected(BackendError):
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(status, detail, errors=errors)
        self.backend_body = body


class VersionConflict(BackendRejected):
    def __init__(self, detail: str, current_version: int | None) -> None:
        super().__init__(412, detail, body={"current_version": current_version})
        self.current_version = current_version
        self.extra = {"current_version": current_version}
