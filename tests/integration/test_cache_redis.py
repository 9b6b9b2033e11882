"""The read cache on the real Redis at 127.0.0.1:6379, shared by two instances, and what a read
does while Redis is gone. Each test uses its own key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from crud.cache import CachedAnswer, CacheStatus, ReadCache
from crud.cache_redis import RESEND_MAX_PAUSE, RedisStore, Sleep
from django_integration.exceptions import BackendFailed, BackendTimeout, BackendUnavailable
from service.settings import Settings
from tests.clock import ManualClock as Clock
from tests.loopback import free_port

REDIS_ADDRESS = ("127.0.0.1", 6379)
REDIS_URL = "redis://127.0.0.1:6379/0"
SERVABLE_STALE = (BackendUnavailable, BackendTimeout, BackendFailed)
DEVICES = "inventory.devices"
SITES = "inventory.sites"


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


class Backend:
    """One entity whose version a test changes, as a write through the API would."""

    def __init__(self) -> None:
        self.version = 1
        self.calls = 0

    async def read(self) -> CachedAnswer:
        self.calls += 1
        return self.answer(self.version)

    @staticmethod
    def answer(version: int) -> CachedAnswer:
        return CachedAnswer(
            200, {"data": {"id": "7", "version": version}}, {"ETag": f'"{version}"'}
        )


class Pauses:
    """Stands in for the resender's `asyncio.sleep`: records each pause asked for, and ends it
    only when the test releases it, so the backoff is checked without waiting.
    """

    def __init__(self) -> None:
        self.asked: asyncio.Queue[float] = asyncio.Queue()
        self._released = asyncio.Semaphore(0)

    async def __call__(self, seconds: float) -> None:
        self.asked.put_nowait(seconds)
        await self._released.acquire()

    async def next(self) -> float:
        return await asyncio.wait_for(self.asked.get(), timeout=5)

    def release(self) -> None:
        self._released.release()


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

    def make(
        url: str = redis_url, retry_seconds: float = 0.0, sleep: Sleep = asyncio.sleep
    ) -> ReadCache:
        settings = Settings(
            redis_url=url,
            cache_key_prefix=prefix,
            cache_redis_retry_seconds=retry_seconds,
            cache_redis_timeout=2.0,
        )
        # The outage's retry interval runs on the test's clock too.
        store = RedisStore.from_settings(settings, clock=clock, sleep=sleep)
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


async def test_an_invalidation_made_during_an_outage_is_sent_when_redis_returns(
    caches: CacheFactory, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = Proxy()
    await proxy.start()
    # The resender never wakes here: this test is about what the instance's own reads send.
    cut_off = caches(url=f"redis://127.0.0.1:{proxy.port}/0", retry_seconds=5, sleep=Pauses())
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


ONE = {"id": "7"}


async def read_until_version(cache: ReadCache, backend: Backend, version: int) -> list:
    """Every answer `cache` gives for ONE until one has `version`; fails after 5 seconds."""
    seen = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        seen.append(await cache.get_or_load(DEVICES, ONE, backend.read))
        if seen[-1][0].body["data"]["version"] == version:
            return seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"version {version} never came: {seen[-1]}")


async def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "condition not met within 5 seconds"
        await asyncio.sleep(0.01)


async def test_an_instance_that_read_during_an_outage_never_goes_back_in_time(
    caches: CacheFactory,
) -> None:
    # Both reach Redis through one proxy. The resenders stay asleep: B must not depend on A.
    proxy = Proxy()
    await proxy.start()
    through_proxy = f"redis://127.0.0.1:{proxy.port}/0"
    a, b = caches(url=through_proxy, sleep=Pauses()), caches(url=through_proxy, sleep=Pauses())
    backend = Backend()
    before = [await cache.get_or_load(DEVICES, ONE, backend.read) for cache in (a, b)]

    await proxy.stop()
    backend.version = 2  # a PATCH through A: the backend has it, Redis cannot be told
    await a.invalidate(DEVICES)
    during = await b.get_or_load(DEVICES, ONE, backend.read)

    await proxy.start()
    after = [await b.get_or_load(DEVICES, ONE, backend.read) for _ in range(4)]
    await proxy.stop()

    first, second = Backend.answer(1), Backend.answer(2)
    assert before == [(first, CacheStatus.MISS), (first, CacheStatus.HIT)]
    assert during == (second, CacheStatus.MISS)
    assert after == [(second, CacheStatus.MISS)] + [(second, CacheStatus.HIT)] * 3
    assert backend.calls == 3
    assert a.store.resending  # A's own invalidation is still waiting to be sent


async def test_an_unsent_invalidation_reaches_the_others_without_a_request(
    caches: CacheFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Only the writer is cut off; the reader reads nothing during the outage, so it owes nothing.
    proxy = Proxy()
    await proxy.start()
    writer, reader = caches(url=f"redis://127.0.0.1:{proxy.port}/0"), caches()
    backend = Backend()
    await writer.get_or_load(DEVICES, ONE, backend.read)
    caplog.set_level(logging.INFO, logger="crud.cache_redis")

    await proxy.stop()
    backend.version = 2
    await writer.invalidate(DEVICES)
    during = await reader.get_or_load(DEVICES, ONE, backend.read)

    await proxy.start()
    returned_at = time.monotonic()
    seen = await read_until_version(reader, backend, 2)
    waited = time.monotonic() - returned_at
    await proxy.stop()

    first, second = Backend.answer(1), Backend.answer(2)
    assert during == (first, CacheStatus.HIT)
    assert seen[-1] == (second, CacheStatus.MISS)
    assert all(answer == (first, CacheStatus.HIT) for answer in seen[:-1])
    assert waited < RESEND_MAX_PAUSE
    assert (backend.calls, writer.store.resending) == (2, False)
    where = f"Redis cache at 127.0.0.1:{proxy.port}/0"
    logged = [(record.levelname, record.getMessage().split(" (")[0]) for record in caplog.records]
    assert logged == [
        ("WARNING", f"{where} is unreachable"),
        (
            "WARNING",
            "Could not invalidate inventory.devices in the Redis cache; it is sent when Redis "
            "answers again.",
        ),
        ("INFO", f"{where} answers again."),
    ]


async def test_the_resender_backs_off_while_redis_is_gone_and_stops_once_it_has_sent(
    caches: CacheFactory,
) -> None:
    proxy = Proxy()
    await proxy.start()
    pauses = Pauses()
    writer, reader = caches(url=f"redis://127.0.0.1:{proxy.port}/0", sleep=pauses), caches()
    backend = Backend()
    await reader.get_or_load(DEVICES, ONE, backend.read)
    await reader.get_or_load(SITES, ONE, backend.read)

    await proxy.stop()
    backend.version = 2
    await writer.invalidate(DEVICES)
    await writer.invalidate(SITES)  # the resender already waits: no second one
    asked = [await pauses.next()]
    for _ in range(3):
        pauses.release()  # each attempt fails, and the next pause is longer
        asked.append(await pauses.next())

    await proxy.start()
    pauses.release()
    await wait_until(lambda: not writer.store.resending)
    after = [await reader.get_or_load(kind, ONE, backend.read) for kind in (DEVICES, SITES)]
    await proxy.stop()

    assert asked == [0.5, 1.0, 2.0, 2.0]
    assert pauses.asked.empty()
    assert after == [(Backend.answer(2), CacheStatus.MISS)] * 2


async def test_closing_stops_the_resender_and_sends_what_is_unsent_once_more(
    caches: CacheFactory,
) -> None:
    proxy = Proxy()
    await proxy.start()
    pauses = Pauses()
    writer, reader = caches(url=f"redis://127.0.0.1:{proxy.port}/0", sleep=pauses), caches()
    backend = Backend()
    await reader.get_or_load(DEVICES, ONE, backend.read)

    await proxy.stop()
    backend.version = 2
    await writer.invalidate(DEVICES)
    first_pause = await pauses.next()  # never released: only closing can end it
    await proxy.start()
    await writer.close()
    await writer.close()
    after = await reader.get_or_load(DEVICES, ONE, backend.read)
    await proxy.stop()

    assert first_pause == 0.5
    assert writer.store.resending is False
    assert after == (Backend.answer(2), CacheStatus.MISS)


async def test_closing_while_redis_is_gone_names_what_stays_unsent(
    caches: CacheFactory, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    cache = caches(url=f"redis://127.0.0.1:{port}/0", sleep=Pauses())
    await cache.invalidate(SITES)
    await cache.invalidate(DEVICES)
    caplog.set_level(logging.WARNING, logger="crud.cache_redis")
    caplog.clear()

    await cache.close()

    [closing] = [record.getMessage() for record in caplog.records]
    assert closing.startswith(
        "Closing with invalidations of inventory.devices, inventory.sites unsent to the Redis "
        f"cache at 127.0.0.1:{port}/0 (ConnectionError: "
    )
    assert closing.endswith("other instances may serve their old answers until their TTL ends.")


class ResettingServer:
    """Accepts each connection and resets it at once, as a Redis or proxy going away does."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._reset_each, daemon=True)
        self._thread.start()

    def close(self) -> None:
        # Shut down, not only closed: that wakes the accepting thread, which then ends.
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)

    def _reset_each(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()


def test_connections_reset_under_uvloop_never_fail_a_write_or_a_read(redis_url: str) -> None:
    # The service runs on uvloop, which raises RuntimeError for some of these resets (a few
    # attempts in a hundred on a 2-core machine), where asyncio's own loop raises a
    # connection error. Without the fix, nearly every run of this test fails.
    uvloop = pytest.importorskip("uvloop")
    server = ResettingServer()
    try:
        statuses, calls = uvloop.run(invalidate_and_read_through(server.port, attempts=200))
    finally:
        server.close()

    assert statuses == [CacheStatus.MISS] * 200
    assert calls == 200


async def invalidate_and_read_through(port: int, attempts: int) -> tuple[list, int]:
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{port}/0",
        cache_redis_retry_seconds=0,  # every call reaches the resetting server
        cache_redis_timeout=2.0,
    )
    cache = ReadCache(RedisStore.from_settings(settings), ttl_seconds=30)
    backend = Backend()
    statuses = []
    for _ in range(attempts):
        await cache.invalidate(DEVICES)
        statuses.append((await cache.get_or_load(DEVICES, ONE, backend.read))[1])
    await cache.close()
    return statuses, backend.calls
