"""Reading the audit trail: filters, newest first, paginated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class AuditQuery:
    page: int = 1
    page_size: int = 50
    entity_type: str | None = None
    entity_id: str | None = None
    actor: str | None = None
    operation: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def page_of_entries(
    connection: AsyncConnection, table: Table, query: AuditQuery
) -> tuple[list[dict[str, Any]], int]:
    conditions = [
        table.c[name] == value
        for name in ("entity_type", "entity_id", "actor", "operation", "outcome")
        if (value := getattr(query, name)) is not None
    ]
    if query.since is not None:
        conditions.append(table.c.occurred_at >= query.since)
    if query.until is not None:
        conditions.append(table.c.occurred_at <= query.until)

    total = await connection.scalar(select(func.count()).select_from(table).where(*conditions))
    rows = (
        await connection.execute(
            select(table)
            .where(*conditions)
            .order_by(table.c.seq.desc())
            .limit(query.page_size)
            .offset((query.page - 1) * query.page_size)
        )
    ).mappings()
    return [_as_json(row) for row in rows], int(total or 0)


def _as_json(row: Any) -> dict[str, Any]:
    entry = dict(row)
    occurred_at = entry["occurred_at"]
    if occurred_at.tzinfo is None:  # SQLite hands back naive datetimes
        occurred_at = occurred_at.replace(tzinfo=UTC)
    entry["occurred_at"] = occurred_at.isoformat()
    return entry
