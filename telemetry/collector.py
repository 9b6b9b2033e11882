"""The collector: validates posted points, limits each client's rate, drops re-sent copies and
admits what is left into the bounded queue, or refuses the whole request.

Counters keep `received == accepted + rejected + duplicates + refused`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from operator import itemgetter
from typing import Any

import limits
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from service.problems import Problem
from service.settings import Settings
from telemetry.backpressure import PointQueue, batch_bytes
from telemetry.dedup import DedupWindow
from telemetry.point_batches import dedup_keys, parse_points
from telemetry.points import BatchReader, PointLimits, describe, parse_point

logger = logging.getLogger(__name__)

_MAX_RETRY_AFTER = 30
SHUTDOWN_RETRY_AFTER = 5
# Until the worker has finished a batch its pace is unknown. A low guess (a fiftieth of the
# measured throughput) makes early agents back off too long rather than retry in a storm.
ASSUMED_DRAIN_RATE = 1_000.0


class Collector:
    def __init__(
        self,
        settings: Settings,
        queue: PointQueue,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._queue = queue
        self._clock = clock
        self._limits = PointLimits.from_settings(settings)
        self._rate = limits.parse(settings.telemetry_rate_limit)
        # The asyncio flavour: the threaded one starts a timer thread for its clean-up on every
        # hit after a pause, 0.3 ms and a thread contending for the GIL per request (issue #5).
        # Made on first use, as its storage needs a running event loop.
        self._limiter: SlidingWindowCounterRateLimiter | None = None
        self._dedup = DedupWindow(
            settings.telemetry_dedup_window_seconds, settings.telemetry_dedup_max_entries
        )
        self.batch_max_items = settings.telemetry_batch_max_items
        self.accepting = True
        self.drain_rate = 0.0  # points per second, measured by the worker, for Retry-After
        self.counters = dict.fromkeys(
            ("received", "accepted", "rejected", "duplicates", "refused", "rate_limited"), 0
        )

    @property
    def dedup_entries(self) -> int:
        return len(self._dedup)

    def check_open(self) -> None:
        """Refuse at once while shutting down, before a body is read or decoded."""
        if not self.accepting:
            raise Problem(
                503,
                "The telemetry pipeline is shutting down.",
                headers=_retry(SHUTDOWN_RETRY_AFTER),
            )

    def check_size(self, count: int) -> None:
        """413 for a request with more items than a batch may hold; nothing is counted."""
        if count > self.batch_max_items:
            raise Problem(
                413,
                f"A batch holds at most {self.batch_max_items} points; this one has {count}.",
                title="Batch Too Large",
            )

    def admit(
        self, items: list[Any], client: str, read: BatchReader = parse_points
    ) -> dict[str, Any]:
        """Admit a batch; the 202 body, or a Problem when the whole batch is refused.

        `client` is the sender's address, which the enricher classifies; `check_rate` comes
        first. `read` turns the items into points: posted JSON by default, `check_typed_points`
        for OTLP's points.
        """
        self.counters["received"] += len(items)
        if not self.accepting:
            self._refuse(len(items))
            self.check_open()

        now = self._clock()
        fresh, keys, rejected, duplicates = self._sort_out(items, now, client, read)

        # In time order, so a request's backfill reaches the analyzer oldest first even when
        # the worker splits it over several batches.
        fresh.sort(key=_event_time)
        sizes = batch_bytes(fresh)
        if not self._queue.could_hold(len(fresh), sum(sizes)):
            self._refuse(len(items))
            raise Problem(
                413,
                f"{len(fresh)} points are more than the telemetry queue holds; send fewer at once.",
                title="Batch Too Large",
            )
        if not self._queue.offer(fresh, sizes):
            self._refuse(len(items))
            raise Problem(
                429,
                f"The telemetry queue cannot take {len(fresh)} more points now; retry later.",
                headers=_retry(self._seconds_to_room(len(fresh), sum(sizes))),
            )

        # Remember only once acknowledged, so a refused request's retry is not a duplicate.
        self._dedup.remember(keys, now)
        self.counters["accepted"] += len(fresh)
        self.counters["rejected"] += len(rejected)
        self.counters["duplicates"] += duplicates
        return {"accepted": len(fresh), "rejected": rejected, "duplicates": duplicates}

    def check_one(self, item: Any) -> dict[str, Any] | None:
        """The point, read; one that fails validation is a 422 with field errors, not a
        rejection. None only while shutting down, when `admit` answers 503 instead."""
        point, errors = parse_point(item, self._clock(), self._limits)
        if point is None and self.accepting:
            self.counters["received"] += 1
            self.counters["rejected"] += 1
            raise Problem(
                422,
                "The telemetry point failed validation.",
                errors=[{"field": field, "message": message} for field, message in errors],
            )
        return point

    async def check_rate(self, count: int, rate_key: str) -> None:
        """429 once the sender is over its rate; refused points count as received.

        The rate is kept per `rate_key`: the API key's name, or the address without one.
        """
        if count == 0 or not self.accepting:  # shutting down: admit answers 503
            return
        if count > self._rate.amount:
            # No wait would let it through: say so, as for a batch larger than the queue.
            self._refuse_over_rate(count)
            raise Problem(
                413,
                f"{count} points are more than the rate limit of "
                f"{self._settings.telemetry_rate_limit} points allows at once; send fewer.",
                title="Batch Too Large",
            )
        if self._limiter is None:
            self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        if await self._limiter.hit(self._rate, "telemetry", rate_key, cost=count):
            return

        self._refuse_over_rate(count)
        stats = await self._limiter.get_window_stats(self._rate, "telemetry", rate_key)
        wait = math.ceil(max(stats.reset_time - time.time(), 1.0))
        raise Problem(
            429,
            f"Rate limit of {self._settings.telemetry_rate_limit} points exceeded; retry later.",
            headers=_retry(wait),
        )

    def _sort_out(
        self, items: list[Any], now: float, client: str, read: BatchReader
    ) -> tuple[list[dict[str, Any]], list[int], list[dict[str, Any]], int]:
        """Split items into fresh points (with fingerprints), rejections and a duplicate count."""
        valid, rejections = read(items, now, self._limits)
        rejected = [{"index": index, "reason": describe(errors)} for index, errors in rejections]
        # The enricher classifies the sender's address; it is not part of the series.
        for point in valid:
            point["client_address"] = client
        valid_keys = dedup_keys(valid)

        # One lookup for the whole request against what earlier requests left in the window.
        self._dedup.expire(now)
        remembered = self._dedup.seen(valid_keys)
        if not remembered.any() and len(set(valid_keys)) == len(valid_keys):
            return valid, valid_keys, rejected, 0  # nothing re-sent, the usual case

        fresh: list[dict[str, Any]] = []
        keys: list[int] = []
        in_request: set[int] = set()
        for point, key, old in zip(valid, valid_keys, remembered.tolist(), strict=True):
            if old or key in in_request:
                continue
            in_request.add(key)
            fresh.append(point)
            keys.append(key)
        return fresh, keys, rejected, len(valid) - len(fresh)

    def _refuse(self, count: int) -> None:
        self.counters["refused"] += count

    def _refuse_over_rate(self, count: int) -> None:
        self.counters["received"] += count
        self.counters["rate_limited"] += count
        self._refuse(count)

    def _seconds_to_room(self, count: int, size: int) -> int:
        queue = self._queue
        excess = queue.queued + count - queue.capacity
        if queue.capacity_bytes is not None and queue.queued:
            # Bytes over the bound, in points of the queue's average size.
            average = queue.queued_bytes / queue.queued
            over = queue.queued_bytes + size - queue.capacity_bytes
            excess = max(excess, math.ceil(over / average))
        if excess <= 0:
            return 1
        rate = self.drain_rate if self.drain_rate > 0 else ASSUMED_DRAIN_RATE
        return min(_MAX_RETRY_AFTER, max(1, math.ceil(excess / rate)))


_event_time = itemgetter("ts")


def _retry(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}
