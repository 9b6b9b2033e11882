"""API keys: their format, their table `api_keys`, and the store that creates, lists and revokes.

A key reads `oek_<id>_<secret>`. The id is not secret: it finds the key among those held. The
secret is 256 random bits, so one SHA-256 of the key is as safe to store as a slow hash would
be (nothing to brute-force) and costs a microsecond to check. The key itself is never stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, String, Table, bindparam, exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from django_integration.connection import Database, metadata

from .exceptions import KeyNameTaken, UnknownKey
from .identity import RESERVED_NAMES, Identity, IdentityKind
from .scopes import Scope, as_text, known_scopes

KEY_PREFIX = "oek"
KEY_FORMAT = re.compile(r"oek_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),  # sha256 of the whole key, hex
    Column("scopes", String(200), nullable=False),  # space-separated, as OAuth 2.0 writes them
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # Written in batches by the key cache's reload, never on the request path.
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True)
class ApiKey:
    """One row of `api_keys`."""

    id: str
    name: str
    key_hash: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def identity(self) -> Identity:
        return Identity(self.name, IdentityKind.KEY, self.scopes)

    def public(self) -> dict[str, Any]:
        """What may be shown: never the key, never its hash."""
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(scope.value for scope in self.scopes),
            "created_at": _iso(self.created_at),
            "revoked_at": _iso(self.revoked_at),
            "last_used_at": _iso(self.last_used_at),
        }


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: the one moment the key itself exists outside its owner's hands."""

    record: ApiKey
    key: str


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id inside a key of ours; None for anything else (a JWT, a foreign token)."""
    match = KEY_FORMAT.fullmatch(key)
    return match.group(1) if match else None


def check_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError("a key name is 1 to 100 letters, digits, '.', '_' or '-'")
    if name in RESERVED_NAMES:
        raise ValueError(f"{name!r} is reserved")
    return name


class KeyStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(self, name: str, scopes: Iterable[Scope]) -> IssuedKey:
        key_id = secrets.token_hex(8)
        key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(
            id=key_id,
            name=check_name(name),
            key_hash=key_hash(key),
            scopes=frozenset(scopes),
            created_at=datetime.now(UTC),
        )
        row = {
            "id": record.id,
            "name": record.name,
            "key_hash": record.key_hash,
            "scopes": as_text(record.scopes),
            "created_at": record.created_at,
        }
        try:
            async with self._database.engine.begin() as connection:
                await connection.execute(api_keys.insert().values(**row))
        except IntegrityError as exc:
            raise KeyNameTaken(name) from exc
        return IssuedKey(record, key)

    async def all(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        async with self._database.engine.connect() as connection:
            rows = await connection.execute(select(api_keys).order_by(api_keys.c.created_at))
            return [_record(row) for row in rows.mappings()]

    async def exists(self) -> bool:
        """Whether any key was ever created, revoked ones included."""
        async with self._database.engine.connect() as connection:
            return bool(await connection.scalar(select(exists().select_from(api_keys))))

    async def revoke(self, name: str) -> tuple[ApiKey, bool]:
        """Revoke by name: the key, and whether this call revoked it (not an earlier one)."""
        async with self._database.engine.begin() as connection:
            result = await connection.execute(
                update(api_keys)
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            row = (
                (await connection.execute(select(api_keys).where(api_keys.c.name == name)))
                .mappings()
                .first()
            )
        if row is None:
            raise UnknownKey(name)
        return _record(row), result.rowcount == 1

    async def touch(self, last_uses: Mapping[str, datetime]) -> None:
        """Write each key's time of last use, unless the row already holds a later one (another
        instance may have written its own uses first)."""
        if not last_uses:
            return
        used_at = bindparam("used_at")
        statement = (
            update(api_keys)
            .where(api_keys.c.id == bindparam("key_id"))
            .where(or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < used_at))
            .values(last_used_at=used_at)
        )
        rows = [{"key_id": key_id, "used_at": when} for key_id, when in last_uses.items()]
        async with self._database.engine.begin() as connection:
            await connection.execute(statement, rows)


def _record(row: Any) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        key_hash=row["key_hash"],
        scopes=known_scopes(row["scopes"].split()),
        created_at=_utc(row["created_at"]),
        revoked_at=_utc(row["revoked_at"]),
        last_used_at=_utc(row["last_used_at"]),
    )


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite and MySQL hand back naive datetimes; they were written in UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
