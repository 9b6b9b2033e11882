"""Alembic's entry point: migrate on a connection the service hands in, or on its own engine.

The table modules are imported so that `metadata` (and so autogenerate) sees every table.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import auth.keys  # noqa: F401 - defines api_keys
import crud.audit  # noqa: F401 - defines audit_entries and audit_chain_head
import crud.idempotency  # noqa: F401 - defines idempotency_keys
import telemetry.alert_store  # noqa: F401 - defines alerts and threshold_rules
from django_integration.connection import Database, metadata
from service.settings import Settings


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or Settings().effective_database_url
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(run_on)
    finally:
        await database.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    run_on(given)
else:
    asyncio.run(run_with_own_engine())
