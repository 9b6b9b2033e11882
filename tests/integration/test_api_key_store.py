"""API keys in the database and in memory, on SQLite, PostgreSQL and MariaDB: the store, and the
cache that holds every key, with a clock moved by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from auth.exceptions import CannotVerify, KeyNameTaken, Unauthenticated
from auth.key_cache import KeyCache
from auth.keys import ApiKey, KeyStore
from auth.scopes import Scope
from django_integration.connection import Database
from tests.clock import ManualClock
from tests.integration.databases import migrated_database
from tests.middleware_server import free_port

RECHECK = 5.0


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
async def store(request, tmp_path) -> AsyncIterator[KeyStore]:
    async with migrated_database(request.param, tmp_path) as database:
        yield KeyStore(database)


async def test_the_store_creates_lists_and_revokes(store: KeyStore) -> None:
    assert await store.exists() is False
    issued = await store.create("agent", [Scope.TELEMETRY_WRITE, Scope.TELEMETRY_READ])
    with pytest.raises(KeyNameTaken):
        await store.create("agent", [Scope.CRUD_READ])

    first, revoked_now = await store.revoke("agent")
    again, revoked_again = await store.revoke("agent")
    [listed] = await store.all()

    assert await store.exists() is True
    assert (revoked_now, revoked_again) == (True, False)
    assert again == first == listed
    assert listed.scopes == frozenset({Scope.TELEMETRY_WRITE, Scope.TELEMETRY_READ})
    assert listed.revoked_at is not None and listed.revoked_at.tzinfo is not None
    assert listed.created_at <= listed.revoked_at
    assert listed.key_hash == issued.record.key_hash


@contextmanager
def statements_run(store: KeyStore) -> Iterator[list[str]]:
    """The SQL statements the store's engine runs inside the block."""
    engine = store._database.engine.sync_engine
    seen: list[str] = []

    def record(_connection, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_any_key_is_checked_from_memory_without_a_database_read(store: KeyStore) -> None:
    issued = await store.create("agent", [Scope.TELEMETRY_WRITE])
    keys = KeyCache(store, RECHECK, clock=ManualClock())
    await keys.load()

    with statements_run(store) as statements:
        identity = keys.verify(issued.key)  # never used before
        with pytest.raises(Unauthenticated, match="^The API key is not valid.$"):
            keys.verify(f"oek_{'0' * 16}_{'x' * 43}")  # an id no row has

    assert (identity.name, identity.scopes) == ("agent", frozenset({Scope.TELEMETRY_WRITE}))
    assert statements == []


async def test_a_wrong_secret_on_a_known_id_is_refused_naming_the_key(store: KeyStore) -> None:
    issued = await store.create("agent", [Scope.CRUD_READ])
    keys = KeyCache(store, RECHECK, clock=ManualClock())
    await keys.load()
    forged = issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")

    with pytest.raises(Unauthenticated) as refused:
        keys.verify(forged)
    assert (refused.value.actor, refused.value.detail) == ("agent", "The API key is not valid.")


async def test_changes_elsewhere_arrive_with_the_next_load(store: KeyStore) -> None:
    keys = KeyCache(store, RECHECK, clock=ManualClock())
    gone = await store.create("gone", [Scope.CRUD_READ])
    await keys.load()
    keys.verify(gone.key)

    # As another instance or the command line would: straight in the database.
    await store.revoke("gone")
    added = await store.create("added", [Scope.CRUD_READ])
    assert keys.verify(gone.key).name == "gone"
    with pytest.raises(Unauthenticated, match="not valid"):
        keys.verify(added.key)
    await keys.load()

    with pytest.raises(Unauthenticated, match="^The API key was revoked.$") as refused:
        keys.verify(gone.key)
    assert refused.value.actor == "gone"
    assert keys.verify(added.key).name == "added"
    last_used = {record.name: record.last_used_at is not None for record in await store.all()}
    assert last_used == {"gone": True, "added": False}  # written by the load, for used keys


# Whole seconds: MariaDB's DATETIME keeps no fraction.
USED_AT = 1_796_000_000.0


def moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def test_each_key_is_written_with_the_time_of_its_own_last_use(store: KeyStore) -> None:
    early = await store.create("early", [Scope.CRUD_READ])
    busy = await store.create("busy", [Scope.CRUD_READ])
    wall_clock = ManualClock(USED_AT)
    keys = KeyCache(store, RECHECK, clock=ManualClock(), wall_clock=wall_clock)
    await keys.load()

    keys.verify(early.key)
    wall_clock.advance(30)
    keys.verify(busy.key)
    wall_clock.advance(30)
    keys.verify(busy.key)
    wall_clock.advance(240)  # the round comes later still: its own time is no key's last use
    await keys.load()

    last_used = {record.name: record.last_used_at for record in await store.all()}
    assert last_used == {"early": moment(USED_AT), "busy": moment(USED_AT + 60)}


async def test_an_older_use_does_not_overwrite_a_later_one_from_another_instance(
    store: KeyStore,
) -> None:
    issued = await store.create("shared", [Scope.CRUD_READ])
    here = KeyCache(store, RECHECK, clock=ManualClock(), wall_clock=ManualClock(USED_AT))
    elsewhere = KeyCache(store, RECHECK, clock=ManualClock(), wall_clock=ManualClock(USED_AT + 5))
    await here.load()
    await elsewhere.load()

    here.verify(issued.key)
    elsewhere.verify(issued.key)
    await elsewhere.load()
    await here.load()

    [record] = await store.all()
    assert record.last_used_at == moment(USED_AT + 5)


async def test_a_change_through_this_instance_takes_effect_at_once(store: KeyStore) -> None:
    keys = KeyCache(store, RECHECK, clock=ManualClock())
    await keys.load()

    issued = await store.create("fresh", [Scope.CRUD_READ])
    keys.remember(issued.record)
    assert keys.verify(issued.key).name == "fresh"

    revoked, _ = await store.revoke("fresh")
    keys.remember(revoked)
    with pytest.raises(Unauthenticated, match="revoked"):
        keys.verify(issued.key)


class PausedStore(KeyStore):
    """The real store, whose reads of every key wait, after the query, for the test to go on:
    the only way to put a revoke between a load's query and its end on every run."""

    def __init__(self, store: KeyStore) -> None:
        super().__init__(store._database)
        self.read = asyncio.Event()
        self.go_on = asyncio.Event()

    async def all(self) -> list[ApiKey]:
        records = await super().all()
        self.read.set()
        await self.go_on.wait()
        return records


async def test_a_load_racing_a_change_here_does_not_undo_it(store: KeyStore) -> None:
    revoked_here = await store.create("revoked-here", [Scope.CRUD_READ])
    paused = PausedStore(store)
    keys = KeyCache(paused, RECHECK, clock=ManualClock())
    paused.go_on.set()
    await keys.load()
    paused.go_on.clear()
    paused.read.clear()

    loading = asyncio.create_task(keys.load())
    await paused.read.wait()  # the query has read both keys as they were
    record, _ = await store.revoke("revoked-here")
    keys.remember(record)
    created_here = await store.create("created-here", [Scope.CRUD_READ])
    keys.remember(created_here.record)
    paused.go_on.set()
    await loading

    with pytest.raises(Unauthenticated, match="revoked"):
        keys.verify(revoked_here.key)
    assert keys.verify(created_here.key).name == "created-here"


async def test_keys_not_reloaded_for_twice_the_recheck_answer_503(store: KeyStore) -> None:
    clock = ManualClock()
    issued = await store.create("agent", [Scope.CRUD_READ])
    keys = KeyCache(store, RECHECK, clock=clock)
    await keys.load()

    clock.advance(2 * RECHECK)
    assert keys.verify(issued.key).name == "agent"
    clock.advance(0.001)
    with pytest.raises(CannotVerify):
        keys.verify(issued.key)
    await keys.load()
    assert keys.verify(issued.key).name == "agent"


async def test_a_store_that_cannot_be_read_is_a_503_not_a_401() -> None:
    # A real connection to a port where no database listens.
    database = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/keys")
    keys = KeyCache(KeyStore(database), RECHECK)
    try:
        with pytest.raises(OSError):
            await keys.load()
        with pytest.raises(CannotVerify):
            keys.verify(f"oek_{'0' * 16}_{'x' * 43}")
    finally:
        await database.dispose()
