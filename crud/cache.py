"""The read cache in front of the backend: reads and lists, a TTL per entity type, one load per
key at a time, stale answers while the backend fails, and invalidation by generation.

Every entity type has a generation. An entry remembers the generation it was loaded under and
counts only while that generation is current, so `invalidate` makes every read and list of the
type unreachable at once, stale copies included, without finding them one by one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

from cachetools import TLRUCache

Clock = Callable[[], float]
StaleOn = tuple[type[BaseException], ...]
FlightKey = tuple[str, str, str | None]  # entity type, key digest, generation


class CacheStatus(StrEnum):
    HIT = "hit"
    MISS = "miss"
    STALE = "stale"


@dataclass(frozen=True)
class CachedAnswer:
    """What the service caches: a JSON-able body and the headers to repeat (ETag)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class StoredAnswer:
    """One cache entry as a store keeps it; `payload` is the encoded `CachedAnswer`."""

    generation: str
    fresh_until: float
    stale_until: float
    payload: bytes


@dataclass(frozen=True)
class Lookup:
    """The type's current generation (None: the store cannot be used now) and the entry found."""

    generation: str | None
    entry: StoredAnswer | None


class CacheStore(Protocol):
    """Where entries live. A store never raises on a read path: it answers `Lookup(None, None)`.
    `save` keeps an entry only while its generation is still the type's current one.
    """

    async def lookup(self, entity_type: str, digest: str) -> Lookup: ...

    async def save(
        self, entity_type: str, digest: str, entry: StoredAnswer, keep_seconds: float
    ) -> None: ...

    async def bump(self, entity_type: str) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """Entries in this process, at most `max_entries`, each dropped when its stale grace ends."""

    def __init__(self, max_entries: int, clock: Clock = time.monotonic) -> None:
        self._entries: TLRUCache[tuple[str, str], StoredAnswer] = TLRUCache(
            maxsize=max_entries, ttu=_stale_until, timer=clock
        )
        self._generations: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def lookup(self, entity_type: str, digest: str) -> Lookup:
        generation = str(self._generations.get(entity_type, 0))
        return Lookup(generation, self._entries.get((entity_type, digest)))

    async def save(
        self, entity_type: str, digest: str, entry: StoredAnswer, keep_seconds: float
    ) -> None:
        # `keep_seconds` is implied by the entry's own stale_until on this store's clock.
        # A load that an invalidation overtook must not push out a newer entry.
        if entry.generation != str(self._generations.get(entity_type, 0)):
            return
        self._entries[(entity_type, digest)] = entry

    async def bump(self, entity_type: str) -> None:
        self._generations[entity_type] = self._generations.get(entity_type, 0) + 1

    async def close(self) -> None:
        self._entries.clear()


