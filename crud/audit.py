"""The audit trail: one row per attempted write, in the middleware's own database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Integer, String, Table, func, select

from django_integration.connection import Database, metadata

audit_entries = Table(
    "audit_entries",
    metadata,
    # seq orders entries by insertion; two writes in one clock tick stay ordered.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("operation", String(20), nullable=False),
    Column("entity_type", String(100), nullable=False),
    Column("entity_id", String(100), nullable=True),
    Column("changes", JSON, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("request_id", String(100), nullable=True),
    Column("client_address", String(100), nullable=True),
)


@dataclass
class AuditEntry:
    actor: str
    operation: str
    entity_type: str
    entity_id: str | None
    changes: dict[str, dict[str, Any]]
    status_code: int
    request_id: str | None
    client_address: str | None
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def outcome(self) -> str:
        return "success" if self.status_code < 400 else "failure"


def field_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Each field whose value differs, as `{field: {"old": ..., "new": ...}}`."""
    before = before or {}
    after = after or {}
    changes = {}
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = {"old": old, "new": new}
    return changes


class AuditTrail:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(self, entry: AuditEntry) -> None:
        row = {
            "id": entry.id,
            "occurred_at": entry.occurred_at,
            "actor": entry.actor,
            "operation": entry.operation,
            "entity_type": entry.entity_type,
            "entity_id": entry.entity_id,
            "changes": entry.changes,
            "outcome": entry.outcome,
            "status_code": entry.status_code,
            "request_id": entry.request_id,
            "client_address": entry.client_address,
        }
        async with self._database.engine.begin() as connection:
            await connection.execute(audit_entries.insert().values(**row))

    async def page(self, page: int, page_size: int) -> tuple[list[dict[str, Any]], int]:
        """Entries newest first, and how many there are in all."""
        query = (
            select(audit_entries)
            .order_by(audit_entries.c.seq.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        async with self._database.engine.connect() as connection:
            total = await connection.scalar(select(func.count()).select_from(audit_entries))
            rows = (await connection.execute(query)).mappings().all()
        return [_as_json(row) for row in rows], int(total or 0)


def _as_json(row: Any) -> dict[str, Any]:
    entry = dict(row)
    entry.pop("seq")
    occurred_at = entry["occurred_at"]
    if occurred_at.tzinfo is None:  # SQLite hands back naive datetimes
        occurred_at = occurred_at.replace(tzinfo=UTC)
    entry["occurred_at"] = occurred_at.isoformat()
    return entry
