"""Idempotency keys: a retried POST with the same key returns the first answer.

The first call claims the key by inserting its row (the primary key makes the
claim atomic across instances), then stores its answer. A retry with the same
key and body gets that answer back without a second write; the same key with
another body is a 422; a retry while the first is still running is a 409.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Integer, String, Table, delete, select, update
from sqlalchemy.exc import IntegrityError

from django_integration.connection import Database, metadata
from service.problems import Problem

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(200), primary_key=True),
    # sha256 of method, path and body: the same key with another body is refused.
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),  # null while the first call is in flight
    Column("response_body", JSON, nullable=True),
    Column("response_headers", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: Any
    headers: dict[str, str]


def request_fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def checked_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Problem(
            422,
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
            errors=[{"field": "Idempotency-Key", "message": "invalid"}],
        )
    return key


class IdempotencyStore:
    def __init__(self, database: Database, *, ttl_seconds: float) -> None:
        self._database = database
        self._ttl = timedelta(seconds=ttl_seconds)

    async def claim(self, key: str, fingerprint: str) -> StoredAnswer | None:
        """None: the caller goes ahead and must `complete` or `release`; else the first answer."""
        now = datetime.now(UTC)
        async with self._database.engine.begin() as connection:
            await connection.execute(
                delete(idempotency_keys).where(idempotency_keys.c.expires_at < now)
            )
        try:
            async with self._database.engine.begin() as connection:
                await connection.execute(
                    idempotency_keys.insert().values(
                        key=key,
                        request_hash=fingerprint,
                        created_at=now,
                        expires_at=now + self._ttl,
                    )
                )
            return None
        except IntegrityError:
            return await self._existing(key, fingerprint)

    async def complete(self, key: str, answer: StoredAnswer) -> None:
        async with self._database.engine.begin() as connection:
            await connection.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.key == key)
                .values(
                    status_code=answer.status,
                    response_body=answer.body,
                    response_headers=answer.headers,
                )
            )

    async def release(self, key: str) -> None:
        """Forget a claim whose call failed without a definite answer, so a retry may run."""
        async with self._database.engine.begin() as connection:
            await connection.execute(delete(idempotency_keys).where(idempotency_keys.c.key == key))

    async def _existing(self, key: str, fingerprint: str) -> StoredAnswer:
        async with self._database.engine.connect() as connection:
            row = (
                (
                    await connection.execute(
                        select(idempotency_keys).where(idempotency_keys.c.key == key)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:  # expired and purged between our insert and this read
            raise Problem(409, "The idempotency key changed state; retry the request.")
        if row["request_hash"] != fingerprint:
            raise Problem(
                422,
                "This Idempotency-Key was used with a different request.",
                errors=[
                    {"field": "Idempotency-Key", "message": "reused for another request or caller"}
                ],
            )
        if row["status_code"] is None:
            raise Problem(
                409,
                "A request with this Idempotency-Key is still in progress.",
                headers={"Retry-After": "1"},
            )
        return StoredAnswer(row["status_code"], row["response_body"], row["response_headers"] or {})
