"""The in-memory read cache: hits, misses, stale answers, TTL per type, single flight,
invalidation and its bound. Time is an injected clock, never a sleep.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from crud.cache import CachedAnswer, CacheStatus, MemoryStore, ReadCache, key_digest
from django_integration.exceptions import (
    BackendFailed,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
)
from service.settings import Settings
from tests.clock import ManualClock as Clock

SERVABLE_STALE = (BackendUnavailable, BackendTimeout, BackendFailed)
DEVICES = "inventory.devices"
CONFIGURATIONS = "core.configurations"


class Loader:
    """Counts its calls; answers a body naming the call, or raises what it is told to."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls = 0
        self.error = error
        self.release: asyncio.Event | None = None

    async def __call__(self) -> CachedAnswer:
        self.calls += 1
        if self.release is not None:
            await self.release.wait()
        if self.error is not None:
            raise self.error
        return CachedAnswer(200, {"data": {"call": self.calls}}, {"ETag": f'"{self.calls}"'})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(max_entries=100, clock=clock)


@pytest.fixture
def cache(store: MemoryStore, clock: Clock) -> ReadCache:
    return ReadCache(
        store,
        ttl_seconds=30,
        ttl_overrides={CONFIGURATIONS: 300, "core.secrets": 0},
        stale_seconds=300,
        stale_on=SERVABLE_STALE,
        clock=clock,
    )


async def test_first_read_misses_and_the_next_hits(cache: ReadCache) -> None:
    load = Loader()

    first = await cache.get_or_load(DEVICES, {"id": "7"}, load)
    second = await cache.get_or_load(DEVICES, {"id": "7"}, load)

    expected = CachedAnswer(200, {"data": {"call": 1}}, {"ETag": '"1"'})
    assert first == (expected, CacheStatus.MISS)
    assert second == (expected, CacheStatus.HIT)
    assert load.calls == 1
    assert cache.counts == {CacheStatus.MISS: 1, CacheStatus.HIT: 1}


async def test_a_caller_changing_its_answer_does_not_change_the_cache(cache: ReadCache) -> None:
    answer, _ = await cache.get_or_load(DEVICES, {"id": "7"}, Loader())
    answer.body["data"]["call"] = 99
    answer.headers.clear()

    again, status = await cache.get_or_load(DEVICES, {"id": "7"}, Loader())

    assert status is CacheStatus.HIT
    assert again == CachedAnswer(200, {"data": {"call": 1}}, {"ETag": '"1"'})


async def test_every_part_of_the_key_and_the_type_name_separate_entries(cache: ReadCache) -> None:
    load = Loader()
    keys = [
        (DEVICES, {"page": 1, "page_size": 50, "include_inactive": False}),
        (DEVICES, {"page": 2, "page_size": 50, "include_inactive": False}),
        (DEVICES, {"page": 1, "page_size": 50, "include_inactive": True}),
        ("inventory.sites", {"page": 1, "page_size": 50, "include_inactive": False}),
    ]
    for entity_type, key in keys:
        await cache.get_or_load(entity_type, key, load)

    reordered = {"include_inactive": False, "page_size": 50, "page": 1}
    answer, status = await cache.get_or_load(DEVICES, reordered, load)

    assert load.calls == 4
    assert (answer.body, status) == ({"data": {"call": 1}}, CacheStatus.HIT)


async def test_each_type_expires_after_its_own_ttl(cache: ReadCache, clock: Clock) -> None:
    await cache.get_or_load(DEVICES, {"id": "1"}, Loader())
    await cache.get_or_load(CONFIGURATIONS, {"id": "1"}, Loader())

    clock.advance(29.9)
    assert (await cache.get_or_load(DEVICES, {"id": "1"}, Loader()))[1] is CacheStatus.HIT

    clock.advance(0.1)
    assert (await cache.get_or_load(DEVICES, {"id": "1"}, Loader()))[1] is CacheStatus.MISS
    assert (await cache.get_or_load(CONFIGURATIONS, {"id": "1"}, Loader()))[1] is CacheStatus.HIT

    clock.advance(270)
    assert (await cache.get_or_load(CONFIGURATIONS, {"id": "1"}, Loader()))[1] is CacheStatus.MISS


async def test_a_ttl_of_zero_disables_caching_for_that_type(
    cache: ReadCache, store: MemoryStore
) -> None:
    load = Loader()

    statuses = [(await cache.get_or_load("core.secrets", {"id": "1"}, load))[1] for _ in range(3)]

    assert statuses == [CacheStatus.MISS] * 3
    assert load.calls == 3
    assert len(store) == 0
    assert cache.ttl_for("core.secrets") == 0
    assert cache.ttl_for(DEVICES) == 30


