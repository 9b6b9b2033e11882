"""Every API key, held in memory, so that checking any key costs a dict lookup and one SHA-256
on the request path, never a database round trip.

The keys are read at start and again every `recheck_seconds` in one query; the same round
writes `last_used_at` for the keys used since, each with the time of its own latest use. A key
created or revoked through this instance takes effect here at once (`remember`); one created or
revoked through another instance or the command line, with the next round. Since no key needs
the database, a valid key is admitted even from an address past its failure limit: keys are 256
random bits, so that limit guards the audit trail, not the keys. While the database cannot be
read, the keys held keep working for twice `recheck_seconds`; after that every key answers 503
until a round succeeds, since revocations made elsewhere could no longer arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from .exceptions import CannotVerify, Unauthenticated
from .identity import Identity
from .keys import ApiKey, KeyStore, key_hash, key_id_of

logger = logging.getLogger(__name__)

INVALID_KEY = "The API key is not valid."


class KeyCache:
    def __init__(
        self,
        store: KeyStore,
        recheck_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._recheck_seconds = recheck_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._keys: dict[str, ApiKey] = {}  # by id; revoked ones too, to say so when used
        self._loaded_at: float | None = None
        self._changed_while_loading: dict[str, ApiKey] | None = None
        # Key id -> when it was last used (wall clock): a float is cheap on the request path;
        # it becomes a datetime only when written.
        self._used: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def verify(self, key: str) -> Identity:
        """The key's identity; raises Unauthenticated for a key that is not valid."""
        if self._loaded_at is None or self._clock() - self._loaded_at > 2 * self._recheck_seconds:
            raise CannotVerify()
        key_id = key_id_of(key)
        record = self._keys.get(key_id) if key_id else None
        if record is None:
            raise Unauthenticated(INVALID_KEY)
        # Both sides are hex digests of one length: the comparison leaks nothing by its time.
        if not hmac.compare_digest(record.key_hash, key_hash(key)):
            raise Unauthenticated(INVALID_KEY, actor=record.name)
        if not record.active:
            raise Unauthenticated("The API key was revoked.", actor=record.name)
        self._used[record.id] = self._wall_clock()
        return record.identity()

    def remember(self, record: ApiKey) -> None:
        """A key just created or revoked through this instance: in effect here at once."""
        self._keys[record.id] = _later(self._keys.get(record.id), record)
        if self._changed_while_loading is not None:
            self._changed_while_loading[record.id] = record

    async def load(self) -> None:
        """Read every key in one query; write the last use of the keys used since the last."""
        used, self._used = self._used, {}
        started = self._clock()
        self._changed_while_loading = {}
        try:
            records = await self._store.all()
            await self._store.touch(_last_uses(used, {record.id for record in records}))
        except Exception:
            # Their last use is written by the next round instead; uses made meanwhile are later.
            self._used = {**used, **self._used}
            raise
        finally:
            changed, self._changed_while_loading = self._changed_while_loading, None

        keys = {record.id: record for record in records}
        # A change made here while the query ran may be newer than what the query read.
        for key_id, record in changed.items():
            keys[key_id] = _later(keys.get(key_id), record)
        self._keys = keys
        self._loaded_at = started

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._reload_forever(), name="api-key-reload")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(self._recheck_seconds)
            try:
                await self.load()
            except Exception as exc:  # the database is down: the keys held age until it is back
                self._flip_failing(True, exc)
            else:
                self._flip_failing(False)

    def _flip_failing(self, failing: bool, exc: Exception | None = None) -> None:
        # Logged once when the state flips, not on every round.
        if failing and not self._failing:
            logger.warning("API keys cannot be read again: %s", type(exc).__name__)
        elif not failing and self._failing:
            logger.info("API keys are read again")
        self._failing = failing


def _last_uses(used: dict[str, float], known: set[str]) -> dict[str, datetime]:
    return {
        key_id: datetime.fromtimestamp(moment, UTC)
        for key_id, moment in used.items()
        if key_id in known
    }


def _later(held: ApiKey | None, record: ApiKey) -> ApiKey:
    # A key only ever goes from active to revoked: an older read must not bring one back.
    if held is not None and not held.active and record.active:
        return held
    return record
