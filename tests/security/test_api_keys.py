"""API keys on a running service: shown once, stored as a hash, revoked at once, named uniquely."""

from __future__ import annotations

import hashlib
import sqlite3
import time

import httpx

from tests.api_keys import bearer, create_key, unique_name
from tests.middleware_server import MiddlewareServer
from tests.security.conftest import client

KEY_FIELDS = {"id", "name", "scopes", "created_at", "revoked_at", "last_used_at"}


def _stored_row(server: MiddlewareServer, name: str) -> dict:
    database = sqlite3.connect(server.data_dir / "observer.db")
    database.row_factory = sqlite3.Row
    try:
        row = database.execute("SELECT * FROM api_keys WHERE name = ?", (name,)).fetchone()
    finally:
        database.close()
    return dict(row)


def _database_bytes(server: MiddlewareServer) -> bytes:
    files = sorted(server.data_dir.glob("observer.db*"))  # the file, its WAL and shared memory
    return b"".join(path.read_bytes() for path in files)


def test_a_new_key_is_shown_once_and_only_its_hash_is_stored(api, middleware) -> None:
    name = unique_name("agent")
    created = api.post("/auth/keys", json={"name": name, "scopes": ["telemetry:write"]})
    key = created.json()["data"]["key"]

    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    assert set(created.json()["data"]) == KEY_FIELDS | {"key"}
    assert key.startswith(f"oek_{created.json()['data']['id']}_")
    row = _stored_row(middleware, name)
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert row["scopes"] == "telemetry:write"
    assert key.encode() not in _database_bytes(middleware)

    listed = [item for item in api.get("/auth/keys").json()["data"] if item["name"] == name]
    assert [set(item) for item in listed] == [KEY_FIELDS]
    assert key not in api.get("/auth/keys").text
    assert row["key_hash"] not in api.get("/auth/keys").text


