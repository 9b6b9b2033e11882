"""Throwaway databases on the shared PostgreSQL and MariaDB servers, and their skip rules.

Each test database is created as `observer_test_<random>` and dropped afterwards; nothing
else on the servers is touched. With `CI` set a missing server fails the test; elsewhere
it is skipped with a note on how to run it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from django_integration.connection import Database, PoolSettings

SERVER_URLS = {
    "postgresql": "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
    "mariadb": "mysql+aiomysql://root@127.0.0.1:3306/mysql",
}
HOW_TO_ENABLE = {
    "postgresql": "start PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth)",
    "mariadb": "start MariaDB on 127.0.0.1:3306 (root, empty password)",
}


async def _server_reachable(admin_url: str) -> str | None:
    engine = create_async_engine(admin_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means the server is not there
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()
    return None


async def require_server(kind: str) -> None:
    problem = await _server_reachable(SERVER_URLS[kind])
    if problem is None:
        return
    message = f"{kind} is not reachable ({problem})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run these tests (.ci/run starts the servers)")
    pytest.skip(f"{message}; to run these tests, {HOW_TO_ENABLE[kind]}, or set CI=1 to require")


@asynccontextmanager
async def throwaway_database(kind: str) -> AsyncIterator[str]:
    """A new empty database on the shared server; yields its URL, drops it afterwards."""
    await require_server(kind)
    name = f"observer_test_{secrets.token_hex(6)}"
    admin = create_async_engine(SERVER_URLS[kind], isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f"CREATE DATABASE {name}"))
        yield SERVER_URLS[kind].rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        await admin.dispose()


@asynccontextmanager
async def migrated_database(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    """The middleware's own tables, migrated, on SQLite in `tmp_path` or on a throwaway
    PostgreSQL or MariaDB database; disposed afterwards."""
    if kind == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'middleware.db'}")
        await database.migrate()
        try:
            yield database
        finally:
            await database.dispose()
        return
    async with throwaway_database(kind) as url:
        database = Database(url, pool=PoolSettings(size=2, max_overflow=1))
        try:
            await database.migrate()
            yield database
        finally:
            await database.dispose()
