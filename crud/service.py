"""Carries out one CRUD operation: resolve, validate, forward, cache, audit.

The REST-style and `/crud` surfaces both end here, so they cannot disagree.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from auth.exceptions import Forbidden
from auth.policy import crud_operation_scope
from auth.scopes import Scope, grants
from django_integration.api_client import BackendClient
from django_integration.exceptions import (
    BackendFailed,
    BackendNotReached,
    BackendTimeout,
    BackendUnavailable,
    VersionConflict,
)
from service.problems import Problem

from .audit import AuditEntry, AuditTrail, AuditUnavailable, field_changes
from .cache import CachedAnswer, CacheStatus, ReadCache
from .locking import EntityLocks
from .models import CrudRequest, Operation
from .query import list_params
from .registry import EntityRegistry, EntitySchema
from .validation import check_query, check_write

logger = logging.getLogger(__name__)

ENTITY_ID = re.compile(r"[A-Za-z0-9-]+")
SERVE_STALE_ON = (BackendUnavailable, BackendTimeout, BackendFailed)
STALE_WARNING = '110 - "Response is stale"'


@dataclass(frozen=True)
class Caller:
    actor: str  # the authenticated identity's name: the audit trail's actor
    request_id: str | None = None
    client_address: str | None = None
    user_agent: str | None = None
    scopes: frozenset[Scope] = frozenset()
    # Unique across kinds of credential (a key and a JWT subject may share a name); cached
    # answers are kept per principal, as a backend that sees the caller may answer each apart.
    principal: str = ""

    def may(self, scope: Scope) -> bool:
        return grants(self.scopes, scope)


@dataclass
class CrudResult:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


class CrudService:
    def __init__(
        self,
        client: BackendClient,
        registry: EntityRegistry,
        audit: AuditTrail,
        cache: ReadCache,
    ) -> None:
        self._client = client
        self._registry = registry
        self._audit = audit
        self._cache = cache
        self._locks = EntityLocks()

    async def execute(
        self, request: CrudRequest, caller: Caller, *, conflict_status: int = 409
    ) -> CrudResult:
        """`conflict_status`: 409 for a stale `version` in a body, 412 for a stale If-Match."""
        await self._authorize(request, caller)
        schema = await self._registry.resolve(request.entity_type)
        if request.operation is Operation.READ:
            return await self._cached_read(schema, request, caller)
        if request.operation is Operation.LIST:
            check_query(schema, request)
            return await self._cached_read(schema, request, caller)
        return await self._audited_write(schema, request, caller, conflict_status)

    async def _authorize(self, request: CrudRequest, caller: Caller) -> None:
        """403, on the audit trail, for an operation the caller's scopes do not allow."""
        needed = crud_operation_scope(request.operation.value, hard=request.hard)
        if caller.may(needed):
            return
        entry = _entry_for(request, caller)
        entry.status_code = 403
        await self._record(entry)
        raise Forbidden(caller.actor, [needed])

    # --- reads ------------------------------------------------------------------

    async def _cached_read(
        self, schema: EntitySchema, request: CrudRequest, caller: Caller
    ) -> CrudResult:
        if request.operation is Operation.READ:
            key: dict[str, Any] = {"id": request.entity_id, "inactive": request.include_inactive}
            load = self._load_one
        else:
            key = {"list": list_params(request)}
            load = self._load_page
        key["caller"] = caller.principal

        answer, status = await self._cache.get_or_load(
            schema.entity_type, key, lambda: load(schema, request), stale_on=SERVE_STALE_ON
        )
        headers = {**answer.headers, "X-Cache": status.value}
        if status is CacheStatus.STALE:
            headers["Warning"] = STALE_WARNING
        return CrudResult(answer.status, answer.body, headers)

    async def _load_one(self, schema: EntitySchema, request: CrudRequest) -> CachedAnswer:
        params = {"include_inactive": "true"} if request.include_inactive else None
        response = await self._client.request(
            "GET", _detail_path(schema, request.entity_id), params=params
        )
        return CachedAnswer(200, {"data": _json(response, "id")}, _etag(response.headers))

    async def _load_page(self, schema: EntitySchema, request: CrudRequest) -> CachedAnswer:
        response = await self._client.request(
            "GET", schema.collection_path, params=list_params(request)
        )
        page = _json(response, "count", "results")
        total = page["count"]
        if not isinstance(total, int) or not isinstance(page["results"], list):
            raise BackendFailed("The backend's list answer does not have the expected shape.")
        page_info = {
            "page": request.page,
            "page_size": request.page_size,
            "total_count": total,
            "total_pages": math.ceil(total / request.page_size),
            "has_next": page.get("next") is not None,
            "has_previous": page.get("previous") is not None,
        }
        return CachedAnswer(200, {"data": page["results"], "page_info": page_info}, {})

    # --- writes -----------------------------------------------------------------

    async def _audited_write(
        self, schema: EntitySchema, request: CrudRequest, caller: Caller, conflict_status: int
    ) -> CrudResult:
        try:
            await self._audit.ensure_writable()
        except AuditUnavailable as exc:
            raise Problem(
                503,
                "The audit trail cannot be written, so no write is accepted.",
                headers={"Retry-After": "5"},
            ) from exc

        entry = _entry_for(request, caller)
        try:
            result = await self._write(schema, request, entry)
        except Problem as problem:
            refused = _as_conflict(problem, request, conflict_status)
            entry.status_code = refused.status
            await self._record(entry)
            raise refused from problem
        except Exception:
            await self._record(entry)  # status 500: the attempt is on record all the same
            raise

        entry.status_code = result.status
        await self._record(entry)
        return result

    async def _write(
        self, schema: EntitySchema, request: CrudRequest, entry: AuditEntry
    ) -> CrudResult:
        """Forward one write; fill the audit entry's changes as facts become known."""
        if request.data is not None:
            partial = request.operation is Operation.UPDATE and not request.replace
            check_write(schema, request.data, partial=partial)
        return await self._forward(schema, request, entry)

    async def _forward(
        self, schema: EntitySchema, request: CrudRequest, entry: AuditEntry
    ) -> CrudResult:
        if request.operation is Operation.CREATE:
            response = await self._send_write(
                schema, "POST", schema.collection_path, json=request.data
            )
            created = _json(response, "id")
            entry.entity_id = str(created.get("id"))
            entry.changes = field_changes(None, created)
            return CrudResult(201, {"data": created}, _etag(response.headers))

        fallback_lock = request.version is not None and not schema.conditional_writes
        lock = (
            self._locks.hold(schema.entity_type, str(request.entity_id))
            if fallback_lock
            else contextlib.nullcontext()
        )
        async with lock:
            return await self._change(schema, request, entry, fallback_lock)

    async def _change(
        self, schema: EntitySchema, request: CrudRequest, entry: AuditEntry, locally: bool
    ) -> CrudResult:
        path = _detail_path(schema, request.entity_id)
        restoring = request.operation is Operation.RESTORE
        # Read for the audit's before-values; the version check is the backend's
        # conditional write, except for a backend without one, under our lock.
        params = {"include_inactive": "true"} if restoring else None
        before = _json(await self._client.request("GET", path, params=params), "id")
        if locally and before.get("version") != request.version:
            raise VersionConflict("The entity was changed since that version.", before["version"])
        conditional = None if locally else _if_match(request.version)

        if request.operation is Operation.UPDATE:
            method = "PUT" if request.replace else "PATCH"
            response = await self._send_write(
                schema, method, path, json=request.data, headers=conditional
            )
            after = _json(response, "id")
            entry.changes = field_changes(before, after)
            return CrudResult(200, {"data": after}, _etag(response.headers))

        if restoring:
            response = await self._send_write(
                schema, "POST", f"{path}restore/", headers=conditional
            )
            after = _json(response, "id")
            entry.changes = field_changes(before, after)
            return CrudResult(200, {"data": after}, _etag(response.headers))

        params = {"hard": "true"} if request.hard else None
        await self._send_write(schema, "DELETE", path, params=params, headers=conditional)
        if request.hard:
            entry.changes = field_changes(before, None)
        else:
            entry.changes = {"is_active": {"old": before.get("is_active"), "new": False}}
        return CrudResult(204, None)

    async def _send_write(
        self, schema: EntitySchema, method: str, path: str, **call: Any
    ) -> httpx.Response:
        """Send the write itself; once it may have landed, no cached read of its type holds.

        A write that provably never left (breaker open, connection refused) keeps the cache,
        and with it the stale answers readers get while the backend is down. Any other
        failure, a timeout or an error answer, may have changed the entity all the same.
        """
        try:
            response = await self._client.request(method, path, **call)
        except BackendNotReached:
            raise
        except BaseException:
            await self._cache.invalidate(schema.entity_type)
            raise
        await self._cache.invalidate(schema.entity_type)
        return response

    async def _record(self, entry: AuditEntry) -> None:
        try:
            await self._audit.record(entry)
        except Exception:
            # The write already happened: leave everything needed to replay the entry.
            logger.exception(
                "audit entry could not be recorded; replay it from here: %s", entry.row()
            )


