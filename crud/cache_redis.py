"""The read cache's entries in Redis, so that every middleware instance shares them and their
invalidations.

Keys, under a configurable prefix (the braces keep a type's keys in one Redis Cluster slot):
    <prefix>{<entity_type>}:gen        the type's current generation, a random token
    <prefix>{<entity_type>}:<digest>   one answer: generation, fresh-until, stale-until, payload

A generation is a random token rather than a counter: if the key is ever lost (flushed,
evicted) a new token is drawn, which strands the old entries instead of reviving them.

Redis failing never fails a read: the store answers "unavailable", the cache loads from the
backend, and Redis is left alone for `retry_seconds` before it is tried again.

An invalidation that could not be sent is kept, and a background resender delivers it as soon
as Redis answers again, without waiting for this instance's next request (it also goes first in
this instance's next read). A read answered by the backend while Redis could not be used owes
an invalidation too: the entries Redis kept through the outage may predate that answer (another
instance's invalidation may still be unsent), and this instance must not serve them after a
newer one. Both kinds are sent before this instance reads Redis again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .cache import Clock, Lookup, StoredAnswer

logger = logging.getLogger(__name__)

# OSError covers refused connections and socket timeouts raised below redis-py's own errors.
# RuntimeError: under uvloop, writing to a connection Redis (or a proxy) has just reset raises
# it instead of a connection error (MagicStack/uvloop#506); left uncaught, it turned a write
# the backend had made into a 500 and left its invalidation without a resender.
REDIS_FAILURES = (RedisError, OSError, RuntimeError)

# The resender's pause before its first attempt, doubled after each failure up to the cap. The
# cap bounds how long other instances may serve entries an unsent invalidation should strand
# once Redis is back. No jitter: each instance sends one small pipeline per attempt.
RESEND_FIRST_PAUSE = 0.5
RESEND_MAX_PAUSE = 2.0

Sleep = Callable[[float], Awaitable[None]]

# Atomic, so a load that an invalidation overtook cannot overwrite a newer entry.
SAVE_IF_CURRENT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return false
"""


