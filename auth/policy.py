"""Which scope each route needs: the one table to read, and to change when a route is added.

A route needs one of the scopes listed (`admin` holds them all); `PUBLIC` needs no credential;
`ANY_CREDENTIAL` needs a valid one of any scope. The service refuses to start while a route is
missing here, and tests/security walks every route against this table.
"""

from __future__ import annotations

from .scopes import Scope

PUBLIC = None
ANY_CREDENTIAL: tuple[Scope, ...] = ()

TELEMETRY_WRITE = (Scope.TELEMETRY_WRITE,)
TELEMETRY_READ = (Scope.TELEMETRY_READ,)
CRUD_READ = (Scope.CRUD_READ,)
CRUD_WRITE = (Scope.CRUD_WRITE,)
AUDIT_READ = (Scope.AUDIT_READ,)
ADMIN = (Scope.ADMIN,)

Requirement = tuple[Scope, ...] | None

ROUTE_SCOPES: dict[str, Requirement] = {
    # Orchestrators' probes and the API's documentation.
    "GET /health/live": PUBLIC,
    "GET /health/ready": PUBLIC,
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /docs/oauth2-redirect": PUBLIC,
    "GET /redoc": PUBLIC,
    # The backend's health names the entity types and the breaker: what CRUD readers rely on.
    "GET /django/health": CRUD_READ,
    # Prometheus: PUBLIC instead when OBSERVER_METRICS_REQUIRE_KEY is off.
    "GET /metrics": TELEMETRY_READ,
    # CRUD. On `POST /crud` the operation in the body decides (see `crud_operation_scope`),
    # so either scope gets in; a hard delete needs admin wherever it is asked for.
    "POST /crud": (Scope.CRUD_READ, Scope.CRUD_WRITE),
    "GET /crud/entities": CRUD_READ,
    "POST /crud/bulk": CRUD_WRITE,
    "GET /api/{app}/{resource}/": CRUD_READ,
    "POST /api/{app}/{resource}/": CRUD_WRITE,
    "POST /api/{app}/{resource}/bulk/": CRUD_WRITE,
    "GET /api/{app}/{resource}/{entity_id}/": CRUD_READ,
    "PATCH /api/{app}/{resource}/{entity_id}/": CRUD_WRITE,
    "PUT /api/{app}/{resource}/{entity_id}/": CRUD_WRITE,
    "DELETE /api/{app}/{resource}/{entity_id}/": CRUD_WRITE,
    "POST /api/{app}/{resource}/{entity_id}/restore/": CRUD_WRITE,
    # The audit trail.
    "GET /audit": AUDIT_READ,
    "GET /audit/verify": AUDIT_READ,
    "GET /audit/{app}/{resource}/{entity_id}": AUDIT_READ,
    # Telemetry: agents write, dashboards read.
    "POST /telemetry": TELEMETRY_WRITE,
    "POST /telemetry/batch": TELEMETRY_WRITE,
    "POST /v1/metrics": TELEMETRY_WRITE,
    "POST /v1/traces": TELEMETRY_WRITE,
    "POST /v1/logs": TELEMETRY_WRITE,
    "GET /telemetry/anomalies": TELEMETRY_READ,
    "GET /telemetry/analysis": TELEMETRY_READ,
    "GET /telemetry/metrics": TELEMETRY_READ,
    "GET /telemetry/correlations": TELEMETRY_READ,
    "GET /telemetry/traces/{trace_id}": TELEMETRY_READ,
    "GET /telemetry/services": TELEMETRY_READ,
    "GET /telemetry/series": TELEMETRY_READ,
    "GET /telemetry/rejections": TELEMETRY_READ,
    "GET /telemetry/rules": TELEMETRY_READ,
    "GET /telemetry/alerts": TELEMETRY_READ,
    # Threshold rules are configuration, like the backend's alert rules: not for agents.
    "POST /telemetry/rules": CRUD_WRITE,
    "DELETE /telemetry/rules/{rule_id}": CRUD_WRITE,
    # Keys.
    "GET /auth/me": ANY_CREDENTIAL,
    "GET /auth/keys": ADMIN,
    "POST /auth/keys": ADMIN,
    "DELETE /auth/keys/{name}": ADMIN,
}


def route_scopes(*, metrics_require_key: bool) -> dict[str, Requirement]:
    """The table as this instance's settings have it."""
    if metrics_require_key:
        return dict(ROUTE_SCOPES)
    return {**ROUTE_SCOPES, "GET /metrics": PUBLIC}


def crud_operation_scope(operation: str, *, hard: bool = False) -> Scope:
    """What one CRUD operation needs, whichever surface asked for it."""
    if operation in ("read", "list"):
        return Scope.CRUD_READ
    if operation == "delete" and hard:
        return Scope.ADMIN  # a row removed for good cannot be restored
    return Scope.CRUD_WRITE
