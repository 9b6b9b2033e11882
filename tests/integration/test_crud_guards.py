"""Guards around writes: no unaudited write, and the lock for backends without If-Match."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from auth.scopes import Scope
from crud.audit import AuditTrail
from crud.cache import ReadCache
from crud.models import CrudRequest
from crud.registry import EntityRegistry
from crud.service import Caller, CrudService
from django_integration.api_client import BackendClient
from django_integration.connection import Database
from service.problems import Problem
from service.settings import Settings
from tests.middleware_server import MiddlewareServer, free_port


async def test_write_is_refused_when_the_audit_store_is_down(backend) -> None:
    settings = Settings(backend_url=backend.url, backend_token=backend.token)
    client = BackendClient(settings, base_url=backend.url, token=backend.token)
    # A real connection to a port where no database listens: the store cannot be written.
    database = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/audit")
    registry = EntityRegistry(client)
    service = CrudService(
        client,
        registry,
        AuditTrail(database, sensitive_fields=()),
        ReadCache.from_settings(settings),
    )
    name = f"unaudited-{uuid.uuid4().hex[:8]}"
    request = CrudRequest(
        operation="create",
        entity_type="notification.channels",
        data={"name": name, "channel_type": "email"},
    )
    try:
        with pytest.raises(Problem) as refused:
            await service.execute(
                request, Caller(actor="test", scopes=frozenset({Scope.CRUD_WRITE}))
            )
        listed = await client.request("GET", "/api/notification/channels/", params={"name": name})
    finally:
        await client.close()
        await database.dispose()

    assert (refused.value.status, refused.value.headers) == (503, {"Retry-After": "5"})
    assert refused.value.detail == "The audit trail cannot be written, so no write is accepted."
    assert listed.json()["count"] == 0  # the backend was never called


def test_backend_without_conditional_writes_falls_back_to_a_lock(backend, tmp_path) -> None:
    # The reference backend does write conditionally; the override makes the middleware
    # treat it as one that does not, so that only the middleware's own lock decides.
    overrides = tmp_path / "entities.json"
    overrides.write_text(json.dumps({"notification.channels": {"conditional_writes": False}}))
    env = {
        **backend.env,
        "OBSERVER_ENTITY_OVERRIDES_FILE": str(overrides),
    }
    with MiddlewareServer(tmp_path / "mw", env=env) as server:

        async def race() -> list[int]:
            async with httpx.AsyncClient(
                base_url=server.url, headers=server.headers, timeout=30
            ) as client:
                created = await client.post(
                    "/api/notification/channels/",
                    json={"name": f"lock-{uuid.uuid4().hex[:8]}", "channel_type": "email"},
                )
                url = f"/api/notification/channels/{created.json()['data']['id']}/"
                answers = await asyncio.gather(
                    *(
                        client.patch(
                            url, json={"rate_limit_per_hour": n}, headers={"If-Match": '"1"'}
                        )
                        for n in (5, 6, 7)
                    )
                )
                return sorted(answer.status_code for answer in answers)

        assert asyncio.run(race()) == [200, 412, 412]
        health = httpx.get(f"{server.url}/django/health", headers=server.headers).json()
        log = server.log()

    assert health["without_conditional_writes"] == ["notification.channels"]

    assert "notification.channels" in log
    assert "checked under this instance's own per-entity lock" in log
