"""The audit trail: one row per attempted write, append-only and hash-chained.

Each entry stores `entry_hash = sha256(prev_hash + canonical JSON of its
content)`; the head row holds the newest hash. Altering, deleting or inserting
a row anywhere breaks a link that `verify` finds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Integer, String, Table, select, update
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncConnection

from django_integration.connection import Database, metadata
from service.request_context import MAX_REQUEST_ID_LENGTH

from .audit_query import AuditQuery, page_of_entries

# Microseconds are part of the hashed content: MySQL keeps them only with fsp=6.
Timestamp = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
GENESIS_HASH = "0" * 64
REDACTED = "[redacted]"
_NOT_LETTER_OR_DIGIT = re.compile("[^a-z0-9]")

audit_entries = Table(
    "audit_entries",
    metadata,
    # seq orders entries by insertion; two writes in one clock tick stay ordered.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("occurred_at", Timestamp, nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("operation", String(20), nullable=False),
    Column("entity_type", String(100), nullable=False),
    Column("entity_id", String(100), nullable=True),
    Column("changes", JSON, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("request_id", String(MAX_REQUEST_ID_LENGTH), nullable=True),
    Column("client_address", String(100), nullable=True),
    Column("user_agent", String(300), nullable=True),
    # The chain: each entry's hash covers its content and the previous entry's hash.
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
)

# One row: the newest entry's hash. Updating it in the entry's transaction serialises
# writers across instances, and lets `verify` notice entries cut off the end.
audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

HASHED_FIELDS = (
    "id",
    "occurred_at",
    "actor",
    "operation",
    "entity_type",
    "entity_id",
    "changes",
    "outcome",
    "status_code",
    "request_id",
    "client_address",
    "user_agent",
)


# Each text column's width. PostgreSQL and MySQL refuse a longer value (SQLite keeps it), and
# a refused entry would let its write go through unaudited, so every value is cut to fit first.
TEXT_WIDTHS = {
    column.name: column.type.length
    for column in audit_entries.columns
    if isinstance(column.type, String) and column.type.length
}


class AuditUnavailable(Exception):
    """The audit store cannot be written; no write may go ahead unrecorded."""


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
    user_agent: str | None = None
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def outcome(self) -> str:
        if self.status_code == 504:
            return "unknown"  # the backend may have applied the write after we stopped waiting
        return "success" if self.status_code < 400 else "failure"

    def row(self) -> dict[str, Any]:
        """The entry as it is hashed and stored: each text cut to its column's width."""
        row = asdict(self)
        row["outcome"] = self.outcome
        row["user_agent"] = self.user_agent or None
        for name, width in TEXT_WIDTHS.items():
            value = row.get(name)
            if isinstance(value, str) and len(value) > width:
                row[name] = value[:width]
        return row


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


def redact(value: Any, sensitive: tuple[str, ...]) -> Any:
    """Values under a sensitive-looking key become `[redacted]`, at any depth."""
    if isinstance(value, dict):
        return {
            key: REDACTED if _is_sensitive(key, sensitive) else redact(item, sensitive)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, sensitive) for item in value]
    return value


def name_letters(name: str) -> str:
    """A field name's letters and digits, lower case: `routingKey`, `routing-key` and
    `Routing Key` all read `routingkey`, as the sensitive words are kept."""
    return _NOT_LETTER_OR_DIGIT.sub("", name.lower())


def _is_sensitive(key: str, sensitive: tuple[str, ...]) -> bool:
    normalised = name_letters(key)
    return any(word in normalised for word in sensitive)


def entry_hash(row: dict[str, Any], prev_hash: str) -> str:
    content = {name: row[name] for name in HASHED_FIELDS}
    content["occurred_at"] = _utc(row["occurred_at"]).isoformat(timespec="microseconds")
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


class AuditTrail:
    def __init__(self, database: Database, *, sensitive_fields: tuple[str, ...]) -> None:
        self._database = database
        self._sensitive = tuple(dict.fromkeys(name_letters(word) for word in sensitive_fields))
        self._append_lock = asyncio.Lock()

    async def ensure_writable(self) -> None:
        """Called before a write goes to the backend: refuse it if we could not record it."""
        health = await self._database.health()
        if not health["ok"]:
            raise AuditUnavailable(health.get("error", "database unavailable"))

    async def record(self, entry: AuditEntry) -> None:
        entry.changes = redact(entry.changes, self._sensitive)
        row = entry.row()
        async with self._append_lock, self._database.engine.begin() as connection:
            last_seq, prev_hash = await self._chain_head(connection)
            row["prev_hash"] = prev_hash
            row["entry_hash"] = entry_hash(row, prev_hash)
            result = await connection.execute(audit_entries.insert().values(**row))
            seq = result.inserted_primary_key[0]
            await connection.execute(
                update(audit_chain_head)
                .where(audit_chain_head.c.id == 1)
                .values(last_seq=seq, last_hash=row["entry_hash"])
            )

    async def page(self, query: AuditQuery) -> tuple[list[dict[str, Any]], int]:
        async with self._database.engine.connect() as connection:
            return await page_of_entries(connection, audit_entries, query)

    async def verify(self, chunk: int = 1000) -> dict[str, Any]:
        """Walk the chain from the start; report the first broken link, if any."""
        prev_hash, checked, last_seq = GENESIS_HASH, 0, 0
        async with self._database.engine.connect() as connection:
            while True:
                rows = (
                    (
                        await connection.execute(
                            select(audit_entries)
                            .where(audit_entries.c.seq > last_seq)
                            .order_by(audit_entries.c.seq)
                            .limit(chunk)
                        )
                    )
                    .mappings()
                    .all()
                )
                for row in rows:
                    if broken := _broken_link(row, prev_hash):
                        return {"ok": False, "entries_checked": checked, "first_broken": broken}
                    prev_hash, last_seq, checked = row["entry_hash"], row["seq"], checked + 1
                if len(rows) < chunk:
                    break
            head = (await connection.execute(select(audit_chain_head))).mappings().first()
        if head is not None and (head["last_seq"], head["last_hash"]) != (last_seq, prev_hash):
            broken = {"seq": head["last_seq"], "reason": "entries after this point are missing"}
            return {"ok": False, "entries_checked": checked, "first_broken": broken}
        return {"ok": True, "entries_checked": checked, "first_broken": None}

    async def _chain_head(self, connection: AsyncConnection) -> tuple[int, str]:
        # FOR UPDATE locks the head on PostgreSQL and MySQL; SQLite serialises writers itself.
        query = select(audit_chain_head).where(audit_chain_head.c.id == 1).with_for_update()
        head = (await connection.execute(query)).mappings().first()
        if head is None:
            await connection.execute(
                audit_chain_head.insert().values(id=1, last_seq=0, last_hash=GENESIS_HASH)
            )
            return 0, GENESIS_HASH
        return head["last_seq"], head["last_hash"]


def _broken_link(row: Any, prev_hash: str) -> dict[str, Any] | None:
    if row["prev_hash"] != prev_hash:
        reason = "does not follow the entry before it (one was removed or inserted)"
    elif entry_hash(dict(row), prev_hash) != row["entry_hash"]:
        reason = "content does not match its hash (the entry was altered)"
    else:
        return None
    return {"seq": row["seq"], "id": row["id"], "reason": reason}


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
