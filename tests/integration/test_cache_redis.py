"""The read cache on the real Redis at 127.0.0.1:6379, shared by two instances, and what a read
does while Redis is gone. Each test uses its own key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from crud.cache import CachedAnswer, CacheStatus, ReadCache
from crud.cache_redis import RedisStore
from django_integration.exceptions import BackendFailed, BackendTimeout, BackendUnavailable
from service.settings import Settings
from tests.clock import ManualClock as Clock
from tests.loopback import free_port

REDIS_ADDRESS = ("127.0.0.1", 6379)
REDIS_URL = "redis://127.0.0.1:6379/0"
SERVABLE_STALE = (BackendUnavailable, BackendTimeout, BackendFailed)
DEVICES = "inventory.devices"


class Loader:
    def __init__(self, label: str, error: BaseException | None = None) -> None:
        self.label = label
        self.error = error
        self.calls = 0

    async def __call__(self) -> CachedAnswer:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return CachedAnswer(200, {"data": {"by": self.label, "call": self.calls}}, {"ETag": '"3"'})


class Proxy:
    """A TCP relay to Redis on loopback that a test can cut and restore: one instance's outage."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*REDIS_ADDRESS)
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pump(reader, upstream_writer),
            self._pump(upstream_reader, writer),
            return_exceptions=True,
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65_536):
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()
            self._writers.discard(writer)


@pytest.fixture(scope="module")
def redis_url() -> str:
    try:
        socket.create_connection(REDIS_ADDRESS, timeout=1).close()
    except OSError as exc:
        message = f"no Redis on 127.0.0.1:6379 ({exc}); start one to run these tests"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"observer-test:{uuid4().hex}:"
    yield prefix

    client = Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


CacheFactory = Callable[..., ReadCache]


@pytest.fixture
async def caches(redis_url: str, prefix: str, clock: Clock) -> AsyncIterator[CacheFactory]:
    """Builds ReadCaches on Redis through the settings, as the service does, on one clock."""
    made: list[ReadCache] = []

    def make(url: str = redis_url, retry_seconds: float = 0.0) -> ReadCache:
        settings = Settings(
            redis_url=url,
            cache_key_prefix=prefix,
            cache_redis_retry_seconds=retry_seconds,
            cache_redis_timeout=2.0,
        )
        # The outage's retry interval runs on the test's clock too.
        store = RedisStore.from_settings(settings, clock=clock)
        cache = ReadCache(
            store, ttl_seconds=30, stale_seconds=300, stale_on=SERVABLE_STALE, clock=clock
        )
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.close()


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
    await reader.get_or_load("inventory.sites", {"id": "1"}, Loader("before"))

    await writer.invalidate(DEVICES)

    down = Loader("down", BackendUnavailable("refused", retry_after=1))
    for key in ({"id": "1"}, {"page": 1, "page_size": 50}):
        with pytest.raises(BackendUnavailable):
            await reader.get_or_load(DEVICES, key, down)
    assert down.calls == 2
    assert (await reader.get_or_load("inventory.sites", {"id": "1"}, down))[1] is CacheStatus.HIT

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


async def test_an_invalidation_made_during_an_outage_is_sent_when_redis_returns(
    caches: CacheFactory, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = Proxy()
    await proxy.start()
    cut_off = caches(url=f"redis://127.0.0.1:{proxy.port}/0", retry_seconds=5)
    other = caches()
    await other.get_or_load(DEVICES, {"id": "1"}, Loader("before"))
    caplog.set_level(logging.INFO, logger="crud.cache_redis")

    await proxy.stop()
    await cut_off.invalidate(DEVICES)
    during = await cut_off.get_or_load(DEVICES, {"id": "1"}, Loader("during"))
    assert (await other.get_or_load(DEVICES, {"id": "1"}, Loader("other")))[1] is CacheStatus.HIT

    await proxy.start()
    resting = await cut_off.get_or_load(DEVICES, {"id": "1"}, Loader("resting"))
    clock.advance(5)
    back = await cut_off.get_or_load(DEVICES, {"id": "1"}, Loader("back"))
    seen_by_other = await other.get_or_load(DEVICES, {"id": "1"}, Loader("other"))
    await proxy.stop()

    assert (during[0].body["data"]["by"], during[1]) == ("during", CacheStatus.MISS)
    assert (resting[0].body["data"]["by"], resting[1]) == ("resting", CacheStatus.MISS)
    assert (back[0].body["data"]["by"], back[1]) == ("back", CacheStatus.MISS)
    assert (seen_by_other[0].body["data"]["by"], seen_by_other[1]) == ("back", CacheStatus.HIT)
    where = f"Redis cache at 127.0.0.1:{proxy.port}/0"
    logged = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert [(level, message.split(" (")[0]) for level, message in logged] == [
        ("WARNING", f"{where} is unreachable"),
        (
            "WARNING",
            "Could not invalidate inventory.devices in the Redis cache; it is sent when Redis "
            "answers again.",
        ),
        ("INFO", f"{where} answers again."),
    ]
