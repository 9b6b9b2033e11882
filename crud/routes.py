"""HTTP routes of the CRUD side: `POST /crud` and the audit trail."""

from __future__ import annotations

import math

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from service.request_context import current_request_id

from .models import CrudRequest
from .service import Caller, CrudService

router = APIRouter()

ANONYMOUS = "anonymous"


def caller_of(request: Request) -> Caller:
    # TODO(#7): the actor is the caller's own claim until authentication exists.
    actor = request.headers.get("X-Actor", "").strip()[:200] or ANONYMOUS
    client = request.client.host if request.client else None
    return Caller(actor=actor, request_id=current_request_id(), client_address=client)


@router.post("/crud", tags=["crud"], summary="Create, read, update, delete or list an entity")
async def crud(body: CrudRequest, request: Request) -> Response:
    service: CrudService = request.app.state.crud
    result = await service.execute(body, caller_of(request))
    if result.body is None:
        return Response(status_code=result.status, headers=result.headers)
    return JSONResponse(result.body, status_code=result.status, headers=result.headers)


@router.get("/audit", tags=["audit"], summary="The audit trail, newest first")
async def audit(
    request: Request,
    page: int = Query(1, ge=1),
    page_size: int = Query(50, ge=1, le=1000),
) -> dict[str, object]:
    entries, total = await request.app.state.audit.page(page, page_size)
    total_pages = math.ceil(total / page_size)
    return {
        "data": entries,
        "page_info": {
            "page": page,
            "page_size": page_size,
            "total_count": total,
            "total_pages": total_pages,
            "has_next": page < total_pages,
            "has_previous": page > 1,
        },
    }
