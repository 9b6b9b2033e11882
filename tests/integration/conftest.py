"""Fixtures of the Redis cache's tests: the real Redis at 127.0.0.1:6379, a key prefix of each
test's own (its keys deleted afterwards), and caches built as the service builds them."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from crud.cache import ReadCache
from crud.cache_redis import RedisStore, Sleep
from service.settings import Settings
from tests.clock import ManualClock as Clock
from tests.integration.redis_cache import REDIS_ADDRESS, REDIS_URL, SERVABLE_STALE, CacheFactory


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
