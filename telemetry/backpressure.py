"""The bounded queue between the collector and the worker.

Admission is all or nothing: a request's points either all fit or none are taken, so a refused
request can be retried whole and nothing acknowledged is ever dropped. Points the worker has
taken but not yet finished stay counted as queued, which keeps `accepted == processed + queued`
true at every moment.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class PointQueue:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._points: deque[dict[str, Any]] = deque()
        self._in_flight = 0

    @property
    def queued(self) -> int:
        """Points acknowledged but not yet processed, including the batch in the worker."""
        return len(self._points) + self._in_flight

    def has_room(self, count: int) -> bool:
        return self.queued + count <= self.capacity

    def offer(self, points: list[dict[str, Any]]) -> bool:
        """Take every point, or none of them when they would not all fit."""
        if not self.has_room(len(points)):
            return False
        self._points.extend(points)
        return True

    def take(self, limit: int) -> list[dict[str, Any]]:
        """Hand the worker up to `limit` points; they stay queued until `done`."""
        count = min(limit, len(self._points))
        popleft = self._points.popleft
        batch = [popleft() for _ in range(count)]
        self._in_flight += count
        return batch

    def done(self, count: int) -> None:
        self._in_flight -= count

    def __bool__(self) -> bool:
        return bool(self._points)
