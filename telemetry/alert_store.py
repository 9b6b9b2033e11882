"""Where alerts and API-managed rules outlive the process: the middleware's own database.

`alerts` holds every alert's latest state; `backend_id` and `backend_state` say what the
backend's `notification.alerts` has heard of it, so a sync interrupted by an outage resumes.
`threshold_rules` holds the rules posted to `/telemetry/rules`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    String,
    Table,
    delete,
    insert,
    or_,
    select,
    update,
)

from django_integration.connection import Database, metadata

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("rule", String(200), nullable=False),
    Column("rule_id", String(80), nullable=False, index=True),
    Column("backend_rule_id", String(36), nullable=True),
    Column("service", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("severity", String(20), nullable=False),
    Column("state", String(20), nullable=False, index=True),  # pending, firing, resolved
    Column("operator", String(3), nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("fired_at", DateTime(timezone=True), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("backend_id", String(36), nullable=True),
    Column("backend_state", String(20), nullable=True),
)

threshold_rules = Table(
    "threshold_rules",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("body", JSON, nullable=False),  # what was posted, as validated
    Column("created_at", DateTime(timezone=True), nullable=False),
)

_TIME_COLUMNS = ("started_at", "fired_at", "resolved_at", "updated_at")
_ROW_COLUMNS = tuple(column.name for column in alerts.columns)


async def save_alerts(database: Database, changes: list[dict[str, Any]]) -> None:
    """Upsert each alert's latest state, in one transaction."""
    if not changes:
        return
    async with database.engine.begin() as connection:
        for change in changes:
            row = _row(change)
            result = await connection.execute(
                update(alerts).where(alerts.c.id == row["id"]).values(**row)
            )
            if result.rowcount == 0:
                await connection.execute(insert(alerts).values(**row))


async def list_alerts(
    database: Database,
    *,
    state: str | None = None,
    service: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Alerts by their start, the latest first."""
    query = select(alerts).order_by(alerts.c.started_at.desc(), alerts.c.id).limit(limit)
    if state is not None:
        query = query.where(alerts.c.state == state)
    if service is not None:
        query = query.where(alerts.c.service == service)
    if since is not None:
        query = query.where(alerts.c.started_at >= since)
    if until is not None:
        query = query.where(alerts.c.started_at <= until)
    async with database.engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [dict(row) for row in rows]


async def unsynced(database: Database, limit: int) -> list[dict[str, Any]]:
    """Fired alerts whose state the backend has not heard yet, oldest first."""
    query = (
        select(alerts)
        .where(alerts.c.fired_at.is_not(None))
        .where(or_(alerts.c.backend_state.is_(None), alerts.c.backend_state != alerts.c.state))
        .order_by(alerts.c.updated_at, alerts.c.id)
        .limit(limit)
    )
    async with database.engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [dict(row) for row in rows]


async def mark_synced(database: Database, alert_id: str, backend_id: str, state: str) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(backend_id=backend_id, backend_state=state)
        )


async def save_rule(database: Database, rule_id: str, body: dict[str, Any]) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(
            insert(threshold_rules).values(id=rule_id, body=body, created_at=datetime.now(UTC))
        )


async def delete_rule(database: Database, rule_id: str) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(delete(threshold_rules).where(threshold_rules.c.id == rule_id))


async def load_rules(database: Database) -> list[tuple[str, dict[str, Any]]]:
    query = select(threshold_rules).order_by(threshold_rules.c.created_at, threshold_rules.c.id)
    async with database.engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [(row["id"], row["body"]) for row in rows]


def _row(change: dict[str, Any]) -> dict[str, Any]:
    row = {column: change.get(column) for column in _ROW_COLUMNS if column in change}
    for column in _TIME_COLUMNS:
        if row.get(column) is not None:
            row[column] = _moment(row[column])
    return row


def _moment(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def iso_moment(moment: datetime) -> str:
    """A stored time as ISO 8601 UTC; SQLite hands back naive datetimes, stored as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
