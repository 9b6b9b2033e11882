"""Per-request values that code deep in a call needs without threading them through.

`service/edge.py` sets the request's id and W3C trace context; `auth/middleware.py` sets the
caller's bearer token when it is a JWT (forwarded to the backend only when
`backend_forward_bearer` is on; an API key of ours never is).
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
caller_bearer_var: ContextVar[str | None] = ContextVar("caller_bearer", default=None)
trace_var: ContextVar[TraceContext | None] = ContextVar("trace", default=None)

# W3C Trace Context, section 3.2: version 00, 32 hex trace id, 16 hex parent id, 2 hex flags.
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# A caller's request id is echoed into headers and logs: accept only a plain token, and only
# one that fits the audit trail's `request_id` column (else a new id is made for the request).
MAX_REQUEST_ID_LENGTH = 100
VALID_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_REQUEST_ID_LENGTH}}}")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    flags: str = "01"

    @classmethod
    def new(cls) -> TraceContext:
        return cls(secrets.token_hex(16))

    def child_traceparent(self) -> str:
        """The header for one outgoing call: same trace, a fresh span id for this hop."""
        return f"00-{self.trace_id}-{secrets.token_hex(8)}-{self.flags}"


def current_request_id() -> str | None:
    return request_id_var.get()


def current_bearer() -> str | None:
    return caller_bearer_var.get()


def current_trace() -> TraceContext | None:
    return trace_var.get()


def parse_traceparent(value: str | None) -> TraceContext | None:
    match = TRACEPARENT.fullmatch((value or "").strip())
    # An all-zero trace or parent id is invalid by the spec; start a new trace instead.
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return TraceContext(match.group(1), match.group(3))