class RedisStore:
    def __init__(
        self,
        client: Redis,
        prefix: str,
        *,
        retry_seconds: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._sleep = sleep
        self._down_since: float | None = None
        # Entity type -> the number of its latest unsent invalidation. A send removes a type
        # only if no newer invalidation of it arrived meanwhile, which the send may predate.
        self._unsent_invalidations: dict[str, int] = {}
        self._invalidations_made = 0
        self._resender: asyncio.Task[None] | None = None
        self._closed = False
        self._save_if_current = client.register_script(SAVE_IF_CURRENT)

    @classmethod
    def from_settings(
        cls, settings: Any, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> RedisStore:
        # No retries inside redis-py: a read that cannot reach Redis goes to the backend at once.
        client = Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=settings.cache_redis_timeout,
            socket_timeout=settings.cache_redis_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(
            client,
            settings.cache_key_prefix,
            retry_seconds=settings.cache_redis_retry_seconds,
            clock=clock,
            sleep=sleep,
        )

    @property
    def available(self) -> bool:
        return self._down_since is None

    @property
    def resending(self) -> bool:
        """Whether the background resender is waiting to deliver unsent invalidations."""
        return self._resender is not None and not self._resender.done()

    async def lookup(self, entity_type: str, digest: str) -> Lookup:
        if self._resting():
            self._owe_invalidation(entity_type)
            return Lookup(None, None)

        try:
            generation, raw = await self._read(entity_type, digest)
        except REDIS_FAILURES as exc:
            self._went_down(exc)
            self._owe_invalidation(entity_type)
            return Lookup(None, None)

        self._came_back()
        return Lookup(generation, _unpack(raw))

    async def save(
        self, entity_type: str, digest: str, entry: StoredAnswer, keep_seconds: float
    ) -> None:
        # Unsaved, the answer just served may be newer than what Redis holds for the type.
        if self._resting():
            self._owe_invalidation(entity_type)
            return

        try:
            await self._save_if_current(
                keys=[self._generation_key(entity_type), self._entry_key(entity_type, digest)],
                args=[entry.generation, _pack(entry), max(1, round(keep_seconds * 1000))],
            )
        except REDIS_FAILURES as exc:
            self._went_down(exc)
            self._owe_invalidation(entity_type)

    async def bump(self, entity_type: str) -> None:
        self._record_invalidation(entity_type)
        if not self._resting():
            try:
                await self._send_invalidations()
            except REDIS_FAILURES as exc:
                self._went_down(exc)
            else:
                self._came_back()
                return

        self._warn_unsent(entity_type)
        self._resend_later()

    async def close(self) -> None:
        """Stops the resender, makes one last attempt to send what is unsent, then disconnects."""
        if self._closed:
            return
        self._closed = True
        await self._stop_resender()
        await self._send_before_closing()
        await self._client.aclose()

    async def _read(self, entity_type: str, digest: str) -> tuple[str, bytes | None]:
        """The generation and the entry in one round trip, after any unsent invalidations."""
        unsent = dict(self._unsent_invalidations)
        async with self._client.pipeline(transaction=False) as pipe:
            for stranded in unsent:
                pipe.set(self._generation_key(stranded), _new_generation())
            pipe.get(self._generation_key(entity_type))
            pipe.get(self._entry_key(entity_type, digest))
            replies = await pipe.execute()
        if unsent:
            self._forget_sent(unsent)

        generation, raw = replies[-2], replies[-1]
        if generation is None:
            generation = await self._start_generation(entity_type)
        return generation.decode(), raw

    async def _start_generation(self, entity_type: str) -> bytes:
        # NX: when two instances start the same type at once, both end up with the winner's.
        key = self._generation_key(entity_type)
        drawn = _new_generation()
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.set(key, drawn, nx=True)
            pipe.get(key)
            _, generation = await pipe.execute()
        # Deleted again in between: nothing can be saved under `drawn`, which is what we want.
        return generation or drawn.encode()

    async def _send_invalidations(self) -> None:
        unsent = dict(self._unsent_invalidations)
        async with self._client.pipeline(transaction=False) as pipe:
            for entity_type in unsent:
                pipe.set(self._generation_key(entity_type), _new_generation())
            await pipe.execute()
        self._forget_sent(unsent)

    def _record_invalidation(self, entity_type: str) -> None:
        self._invalidations_made += 1
        self._unsent_invalidations[entity_type] = self._invalidations_made

    def _owe_invalidation(self, entity_type: str) -> None:
        """This instance answered `entity_type` without Redis: strand what Redis holds of it
        before this instance reads Redis again, so that it never serves an older answer.
        """
        self._record_invalidation(entity_type)
        self._resend_later()

    def _forget_sent(self, sent: dict[str, int]) -> None:
        for entity_type, number in sent.items():
            if self._unsent_invalidations.get(entity_type) == number:
                del self._unsent_invalidations[entity_type]

    def _resend_later(self) -> None:
        if self._closed or self.resending:
            return
        self._resender = asyncio.get_running_loop().create_task(
            self._resend_while_unsent(), name="redis-cache-resender"
        )
        self._resender.add_done_callback(_report_resender_failure)

    async def _resend_while_unsent(self) -> None:
        """Sends unsent invalidations until none is left, pausing longer after each failure."""
        pause = RESEND_FIRST_PAUSE
        while self._unsent_invalidations:
            await self._sleep(pause)
            if not self._unsent_invalidations:
                return  # a read or a write of this instance sent them meanwhile

            try:
                await self._send_invalidations()
            except REDIS_FAILURES as exc:
                self._went_down(exc)
                pause = min(pause * 2, RESEND_MAX_PAUSE)
            else:
                self._came_back()
                pause = RESEND_FIRST_PAUSE

    async def _stop_resender(self) -> None:
        resender, self._resender = self._resender, None
        if resender is None:
            return
        resender.cancel()
        await asyncio.wait({resender})

    async def _send_before_closing(self) -> None:
        if not self._unsent_invalidations:
            return
        try:
            await self._send_invalidations()
        except REDIS_FAILURES as exc:
            logger.warning(
                "Closing with invalidations of %s unsent to the Redis cache at %s (%s: %s); "
                "other instances may serve their old answers until their TTL ends.",
                ", ".join(sorted(self._unsent_invalidations)),
                self._where(),
                type(exc).__name__,
                exc,
            )

    def _resting(self) -> bool:
        if self._closed:
            return True
        if self._down_since is None:
            return False
        return self._clock() < self._down_since + self._retry_seconds

    def _went_down(self, exc: BaseException) -> None:
        was_up = self._down_since is None
        self._down_since = self._clock()
        if was_up:
            logger.warning(
                "Redis cache at %s is unreachable (%s: %s); reads go to the backend until it "
                "answers again.",
                self._where(),
                type(exc).__name__,
                exc,
            )

    def _came_back(self) -> None:
        if self._down_since is None:
            return
        self._down_since = None
        logger.info("Redis cache at %s answers again.", self._where())

    def _warn_unsent(self, entity_type: str) -> None:
        # Each one is logged: other instances may serve this type's old answers meanwhile.
        logger.warning(
            "Could not invalidate %s in the Redis cache; it is sent when Redis answers again.",
            entity_type,
        )

    def _where(self) -> str:
        # Host and port only: a Redis URL can carry a password.
        options = self._client.connection_pool.connection_kwargs
        return f"{options.get('host', '?')}:{options.get('port', '?')}/{options.get('db', 0)}"

    def _generation_key(self, entity_type: str) -> str:
        return f"{self._prefix}{{{entity_type}}}:gen"

    def _entry_key(self, entity_type: str, digest: str) -> str:
        return f"{self._prefix}{{{entity_type}}}:{digest}"


def _report_resender_failure(resender: asyncio.Task[None]) -> None:
    # Redis failures are handled inside; anything else is a bug, logged rather than lost. The
    # next failed read or write starts a new resender.
    if not resender.cancelled() and resender.exception() is not None:
        logger.error("The Redis cache's resender stopped", exc_info=resender.exception())


def _new_generation() -> str:
    return secrets.token_hex(8)


def _pack(entry: StoredAnswer) -> bytes:
    header = f"{entry.generation}\n{entry.fresh_until!r}\n{entry.stale_until!r}\n"
    return header.encode() + entry.payload


def _unpack(raw: bytes | None) -> StoredAnswer | None:
    if raw is None:
        return None
    try:
        generation, fresh_until, stale_until, payload = raw.split(b"\n", 3)
        return StoredAnswer(generation.decode(), float(fresh_until), float(stale_until), payload)
    except ValueError:
        # Not written by this code (or a different version of it): treat it as absent.
        return None
