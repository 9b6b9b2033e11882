"""Carries out one CRUD operation: resolve, forward, translate, audit.

The REST-style and `/crud` surfaces both end here, so they cannot disagree.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

from django_integration.api_client import BackendClient
from django_integration.exceptions import VersionConflict
from service.problems import Problem

from .audit import AuditEntry, AuditTrail, field_changes
from .models import CrudRequest, Operation
from .query import list_params
from .registry import EntityRegistry

logger = logging.getLogger(__name__)

ENTITY_ID = re.compile(r"[A-Za-z0-9-]+")


@dataclass(frozen=True)
class Caller:
    actor: str
    request_id: str | None = None
    client_address: str | None = None


@dataclass
class CrudResult:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


class CrudService:
    def __init__(self, client: BackendClient, registry: EntityRegistry, audit: AuditTrail) -> None:
        self._client = client
        self._registry = registry
        self._audit = audit

    async def execute(self, request: CrudRequest, caller: Caller) -> CrudResult:
        collection = await self._registry.resolve(request.entity_type)
        if request.operation is Operation.READ:
            return await self._read(collection, request)
        if request.operation is Operation.LIST:
            return await self._list(collection, request)
        return await self._audited_write(collection, request, caller)

    async def _read(self, collection: str, request: CrudRequest) -> CrudResult:
        params = {"include_inactive": "true"} if request.include_inactive else None
        response = await self._client.request(
            "GET", _detail_path(collection, request.entity_id), params=params
        )
        return CrudResult(200, {"data": response.json()}, _etag(response.headers))

    async def _list(self, collection: str, request: CrudRequest) -> CrudResult:
        response = await self._client.request("GET", collection, params=list_params(request))
        page = response.json()
        total = int(page["count"])
        page_info = {
            "page": request.page,
            "page_size": request.page_size,
            "total_count": total,
            "total_pages": math.ceil(total / request.page_size),
            "has_next": page.get("next") is not None,
            "has_previous": page.get("previous") is not None,
        }
        return CrudResult(200, {"data": page["results"], "page_info": page_info})

    async def _audited_write(
        self, collection: str, request: CrudRequest, caller: Caller
    ) -> CrudResult:
        entry = AuditEntry(
            actor=caller.actor,
            operation=request.operation.value,
            entity_type=request.entity_type,
            entity_id=request.entity_id,
            changes={},
            status_code=500,
            request_id=caller.request_id,
            client_address=caller.client_address,
        )
        try:
            result = await self._write(collection, request, entry)
        except Problem as problem:
            translated = _as_crud_conflict(problem, request)
            entry.status_code = translated.status
            await self._audit.record(entry)
            raise translated from problem
        entry.status_code = result.status
        await self._audit.record(entry)
        return result

    async def _write(self, collection: str, request: CrudRequest, entry: AuditEntry) -> CrudResult:
        """Forward one write; fill the audit entry's changes as facts become known."""
        if request.operation is Operation.CREATE:
            response = await self._client.request("POST", collection, json=request.data)
            created = response.json()
            entry.entity_id = str(created.get("id"))
            entry.changes = field_changes(None, created)
            return CrudResult(201, {"data": created}, _etag(response.headers))

        path = _detail_path(collection, request.entity_id)
        conditional = _if_match(request.version)
        # Read for the audit's before-values only; the version check is the backend's
        # conditional write, never a compare here.
        before = (await self._client.request("GET", path)).json()

        if request.operation is Operation.UPDATE:
            response = await self._client.request(
                "PATCH", path, json=request.data, headers=conditional
            )
            after = response.json()
            entry.changes = field_changes(before, after)
            return CrudResult(200, {"data": after}, _etag(response.headers))

        await self._client.request("DELETE", path, headers=conditional)
        entry.changes = {"is_active": {"old": before.get("is_active"), "new": False}}
        return CrudResult(204, None)


def _as_crud_conflict(problem: Problem, request: CrudRequest) -> Problem:
    """In `/crud` a stale `version` is a 409 that names the current one."""
    if not isinstance(problem, VersionConflict):
        return problem
    return Problem(
        409,
        f"Version {request.version} is not current; the entity is at version "
        f"{problem.current_version}.",
        title="Version conflict",
        extra={"current_version": problem.current_version},
    )


def _detail_path(collection: str, entity_id: str | None) -> str:
    assert entity_id is not None  # CrudRequest guarantees it for these operations
    return f"{collection}{_safe_segment(entity_id)}/"


def _safe_segment(entity_id: str) -> str:
    # Ids become a URL path segment: refuse anything that could change the path.
    if not ENTITY_ID.fullmatch(entity_id):
        raise Problem(
            422,
            "The entity id may hold only letters, digits and dashes.",
            errors=[{"field": "entity_id", "message": "invalid characters"}],
        )
    return entity_id


def _if_match(version: int | None) -> dict[str, str] | None:
    return {"If-Match": f'"{version}"'} if version is not None else None


def _etag(headers: Any) -> dict[str, str]:
    etag = headers.get("ETag")
    return {"ETag": etag} if etag else {}
