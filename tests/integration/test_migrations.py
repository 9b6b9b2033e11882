"""The same Alembic migrations on SQLite, PostgreSQL and MariaDB, and the database's health."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import auth.keys  # noqa: F401 - the tables are defined where they are used
import crud.audit  # noqa: F401
import crud.idempotency  # noqa: F401
import telemetry.alert_store  # noqa: F401
from django_integration import migrate
from django_integration.connection import Database, PoolSettings, metadata
from tests.integration.databases import throwaway_database
from tests.middleware_server import REPO_ROOT

HEAD = "0002"


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
async def database(request, tmp_path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'middleware.db'}")
        yield db
        await db.dispose()
        return
    async with throwaway_database(request.param) as url:
        db = Database(url, pool=PoolSettings(size=2, max_overflow=1))
        try:
            yield db
        finally:
            await db.dispose()


async def test_upgrade_creates_every_table_at_head(database: Database) -> None:
    assert await database.migrate() == HEAD

    async with database.engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert tables == {"alembic_version", *metadata.tables}
    assert {"alerts", "api_keys", "audit_chain_head", "audit_entries", "idempotency_keys"} <= tables
    assert await migrate.current_revision(database.engine) == HEAD


async def test_migrated_schema_matches_the_table_definitions(database: Database) -> None:
    await database.migrate()

    def differences(sync) -> list:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_upgrade_twice_changes_nothing(database: Database) -> None:
    await database.migrate()
    async with database.engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (1, 0, 'x')")
        )
    assert await database.migrate() == HEAD
    async with database.engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM audit_chain_head")) == 1


async def test_health_answers_select_1_with_pool_figures(database: Database) -> None:
    health = await database.health()
    assert health["ok"] is True
    assert health["dialect"] == {"sqlite": "sqlite"}.get(database.dialect, database.dialect)
    assert set(health["pool"]) == {"size", "in_use", "idle", "overflow", "waiting"}
    assert health["pool"]["in_use"] == 0


async def test_pool_counts_connections_in_use_and_waiting(tmp_path) -> None:
    database = Database(
        f"sqlite:///{tmp_path / 'pool.db'}", pool=PoolSettings(size=1, max_overflow=0)
    )
    try:
        async with database.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            assert database.pool_figures()["in_use"] == 1
            waiter = _start_waiting(database)
            await _until(lambda: database.pool_figures()["waiting"] == 1)
        await waiter
        assert database.pool_figures() | {"idle": 0} == {
            "size": 1, "in_use": 0, "idle": 0, "overflow": 0, "waiting": 0,
        }  # fmt: skip
    finally:
        await database.dispose()


def test_migrate_command_upgrades_the_configured_database(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"OBSERVER_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "django_integration.migrate"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, f"{HEAD}\n")
    current = subprocess.run(
        [sys.executable, "-m", "django_integration.migrate", "current"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert current.stdout == f"{HEAD}\n"


def _start_waiting(database: Database):
    import asyncio

    async def wait_for_connection() -> None:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return asyncio.create_task(wait_for_connection())


async def _until(condition, timeout: float = 5.0) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