@pytest.mark.parametrize("error", [exc("down") for exc in SERVABLE_STALE[1:]])
async def test_a_failing_backend_gets_the_stale_answer(
    cache: ReadCache, clock: Clock, error: BaseException
) -> None:
    await cache.get_or_load(DEVICES, {"id": "1"}, Loader())
    clock.advance(31)

    answer, status = await cache.get_or_load(DEVICES, {"id": "1"}, Loader(error))

    assert status is CacheStatus.STALE
    assert answer == CachedAnswer(200, {"data": {"call": 1}}, {"ETag": '"1"'})


async def test_an_unavailable_backend_gets_the_stale_answer(cache: ReadCache, clock: Clock) -> None:
    await cache.get_or_load(DEVICES, {"id": "1"}, Loader())
    clock.advance(31)

    unavailable = Loader(BackendUnavailable("refused", retry_after=1))
    answer, status = await cache.get_or_load(DEVICES, {"id": "1"}, unavailable)

    assert (answer.body, status) == ({"data": {"call": 1}}, CacheStatus.STALE)


async def test_an_error_the_caller_should_see_is_raised_despite_a_stale_entry(
    cache: ReadCache, clock: Clock
) -> None:
    await cache.get_or_load(DEVICES, {"id": "1"}, Loader())
    clock.advance(31)

    with pytest.raises(BackendRejected) as raised:
        await cache.get_or_load(DEVICES, {"id": "1"}, Loader(BackendRejected(404, "gone")))

    assert raised.value.status == 404


async def test_stale_ends_with_its_grace_period(cache: ReadCache, clock: Clock) -> None:
    await cache.get_or_load(DEVICES, {"id": "1"}, Loader())
    clock.advance(330)

    with pytest.raises(BackendTimeout):
        await cache.get_or_load(DEVICES, {"id": "1"}, Loader(BackendTimeout("slow")))


async def test_without_any_entry_the_failure_is_raised(cache: ReadCache) -> None:
    with pytest.raises(BackendFailed):
        await cache.get_or_load(DEVICES, {"id": "1"}, Loader(BackendFailed("500")))


async def test_stale_on_given_to_one_call_replaces_the_default(
    cache: ReadCache, clock: Clock
) -> None:
    await cache.get_or_load(DEVICES, {"id": "1"}, Loader())
    clock.advance(31)

    answer, status = await cache.get_or_load(
        DEVICES, {"id": "1"}, Loader(KeyError("x")), stale_on=(KeyError,)
    )
    assert (answer.body, status) == ({"data": {"call": 1}}, CacheStatus.STALE)

    with pytest.raises(BackendTimeout):
        await cache.get_or_load(DEVICES, {"id": "1"}, Loader(BackendTimeout("slow")), stale_on=())


async def wait_for_calls(load: Loader, calls: int) -> None:
    while load.calls < calls:
        await asyncio.sleep(0)


async def test_fifty_concurrent_misses_cause_one_load(cache: ReadCache) -> None:
    load = Loader()
    load.release = asyncio.Event()

    readers = [
        asyncio.create_task(cache.get_or_load(DEVICES, {"id": "1"}, load)) for _ in range(50)
    ]
    await wait_for_calls(load, 1)
    load.release.set()
    answers = await asyncio.gather(*readers)

    assert load.calls == 1
    expected = (CachedAnswer(200, {"data": {"call": 1}}, {"ETag": '"1"'}), CacheStatus.MISS)
    assert answers == [expected] * 50
    assert await cache.get_or_load(DEVICES, {"id": "1"}, load) == (expected[0], CacheStatus.HIT)


async def test_a_failed_load_reaches_every_waiter_and_is_not_remembered(cache: ReadCache) -> None:
    load = Loader(BackendRejected(404, "no such device"))
    load.release = asyncio.Event()

    readers = [
        asyncio.create_task(cache.get_or_load(DEVICES, {"id": "1"}, load)) for _ in range(50)
    ]
    await wait_for_calls(load, 1)
    load.release.set()
    outcomes = await asyncio.gather(*readers, return_exceptions=True)

    assert load.calls == 1
    assert [type(outcome) for outcome in outcomes] == [BackendRejected] * 50
    assert {id(outcome) for outcome in outcomes} == {id(load.error)}

    load.error = None
    load.release = None
    assert (await cache.get_or_load(DEVICES, {"id": "1"}, load))[1] is CacheStatus.MISS
    assert load.calls == 2


async def test_a_caller_that_goes_away_does_not_cancel_the_shared_load(cache: ReadCache) -> None:
    load = Loader()
    load.release = asyncio.Event()

    leaving = asyncio.create_task(cache.get_or_load(DEVICES, {"id": "1"}, load))
    await wait_for_calls(load, 1)
    staying = asyncio.create_task(cache.get_or_load(DEVICES, {"id": "1"}, load))
    await asyncio.sleep(0)
    leaving.cancel()
    load.release.set()

    answer, status = await staying
    assert leaving.cancelled()
    assert (answer.body, status, load.calls) == ({"data": {"call": 1}}, CacheStatus.MISS, 1)