def _entry_for(request: CrudRequest, caller: Caller) -> AuditEntry:
    """The audit entry of one attempt, status 500 until its outcome is known."""
    return AuditEntry(
        actor=caller.actor,
        operation=request.operation.value,
        entity_type=request.entity_type,
        entity_id=request.entity_id,
        changes={},
        status_code=500,
        request_id=caller.request_id,
        client_address=caller.client_address,
        user_agent=caller.user_agent,
    )


def _as_conflict(problem: Problem, request: CrudRequest, conflict_status: int) -> Problem:
    """A stale version: 409 naming the current one in `/crud`, 412 for If-Match."""
    if not isinstance(problem, VersionConflict):
        return problem
    current = problem.current_version
    if conflict_status == 412:
        detail = f"If-Match does not match the entity's current version, {current}."
    else:
        detail = f"Version {request.version} is not current; the entity is at version {current}."
    return Problem(
        conflict_status,
        detail,
        title="Version conflict",
        extra={"current_version": problem.current_version},
    )


def _detail_path(schema: EntitySchema, entity_id: str | None) -> str:
    assert entity_id is not None  # CrudRequest guarantees it for these operations
    # Ids become a URL path segment: refuse anything that could change the path.
    if not ENTITY_ID.fullmatch(entity_id):
        raise Problem(
            422,
            "The entity id may hold only letters, digits and dashes.",
            errors=[{"field": "entity_id", "message": "invalid characters"}],
        )
    return f"{schema.collection_path}{entity_id}/"


def _json(response: Any, *keys: str) -> Any:
    """The backend's JSON answer, holding `keys`; anything else is the backend's failure."""
    try:
        body = response.json()
    except ValueError as exc:
        raise BackendFailed("The backend answered with something that is not JSON.") from exc
    if not isinstance(body, dict) or any(key not in body for key in keys):
        raise BackendFailed("The backend's answer does not have the expected shape.")
    return body


def _if_match(version: int | None) -> dict[str, str] | None:
    return {"If-Match": f'"{version}"'} if version is not None else None


def _etag(headers: Any) -> dict[str, str]:
    etag = headers.get("ETag")
    return {"ETag": etag} if etag else {}
