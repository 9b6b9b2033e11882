"""The `/crud` surface and the audit trail's routes."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from service.json_route import CheckedRoute
from service.request_limits import bounded_page_size, check_query_values, stored_time

from .audit_query import AuditQuery
from .bulk import BulkRequest, execute_bulk
from .models import CrudRequest, Operation
from .service import CrudService
from .surface import caller_of, idempotent, respond

router = APIRouter(route_class=CheckedRoute)


@router.post(
    "/crud",
    tags=["crud"],
    summary="Create, read, update, delete, restore or list",
    responses={201: {"description": "Created"}, 204: {"description": "Deleted"}},
)
async def crud(body: CrudRequest, request: Request) -> Response:
    service: CrudService = request.app.state.crud
    if body.operation is Operation.LIST:
        given = "page_size" in body.model_fields_set
        body.page_size = bounded_page_size(request, body.page_size, given=given)
    if body.operation is not Operation.CREATE:
        return respond(await service.execute(body, caller_of(request)))

    async def run() -> tuple[int, Any, dict[str, str]]:
        result = await service.execute(body, caller_of(request))
        return result.status, result.body, result.headers

    return await idempotent(request, body.model_dump(mode="json"), run)


@router.get("/crud/entities", tags=["crud"], summary="Entity types, their fields and filters")
async def entities(request: Request) -> dict[str, Any]:
    registry = request.app.state.registry
    if not registry.loaded:
        await registry.refresh()
    return {"data": [registry.describe(name) for name in registry.entity_types]}


@router.post("/crud/bulk", tags=["crud"], summary="Up to 1,000 writes, each with its own status")
async def crud_bulk(body: BulkRequest, request: Request) -> Response:
    service: CrudService = request.app.state.crud

    async def run() -> tuple[int, Any, dict[str, str]]:
        return 200, await execute_bulk(service, body, caller_of(request)), {}

    return await idempotent(request, body.model_dump(mode="json"), run)


@router.get("/audit", tags=["audit"], summary="The audit trail, newest first")
async def audit(
    request: Request,
    page: int = Query(1, ge=1, le=1_000_000),
    page_size: int = Query(50, ge=1, le=1000),
    entity_type: str | None = Query(None, max_length=100),
    entity_id: str | None = Query(None, max_length=100),
    actor: str | None = Query(None, max_length=200),
    operation: str | None = Query(None, max_length=20),
    outcome: str | None = Query(None, pattern="^(success|failure)$"),
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    check_query_values(request)  # no NUL or other control characters reach the database
    page_size = bounded_page_size(request, page_size, given="page_size" in request.query_params)
    start, end = stored_time("since", since), stored_time("until", until)
    query = AuditQuery(
        page, page_size, entity_type, entity_id, actor, operation, outcome, start, end
    )
    return await _audit_page(request, query)


@router.get("/audit/verify", tags=["audit"], summary="Walk the hash chain; name the first break")
async def audit_verify(request: Request) -> dict[str, Any]:
    return await request.app.state.audit.verify()


@router.get("/audit/{app}/{resource}/{entity_id}", tags=["audit"], summary="One entity's history")
async def audit_history(
    request: Request,
    app: Annotated[str, Path(max_length=100)],
    resource: Annotated[str, Path(max_length=100)],
    entity_id: Annotated[str, Path(max_length=100)],
    page: int = Query(1, ge=1, le=1_000_000),
    page_size: int = Query(50, ge=1, le=1000),
) -> dict[str, Any]:
    page_size = bounded_page_size(request, page_size, given="page_size" in request.query_params)
    query = AuditQuery(page, page_size, entity_type=f"{app}.{resource}", entity_id=entity_id)
    return await _audit_page(request, query)


async def _audit_page(request: Request, query: AuditQuery) -> dict[str, Any]:
    entries, total = await request.app.state.audit.page(query)
    total_pages = math.ceil(total / query.page_size)
    return {
        "data": entries,
        "page_info": {
            "page": query.page,
            "page_size": query.page_size,
            "total_count": total,
            "total_pages": total_pages,
            "has_next": query.page < total_pages,
            "has_previous": query.page > 1,
        },
    }
