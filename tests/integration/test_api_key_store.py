"""API keys in the database and in memory, on SQLite, PostgreSQL and MariaDB: the store, and the
verified-key cache with a clock moved by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from auth.exceptions import CannotVerify, KeyNameTaken, Unauthenticated
from auth.key_cache import VerifiedKeys
from auth.keys import KeyStore, key_id_of
from auth.scopes import Scope
from django_integration.connection import Database, PoolSettings
from tests.clock import ManualClock
from tests.integration.databases import throwaway_database
from tests.middleware_server import free_port

RECHECK = 5.0


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
async def store(request, tmp_path) -> AsyncIterator[KeyStore]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'keys.db'}")
        await database.migrate()
        yield KeyStore(database)
        await database.dispose()
        return
    async with throwaway_database(request.param) as url:
        database = Database(url, pool=PoolSettings(size=2, max_overflow=1))
        try:
            await database.migrate()
            yield KeyStore(database)
        finally:
            await database.dispose()


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


async def test_a_verified_key_is_answered_from_memory_until_it_ages(store: KeyStore) -> None:
    clock = ManualClock()
    keys = VerifiedKeys(store, RECHECK, clock=clock)
    issued = await store.create("agent", [Scope.TELEMETRY_WRITE])

    assert keys.cached(issued.key) is None  # never seen: the database decides
    identity = await keys.verify(issued.key)
    assert (identity.name, identity.scopes) == ("agent", frozenset({Scope.TELEMETRY_WRITE}))
    clock.advance(2 * RECHECK)
    assert keys.cached(issued.key) == identity
    clock.advance(0.001)
    assert keys.cached(issued.key) is None  # unconfirmed too long: read it again


async def test_a_wrong_secret_on_a_known_id_is_refused_without_the_database(store) -> None:
    keys = VerifiedKeys(store, RECHECK, clock=ManualClock())
    issued = await store.create("agent", [Scope.CRUD_READ])
    await keys.verify(issued.key)
    forged = issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")

    with pytest.raises(Unauthenticated) as refused:
        keys.cached(forged)
    assert (refused.value.actor, refused.value.detail) == ("agent", "The API key is not valid.")
    with pytest.raises(Unauthenticated):
        await keys.verify(f"oek_{'0' * 16}_{'x' * 43}")  # an id no row has


async def test_the_recheck_drops_revoked_keys_and_records_their_use(store: KeyStore) -> None:
    clock = ManualClock()
    keys = VerifiedKeys(store, RECHECK, clock=clock)
    kept = await store.create("kept", [Scope.CRUD_READ])
    gone = await store.create("gone", [Scope.CRUD_READ])
    for issued in (kept, gone):
        await keys.verify(issued.key)

    await store.revoke("gone")  # as another instance would, straight in the database
    assert keys.cached(gone.key) is not None  # not seen here before the recheck
    clock.advance(RECHECK)
    await keys.recheck()

    assert keys.cached(kept.key) is not None
    assert keys.cached(gone.key) is None
    with pytest.raises(Unauthenticated, match="revoked"):
        await keys.verify(gone.key)
    rows = await store.find_many([key_id_of(kept.key), key_id_of(gone.key)])
    assert {record.name: record.last_used_at is not None for record in rows.values()} == {
        "kept": True,
        "gone": True,
    }


async def test_a_store_that_cannot_be_read_is_a_503_not_a_401() -> None:
    # A real connection to a port where no database listens.
    database = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/keys")
    keys = VerifiedKeys(KeyStore(database), RECHECK)
    try:
        with pytest.raises(CannotVerify):
            await keys.verify(f"oek_{'0' * 16}_{'x' * 43}")
    finally:
        await database.dispose()
