"""Audit entries whose free text is longer than its column (issue #7).

PostgreSQL and MariaDB refuse a value longer than its VARCHAR where SQLite keeps it, so a long
request id or user agent once failed the audit insert there: the write went through unaudited.
Each entry is now cut to its columns before it is hashed, and the service takes a caller's
request id only when it fits its column.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from crud.audit import AuditEntry, AuditTrail
from crud.audit_query import AuditQuery
from tests.api_keys import unique_name
from tests.backend_server import BackendServer
from tests.integration.databases import migrated_database, throwaway_database
from tests.middleware_server import MiddlewareServer

HEX_REQUEST_ID = 32  # a generated request id: uuid4().hex


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
async def trail(request, tmp_path) -> AsyncIterator[AuditTrail]:
    async with migrated_database(request.param, tmp_path) as database:
        yield AuditTrail(database, sensitive_fields=())


async def test_every_free_text_column_is_cut_to_its_width(trail: AuditTrail) -> None:
    entry = AuditEntry(
        actor="a" * 250,
        operation="authenticate",
        entity_type="t" * 150,
        entity_id="i" * 150,
        changes={},
        status_code=401,
        request_id="r" * 128,
        client_address="c" * 150,
        user_agent="u" * 1000,
    )

    await trail.record(entry)
    [stored], total = await trail.page(AuditQuery())

    assert total == 1
    assert {name: len(stored[name]) for name in _FREE_TEXT} == {
        "actor": 200,
        "entity_type": 100,
        "entity_id": 100,
        "request_id": 100,
        "client_address": 100,
        "user_agent": 300,
    }
    assert stored["user_agent"] == "u" * 300
    assert await trail.verify() == {"ok": True, "entries_checked": 1, "first_broken": None}


_FREE_TEXT = ("actor", "entity_type", "entity_id", "request_id", "client_address", "user_agent")


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with throwaway_database("postgresql") as url:
        yield url


def test_a_write_with_a_long_request_id_and_user_agent_is_audited_on_postgresql(
    backend: BackendServer, postgres_url: str, tmp_path
) -> None:
    env = {
        **backend.env,
        "OBSERVER_DATABASE_URL": postgres_url,
    }
    agent = "long-agent/" + "x" * 989  # 1,000 characters
    longest_kept = "k" * 100
    with (
        MiddlewareServer(tmp_path, env=env) as server,
        httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as api,
    ):
        created = api.post(
            "/api/notification/channels/",
            json={"name": unique_name("long-id"), "channel_type": "email"},
            headers={"X-Request-ID": "r" * 128, "User-Agent": agent},
        )
        kept = api.post(
            "/api/notification/channels/",
            json={"name": unique_name("kept-id"), "channel_type": "email"},
            headers={"X-Request-ID": longest_kept},
        )
        refused = api.get(
            "/audit", headers={"Authorization": "", "X-Request-ID": "q" * 128, "User-Agent": agent}
        )
        trail = api.get("/audit", params={"page_size": 100}).json()["data"]
        verified = api.get("/audit/verify").json()

    generated = created.headers["X-Request-ID"]
    assert (created.status_code, kept.status_code, refused.status_code) == (201, 201, 401)
    assert len(generated) == HEX_REQUEST_ID and generated != "r" * 128
    assert kept.headers["X-Request-ID"] == longest_kept
    by_request = {entry["request_id"]: entry for entry in trail}
    create_entry = by_request[generated]
    assert (create_entry["operation"], create_entry["entity_id"], create_entry["status_code"]) == (
        "create",
        created.json()["data"]["id"],
        201,
    )
    assert create_entry["user_agent"] == agent[:300]
    assert by_request[longest_kept]["entity_id"] == kept.json()["data"]["id"]
    refusal = by_request[refused.headers["X-Request-ID"]]
    assert (refusal["operation"], refusal["status_code"], refusal["user_agent"]) == (
        "authenticate",
        401,
        agent[:300],
    )
    assert verified["ok"] is True
