"""Keys already verified against the database, so that a known key costs a dict lookup and one
SHA-256 on the request path, never a database round trip.

A background recheck reads every cached key again each `recheck_seconds` in one query, drops
the revoked ones and writes `last_used_at` for the keys used since. So a key revoked through
another instance stops working here within `recheck_seconds`; a revoke through this instance
calls `forget` and takes effect at once. An entry the recheck has not confirmed for twice that
long (the database is failing) is read again on its next use, and refused if that fails too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .exceptions import CannotVerify, Unauthenticated
from .identity import Identity
from .keys import ApiKey, KeyStore, key_hash, key_id_of

logger = logging.getLogger(__name__)

INVALID_KEY = "The API key is not valid."


@dataclass
class _Verified:
    record: ApiKey
    confirmed_at: float


class VerifiedKeys:
    def __init__(
        self,
        store: KeyStore,
        recheck_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._recheck_seconds = recheck_seconds
        self._clock = clock
        self._entries: dict[str, _Verified] = {}
        self._used: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def cached(self, key: str) -> Identity | None:
        """The key's identity if this instance verified it lately; None: ask `verify`.

        Raises Unauthenticated for a wrong secret on a cached id (the hash is known already).
        """
        key_id = key_id_of(key)
        entry = self._entries.get(key_id) if key_id else None
        if entry is None or self._clock() - entry.confirmed_at > 2 * self._recheck_seconds:
            return None
        return self._accept(entry.record, key)

    async def verify(self, key: str) -> Identity:
        """Read the key's row and check the key against it; remember it when it is good."""
        key_id = key_id_of(key)
        if key_id is None:
            raise Unauthenticated(INVALID_KEY)
        try:
            record = await self._store.find(key_id)
        except Exception as exc:
            logger.warning("the API key store cannot be read: %s", type(exc).__name__)
            raise CannotVerify() from exc
        if record is None:
            raise Unauthenticated(INVALID_KEY)
        identity = self._accept(record, key)  # raises for a wrong secret or a revoked key
        self._entries[key_id] = _Verified(record, self._clock())
        return identity

    def forget(self, key_id: str) -> None:
        self._entries.pop(key_id, None)

    async def recheck(self) -> None:
        """Confirm every cached key against the database; drop those revoked or gone."""
        used, self._used = self._used, set()
        started = self._clock()
        try:
            rows = await self._store.find_many(list(self._entries))
            await self._store.touch(used & rows.keys(), datetime.now(UTC))
        except Exception:
            self._used |= used  # their last use is written by the next round instead
            raise
        for key_id in list(self._entries):
            record = rows.get(key_id)
            if record is None or not record.active:
                self.forget(key_id)
            else:
                self._entries[key_id] = _Verified(record, started)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._recheck_forever(), name="api-key-recheck")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def _accept(self, record: ApiKey, key: str) -> Identity:
        # Both sides are hex digests of one length: the comparison leaks nothing by its time.
        if not hmac.compare_digest(record.key_hash, key_hash(key)):
            raise Unauthenticated(INVALID_KEY, actor=record.name)
        if not record.active:
            raise Unauthenticated("The API key was revoked.", actor=record.name)
        self._used.add(record.id)
        return record.identity()

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self._recheck_seconds)
            try:
                await self.recheck()
            except Exception as exc:  # the database is down: entries age until it is back
                self._flip_failing(True, exc)
            else:
                self._flip_failing(False)

    def _flip_failing(self, failing: bool, exc: Exception | None = None) -> None:
        # Logged once when the state flips, not on every round.
        if failing and not self._failing:
            logger.warning("API keys cannot be rechecked: %s", type(exc).__name__)
        elif not failing and self._failing:
            logger.info("API keys are rechecked again")
        self._failing = failing