async def test_invalidate_makes_reads_and_lists_unreachable_even_as_stale(
    cache: ReadCache,
) -> None:
    await cache.get_or_load(DEVICES, {"id": "1"}, Loader())
    await cache.get_or_load(DEVICES, {"page": 1, "page_size": 50}, Loader())
    await cache.get_or_load("inventory.sites", {"id": "1"}, Loader())

    await cache.invalidate(DEVICES)

    down = Loader(BackendUnavailable("refused", retry_after=1))
    for key in ({"id": "1"}, {"page": 1, "page_size": 50}):
        with pytest.raises(BackendUnavailable):
            await cache.get_or_load(DEVICES, key, down)
    assert down.calls == 2
    assert (await cache.get_or_load("inventory.sites", {"id": "1"}, down))[1] is CacheStatus.HIT

    reload = Loader()
    assert (await cache.get_or_load(DEVICES, {"id": "1"}, reload))[1] is CacheStatus.MISS
    assert (await cache.get_or_load(DEVICES, {"id": "1"}, reload))[1] is CacheStatus.HIT


async def test_a_load_overtaken_by_an_invalidation_is_neither_joined_nor_kept(
    cache: ReadCache,
) -> None:
    before_write = Loader()
    before_write.release = asyncio.Event()
    early = asyncio.create_task(cache.get_or_load(DEVICES, {"id": "1"}, before_write))
    await wait_for_calls(before_write, 1)

    await cache.invalidate(DEVICES)
    after_write = Loader()
    after_write.calls = 10  # so its answers tell themselves apart from the early load's
    # Joining the early load would wait for a release that never comes: fail, do not hang.
    async with asyncio.timeout(5):
        late_answer, late_status = await cache.get_or_load(DEVICES, {"id": "1"}, after_write)
    before_write.release.set()
    early_answer, early_status = await early

    assert (early_status, late_status) == (CacheStatus.MISS, CacheStatus.MISS)
    assert (before_write.calls, after_write.calls) == (1, 11)
    assert (early_answer.body, late_answer.body) == ({"data": {"call": 1}}, {"data": {"call": 11}})
    # The late answer is the one kept: the early load belonged to the old generation.
    assert await cache.get_or_load(DEVICES, {"id": "1"}, Loader()) == (
        late_answer,
        CacheStatus.HIT,
    )


async def test_memory_is_bounded_by_max_entries(clock: Clock) -> None:
    store = MemoryStore(max_entries=3, clock=clock)
    cache = ReadCache(store, ttl_seconds=30, clock=clock)
    load = Loader()

    for entity_id in "12345":
        await cache.get_or_load(DEVICES, {"id": entity_id}, load)

    assert len(store) == 3
    assert (await cache.get_or_load(DEVICES, {"id": "5"}, load))[1] is CacheStatus.HIT
    assert (await cache.get_or_load(DEVICES, {"id": "1"}, load))[1] is CacheStatus.MISS
    assert load.calls == 6


async def test_entries_leave_memory_when_their_stale_grace_ends(
    cache: ReadCache, store: MemoryStore, clock: Clock
) -> None:
    await cache.get_or_load(DEVICES, {"id": "1"}, Loader())
    await cache.get_or_load(CONFIGURATIONS, {"id": "1"}, Loader())

    clock.advance(330)

    assert len(store) == 1  # the configuration's TTL is 300, so it stays for 600


def test_from_settings_builds_the_in_memory_cache() -> None:
    settings = Settings(
        cache_ttl_seconds=12,
        cache_ttl_overrides={CONFIGURATIONS: 300, "core.secrets": 0},
        cache_max_entries=5,
    )

    cache = ReadCache.from_settings(settings, stale_on=SERVABLE_STALE)

    assert isinstance(cache.store, MemoryStore)
    assert [cache.ttl_for(name) for name in (DEVICES, CONFIGURATIONS, "core.secrets")] == [
        12,
        300,
        0,
    ]


class Filter(BaseModel):
    field: str
    value: Any


def test_key_digest_is_canonical() -> None:
    digest = key_digest(DEVICES, {"filters": [Filter(field="name", value="a")], "ids": {"2", "1"}})

    same = key_digest(DEVICES, {"ids": {"1", "2"}, "filters": [{"field": "name", "value": "a"}]})

    assert digest == same
    assert len(digest) == 32
    assert key_digest("inventory.sites", {"ids": ["1", "2"]}) != key_digest(
        DEVICES, {"ids": ["1", "2"]}
    )


def test_key_digest_refuses_what_it_cannot_name_stably() -> None:
    with pytest.raises(TypeError, match="cannot make a cache key of object"):
        key_digest(DEVICES, {"caller": object()})
