"""Cross-origin access for dashboards served from another origin: an allow-list, nothing more.

`OBSERVER_CORS_ALLOWED_ORIGINS` names the origins whose pages may call the API; empty (the
default) allows none, so a browser refuses every cross-origin read. Credentials travel in
headers (Authorization, X-API-Key), never cookies, so `Access-Control-Allow-Credentials` is off.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Send

from service.problems import Problem, problem_response

ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = (
    "Authorization",
    "X-API-Key",
    "If-Match",
    "Idempotency-Key",
    "Content-Type",
    "Content-Encoding",
    "traceparent",
    "tracestate",
    "X-Request-ID",
)
# Headers a page's script may read besides the CORS-safelisted ones.
EXPOSED_HEADERS = (
    "ETag",
    "X-Cache",
    "Warning",
    "Retry-After",
    "Idempotent-Replayed",
    "X-Request-ID",
    "WWW-Authenticate",
)
PREFLIGHT_MAX_AGE_SECONDS = 600


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, but a refused preflight is problem details, not plain text, and
    answers to an origin off the list carry no CORS header."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        # Starlette's text is "Disallowed CORS origin, method, headers": keep which were refused.
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        kept = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-type", "content-length")
        }
        problem = Problem(
            400,
            f"This cross-origin request is not allowed; refused: {refused}.",
            title="Cross-origin request refused",
            headers=kept,
            extra={"refused": refused.split(", ")},
        )
        return problem_response(problem)

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        # Starlette adds Access-Control-Expose-Headers to every answer to a cross-origin request;
        # an origin off the list gets only `Vary: Origin`, and no CORS header at all.
        origin = request_headers.get("Origin")
        if origin is None or self.is_allowed_origin(origin=origin):
            await super().send(message, send, request_headers)
            return
        if message["type"] == "http.response.start":
            message.setdefault("headers", [])
            headers = MutableHeaders(scope=message)
            headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])
        await send(message)


def cors_options(allowed_origins: list[str]) -> dict[str, object]:
    """The keyword arguments of `ProblemCORSMiddleware` for `app.add_middleware`."""
    return {
        "allow_origins": tuple(allowed_origins),
        "allow_methods": ALLOWED_METHODS,
        "allow_headers": ALLOWED_HEADERS,
        "expose_headers": EXPOSED_HEADERS,
        "allow_credentials": False,
        "max_age": PREFLIGHT_MAX_AGE_SECONDS,
    }
