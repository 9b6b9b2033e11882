"""What the Redis cache's tests share: stand-ins for the backend and the resender's pauses, and a
relay to the real Redis that a test can cut."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from crud.cache import CachedAnswer, ReadCache
from django_integration.exceptions import BackendFailed, BackendTimeout, BackendUnavailable
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


CacheFactory = Callable[..., ReadCache]

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
