"""Per-entity locks: the fallback for backends that cannot write conditionally.

Only for such backends: with If-Match support the backend's conditional
UPDATE is the lock, and it holds across every middleware instance; these
locks hold within one instance only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class EntityLocks:
    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._holders: dict[tuple[str, str], int] = {}

    @asynccontextmanager
    async def hold(self, entity_type: str, entity_id: str) -> AsyncIterator[None]:
        key = (entity_type, entity_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._holders[key] -= 1
            if self._holders[key] == 0:  # nobody waits: forget it, so memory stays bounded
                del self._holders[key], self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