class ReadCache:
    """Answers reads from the cache, or loads them once per key and remembers the answer."""

    def __init__(
        self,
        store: CacheStore,
        *,
        ttl_seconds: float,
        ttl_overrides: Mapping[str, float] | None = None,
        stale_seconds: float = 0.0,
        stale_on: StaleOn = (),
        clock: Clock = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl_seconds = ttl_seconds
        self._ttl_overrides = dict(ttl_overrides or {})
        self._stale_seconds = stale_seconds
        self._stale_on = stale_on
        self._clock = clock
        self._flights: dict[FlightKey, asyncio.Future[tuple[bytes, CacheStatus]]] = {}
        self.counts: Counter[CacheStatus] = Counter()

    @classmethod
    def from_settings(cls, settings: Any, *, stale_on: StaleOn = ()) -> ReadCache:
        """In-memory, or Redis shared with every instance when `settings.redis_url` is set."""
        store: CacheStore
        if settings.redis_url:
            from .cache_redis import RedisStore  # redis is only imported when it is used

            # Entries are shared between hosts, so their times must be wall-clock times.
            clock: Clock = time.time
            store = RedisStore.from_settings(settings)
        else:
            clock = time.monotonic
            store = MemoryStore(settings.cache_max_entries, clock)
        return cls(
            store,
            ttl_seconds=settings.cache_ttl_seconds,
            ttl_overrides=settings.cache_ttl_overrides,
            stale_seconds=settings.cache_stale_seconds,
            stale_on=stale_on,
            clock=clock,
        )

    @property
    def store(self) -> CacheStore:
        return self._store

    def ttl_for(self, entity_type: str) -> float:
        return self._ttl_overrides.get(entity_type, self._ttl_seconds)

    async def get_or_load(
        self,
        entity_type: str,
        key: Mapping[str, Any],
        load: Callable[[], Awaitable[CachedAnswer]],
        *,
        stale_on: StaleOn | None = None,
    ) -> tuple[CachedAnswer, CacheStatus]:
        """The cached answer for `key`, or the one `load` gives (whatever it returns is cached;
        it raises to cache nothing). `stale_on` overrides the constructor's for this call.
        """
        ttl = self.ttl_for(entity_type)
        if ttl <= 0:
            self.counts[CacheStatus.MISS] += 1
            return await load(), CacheStatus.MISS

        digest = key_digest(entity_type, key)
        found = await self._store.lookup(entity_type, digest)
        current = found.entry if _is_current(found) else None
        if current is not None and self._clock() < current.fresh_until:
            self.counts[CacheStatus.HIT] += 1
            return decode_answer(current.payload), CacheStatus.HIT

        # Keyed by generation too: a reader arriving after an invalidation must not join a
        # load that may have started before the write.
        flight_key = (entity_type, digest, found.generation)
        flight = self._flights.get(flight_key)
        if flight is None:
            fill = self._fill(entity_type, digest, found.generation, current, ttl, load, stale_on)
            flight = asyncio.ensure_future(fill)
            self._flights[flight_key] = flight
            flight.add_done_callback(partial(self._land, flight_key))

        # Shielded: a caller that goes away must not cancel the load the others wait for.
        payload, status = await asyncio.shield(flight)
        self.counts[status] += 1
        return decode_answer(payload), status

    async def invalidate(self, entity_type: str) -> None:
        """Makes every cached read and list of `entity_type` unreachable, stale copies too."""
        await self._store.bump(entity_type)

    async def close(self) -> None:
        await self._store.close()

    async def _fill(
        self,
        entity_type: str,
        digest: str,
        generation: str | None,
        stale: StoredAnswer | None,
        ttl: float,
        load: Callable[[], Awaitable[CachedAnswer]],
        stale_on: StaleOn | None,
    ) -> tuple[bytes, CacheStatus]:
        servable_stale = self._stale_on if stale_on is None else stale_on
        try:
            answer = await load()
        except servable_stale:
            # Not logged here: the breaker and the client log the outage once, not per read.
            if stale is None or self._clock() >= stale.stale_until:
                raise
            return stale.payload, CacheStatus.STALE

        payload = encode_answer(answer)
        if generation is None:
            return payload, CacheStatus.MISS

        # The generation is the one read before the load, so an invalidation that happened
        # while loading leaves this entry unreachable.
        now = self._clock()
        fresh_until = now + ttl
        entry = StoredAnswer(generation, fresh_until, fresh_until + self._stale_seconds, payload)
        await self._store.save(entity_type, digest, entry, ttl + self._stale_seconds)
        return payload, CacheStatus.MISS

    def _land(self, flight_key: FlightKey, flight: asyncio.Future[Any]) -> None:
        if self._flights.get(flight_key) is flight:
            del self._flights[flight_key]
        # Every waiter may have gone; fetch the outcome so asyncio does not report it unread.
        if not flight.cancelled():
            flight.exception()


def key_digest(entity_type: str, key: Mapping[str, Any]) -> str:
    """A stable name for everything that changes an answer: canonical JSON, hashed."""
    canonical = json.dumps(
        [entity_type, key],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_jsonable,
    )
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def encode_answer(answer: CachedAnswer) -> bytes:
    document = {"status": answer.status, "body": answer.body, "headers": answer.headers}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def decode_answer(payload: bytes) -> CachedAnswer:
    # Every caller gets its own copy, so one request cannot change what the next one reads.
    document = json.loads(payload)
    return CachedAnswer(document["status"], document["body"], document["headers"])


def _is_current(found: Lookup) -> bool:
    return found.entry is not None and found.entry.generation == found.generation


def _stale_until(_key: Any, entry: StoredAnswer, _now: float) -> float:
    return entry.stale_until


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"cannot make a cache key of {type(value).__name__}")
