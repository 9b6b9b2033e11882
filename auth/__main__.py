"""API keys from the command line, on the database the service is configured with.

    python -m auth create --name NAME --scope crud:read [--scope ...]   prints the key, once
    python -m auth list                                                 never a key or a hash
    python -m auth revoke NAME

A key created or revoked here reaches running instances within
OBSERVER_AUTH_KEY_RECHECK_SECONDS.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from crud.audit import AuditTrail
from django_integration.connection import Database
from service.problems import Problem
from service.settings import Settings

from .identity import COMMAND_LINE
from .key_changes import ChangeContext, record_created, record_revoked
from .keys import ApiKey, KeyStore, check_name
from .scopes import Scope

ACTOR = ChangeContext(actor=COMMAND_LINE, user_agent="python -m auth")
COLUMNS = ("name", "id", "scopes", "created_at", "revoked_at", "last_used_at")


def main(argv: list[str]) -> int:
    arguments = _parser().parse_args(argv)
    settings = Settings()
    try:
        return asyncio.run(_run(arguments, settings))
    except Problem as problem:
        sys.stderr.write(f"{problem.detail}\n")
        return 1


async def _run(arguments: argparse.Namespace, settings: Settings) -> int:
    database = Database.from_settings(settings)
    try:
        if settings.database_migrate_on_start:
            await database.migrate()
        store = KeyStore(database)
        audit = AuditTrail(database, sensitive_fields=settings.sensitive_field_words)
        if arguments.command == "create":
            return await _create(store, audit, arguments.name, arguments.scope)
        if arguments.command == "revoke":
            return await _revoke(store, audit, arguments.name, settings)
        _print_table(await store.all())
        return 0
    finally:
        await database.dispose()


async def _create(store: KeyStore, audit: AuditTrail, name: str, scopes: list[str]) -> int:
    issued = await store.create(name, [Scope(scope) for scope in scopes])
    await record_created(audit, issued.record, ACTOR)
    sys.stdout.write(f"{issued.key}\n")  # alone on stdout, so a script can capture it
    sys.stderr.write(
        f"Created key {name!r} ({', '.join(sorted(scopes))}). It is shown only this once.\n"
    )
    return 0


async def _revoke(store: KeyStore, audit: AuditTrail, name: str, settings: Settings) -> int:
    record, revoked_now = await store.revoke(name)
    await record_revoked(audit, record, revoked_now, ACTOR)
    when = "now" if revoked_now else "already"
    sys.stdout.write(
        f"Revoked {name!r} ({when}); running instances refuse it within "
        f"{settings.auth_key_recheck_seconds:g} s.\n"
    )
    return 0


def _print_table(records: list[ApiKey]) -> None:
    rows = [COLUMNS] + [
        tuple(str(value if value is not None else "-") for value in _cells(record))
        for record in records
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")


def _cells(record: ApiKey) -> tuple[object, ...]:
    public = record.public()
    return (
        public["name"],
        public["id"],
        ",".join(public["scopes"]),
        public["created_at"],
        public["revoked_at"],
        public["last_used_at"],
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m auth", description="Manage API keys.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it, once")
    create.add_argument("--name", required=True, type=_name)
    create.add_argument(
        "--scope",
        required=True,
        action="append",
        choices=[scope.value for scope in Scope],
        help="repeat for several; admin implies all",
    )
    commands.add_parser("list", help="list the keys (never a key or its hash)")
    revoke = commands.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    return parser


def _name(text: str) -> str:
    try:
        return check_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
