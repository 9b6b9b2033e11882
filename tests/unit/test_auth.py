"""The route table against the service's own routes, the policy table, scopes, key ids."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from auth.keys import key_id_of
from auth.policy import ROUTE_SCOPES, crud_operation_scope, route_scopes
from auth.route_table import RouteTable
from auth.scopes import Scope, grants
from main import create_app
from service.settings import Settings


def test_key_ids_are_read_only_from_keys_of_ours() -> None:
    assert key_id_of(f"oek_0123456789abcdef_{'a' * 43}") == "0123456789abcdef"
    assert key_id_of(f"oek_0123456789abcdef_{'a' * 42}") is None
    assert key_id_of("eyJhbGciOiJIUzI1NiJ9.e30.sig") is None


@pytest.fixture(scope="module")
def table() -> RouteTable:
    return RouteTable.of(create_app(Settings()), route_scopes(metrics_require_key=True))


@pytest.mark.parametrize(
    ("method", "path", "label", "needs"),
    [
        ("GET", "/audit/verify", "GET /audit/verify", {Scope.AUDIT_READ}),
        ("GET", "/audit/core/configurations/7", "GET /audit/{app}/{resource}/{entity_id}",
         {Scope.AUDIT_READ}),
        ("POST", "/api/core/configurations/bulk/", "POST /api/{app}/{resource}/bulk/",
         {Scope.CRUD_WRITE}),
        ("DELETE", "/api/core/configurations/7/", "DELETE /api/{app}/{resource}/{entity_id}/",
         {Scope.CRUD_WRITE}),
        ("POST", "/crud", "POST /crud", {Scope.CRUD_READ, Scope.CRUD_WRITE}),
        ("HEAD", "/docs", "HEAD /docs", None),
        ("GET", "/auth/me", "GET /auth/me", set()),
    ],
)  # fmt: skip
def test_the_table_finds_each_route_s_rule(table, method, path, label, needs) -> None:
    rule = table.match(method, path)
    assert rule is not None
    assert (rule.label, rule.needs) == (label, None if needs is None else frozenset(needs))


def test_no_rule_for_paths_and_methods_no_route_serves(table: RouteTable) -> None:
    assert table.match("GET", "/nothing/here") is None
    assert table.match("PATCH", "/crud") is None
    assert table.match("GET", "/api/core/configurations") is None  # no trailing slash


def test_a_route_missing_from_the_table_stops_the_start() -> None:
    app = FastAPI()

    @app.get("/forgotten")
    async def forgotten() -> None: ...

    with pytest.raises(RuntimeError, match="GET /forgotten"):
        RouteTable.of(app, dict(ROUTE_SCOPES))


def test_metrics_can_be_made_public_and_nothing_else_changes() -> None:
    public = route_scopes(metrics_require_key=False)
    assert public.pop("GET /metrics") is None
    assert public == {name: needs for name, needs in ROUTE_SCOPES.items() if name != "GET /metrics"}


def test_admin_holds_every_scope_and_no_other_scope_implies_one() -> None:
    assert all(grants(frozenset({Scope.ADMIN}), scope) for scope in Scope)
    others = [scope for scope in Scope if scope is not Scope.ADMIN]
    assert [
        (held, needed) for held in others for needed in Scope
        if held is not needed and grants(frozenset({held}), needed)
    ] == []  # fmt: skip


@pytest.mark.parametrize(
    ("operation", "hard", "needed"),
    [("read", False, Scope.CRUD_READ), ("list", False, Scope.CRUD_READ),
     ("create", False, Scope.CRUD_WRITE), ("update", False, Scope.CRUD_WRITE),
     ("restore", False, Scope.CRUD_WRITE), ("delete", False, Scope.CRUD_WRITE),
     ("delete", True, Scope.ADMIN)],
)  # fmt: skip
def test_each_crud_operation_s_scope(operation, hard, needed) -> None:
    assert crud_operation_scope(operation, hard=hard) is needed
