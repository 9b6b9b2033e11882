"""Key management (admin only, by auth/policy.py) and `GET /auth/me` for any credential.

Bodies are read like every JSON route's (service/json_route.py): within the size limit and
through the strict reader, so a huge body is a 413 and a duplicate key a 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.json_route import CheckedRoute
from service.request_context import current_request_id

from .dependencies import CurrentIdentity
from .identity import Identity
from .key_cache import KeyCache
from .key_changes import ChangeContext, record_created, record_revoked
from .keys import NAME_PATTERN, KeyStore, check_name
from .scopes import Scope

router = APIRouter(prefix="/auth", tags=["auth"], route_class=CheckedRoute)


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=100, description="unique, never reused")
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        return check_name(value)


@router.get("/me", summary="Who this credential is and what it may do")
async def me(identity: CurrentIdentity) -> dict[str, Any]:
    return {"data": identity.public()}


@router.get("/keys", summary="Every API key, revoked ones too; never a key or its hash")
async def list_keys(request: Request) -> dict[str, Any]:
    return {"data": [record.public() for record in await _store(request).all()]}


@router.post("/keys", status_code=201, summary="Create an API key; the answer shows it once")
async def create_key(body: NewKey, request: Request, identity: CurrentIdentity) -> JSONResponse:
    issued = await _store(request).create(body.name, body.scopes)
    _keys(request).remember(issued.record)  # usable here at once, before the next reload
    await record_created(request.app.state.audit, issued.record, _context(request, identity))
    return JSONResponse(
        {"data": {**issued.record.public(), "key": issued.key}},
        status_code=201,
        headers={"Cache-Control": "no-store"},  # no cache on the way may keep the key
    )


@router.delete("/keys/{name}", summary="Revoke an API key; here it stops working at once")
async def revoke_key(name: str, request: Request, identity: CurrentIdentity) -> dict[str, Any]:
    record, revoked_now = await _store(request).revoke(name)
    _keys(request).remember(record)  # refused here from now on
    context = _context(request, identity)
    await record_revoked(request.app.state.audit, record, revoked_now, context)
    return {"data": record.public()}


def _store(request: Request) -> KeyStore:
    return request.app.state.key_store


def _keys(request: Request) -> KeyCache:
    return request.app.state.gatekeeper.authenticator.keys


def _context(request: Request, identity: Identity) -> ChangeContext:
    return ChangeContext(
        actor=identity.actor,
        request_id=current_request_id(),
        client_address=request.client.host if request.client else None,
        user_agent=request.headers.get("User-Agent"),
    )
