"""What the pipeline reads from the backend, and the cache that keeps it working when the
backend is down: the last good copy is used until a refresh succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class BackendSources(Protocol):
    async def applications(self) -> list[dict[str, Any]]:
        """Records of `appmetrics.applications`: name, version, environment, team, tier, ..."""
        ...

    async def alert_rules(self) -> list[dict[str, Any]]:
        """Records of `notification.alert-rules`: name, metric_name, operator, threshold, ..."""
        ...


class CachedRecords:
    """One list of backend records, refreshed at most every `ttl` seconds.

    A failed refresh keeps the last good copy and is retried after `ttl` too, so a dead backend
    costs one call per TTL rather than one per batch. The outage is logged once when it starts
    and once when it ends.
    """

    def __init__(
        self,
        what: str,
        fetch: Callable[[], Awaitable[list[dict[str, Any]]]],
        ttl: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._what = what
        self._fetch = fetch
        self._ttl = ttl
        self._timeout = timeout
        self._clock = clock
        self._next_refresh = float("-inf")
        self.records: list[dict[str, Any]] = []
        self.failing = False
        self.version = 0  # bumped on every successful refresh, so users rebuild their indexes

    async def refresh(self) -> None:
        now = self._clock()
        if now < self._next_refresh:
            return
        self._next_refresh = now + self._ttl

        try:
            records = await asyncio.wait_for(self._fetch(), self._timeout)
        except Exception as exc:  # noqa: BLE001 - any backend failure means "use the last copy"
            self._flip_to_failing(exc)
            return

        if not isinstance(records, list):
            self._flip_to_failing(TypeError(f"expected a list, got {type(records).__name__}"))
            return
        if self.failing:
            logger.info("Backend %s are readable again (%d records).", self._what, len(records))
        self.failing = False
        self.records = [record for record in records if isinstance(record, dict)]
        self.version += 1

    def _flip_to_failing(self, exc: Exception) -> None:
        if self.failing:
            return
        self.failing = True
        logger.warning(
            "Cannot read backend %s (%s: %s); using the last good copy of %d records.",
            self._what,
            type(exc).__name__,
            exc,
            len(self.records),
        )
