"""The middleware's own database: one async SQLAlchemy engine chosen by URL.

PostgreSQL runs on asyncpg, MySQL and MariaDB on aiomysql, SQLite on aiosqlite.
The tables are defined on `metadata` by their owners and created by the Alembic
migrations in `migrations/` (see django_integration/migrate.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import QueuePool

from service.settings import Settings

logger = logging.getLogger(__name__)

metadata = MetaData()

# Plain URLs name a database, not a driver; these are the async drivers we ship.
ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mysql+aiomysql",
}


def async_url(url: str) -> str:
    parsed = make_url(url)
    driver = ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None and "+" not in parsed.drivername:
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")
    return parsed.set(drivername=driver).render_as_string(hide_password=False) if driver else url


@dataclass(frozen=True)
class PoolSettings:
    size: int = 5
    max_overflow: int = 10
    timeout: float = 5.0
    recycle: float = 1800.0
    pre_ping: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> PoolSettings:
        return cls(
            size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            timeout=settings.database_pool_timeout,
            recycle=settings.database_pool_recycle,
            pre_ping=settings.database_pool_pre_ping,
        )


class Database:
    def __init__(
        self, url: str, *, health_timeout: float = 2.0, pool: PoolSettings | None = None
    ) -> None:
        self.url = async_url(url)
        self.health_timeout = health_timeout
        self.pool_settings = pool or PoolSettings()
        self._ensure_sqlite_folder()
        self.engine: AsyncEngine = create_async_engine(self.url, **self._engine_options())
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        if make_url(self.url).get_backend_name() == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _tune_sqlite)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.effective_database_url,
            health_timeout=settings.database_health_timeout,
            pool=PoolSettings.from_settings(settings),
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> str | None:
        """Bring the schema to the newest Alembic revision; answers that revision."""
        from .migrate import upgrade_to_head  # alembic loads only when migrating

        return await upgrade_to_head(self.engine)

    async def health(self) -> dict[str, Any]:
        """`SELECT 1` within the timeout, with the pool's figures."""
        try:
            async with asyncio.timeout(self.health_timeout):
                async with self.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means not ready; say which
            return {
                "ok": False,
                "dialect": self.dialect,
                "error": type(exc).__name__,
                "pool": self.pool_figures(),
            }
        return {"ok": True, "dialect": self.dialect, "pool": self.pool_figures()}

    def pool_figures(self) -> dict[str, int]:
        """Connections in use, idle, beyond the pool size, and callers waiting for one."""
        pool = self.engine.pool
        if not isinstance(pool, QueuePool):
            return {"size": 0, "in_use": 0, "idle": 0, "overflow": 0, "waiting": 0}
        return {
            "size": pool.size(),
            "in_use": pool.checkedout(),
            "idle": pool.checkedin(),
            "overflow": max(0, pool.overflow()),
            "waiting": _waiting_for_connection(pool),
        }

    async def dispose(self) -> None:
        await self.engine.dispose()

    def _engine_options(self) -> dict[str, Any]:
        pool = self.pool_settings
        options: dict[str, Any] = {"pool_pre_ping": pool.pre_ping}
        if _is_memory_sqlite(self.url):
            return options  # one shared connection: the pool figures do not apply
        options.update(
            pool_size=pool.size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.timeout,
            pool_recycle=pool.recycle,
        )
        return options

    def _ensure_sqlite_folder(self) -> None:
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite" and not _is_memory_sqlite(self.url):
            Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(connection: Any, _record: Any) -> None:
    # WAL lets readers work beside the one writer, and busy_timeout makes a second writer
    # wait instead of failing with "database is locked" (seen under concurrent writes).
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _is_memory_sqlite(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _waiting_for_connection(pool: QueuePool) -> int:
    # SQLAlchemy keeps no count of waiters; the async pool's queue knows its blocked getters.
    # Read defensively: the attribute names are SQLAlchemy's internals, not its API.
    # `_queue` is created lazily: look in the instance so that reading never creates it.
    queue = getattr(getattr(pool, "_pool", None), "__dict__", {}).get("_queue")
    getters = getattr(queue, "_getters", None)
    return sum(1 for waiter in getters if not waiter.done()) if getters else 0
