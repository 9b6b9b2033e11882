"""The collector: validates posted points, limits each client's rate, drops re-sent copies and
admits what is left into the bounded queue, or refuses the whole request.

Counters keep `received == accepted + rejected + duplicates + refused`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import limits
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from service.problems import Problem
from service.settings import Settings
from telemetry.backpressure import PointQueue
from telemetry.dedup import DedupWindow
from telemetry.points import dedup_key, describe, parse_point

logger = logging.getLogger(__name__)

_MAX_RETRY_AFTER = 30


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
        self._rate = limits.parse(settings.telemetry_rate_limit)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
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

    def admit(self, items: list[Any], client: str) -> dict[str, Any]:
        """Admit a batch; the 202 body, or a Problem when the whole batch is refused."""
        self.counters["received"] += len(items)
        if not self.accepting:
            self._refuse(len(items))
            raise Problem(503, "The telemetry pipeline is shutting down.", headers=_retry(5))
        self._check_rate(client, len(items))

        now = self._clock()
        fresh, keys, rejected, duplicates = self._sort_out(items, now)

        # In time order, so a request's backfill reaches the analyzer oldest first even when
        # the worker splits it over several batches.
        fresh.sort(key=_event_time)
        if not self._queue.offer(fresh):
            self._refuse(len(items))
            raise Problem(
                429,
                f"The telemetry queue cannot take {len(fresh)} more points now; retry later.",
                headers=_retry(self._seconds_to_room(len(fresh))),
            )

        # Remember only once acknowledged, so a refused request's retry is not a duplicate.
        self._dedup.remember(keys, now)
        self.counters["accepted"] += len(fresh)
        self.counters["rejected"] += len(rejected)
        self.counters["duplicates"] += duplicates
        return {"accepted": len(fresh), "rejected": rejected, "duplicates": duplicates}

    def admit_one(self, item: Any, client: str) -> dict[str, Any]:
        """Admit a single point; a bad one is a 422 with field errors, not a rejection."""
        now = self._clock()
        point, errors = parse_point(item, now, *self._age_limits())
        if point is None:
            self.counters["received"] += 1
            self.counters["rejected"] += 1
            raise Problem(
                422,
                "The telemetry point failed validation.",
                errors=[{"field": field, "message": message} for field, message in errors],
            )
        return self.admit([item], client)

    def _age_limits(self) -> tuple[float, float | None]:
        settings = self._settings
        return settings.telemetry_max_future_seconds, settings.telemetry_max_age_seconds

    def _check_rate(self, client: str, cost: int) -> None:
        if cost == 0 or self._limiter.hit(self._rate, "telemetry", client, cost=cost):
            return
        self.counters["rate_limited"] += cost
        self._refuse(cost)
        stats = self._limiter.get_window_stats(self._rate, "telemetry", client)
        wait = math.ceil(max(stats.reset_time - time.time(), 1.0))
        raise Problem(
            429,
            f"Rate limit of {self._settings.telemetry_rate_limit} points exceeded; retry later.",
            headers=_retry(wait),
        )

    def _sort_out(
        self, items: list[Any], now: float
    ) -> tuple[list[dict[str, Any]], list[int], list[dict[str, Any]], int]:
        """Split items into fresh points (with fingerprints), rejections and a duplicate count."""
        max_future, max_age = self._age_limits()
        self._dedup.expire(now)
        fresh: list[dict[str, Any]] = []
        keys: list[int] = []
        rejected: list[dict[str, Any]] = []
        in_request: set[int] = set()
        duplicates = 0

        for index, item in enumerate(items):
            point, errors = parse_point(item, now, max_future, max_age)
            if point is None:
                rejected.append({"index": index, "reason": describe(errors)})
                continue
            key = dedup_key(point)
            if key in in_request or key in self._dedup:
                duplicates += 1
                continue
            in_request.add(key)
            fresh.append(point)
            keys.append(key)
        return fresh, keys, rejected, duplicates

    def _refuse(self, count: int) -> None:
        self.counters["refused"] += count

    def _seconds_to_room(self, count: int) -> int:
        excess = self._queue.queued + count - self._queue.capacity
        if self.drain_rate <= 0 or excess <= 0:
            return 1
        return min(_MAX_RETRY_AFTER, max(1, math.ceil(excess / self.drain_rate)))


def _event_time(point: dict[str, Any]) -> float:
    return point["ts"]


def _retry(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}
