"""The problem responses of every operation, added to the OpenAPI document in one place.

FastAPI documents what a route returns on success and a 422 in its own shape; this service
answers every error as RFC 9457 problem details. `document_problems` wraps `app.openapi` so the
generated document gains, per operation, each problem status it can give (by the rules below)
with an `application/problem+json` schema, and FastAPI's own 422 shape is replaced.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from service.problems import PROBLEM_MEDIA_TYPE

PUBLIC_PATHS = frozenset({"/health/live", "/health/ready"})
BODY_METHODS = frozenset({"post", "put", "patch"})
# Every credential check can refuse (401, 403), slow down repeated failures (429) and fail to
# read the key store (503); every operation can fail unexpectedly (500).
PROTECTED = frozenset({401, 403, 429, 500, 503})
BODY = frozenset({400, 413, 415, 422})
BACKEND = frozenset({502, 503, 504})
# (method or None for any, path, statuses): what each surface adds to the rules above. A path
# ending in "/" covers everything under it; any other matches exactly.
SURFACES: tuple[tuple[str | None, str, frozenset[int]], ...] = (
    ("post", "/crud", frozenset({404, 409, 412}) | BACKEND),
    ("post", "/crud/bulk", frozenset({409}) | BACKEND),  # each item's own status is in the body
    (None, "/crud/entities", BACKEND),
    ("get", "/api/", frozenset({404}) | BACKEND),
    ("post", "/api/", frozenset({400, 404, 409, 412}) | BACKEND),
    ("put", "/api/", frozenset({400, 404, 412}) | BACKEND),
    ("patch", "/api/", frozenset({400, 404, 412}) | BACKEND),
    ("delete", "/api/", frozenset({400, 404, 412}) | BACKEND),
    ("post", "/telemetry", frozenset({429, 503})),
    ("post", "/telemetry/batch", frozenset({429, 503})),
    (None, "/telemetry/", frozenset({503})),
    ("post", "/telemetry/rules", frozenset({409})),
    ("delete", "/telemetry/rules/", frozenset({409})),
    ("post", "/v1/", frozenset({400, 413, 415, 429, 503})),
    ("post", "/auth/keys", frozenset({409})),  # a name taken already, revoked keys' too
    (None, "/django/health", frozenset({503})),
    (None, "/health/ready", frozenset({503})),
)
# OTLP answers errors in the request's own content type (a google.rpc.Status); only its 415 is
# plain problem details.
OTLP_ERROR_MEDIA_TYPES = ("application/json", "application/x-protobuf")

# Successful answers that are not JSON, which FastAPI cannot tell from a bare `Response`.
OTHER_SUCCESS_MEDIA_TYPES = {("get", "/metrics"): "text/plain"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; extension members vary by problem.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "limit": {"type": "string", "description": "the setting whose bound was passed"},
        "limit_value": {"type": "integer"},
    },
    "additionalProperties": True,
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def document_problems(app: FastAPI) -> None:
    """Make `app.openapi()` return the document with the problem responses added."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            add_problem_responses(generate())  # FastAPI keeps it in app.openapi_schema
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_problem_responses(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)  # FastAPI's 422 shape, which this service never answers

    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if media := OTHER_SUCCESS_MEDIA_TYPES.get((method, path)):
                responses.setdefault("200", {"description": "OK"})["content"] = {media: {}}
            for status in sorted(problem_statuses(path, method, operation)):
                responses[str(status)] = _problem_response(path, status)


def problem_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    statuses: set[int] = set() if path in PUBLIC_PATHS else set(PROTECTED)
    if operation.get("parameters"):
        statuses.add(422)
    if method in BODY_METHODS or "requestBody" in operation:
        statuses |= BODY
    if "{" in path:
        statuses.add(404)
    for surface_method, prefix, extra in SURFACES:
        covered = path == prefix or (prefix.endswith("/") and path.startswith(prefix))
        if surface_method in (None, method) and covered:
            statuses |= extra
    return statuses


def _problem_response(path: str, status: int) -> dict[str, Any]:
    content: dict[str, Any] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
    if path.startswith("/v1/") and status != 415:
        content.update({media: {} for media in OTLP_ERROR_MEDIA_TYPES})
    return {"description": HTTPStatus(status).phrase, "content": content}
