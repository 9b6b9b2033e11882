"""The one ASGI layer every HTTP request passes through first, and its answer last.

For the length of a request it sets the request id and the W3C trace context
(request_context.py); on the answer it puts the request id and the security headers
(security_headers.py); when the request ends it counts it in the metrics and writes its log
line (request_log.py). The caller's token is set by auth/middleware.py, which knows what it is.
One pass over the request's headers and one wrapper around `send`: this runs on every call,
the CRUD cache miss included, whose added latency has a budget.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import ServiceMetrics, route_template
from .request_context import (
    VALID_REQUEST_ID,
    TraceContext,
    parse_traceparent,
    request_id_var,
    trace_var,
)
from .request_log import log_request
from .security_headers import with_security_headers


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, *, metrics: ServiceMetrics, cacheable_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._cacheable_paths = frozenset(cacheable_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        request_id, traceparent = _caller_headers(scope["headers"])
        request_id_token = request_id_var.set(request_id)
        trace_token = trace_var.set(parse_traceparent(traceparent) or TraceContext.new())

        no_store = scope["path"] not in self._cacheable_paths
        answer_headers = ((b"x-request-id", request_id.encode()),)
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), *answer_headers]
                message["headers"] = with_security_headers(headers, no_store)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            self._metrics.observe_request(route_template(scope), scope["method"], status, seconds)
            log_request(scope["method"], scope["path"], status, seconds, request_id)
            trace_var.reset(trace_token)
            request_id_var.reset(request_id_token)


def _caller_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, str | None]:
    """The request id (the caller's if it is a plain token, else a new one) and the
    traceparent, in one pass over the headers."""
    request_id = traceparent = None
    for name, value in headers:
        if name == b"x-request-id" and request_id is None:
            candidate = value.decode("latin-1")
            request_id = candidate if VALID_REQUEST_ID.fullmatch(candidate) else ""
        elif name == b"traceparent" and traceparent is None:
            traceparent = value.decode("latin-1")
    return request_id or uuid.uuid4().hex, traceparent
