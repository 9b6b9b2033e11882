"""Key creations and revocations go on the audit trail like any other write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crud.audit import AuditEntry, AuditTrail

from .keys import ApiKey
from .scopes import as_text

ENTITY_TYPE = "auth.keys"


@dataclass(frozen=True)
class ChangeContext:
    actor: str
    request_id: str | None = None
    client_address: str | None = None
    user_agent: str | None = None


async def record_created(audit: AuditTrail, record: ApiKey, context: ChangeContext) -> None:
    changes = {
        "name": {"old": None, "new": record.name},
        "scopes": {"old": None, "new": as_text(record.scopes)},
    }
    await audit.record(_entry("create", record, changes, 201, context))


async def record_revoked(
    audit: AuditTrail, record: ApiKey, revoked_now: bool, context: ChangeContext
) -> None:
    changes: dict[str, Any] = {}
    if revoked_now and record.revoked_at is not None:
        changes["revoked_at"] = {"old": None, "new": record.revoked_at.isoformat()}
    await audit.record(_entry("revoke", record, changes, 200, context))


def _entry(
    operation: str, record: ApiKey, changes: dict[str, Any], status: int, context: ChangeContext
) -> AuditEntry:
    return AuditEntry(
        actor=context.actor,
        operation=operation,
        entity_type=ENTITY_TYPE,
        entity_id=record.id,
        changes=changes,
        status_code=status,
        request_id=context.request_id,
        client_address=context.client_address,
        user_agent=context.user_agent,
    )