def test_a_key_works_in_either_header_and_only_with_its_own_secret(api) -> None:
    name = unique_name("reader")
    key = create_key(api, name, "crud:read")
    me = {"name": name, "kind": "key", "scopes": ["crud:read"]}

    assert api.get("/auth/me", headers=bearer(key)).json()["data"] == me
    assert api.get("/auth/me", headers={"Authorization": "", "X-API-Key": key}).json()["data"] == me
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    refused = api.get("/auth/me", headers=bearer(forged))
    assert (refused.status_code, refused.json()["detail"]) == (401, "The API key is not valid.")
    assert (
        refused.headers["WWW-Authenticate"] == 'Bearer realm="observer-eye", error="invalid_token"'
    )
    basic = api.get("/auth/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401

    entry = api.get("/audit", params={"actor": name, "operation": "authenticate"}).json()["data"]
    assert [(e["entity_type"], e["status_code"]) for e in entry] == [("GET /auth/me", 401)]


def test_a_revoked_key_stops_working_at_once(api) -> None:
    name = unique_name("leaked")
    key = create_key(api, name, "crud:read")
    assert api.get("/crud/entities", headers=bearer(key)).status_code == 200  # now cached

    revoked = api.delete(f"/auth/keys/{name}")
    after = api.get("/crud/entities", headers=bearer(key))

    assert revoked.status_code == 200
    assert revoked.json()["data"]["revoked_at"] is not None
    assert (after.status_code, after.json()["detail"]) == (401, "The API key was revoked.")
    history = api.get("/audit", params={"actor": name}).json()["data"]
    assert [(e["operation"], e["entity_type"], e["status_code"]) for e in history] == [
        ("authenticate", "GET /crud/entities", 401)
    ]
    changes = api.get("/audit", params={"entity_type": "auth.keys", "operation": "revoke"})
    newest = changes.json()["data"][0]
    assert (newest["actor"], newest["status_code"]) == ("admin-env", 200)
    assert set(newest["changes"]) == {"revoked_at"}


def test_revoking_again_changes_nothing_and_an_unknown_name_is_404(api) -> None:
    name = unique_name("twice")
    create_key(api, name, "audit:read")
    first = api.delete(f"/auth/keys/{name}").json()["data"]
    second = api.delete(f"/auth/keys/{name}")
    unknown = api.delete(f"/auth/keys/{unique_name('nobody')}")

    assert (second.status_code, second.json()["data"]) == (200, first)
    assert unknown.status_code == 404
    assert unknown.headers["Content-Type"] == "application/problem+json"


def test_names_are_unique_and_checked_and_scopes_are_known(api) -> None:
    name = unique_name("unique")
    create_key(api, name, "crud:read")

    again = api.post("/auth/keys", json={"name": name, "scopes": ["crud:read"]})
    reserved = api.post("/auth/keys", json={"name": "anonymous", "scopes": ["crud:read"]})
    bad_name = api.post("/auth/keys", json={"name": "a b", "scopes": ["crud:read"]})
    bad_scope = api.post("/auth/keys", json={"name": unique_name("x"), "scopes": ["root"]})
    no_scope = api.post("/auth/keys", json={"name": unique_name("x"), "scopes": []})

    assert again.status_code == 409
    statuses = [r.status_code for r in (reserved, bad_name, bad_scope, no_scope)]
    assert statuses == [422, 422, 422, 422]
    assert [e["field"] for e in bad_scope.json()["errors"]] == ["scopes.0"]


def test_last_use_is_written_by_the_recheck_not_the_request(strict, strict_admin) -> None:
    name = unique_name("used")
    key = create_key(strict_admin, name, "crud:read")
    with client(strict, bearer(key)) as caller:
        assert caller.get("/auth/me").status_code == 200

    deadline = time.monotonic() + 20
    while True:
        listed = strict_admin.get("/auth/keys").json()["data"]
        [found] = [item for item in listed if item["name"] == name]
        if found["last_used_at"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert found["last_used_at"] is not None


def test_the_admin_key_from_the_environment_is_named_in_the_trail(api) -> None:
    me = api.get("/auth/me").json()["data"]
    assert me == {"name": "admin-env", "kind": "admin-env", "scopes": ["admin"]}


def test_a_key_in_the_query_string_is_not_a_credential(middleware) -> None:
    anonymous = httpx.get(f"{middleware.url}/auth/me", params={"api_key": "x" * 40})
    assert anonymous.status_code == 401


def test_more_than_one_credential_header_is_refused_naming_them(middleware, api) -> None:
    key = create_key(api, unique_name("single"), "crud:read")
    other = create_key(api, unique_name("other"), "admin")
    agent = unique_name("doubled")
    sent = {
        "two-authorization": [
            ("Authorization", f"Bearer {key}"),
            ("Authorization", f"Bearer {other}"),
        ],
        "authorization-and-x-api-key": [("Authorization", f"Bearer {key}"), ("X-API-Key", other)],
        "same-key-twice": [("Authorization", f"Bearer {key}"), ("X-API-Key", key)],
        "two-x-api-key": [("X-API-Key", key), ("X-API-Key", key)],
    }
    with httpx.Client(base_url=middleware.url, timeout=30) as caller:
        answers = {
            case: caller.get("/auth/me", headers=[*headers, ("User-Agent", agent)])
            for case, headers in sent.items()
        }
        empty_second = caller.get("/auth/me", headers=[("Authorization", ""), ("X-API-Key", key)])

    assert {case: (a.status_code, a.json()["detail"]) for case, a in answers.items()} == {
        "two-authorization": (401, "Send one credential, not several: 2 Authorization headers."),
        "authorization-and-x-api-key": (
            401,
            "Send one credential, not several: Authorization and X-API-Key headers.",
        ),
        "same-key-twice": (
            401,
            "Send one credential, not several: Authorization and X-API-Key headers.",
        ),
        "two-x-api-key": (401, "Send one credential, not several: 2 X-API-Key headers."),
    }
    assert empty_second.status_code == 200  # an empty header carries no credential
    trail = api.get("/audit", params={"operation": "authenticate"}).json()["data"]
    assert [(e["actor"], e["status_code"]) for e in trail if e["user_agent"] == agent] == [
        ("anonymous", 401)
    ] * 4
