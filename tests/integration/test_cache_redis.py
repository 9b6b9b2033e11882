"""The read cache on the real Redis at 127.0.0.1:6379, shared by two instances, and a read
while Redis is gone. Each test uses its own key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import logging

import pytest
from redis.asyncio import Redis

from crud.cache import CachedAnswer, CacheStatus, ReadCache
from crud.cache_redis import RedisStore
from django_integration.exceptions import BackendTimeout, BackendUnavailable
from service.settings import Settings
from tests.clock import ManualClock as Clock
from tests.integration.redis_cache import DEVICES, SERVABLE_STALE, SITES, CacheFactory, Loader
from tests.loopback import free_port


async def test_two_instances_share_one_answer(caches: CacheFactory) -> None:
    first, second = caches(), caches()
    first_load, second_load = Loader("first"), Loader("second")

    loaded = await first.get_or_load(DEVICES, {"id": "1"}, first_load)
    shared = await second.get_or_load(DEVICES, {"id": "1"}, second_load)

    expected = CachedAnswer(200, {"data": {"by": "first", "call": 1}}, {"ETag": '"3"'})
    assert loaded == (expected, CacheStatus.MISS)
    assert shared == (expected, CacheStatus.HIT)
    assert (first_load.calls, second_load.calls) == (1, 0)


async def test_an_invalidation_by_one_instance_reaches_the_other_and_strands_stale(
    caches: CacheFactory, clock: Clock
) -> None:
    writer, reader = caches(), caches()
    await reader.get_or_load(DEVICES, {"id": "1"}, Loader("before"))
    await reader.get_or_load(DEVICES, {"page": 1, "page_size": 50}, Loader("before"))
    await reader.get_or_load(SITES, {"id": "1"}, Loader("before"))

    await writer.invalidate(DEVICES)

    down = Loader("down", BackendUnavailable("refused", retry_after=1))
    for key in ({"id": "1"}, {"page": 1, "page_size": 50}):
        with pytest.raises(BackendUnavailable):
            await reader.get_or_load(DEVICES, key, down)
    assert down.calls == 2
    assert (await reader.get_or_load(SITES, {"id": "1"}, down))[1] is CacheStatus.HIT

    answer, status = await reader.get_or_load(DEVICES, {"id": "1"}, Loader("after"))
    assert (answer.body, status) == ({"data": {"by": "after", "call": 1}}, CacheStatus.MISS)
    assert (await writer.get_or_load(DEVICES, {"id": "1"}, down))[0] == answer


async def test_a_stale_answer_comes_from_redis_when_the_backend_fails(
    caches: CacheFactory, clock: Clock
) -> None:
    first, second = caches(), caches()
    await first.get_or_load(DEVICES, {"id": "1"}, Loader("first"))
    clock.advance(31)

    answer, status = await second.get_or_load(
        DEVICES, {"id": "1"}, Loader("second", BackendTimeout("slow"))
    )

    assert (answer.body, status) == ({"data": {"by": "first", "call": 1}}, CacheStatus.STALE)


async def test_redis_expires_an_entry_after_ttl_and_stale_grace(
    caches: CacheFactory, prefix: str, redis_url: str
) -> None:
    await caches().get_or_load(DEVICES, {"id": "1"}, Loader("first"))

    client = Redis.from_url(redis_url)
    entries = [key async for key in client.scan_iter(match=f"{prefix}{{{DEVICES}}}:*")]
    lifetimes = {key.decode().rsplit(":", 1)[1]: await client.pttl(key) for key in entries}
    await client.aclose()

    assert len(lifetimes) == 2
    assert lifetimes.pop("gen") == -1  # the generation never expires
    [entry_lifetime] = lifetimes.values()
    assert 320_000 < entry_lifetime <= 330_000


async def test_from_settings_puts_the_cache_in_redis(redis_url: str, prefix: str) -> None:
    settings = Settings(redis_url=redis_url, cache_key_prefix=prefix, cache_ttl_seconds=30)
    cache = ReadCache.from_settings(settings, stale_on=SERVABLE_STALE)
    load = Loader("settings")

    statuses = [(await cache.get_or_load(DEVICES, {"id": "9"}, load))[1] for _ in range(2)]
    await cache.close()
    await cache.close()

    assert isinstance(cache.store, RedisStore)
    assert statuses == [CacheStatus.MISS, CacheStatus.HIT]
    assert load.calls == 1


async def test_a_redis_that_is_gone_sends_every_read_to_load(
    caches: CacheFactory, caplog: pytest.LogCaptureFixture
) -> None:
    cache = caches(url=f"redis://127.0.0.1:{free_port()}/0")
    load = Loader("backend")
    caplog.set_level(logging.WARNING, logger="crud.cache_redis")

    answers = [await cache.get_or_load(DEVICES, {"id": "1"}, load) for _ in range(3)]
    await cache.invalidate(DEVICES)

    assert [status for _, status in answers] == [CacheStatus.MISS] * 3
    assert [answer.body["data"]["call"] for answer, _ in answers] == [1, 2, 3]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("is unreachable" in message for message in messages) == 1
    assert messages[-1] == (
        "Could not invalidate inventory.devices in the Redis cache; it is sent when Redis "
        "answers again."
    )
