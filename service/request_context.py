"""Per-request values that code deep in a call needs without threading them through.

`CallerContextMiddleware` fills in what the backend client forwards: the caller's bearer
token (only used when `backend_forward_bearer` is on) and the W3C trace context.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
caller_bearer_var: ContextVar[str | None] = ContextVar("caller_bearer", default=None)
trace_var: ContextVar[TraceContext | None] = ContextVar("trace", default=None)

# W3C Trace Context, section 3.2: version 00, 32 hex trace id, 16 hex parent id, 2 hex flags.
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)


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


def parse_bearer(value: str | None) -> str | None:
    match = BEARER.fullmatch((value or "").strip())
    return match.group(1) if match else None


class CallerContextMiddleware:
    """Sets the caller's bearer token and trace context for the length of one request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = {name: value.decode("latin-1") for name, value in scope["headers"]}
        trace = parse_traceparent(headers.get(b"traceparent")) or TraceContext.new()
        bearer = parse_bearer(headers.get(b"authorization"))

        trace_token = trace_var.set(trace)
        bearer_token = caller_bearer_var.set(bearer)
        try:
            await self.app(scope, receive, send)
        finally:
            caller_bearer_var.reset(bearer_token)
            trace_var.reset(trace_token)
