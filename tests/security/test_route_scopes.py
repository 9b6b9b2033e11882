"""Every route against the scope table: no credential 401, a wrong scope 403, the right 2xx.

The routes are read from the app itself, so a route added without an entry in
auth/policy.py, or without an example request here, fails this module.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from auth.policy import ROUTE_SCOPES
from auth.scopes import Scope
from main import create_app
from service.settings import Settings
from tests.api_keys import bearer, create_key, unique_name
from tests.e2e.waiting import wait_until_processed

CHANNELS = "/api/notification/channels/"
PROBLEM = "application/problem+json"
TRACE_ID = uuid.uuid4().hex
NOW = time.time()


@dataclass(frozen=True)
class Example:
    """One request that the right scope answers with `status`."""

    method: str
    path: str
    status: int
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fixtures:
    """Things the examples act on, made by the admin before the first example runs."""

    entity_ids: dict[str, str]
    rule_id: str
    key_name: str


def _channel(api: httpx.Client) -> str:
    body = {"name": unique_name("scoped"), "channel_type": "email"}
    response = api.post(CHANNELS, json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def _point(**fields: Any) -> dict[str, Any]:
    return {"type": "metric", "name": "scoped.cpu", "service": "scoped", "timestamp": NOW, **fields}


EXAMPLES: dict[str, Callable[[Fixtures], Example]] = {
    "GET /health/live": lambda f: Example("GET", "/health/live", 200),
    "GET /health/ready": lambda f: Example("GET", "/health/ready", 200),
    "GET /openapi.json": lambda f: Example("GET", "/openapi.json", 200),
    "GET /docs": lambda f: Example("GET", "/docs", 200),
    "GET /docs/oauth2-redirect": lambda f: Example("GET", "/docs/oauth2-redirect", 200),
    "GET /redoc": lambda f: Example("GET", "/redoc", 200),
    "HEAD /openapi.json": lambda f: Example("HEAD", "/openapi.json", 200),
    "HEAD /docs": lambda f: Example("HEAD", "/docs", 200),
    "HEAD /docs/oauth2-redirect": lambda f: Example("HEAD", "/docs/oauth2-redirect", 200),
    "HEAD /redoc": lambda f: Example("HEAD", "/redoc", 200),
    "GET /django/health": lambda f: Example("GET", "/django/health", 200),
    "GET /metrics": lambda f: Example("GET", "/metrics", 200),
    "POST /crud": lambda f: Example(
        "POST", "/crud", 200, {"json": {"operation": "list", "entity_type": "core.configurations"}}
    ),
    "GET /crud/entities": lambda f: Example("GET", "/crud/entities", 200),
    "POST /crud/bulk": lambda f: Example(
        "POST",
        "/crud/bulk",
        200,
        {
            "json": {
                "entity_type": "notification.channels",
                "items": [
                    {
                        "operation": "update",
                        "entity_id": f.entity_ids["bulk"],
                        "data": {"rate_limit_per_hour": 7},
                    }
                ],
            }
        },
    ),  # fmt: skip
    "GET /api/{app}/{resource}/": lambda f: Example("GET", CHANNELS, 200),
    "POST /api/{app}/{resource}/": lambda f: Example(
        "POST", CHANNELS, 201, {"json": {"name": unique_name("made"), "channel_type": "email"}}
    ),
    "POST /api/{app}/{resource}/bulk/": lambda f: Example(
        "POST",
        f"{CHANNELS}bulk/",
        200,
        {
            "json": {
                "items": [
                    {
                        "operation": "create",
                        "data": {"name": unique_name("bulk"), "channel_type": "email"},
                    }
                ]
            }
        },
    ),  # fmt: skip
    "GET /api/{app}/{resource}/{entity_id}/": lambda f: Example(
        "GET", f"{CHANNELS}{f.entity_ids['read']}/", 200
    ),
    "PATCH /api/{app}/{resource}/{entity_id}/": lambda f: Example(
        "PATCH", f"{CHANNELS}{f.entity_ids['patch']}/", 200, {"json": {"rate_limit_per_hour": 5}}
    ),
    "PUT /api/{app}/{resource}/{entity_id}/": lambda f: Example(
        "PUT",
        f"{CHANNELS}{f.entity_ids['put']}/",
        200,
        {"json": {"name": unique_name("put"), "channel_type": "slack"}},
    ),
    "DELETE /api/{app}/{resource}/{entity_id}/": lambda f: Example(
        "DELETE", f"{CHANNELS}{f.entity_ids['delete']}/", 204
    ),
    "POST /api/{app}/{resource}/{entity_id}/restore/": lambda f: Example(
        "POST", f"{CHANNELS}{f.entity_ids['restore']}/restore/", 200
    ),
    "GET /audit": lambda f: Example("GET", "/audit", 200),
    "GET /audit/verify": lambda f: Example("GET", "/audit/verify", 200),
    "GET /audit/{app}/{resource}/{entity_id}": lambda f: Example(
        "GET", f"/audit/notification/channels/{f.entity_ids['read']}", 200
    ),
    "POST /telemetry": lambda f: Example("POST", "/telemetry", 202, {"json": _point(value=1.0)}),
    "POST /telemetry/batch": lambda f: Example(
        "POST", "/telemetry/batch", 202, {"json": [_point(value=2.0)]}
    ),
    "POST /v1/metrics": lambda f: Example("POST", "/v1/metrics", 200, {"json": {}}),
    "POST /v1/traces": lambda f: Example("POST", "/v1/traces", 200, {"json": {}}),
    "POST /v1/logs": lambda f: Example("POST", "/v1/logs", 200, {"json": {}}),
    "GET /telemetry/anomalies": lambda f: Example("GET", "/telemetry/anomalies", 200),
    "GET /telemetry/analysis": lambda f: Example("GET", "/telemetry/analysis", 200),
    "GET /telemetry/metrics": lambda f: Example("GET", "/telemetry/metrics", 200),
    "GET /telemetry/correlations": lambda f: Example("GET", "/telemetry/correlations", 200),
    "GET /telemetry/traces/{trace_id}": lambda f: Example(
        "GET", f"/telemetry/traces/{TRACE_ID}", 200
    ),
    "GET /telemetry/services": lambda f: Example("GET", "/telemetry/services", 200),
    "GET /telemetry/series": lambda f: Example(
        "GET", "/telemetry/series", 200, {"params": {"name": "scoped.cpu"}}
    ),
    "GET /telemetry/rejections": lambda f: Example("GET", "/telemetry/rejections", 200),
    "GET /telemetry/rules": lambda f: Example("GET", "/telemetry/rules", 200),
    "GET /telemetry/alerts": lambda f: Example("GET", "/telemetry/alerts", 200),
    "POST /telemetry/rules": lambda f: Example(
        "POST",
        "/telemetry/rules",
        201,
        {
            "json": {
                "name": unique_name("rule"),
                "selector": {"name": "scoped.cpu"},
                "operator": "gt",
                "value": 1000,
            }
        },
    ),  # fmt: skip
    "DELETE /telemetry/rules/{rule_id}": lambda f: Example(
        "DELETE", f"/telemetry/rules/{f.rule_id}", 204
    ),
    "GET /auth/me": lambda f: Example("GET", "/auth/me", 200),
    "GET /auth/keys": lambda f: Example("GET", "/auth/keys", 200),
    "POST /auth/keys": lambda f: Example(
        "POST", "/auth/keys", 201, {"json": {"name": unique_name("made"), "scopes": ["crud:read"]}}
    ),
    "DELETE /auth/keys/{name}": lambda f: Example("DELETE", f"/auth/keys/{f.key_name}", 200),
}


def _app_routes() -> list[str]:
    """Each method and template once: the REST read has two routes, the lean one that serves
    valid paths (crud/read_route.py) and the documented one, under one template and scope."""
    app = create_app(Settings())
    routes = (
        f"{method} {route.path}"
        for route in iter_route_contexts(app.routes)
        for method in sorted(getattr(route, "methods", None) or ())
    )
    return list(dict.fromkeys(routes))


ROUTES = _app_routes()


def _requirement(route: str) -> tuple[Scope, ...] | None:
    method, path = route.split(" ", 1)
    return ROUTE_SCOPES[route if method != "HEAD" else f"GET {path}"]


def test_every_route_has_a_scope_and_an_example_and_nothing_else_does() -> None:
    assert sorted(EXAMPLES) == sorted(ROUTES)
    table_rows = {
        route if not route.startswith("HEAD ") else "GET " + route[5:] for route in ROUTES
    }
    assert sorted(ROUTE_SCOPES) == sorted(table_rows)


@pytest.fixture(scope="module")
def fixtures(admin: httpx.Client) -> Fixtures:
    api = admin
    entity_ids = {name: _channel(api) for name in ("bulk", "read", "patch", "put", "delete")}
    entity_ids["restore"] = _channel(api)
    assert api.delete(f"{CHANNELS}{entity_ids['restore']}/").status_code == 204

    span = _point(type="trace", name="GET /scoped", trace_id=TRACE_ID, span_id="a" * 16,
                  duration_ms=5.0)  # fmt: skip
    assert api.post("/telemetry", json=span).status_code == 202
    wait_until_processed(api)

    rule = {"name": unique_name("gone"), "selector": {"name": "x"}, "operator": "gt", "value": 1}
    rule_id = api.post("/telemetry/rules", json=rule).json()["id"]
    key_name = unique_name("revoked")
    create_key(api, key_name, "crud:read")
    return Fixtures(entity_ids, rule_id, key_name)


@pytest.fixture(scope="module")
def keys(admin: httpx.Client) -> Callable[[frozenset[Scope]], dict[str, str]]:
    """Headers with a key holding exactly `scopes`, one key per set of scopes."""
    made: dict[frozenset[Scope], dict[str, str]] = {}

    def key(scopes: frozenset[Scope]) -> dict[str, str]:
        if scopes not in made:
            made[scopes] = bearer(create_key(admin, unique_name("scoped"), *sorted(scopes)))
        return made[scopes]

    return key


def _send(api: httpx.Client, example: Example, headers: dict[str, str]) -> httpx.Response:
    # Request-level headers replace the client's admin Authorization; "" sends none at all.
    merged = {"Authorization": "", **headers}
    return api.request(example.method, example.path, headers=merged, **example.options)


@pytest.mark.parametrize("route", ROUTES)
def test_route_refuses_without_its_scope_and_answers_with_it(
    route: str, api: httpx.Client, fixtures: Fixtures, keys
) -> None:
    example = EXAMPLES[route](fixtures)
    needs = _requirement(route)
    if needs is None:
        assert _send(api, example, {}).status_code == example.status
        return

    anonymous = _send(api, example, {})
    assert (anonymous.status_code, anonymous.headers["WWW-Authenticate"]) == (
        401,
        'Bearer realm="observer-eye"',
    )
    if example.method != "HEAD":
        assert anonymous.headers["Content-Type"] == PROBLEM
        assert anonymous.json()["status"] == 401

    if needs:  # a route open to any credential has no wrong scope
        others = frozenset(Scope) - {Scope.ADMIN, *needs}
        wrong = _send(api, example, keys(others))
        assert wrong.status_code == 403
        assert wrong.json()["required_scopes"] == sorted(scope.value for scope in needs)

    right = _send(api, example, keys(frozenset(needs[:1] or [Scope.TELEMETRY_WRITE])))
    assert right.status_code == example.status, right.text


def test_openapi_declares_the_schemes_and_each_operation_s_scopes(middleware) -> None:
    schema = httpx.get(f"{middleware.url}/openapi.json").json()  # no credential needed
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
    }  # fmt: skip
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            needs = ROUTE_SCOPES[f"{method.upper()} {path}"]
            names = sorted(scope.value for scope in needs) if needs is not None else None
            expected = [] if names is None else [{"bearer": names}, {"apiKey": names}]
            assert operation["security"] == expected, f"{method} {path}"
