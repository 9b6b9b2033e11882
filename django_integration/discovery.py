"""Discovery of the backend's apps and resources, at start-up and on a schedule.

What a round reads is the entity registry's business (`crud/registry.py`: the API root
and each resource's OPTIONS); this module decides when rounds run and remembers how the
last one went. A failed round keeps what was learnt before, is logged once when failures
start and once when they end, and the next round picks up a backend that came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from .exceptions import BackendError

logger = logging.getLogger(__name__)


class BackendDiscovery:
    """Runs `discover_round` now and then every `interval` seconds until stopped."""

    def __init__(
        self,
        discover_round: Callable[[], Awaitable[None]],
        *,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._discover_round = discover_round
        self._interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.rounds = 0

    @property
    def succeeded_once(self) -> bool:
        return self.last_success is not None

    async def run_once(self) -> bool:
        """One round; True when it read the backend. Never raises a BackendError."""
        self.rounds += 1
        try:
            await self._discover_round()
        except BackendError as error:
            if self.last_error is None:
                logger.warning("backend discovery failed, will retry on schedule: %s", error)
            self.last_error = error.detail
            return False

        if self.last_error is not None:
            logger.info("backend discovery succeeded again after a failure")
        self.last_error = None
        self.last_success = self._clock()
        return True

    def start(self) -> None:
        """Start the schedule; a second call while it runs does nothing."""
        if self._task is not None and not self._task.done():
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._schedule(), name="backend-discovery")

    async def stop(self) -> None:
        """Stop the schedule, cancelling a round in flight; safe to call twice or unstarted."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def report(self) -> dict[str, Any]:
        return {
            "ok": self.last_error is None and self.succeeded_once,
            "last_success": _iso(self.last_success),
            "last_error": self.last_error,
            "rounds": self.rounds,
            "interval_seconds": self._interval,
        }

    async def _schedule(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            if self._stopping.is_set():
                return
            try:
                await self.run_once()
            except Exception:  # a bug in one round must not end discovery for good
                logger.exception("backend discovery round failed unexpectedly")


def _iso(moment: float | None) -> str | None:
    # ISO 8601 in UTC, as every other time the service shows.
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")
