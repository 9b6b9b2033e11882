"""The six scopes a credential can hold. `admin` implies every other one."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Scope(StrEnum):
    TELEMETRY_WRITE = "telemetry:write"  # agents: post points, OTLP export
    TELEMETRY_READ = "telemetry:read"  # dashboards: findings, series, alerts; /metrics
    CRUD_READ = "crud:read"  # read and list entities; /django/health
    CRUD_WRITE = "crud:write"  # create, update, soft-delete, restore; threshold rules
    AUDIT_READ = "audit:read"  # the audit trail and its verification
    ADMIN = "admin"  # everything above, hard deletes and key management


def grants(held: frozenset[Scope], needed: Scope) -> bool:
    return needed in held or Scope.ADMIN in held


def known_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """The names that are our scopes; others are ignored (a token may serve other APIs too)."""
    known = {scope.value for scope in Scope}
    return frozenset(Scope(name) for name in names if name in known)


def as_text(scopes: Iterable[Scope]) -> str:
    """Space-separated and sorted, as OAuth 2.0 writes a scope list."""
    return " ".join(sorted(scope.value for scope in scopes))
