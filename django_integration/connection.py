"""The middleware's own database: one async SQLAlchemy engine chosen by URL."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

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


class Database:
    def __init__(self, url: str, *, health_timeout: float = 2.0) -> None:
        self.url = async_url(url)
        self.health_timeout = health_timeout
        self.engine: AsyncEngine = create_async_engine(self.url, pool_pre_ping=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def create_tables(self) -> None:
        self._ensure_sqlite_folder()
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    async def health(self) -> dict[str, Any]:
        """`SELECT 1` within the timeout, with the pool's figures."""
        try:
            async with asyncio.timeout(self.health_timeout):
                async with self.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means not ready; say which
            return {"ok": False, "dialect": self.dialect, "error": type(exc).__name__}
        return {"ok": True, "dialect": self.dialect, "pool": self.engine.pool.status()}

    async def dispose(self) -> None:
        await self.engine.dispose()

    def _ensure_sqlite_folder(self) -> None:
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
