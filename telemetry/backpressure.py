"""The bounded queue between the collector and the worker, bounded in points and in bytes.

Admission is all or nothing: a request's points either all fit or none are taken, so a refused
request can be retried whole and nothing acknowledged is ever dropped. Points the worker has
taken but not yet finished stay counted as queued, which keeps `accepted == processed + queued`
true at every moment.
"""

from __future__ import annotations

from collections import deque
from typing import Any

# What a point dict costs beyond its strings: the dict, its float and None slots, the
# attributes dict. Measured with tracemalloc on typical points; an estimate, not an account.
POINT_OVERHEAD_BYTES = 900


def point_bytes(point: dict[str, Any]) -> int:
    """An estimate of the memory one queued point holds."""
    return batch_bytes([point])[0]


def batch_bytes(points: list[dict[str, Any]]) -> list[int]:
    """`point_bytes` of each point, in one loop rather than a call per point."""
    sizes = []
    for point in points:
        attributes = point["attributes"]
        message = point["message"]
        size = POINT_OVERHEAD_BYTES + len(point["name"]) + (0 if message is None else len(message))
        for key, value in attributes.items():
            size += 64 + len(key) + (len(value) if isinstance(value, str) else 0)
        sizes.append(size)
    return sizes


class PointQueue:
    def __init__(self, capacity: int, capacity_bytes: int | None = None) -> None:
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        self._points: deque[dict[str, Any]] = deque()
        self._sizes: deque[int] = deque()
        self._in_flight = 0
        self._bytes = 0

    @property
    def queued(self) -> int:
        """Points acknowledged but not yet processed, including the batch in the worker."""
        return len(self._points) + self._in_flight

    @property
    def queued_bytes(self) -> int:
        """Estimated bytes of the queued points, including the batch in the worker."""
        return self._bytes

    def has_room(self, count: int, size: int = 0) -> bool:
        if self.queued + count > self.capacity:
            return False
        return self.capacity_bytes is None or self._bytes + size <= self.capacity_bytes

    def could_hold(self, count: int, size: int) -> bool:
        """Whether these points would fit an empty queue; if not, no retry can succeed."""
        if count > self.capacity:
            return False
        return self.capacity_bytes is None or size <= self.capacity_bytes

    def offer(self, points: list[dict[str, Any]], sizes: list[int] | None = None) -> bool:
        """Take every point, or none of them when they would not all fit."""
        sizes = sizes if sizes is not None else [point_bytes(point) for point in points]
        total = sum(sizes)
        if not self.has_room(len(points), total):
            return False

        self._points.extend(points)
        self._sizes.extend(sizes)
        self._bytes += total
        return True

    def take(self, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Hand the worker up to `limit` points and their bytes; they stay queued until `done`."""
        count = min(limit, len(self._points))
        if count == len(self._points):  # all of them: no pop per point
            batch, size = list(self._points), sum(self._sizes)
            self._points.clear()
            self._sizes.clear()
        else:
            popleft, pop_size = self._points.popleft, self._sizes.popleft
            batch = [popleft() for _ in range(count)]
            size = sum(pop_size() for _ in range(count))
        self._in_flight += count
        return batch, size

    def done(self, count: int, size: int = 0) -> None:
        self._in_flight -= count
        self._bytes -= size

    def __len__(self) -> int:
        """Points waiting for the worker, not counting the batch it holds."""
        return len(self._points)

    def __bool__(self) -> bool:
        return bool(self._points)
