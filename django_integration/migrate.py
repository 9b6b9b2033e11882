"""Run the Alembic migrations: at start-up from the lifespan, or by hand.

    python -m django_integration.migrate            # upgrade to head
    python -m django_integration.migrate current    # print the database's revision

Both read the database URL from the service's settings (`OBSERVER_DATABASE_URL`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)
# Alembic announces each of its plugins at INFO on every run; the upgrade lines are enough.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["connection"] = connection
    return config


async def upgrade_to_head(engine: AsyncEngine) -> str | None:
    """Upgrade on one transaction of `engine`; answers the revision now in force."""

    def upgrade(connection: Connection) -> str | None:
        command.upgrade(alembic_config(connection), "head")
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.begin() as connection:
        revision = await connection.run_sync(upgrade)
    logger.info("database schema at revision %s", revision)
    return revision


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def _run(action: str) -> str | None:
    from service.settings import Settings

    from .connection import Database

    database = Database.from_settings(Settings())
    try:
        if action == "current":
            return await current_revision(database.engine)
        return await database.migrate()
    finally:
        await database.dispose()


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "upgrade"
    if action not in ("upgrade", "current"):
        sys.stderr.write("usage: python -m django_integration.migrate [upgrade|current]\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    revision = asyncio.run(_run(action))
    sys.stdout.write(f"{revision or 'empty'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
